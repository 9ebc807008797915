//! Targeting rules: Common Expression Language (CEL) over a documented context.
//!
//! A rule is checked once, at publish, and refused with the position of the
//! first problem when it
//! * does not parse,
//! * names a field that is not in [`FIELDS`] or a function outside the allowed set,
//! * compares or combines values of different types, or is not a boolean,
//! * is too large (bytes, nesting, expression nodes) or too costly (a static
//!   bound on the work one evaluation can do), or nests macros (`exists` inside
//!   `all`, …), whose cost multiplies,
//! * names a sensitive topic (GDPR Art. 9) that the offer is not allowed to target.
//!
//! The same source is compiled again inside each vault; evaluation errors there
//! only drop that offer for that member.
//!
//! `cel` parses (on a thread of its own, see [`parse`]) and evaluates; the
//! tree it parses is the tree we check and evaluate.

mod check;
mod parse;

use crate::taxonomy::{Taxonomy, TopicIdx, TopicSet};
use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use parse::{Guards, Offsets, StackError};
use serde::Serialize;
use std::sync::{Arc, OnceLock};

/// Largest rule source, in bytes.
pub const MAX_RULE_BYTES: usize = 2048;
/// Deepest bracket nesting accepted before parsing (keeps the parser's
/// recursion bounded).
pub const MAX_NESTING: usize = 12;
/// Most operators (outside string literals) in one rule: long chains recurse
/// deeply in the parser and the interpreter.
pub const MAX_OPERATORS: usize = 100;
/// Deepest expression tree (a long chain like `a + a + a …` is deep).
pub const MAX_DEPTH: usize = 32;
/// Most expression nodes after macro expansion.
pub const MAX_NODES: usize = 400;
/// Most literal elements in one list.
pub const MAX_LIST_LITERAL: usize = 64;
/// Static cost bound: expression nodes evaluated in the worst case, with every
/// macro running over its longest possible list.
pub const MAX_COST: u64 = 20_000;
/// Longest list a member context can hold for `interests`.
pub const MAX_INTERESTS: u64 = crate::taxonomy::MAX_TOPICS as u64;
/// Longest list a member context can hold for `credentials`.
pub const MAX_CREDENTIALS: u64 = 64;

/// The type of a value in a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    Bool,
    Int,
    Uint,
    Double,
    String,
    List(Box<Type>),
    /// The element type of an empty list literal: unifies with anything.
    Dyn,
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Dyn => f.write_str("dyn"),
        }
    }
}

/// One documented field of the matching context.
#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
pub struct Field {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_name: &'static str,
    pub description: &'static str,
    #[serde(skip)]
    bound: u64,
}

/// The documented context a rule can read. Nothing else exists for a rule.
pub const FIELDS: [Field; 5] = [
    Field {
        name: "interests",
        type_name: "list(string)",
        description: "Topic slugs the member is interested in (declared, or suggested from their own receipts and accepted), with their parent topics. Sensitive topics appear only for offers flagged explicit_consent, and only those the member explicitly consented to.",
        bound: MAX_INTERESTS,
    },
    Field {
        name: "credentials",
        type_name: "list(string)",
        description: "Types of the credentials the member holds, e.g. \"membership\".",
        bound: MAX_CREDENTIALS,
    },
    Field {
        name: "region",
        type_name: "string",
        description: "The member's region (profile attribute `region`), \"\" when not set.",
        bound: 0,
    },
    Field {
        name: "age_band",
        type_name: "string",
        description: "One of \"under-18\", \"18-24\", \"25-34\", \"35-44\", \"45-54\", \"55-64\", \"65+\", or \"\" when the member has not set `birth_year`.",
        bound: 0,
    },
    Field {
        name: "loyalty_tier",
        type_name: "string",
        description: "The member's loyalty tier (profile attribute `loyalty_tier`), \"\" when not set.",
        bound: 0,
    },
];

fn field_type(name: &str) -> Option<(Type, u64)> {
    let f = FIELDS.iter().find(|f| f.name == name)?;
    let t = if f.type_name == "list(string)" {
        Type::List(Box::new(Type::String))
    } else {
        Type::String
    };
    Some((t, f.bound))
}

/// Functions and operators a rule may call.
pub const FUNCTIONS: [&str; 26] = [
    "_&&_",
    "_||_",
    "!_",
    "-_",
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_+_",
    "_-_",
    "_*_",
    "_/_",
    "_%_",
    "@in",
    "_?_:_",
    "_[_]",
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "@not_strictly_false",
    "all",
    "exists",
    "exists_one",
];

/// Where in the rule source a problem is: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    fn at(source: &str, byte: usize) -> Self {
        let byte = byte.min(source.len());
        let before = source.get(..byte).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit_once('\n')
            .map(|(_, l)| l)
            .unwrap_or(before)
            .chars()
            .count()
            + 1;
        Self {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

/// What is wrong with a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleErrorKind {
    Syntax,
    UnknownField,
    FunctionNotAllowed,
    Type,
    TooLarge,
    TooCostly,
    NestedMacro,
    SensitiveTopic,
    /// The node could not start the thread a rule is checked on; not the
    /// rule's fault, try again.
    Unavailable,
}

/// A rule refused at publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, thiserror::Error)]
#[error("rule refused at line {}, column {}: {message}", position.line, position.column)]
pub struct RuleError {
    pub kind: RuleErrorKind,
    pub position: Position,
    pub message: String,
}

/// Which sensitive topics a rule may name.
#[derive(Clone, Copy, Debug)]
pub struct SensitivePolicy<'a> {
    /// The offer is flagged `explicit_consent`.
    pub explicit_consent: bool,
    /// The offer's own topics (a rule may only name sensitive topics listed there).
    pub offer_topics: &'a TopicSet,
}

/// One top-level condition of a rule (the rule split at its outer `&&`), kept
/// to explain a match.
#[derive(Debug)]
pub struct Clause {
    /// The clause's source text.
    pub text: String,
    /// The context fields it reads.
    pub fields: Vec<&'static str>,
    /// Topics it names.
    pub topics: Vec<TopicIdx>,
    expr: IdedExpr,
}

/// A checked, compiled rule.
#[derive(Debug)]
pub struct CompiledRule {
    pub source: String,
    /// Topic slugs named in the rule.
    pub topics: Vec<TopicIdx>,
    pub cost: u64,
    pub clauses: Vec<Clause>,
    /// The checked tree, evaluated as is (no second parse).
    expr: IdedExpr,
}

impl CompiledRule {
    /// Evaluates the rule. `Ok(false)` and errors both mean "no match".
    pub fn eval(&self, ctx: &Context) -> Result<bool, EvalError> {
        eval_expr(&self.expr, ctx)
    }

    /// The clauses that hold for this context (for "why this offer").
    pub fn holding_clauses<'a>(&'a self, ctx: &Context) -> Vec<&'a Clause> {
        self.clauses
            .iter()
            .filter(|c| eval_expr(&c.expr, ctx).unwrap_or(false))
            .collect()
    }
}

/// A rule failed for one member. Never shown with the member's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("the rule failed: {0}")]
    Failed(String),
    #[error("the rule did not produce a boolean")]
    NotBool,
}

fn eval_expr(e: &IdedExpr, ctx: &Context) -> Result<bool, EvalError> {
    match cel::Value::resolve(e, ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(_) => Err(EvalError::NotBool),
        Err(e) => Err(EvalError::Failed(kind_of(&e).to_owned())),
    }
}

fn kind_of(e: &cel::ExecutionError) -> &'static str {
    use cel::ExecutionError as E;
    match e {
        E::NoSuchKey(_) => "no such key",
        E::UndeclaredReference(_) => "undeclared reference",
        E::DivisionByZero(_) | E::RemainderByZero(_) => "division by zero",
        E::Overflow(..) => "overflow",
        _ => "evaluation error",
    }
}

/// Checks and compiles a rule: at publish, and again inside each vault when the
/// catalogue arrives (nothing the check refuses is ever evaluated).
///
/// The parse and the check run on a thread of their own with a known stack
/// ([`parse::on_rule_stack`]); this waits for it.
pub fn check(
    source: &str,
    taxonomy: &Taxonomy,
    policy: SensitivePolicy<'_>,
) -> Result<CompiledRule, RuleError> {
    check_with(source, taxonomy, policy, Guards::ALL)
}

fn check_with(
    source: &str,
    taxonomy: &Taxonomy,
    policy: SensitivePolicy<'_>,
    guards: Guards,
) -> Result<CompiledRule, RuleError> {
    let err = |kind, byte: usize, message: String| RuleError {
        kind,
        position: Position::at(source, byte),
        message,
    };
    if source.len() > MAX_RULE_BYTES {
        return Err(err(
            RuleErrorKind::TooLarge,
            MAX_RULE_BYTES,
            format!("the rule is longer than {MAX_RULE_BYTES} bytes"),
        ));
    }
    if source.trim().is_empty() {
        return Err(err(RuleErrorKind::Syntax, 0, "the rule is empty".into()));
    }
    match parse::on_rule_stack(|| check::check_here(source, taxonomy, policy, guards)) {
        Ok(result) => result,
        // The parser ended its thread: refuse the rule, the node goes on.
        Err(StackError::Died) => Err(err(
            RuleErrorKind::Syntax,
            0,
            "the rule could not be parsed".into(),
        )),
        Err(StackError::Spawn) => Err(err(
            RuleErrorKind::Unavailable,
            0,
            "the node could not check the rule right now; try again".into(),
        )),
    }
}

/// The evaluation context of a rule: a member's values of [`FIELDS`].
pub type Context = cel::Context<'static, 'static>;

/// The standard library, built once for every context.
fn environment() -> Arc<cel::Env> {
    static ENV: OnceLock<Arc<cel::Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(cel::Env::stdlib())).clone()
}

/// The context for one member, built once per member and reused for every offer.
pub fn context(values: &ContextValues) -> Context {
    use cel::Value;
    let list = |v: &[String]| {
        Value::List(Arc::new(
            v.iter()
                .map(|s| Value::String(Arc::new(s.clone())))
                .collect(),
        ))
    };
    let mut ctx = Context::with_env(environment());
    ctx.add_variable_from_value("interests", list(&values.interests));
    ctx.add_variable_from_value("credentials", list(&values.credentials));
    ctx.add_variable_from_value("region", Value::String(Arc::new(values.region.clone())));
    ctx.add_variable_from_value("age_band", Value::String(Arc::new(values.age_band.clone())));
    ctx.add_variable_from_value(
        "loyalty_tier",
        Value::String(Arc::new(values.loyalty_tier.clone())),
    );
    ctx
}

/// The values of [`FIELDS`] for one member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextValues {
    pub interests: Vec<String>,
    pub credentials: Vec<String>,
    pub region: String,
    pub age_band: String,
    pub loyalty_tier: String,
}

impl ContextValues {
    /// The member's value of a field, in words, for "why this offer".
    pub fn describe(&self, field: &str) -> Option<String> {
        let v = match field {
            "region" => &self.region,
            "age_band" => &self.age_band,
            "loyalty_tier" => &self.loyalty_tier,
            _ => return None,
        };
        let label = field.replace('_', " ");
        Some(if v.is_empty() {
            format!("your {label} is not set")
        } else {
            format!("your {label} is {v}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax() -> Taxonomy {
        Taxonomy::shipped().unwrap()
    }

    fn ok(src: &str) -> CompiledRule {
        let t = tax();
        let topics = TopicSet::default();
        check(
            src,
            &t,
            SensitivePolicy {
                explicit_consent: false,
                offer_topics: &topics,
            },
        )
        .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn refused(src: &str) -> RuleError {
        let t = tax();
        let topics = TopicSet::default();
        check(
            src,
            &t,
            SensitivePolicy {
                explicit_consent: false,
                offer_topics: &topics,
            },
        )
        .err()
        .unwrap_or_else(|| panic!("{src} was accepted"))
    }

    fn values() -> ContextValues {
        ContextValues {
            interests: vec!["cycling".into(), "sports".into()],
            credentials: vec!["membership".into()],
            region: "NL-NH".into(),
            age_band: "25-34".into(),
            loyalty_tier: "gold".into(),
        }
    }

    #[test]
    fn documented_rules_compile_and_evaluate() {
        let ctx = context(&values());
        let cases = [
            ("\"cycling\" in interests", true),
            (
                "region == \"NL-NH\" && age_band in [\"25-34\", \"35-44\"]",
                true,
            ),
            ("interests.exists(i, i.startsWith(\"cyc\"))", true),
            (
                "size(credentials) > 0 && \"membership\" in credentials",
                true,
            ),
            (
                "loyalty_tier == \"gold\" || loyalty_tier == \"silver\"",
                true,
            ),
            ("region.startsWith(\"BE\")", false),
            ("interests.all(i, i != \"organic\")", true),
            ("interests.exists_one(i, i == \"sports\")", true),
            ("!(\"organic\" in interests)", true),
            ("size(interests) >= 3", false),
        ];
        for (src, want) in cases {
            assert_eq!(ok(src).eval(&ctx), Ok(want), "{src}");
        }
    }

    #[test]
    fn errors_carry_the_position_of_the_problem() {
        let e = refused("region == \"NL\" &&\n  shoe_size > 42");
        assert_eq!(e.kind, RuleErrorKind::UnknownField);
        assert_eq!(e.position, Position { line: 2, column: 3 });
        assert!(e.message.contains("shoe_size"), "{}", e.message);

        let e = refused("region == 5");
        assert_eq!(e.kind, RuleErrorKind::Type);
        assert_eq!(e.position, Position { line: 1, column: 8 });

        let e = refused("region == \"NL\" && (");
        assert_eq!(e.kind, RuleErrorKind::Syntax);
        assert_eq!(e.position.line, 1);

        let e = refused("age_band in \"25-34\"");
        assert_eq!(e.kind, RuleErrorKind::Type);
    }

    #[test]
    fn the_refusal_matrix() {
        let cases: &[(&str, RuleErrorKind)] = &[
            ("", RuleErrorKind::Syntax),
            ("region ==", RuleErrorKind::Syntax),
            ("region", RuleErrorKind::Type),
            ("size(interests)", RuleErrorKind::Type),
            ("email == \"x\"", RuleErrorKind::UnknownField),
            ("member.region == \"x\"", RuleErrorKind::UnknownField),
            ("has(region.x)", RuleErrorKind::UnknownField),
            ("region.matches(\"a+\")", RuleErrorKind::FunctionNotAllowed),
            (
                "timestamp(\"2020-01-01T00:00:00Z\") > now",
                RuleErrorKind::FunctionNotAllowed,
            ),
            ("{\"a\": 1}.size() > 0", RuleErrorKind::FunctionNotAllowed),
            ("region == null", RuleErrorKind::Type),
            ("region < 3", RuleErrorKind::Type),
            ("[1, \"a\"].size() > 0", RuleErrorKind::Type),
            ("interests.exists(i, i > 3)", RuleErrorKind::Type),
            ("1 in interests", RuleErrorKind::Type),
            (
                "interests.exists(i, interests.exists(j, i == j))",
                RuleErrorKind::NestedMacro,
            ),
            ("\"health\" in interests", RuleErrorKind::SensitiveTopic),
            ("region == `x`", RuleErrorKind::Syntax),
            ("r\u{e9}gion == \"x\"", RuleErrorKind::Syntax),
            ("@result", RuleErrorKind::Syntax),
            ("size(interests) - 1 > 0", RuleErrorKind::FunctionNotAllowed),
            ("\"diabetes\" in interests", RuleErrorKind::SensitiveTopic),
        ];
        for (src, kind) in cases {
            let e = refused(src);
            assert_eq!(e.kind, *kind, "{src}: {e}");
        }
        let long = format!("region == \"{}\"", "a".repeat(MAX_RULE_BYTES));
        assert_eq!(refused(&long).kind, RuleErrorKind::TooLarge);
        let deep = format!("{}true{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(refused(&deep).kind, RuleErrorKind::TooLarge);
        let nots = format!("{}true", "!".repeat(100));
        assert_eq!(refused(&nots).kind, RuleErrorKind::TooLarge);
        let many = ["region == \"x\""; 120].join(" || ");
        assert_eq!(refused(&many).kind, RuleErrorKind::TooLarge);
        let costly =
            ["interests.exists(i, i == \"a\" || i == \"b\" || i == \"c\")"; 3].join(" && ");
        assert_eq!(refused(&costly).kind, RuleErrorKind::TooCostly);
    }

    #[test]
    fn explicit_offers_may_name_their_own_sensitive_topics_only() {
        let t = tax();
        let mut topics = TopicSet::default();
        topics.insert(t.by_slug("diabetes").unwrap());
        let policy = SensitivePolicy {
            explicit_consent: true,
            offer_topics: &topics,
        };
        assert!(check("\"diabetes\" in interests", &t, policy).is_ok());
        let e = check("\"halal-food\" in interests", &t, policy).unwrap_err();
        assert_eq!(e.kind, RuleErrorKind::SensitiveTopic);
    }

    #[test]
    fn clauses_split_at_the_outer_and_and_explain_which_held() {
        let rule = ok("\"cycling\" in interests && (region == \"NL-NH\" || region == \"BE\") && age_band != \"under-18\"");
        let texts: Vec<_> = rule.clauses.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "\"cycling\" in interests",
                "region == \"NL-NH\" || region == \"BE\"",
                "age_band != \"under-18\""
            ]
        );
        assert_eq!(rule.clauses[1].fields, vec!["region"]);
        let ctx = context(&values());
        assert_eq!(rule.holding_clauses(&ctx).len(), 3);
        let mut other = values();
        other.region = "DE".into();
        assert_eq!(rule.eval(&context(&other)), Ok(false));
    }

    #[test]
    fn clauses_keep_their_closing_brackets() {
        let rule = ok("region in [\"NL-NH\", \"BE\"] && size(interests) > 0 && interests.exists(i, i == \"sports\")");
        let texts: Vec<_> = rule.clauses.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "region in [\"NL-NH\", \"BE\"]",
                "size(interests) > 0",
                "interests.exists(i, i == \"sports\")"
            ]
        );
        assert_eq!(rule.holding_clauses(&context(&values())).len(), 3);
        assert!(refused("region == 5").message.contains("with an int"));
    }

    #[test]
    fn offsets_cover_the_whole_rule() {
        let src = "region == \"x\"";
        let (e, o) = parse::parse(src, parse::PARSER_MAX_DEPTH).ok().unwrap();
        assert_eq!(o.span(&e), (0, src.len()));
    }

    /// Rules of at most `MAX_RULE_BYTES` in every nesting shape the parser, its
    /// visitor or the checker recurses on.
    fn bombs() -> Vec<(&'static str, String)> {
        let n = MAX_RULE_BYTES;
        let fit = |s: String| s.get(..n).unwrap_or(&s).to_owned();
        vec![
            ("open brackets", fit("(".repeat(n))),
            (
                "parentheses",
                format!("{}true{}", "(".repeat(n / 2 - 2), ")".repeat(n / 2 - 2)),
            ),
            (
                "lists",
                format!("{}1{}", "[".repeat(n / 2 - 1), "]".repeat(n / 2 - 1)),
            ),
            ("maps", fit(format!("{}1", "{1:".repeat(n)))),
            ("calls", fit(format!("{}1", "size(".repeat(n)))),
            ("indexes", fit(format!("{}0", "interests[".repeat(n)))),
            (
                "macros",
                fit(format!("{}true", "interests.exists(i, ".repeat(n))),
            ),
            ("negations", format!("{}true", "!".repeat(n - 4))),
            (
                "negations in brackets",
                fit(format!("{}true", "!(".repeat(n))),
            ),
            ("minus signs", format!("{}1 > 0", "-".repeat(n - 5))),
            (
                "alternating prefixes",
                fit(format!("{}1 > 0", "!-".repeat(n))),
            ),
            ("or chain", fit(format!("true{}", " || true".repeat(n)))),
            ("plus chain", fit(format!("region{}", "+region".repeat(n)))),
            (
                "comparisons",
                fit(format!("region{}", "==region".repeat(n))),
            ),
            ("member chain", fit(format!("region{}", ".a".repeat(n)))),
            (
                "method chain",
                fit(format!("region{}", ".size()".repeat(n))),
            ),
            (
                "conditionals",
                fit(format!("{}true", "true ? true : ".repeat(n))),
            ),
            (
                "in chain",
                fit(format!("region{}", " in interests".repeat(n))),
            ),
        ]
    }

    /// Each guard alone keeps the node alive: with the prescan off (the only
    /// guard before), the parser's depth limit and the rule's own stack still
    /// hold; with the parser's limit off too, the stack alone holds. Before,
    /// with `cel-parser` 0.10 on the caller's thread, the first bomb aborted the
    /// test process (a stack overflow cannot be caught).
    #[test]
    fn bombs_the_prescan_would_stop_are_refused_without_it() {
        let t = tax();
        let topics = TopicSet::default();
        let policy = SensitivePolicy {
            explicit_consent: false,
            offer_topics: &topics,
        };
        for parser_depth in [parse::PARSER_MAX_DEPTH, u16::MAX] {
            let guards = Guards {
                prescan: false,
                parser_depth,
            };
            for (shape, src) in bombs() {
                assert!(src.len() <= MAX_RULE_BYTES, "{shape}: {} bytes", src.len());
                // With the prescan on, each is refused before the parser.
                let e = refused(&src);
                assert!(
                    matches!(e.kind, RuleErrorKind::TooLarge | RuleErrorKind::Syntax),
                    "{shape}: {e}"
                );
                // Without it, refused or (`!!…true` cancels out) accepted; the
                // parser's thread never dies, and the process goes on.
                if let Err(e) = check_with(&src, &t, policy, guards) {
                    assert!(
                        e.kind != RuleErrorKind::Unavailable
                            && !e.message.contains("could not be parsed"),
                        "{shape} (parser depth {parser_depth}): {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_thread_that_panics_is_an_error_for_its_caller() {
        assert_eq!(parse::on_rule_stack(|| 7), Ok(7));
        let died = parse::on_rule_stack(|| -> u8 { panic!("as the parser might") });
        assert_eq!(died, Err(StackError::Died));
    }

    #[test]
    fn a_failing_rule_is_an_error_not_a_panic() {
        let rule = ok("interests[5] < \"cycling\"");
        let ctx = context(&values());
        assert!(rule.eval(&ctx).is_err());
    }
}
