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
    match parse::on_rule_stack(|| check_here(source, taxonomy, policy, guards)) {
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

/// The check itself, on the thread [`check_with`] started.
fn check_here(
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
    if guards.prescan {
        parse::prescan(source).map_err(|(kind, byte, message)| err(kind, byte, message))?;
    }
    let (expr, offsets) =
        parse::parse(source, guards.parser_depth).map_err(|f| err(f.kind, f.byte, f.message))?;
    if too_deep(&expr, 0).is_some() {
        return Err(RuleError {
            kind: RuleErrorKind::TooLarge,
            position: Position::at(source, 0),
            message: format!("the rule nests deeper than {MAX_DEPTH} levels; split long chains"),
        });
    }
    let mut checker = Checker {
        source,
        offsets: &offsets,
        taxonomy,
        policy,
        scopes: Vec::new(),
        nodes: 0,
        in_loop: false,
        topics: Vec::new(),
    };
    let (ty, cost) = checker.infer(&expr)?;
    if ty != Type::Bool {
        return Err(checker.error(
            RuleErrorKind::Type,
            &expr,
            format!("a rule must be a boolean condition, this one is a {ty}"),
        ));
    }
    if cost > MAX_COST {
        return Err(checker.error(
            RuleErrorKind::TooCostly,
            &expr,
            format!("the rule may cost up to {cost} steps per member, more than {MAX_COST}; use fewer or simpler macros"),
        ));
    }
    let mut clauses = Vec::new();
    let mut conjuncts = Vec::new();
    split_and(&expr, &mut conjuncts);
    for c in conjuncts {
        // Evaluated alone for "why"; a bare top-level rule is its own clause.
        let (start, stop) = offsets.span(c);
        let text = source.get(start..stop).unwrap_or("").trim().to_owned();
        let mut sub = Checker {
            source,
            offsets: &offsets,
            taxonomy,
            policy,
            scopes: Vec::new(),
            nodes: 0,
            in_loop: false,
            topics: Vec::new(),
        };
        let mut fields = Vec::new();
        collect_fields(c, &mut fields);
        sub.infer(c)?;
        clauses.push(Clause {
            text,
            fields,
            topics: sub.topics,
            expr: c.clone(),
        });
    }
    Ok(CompiledRule {
        source: source.to_owned(),
        topics: checker.topics,
        cost,
        clauses,
        expr,
    })
}

/// Whether the tree is deeper than [`MAX_DEPTH`] (a small frame per level, so it
/// runs before anything recursing with larger frames).
fn too_deep(e: &IdedExpr, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return Some(());
    }
    let d = depth + 1;
    match &e.expr {
        Expr::Call(c) => c
            .target
            .iter()
            .map(|t| t.as_ref())
            .chain(c.args.iter())
            .find_map(|x| too_deep(x, d)),
        Expr::Select(s) => too_deep(&s.operand, d),
        Expr::List(l) => l.elements.iter().find_map(|x| too_deep(x, d)),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .find_map(|x| too_deep(x, d)),
        Expr::Map(_) | Expr::Struct(_) => None,
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => None,
    }
}

fn walk(e: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    f(e);
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                walk(t, f);
            }
            for a in &c.args {
                walk(a, f);
            }
        }
        Expr::Select(s) => walk(&s.operand, f),
        Expr::List(l) => {
            for x in &l.elements {
                walk(x, f);
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                walk(x, f);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    walk(&me.key, f);
                    walk(&me.value, f);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(sf) = &entry.expr {
                    walk(&sf.value, f);
                }
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn split_and<'a>(e: &'a IdedExpr, out: &mut Vec<&'a IdedExpr>) {
    if let Expr::Call(c) = &e.expr {
        if c.func_name == "_&&_" && c.target.is_none() && c.args.len() == 2 {
            for a in &c.args {
                split_and(a, out);
            }
            return;
        }
    }
    out.push(e);
}

fn collect_fields(e: &IdedExpr, out: &mut Vec<&'static str>) {
    walk(e, &mut |n| {
        if let Expr::Ident(name) = &n.expr {
            if let Some(f) = FIELDS.iter().find(|f| f.name == name) {
                if !out.contains(&f.name) {
                    out.push(f.name);
                }
            }
        }
    });
}

struct Checker<'a> {
    source: &'a str,
    offsets: &'a Offsets,
    taxonomy: &'a Taxonomy,
    policy: SensitivePolicy<'a>,
    /// Comprehension variables in scope: name, type.
    scopes: Vec<(String, Type)>,
    nodes: usize,
    in_loop: bool,
    topics: Vec<TopicIdx>,
}

impl Checker<'_> {
    fn error(&self, kind: RuleErrorKind, at: &IdedExpr, message: String) -> RuleError {
        RuleError {
            kind,
            position: Position::at(self.source, self.offsets.start(at)),
            message: articles(&message),
        }
    }

    fn type_error(&self, at: &IdedExpr, message: String) -> RuleError {
        self.error(RuleErrorKind::Type, at, message)
    }

    /// The type of an expression and a bound on its evaluation cost.
    fn infer(&mut self, e: &IdedExpr) -> Result<(Type, u64), RuleError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(
                RuleErrorKind::TooLarge,
                e,
                format!("the rule has more than {MAX_NODES} expression nodes"),
            ));
        }
        match &e.expr {
            Expr::Literal(v) => self.literal(e, v).map(|t| (t, 1)),
            Expr::Ident(name) => {
                if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
                    return Ok((t.clone(), 1));
                }
                match field_type(name) {
                    Some((t, _)) => Ok((t, 1)),
                    None => Err(self.error(
                        RuleErrorKind::UnknownField,
                        e,
                        format!(
                            "unknown field `{}`; a rule can read: {}",
                            clip(name),
                            field_names()
                        ),
                    )),
                }
            }
            Expr::Select(s) => {
                let what = match &s.operand.expr {
                    Expr::Ident(n) => format!("`{}.{}`", clip(n), clip(&s.field)),
                    _ => format!("`.{}`", clip(&s.field)),
                };
                Err(self.error(
                    RuleErrorKind::UnknownField,
                    e,
                    format!(
                        "unknown field {what}: context fields have no sub-fields; a rule can read: {}",
                        field_names()
                    ),
                ))
            }
            Expr::List(l) => {
                if l.elements.len() > MAX_LIST_LITERAL {
                    return Err(self.error(
                        RuleErrorKind::TooLarge,
                        e,
                        format!("list literals hold at most {MAX_LIST_LITERAL} elements"),
                    ));
                }
                let mut elem = Type::Dyn;
                let mut cost = 1;
                for x in &l.elements {
                    let (t, c) = self.infer(x)?;
                    cost += c;
                    elem = unify(&elem, &t).ok_or_else(|| {
                        self.type_error(x, format!("a list mixes {elem} and {t}"))
                    })?;
                }
                Ok((Type::List(Box::new(elem)), cost))
            }
            Expr::Map(_) | Expr::Struct(_) => Err(self.error(
                RuleErrorKind::FunctionNotAllowed,
                e,
                "map and message literals are not allowed in targeting rules".into(),
            )),
            Expr::Unspecified => {
                Err(self.error(RuleErrorKind::Syntax, e, "incomplete expression".into()))
            }
            Expr::Comprehension(c) => self.comprehension(e, c),
            Expr::Call(c) => self.call(e, c),
        }
    }

    fn literal(&mut self, e: &IdedExpr, v: &LiteralValue) -> Result<Type, RuleError> {
        Ok(match v {
            LiteralValue::Boolean(_) => Type::Bool,
            LiteralValue::Int(_) => Type::Int,
            LiteralValue::UInt(_) => Type::Uint,
            LiteralValue::Double(_) => Type::Double,
            LiteralValue::String(s) => {
                self.topic_literal(e, s.inner())?;
                Type::String
            }
            LiteralValue::Bytes(_) => {
                return Err(self.type_error(e, "bytes are not a value of any field".into()))
            }
            LiteralValue::Null => {
                return Err(self.type_error(
                    e,
                    "null is not a value of any field: unset strings are \"\"".into(),
                ))
            }
        })
    }

    /// A string literal that names a topic: refused when the topic is sensitive
    /// and the offer may not target it.
    fn topic_literal(&mut self, e: &IdedExpr, s: &str) -> Result<(), RuleError> {
        let Some(idx) = self.taxonomy.by_slug(s) else {
            return Ok(());
        };
        if !self.topics.contains(&idx) {
            self.topics.push(idx);
        }
        if let Some(category) = self.taxonomy.sensitive_category(idx) {
            let allowed = self.policy.explicit_consent && self.policy.offer_topics.contains(idx);
            if !allowed {
                let why = if self.policy.explicit_consent {
                    "list it in the offer's topics so members consent to it explicitly"
                } else {
                    "only offers flagged explicit_consent may target it, and only members who explicitly consented see them"
                };
                return Err(self.error(
                    RuleErrorKind::SensitiveTopic,
                    e,
                    format!(
                        "topic `{s}` touches the special category `{category}` (GDPR Art. 9): {why}"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn comprehension(
        &mut self,
        e: &IdedExpr,
        c: &ComprehensionExpr,
    ) -> Result<(Type, u64), RuleError> {
        if self.in_loop {
            return Err(RuleError {
                kind: RuleErrorKind::NestedMacro,
                position: Position::at(self.source, self.offsets.span(e).0),
                message:
                    "macros (all, exists, exists_one, map, filter) cannot be nested: their cost multiplies".into(),
            });
        }
        let (range_ty, range_cost) = self.infer(&c.iter_range)?;
        let Type::List(elem) = range_ty else {
            return Err(self.type_error(
                &c.iter_range,
                format!("macros run over lists, this is a {range_ty}"),
            ));
        };
        let bound = self.range_bound(&c.iter_range);
        let (accu_ty, init_cost) = self.infer(&c.accu_init)?;
        self.scopes.push((c.iter_var.clone(), (*elem).clone()));
        self.scopes.push((c.accu_var.clone(), accu_ty.clone()));
        self.in_loop = true;
        let step = self.infer(&c.loop_step);
        let cond = step.and_then(|s| self.infer(&c.loop_cond).map(|c| (s, c)));
        self.in_loop = false;
        let ((step_ty, step_cost), (cond_ty, cond_cost)) = match cond {
            Ok(v) => v,
            Err(err) => {
                self.scopes.truncate(self.scopes.len().saturating_sub(2));
                return Err(err);
            }
        };
        let accu = unify(&accu_ty, &step_ty);
        self.scopes.pop();
        let Some(accu) = accu else {
            self.scopes.pop();
            return Err(self.type_error(
                &c.loop_step,
                format!("the macro's body is a {step_ty}, expected {accu_ty}"),
            ));
        };
        if cond_ty != Type::Bool {
            self.scopes.pop();
            return Err(self.type_error(
                &c.loop_cond,
                "the macro's condition must be a boolean".into(),
            ));
        }
        self.scopes.push((c.accu_var.clone(), accu));
        let result = self.infer(&c.result);
        self.scopes.truncate(self.scopes.len().saturating_sub(2));
        let (result_ty, result_cost) = result?;
        let cost = range_cost
            .saturating_add(init_cost)
            .saturating_add(bound.saturating_mul(step_cost.saturating_add(cond_cost)))
            .saturating_add(result_cost);
        Ok((result_ty, cost))
    }

    /// The longest list an expression can be at evaluation time.
    fn range_bound(&self, e: &IdedExpr) -> u64 {
        match &e.expr {
            Expr::Ident(n) => field_type(n).map(|(_, b)| b).unwrap_or(MAX_INTERESTS),
            Expr::List(l) => l.elements.len() as u64,
            // Concatenations and anything else: the largest any list can be.
            _ => MAX_INTERESTS + MAX_CREDENTIALS,
        }
    }

    fn call(&mut self, e: &IdedExpr, c: &CallExpr) -> Result<(Type, u64), RuleError> {
        let name = c.func_name.as_str();
        if !FUNCTIONS.contains(&name) {
            return Err(self.error(
                RuleErrorKind::FunctionNotAllowed,
                e,
                format!(
                    "function `{}` is not allowed in targeting rules; use comparisons, in, size, contains, startsWith, endsWith, all, exists, exists_one",
                    clip(name)
                ),
            ));
        }
        let mut cost = 1u64;
        let target = match &c.target {
            Some(t) => {
                let (ty, tc) = self.infer(t)?;
                cost = cost.saturating_add(tc);
                Some(ty)
            }
            None => None,
        };
        let mut args = Vec::with_capacity(c.args.len());
        for a in &c.args {
            let (ty, ac) = self.infer(a)?;
            cost = cost.saturating_add(ac);
            args.push(ty);
        }
        let arg = |i: usize| c.args.get(i).unwrap_or(e);
        let ty = match (name, target.as_ref(), args.as_slice()) {
            ("_&&_" | "_||_", None, [a, b]) => {
                self.expect(arg(0), a, &Type::Bool)?;
                self.expect(arg(1), b, &Type::Bool)?;
                Type::Bool
            }
            ("!_" | "@not_strictly_false", None, [a]) => {
                self.expect(arg(0), a, &Type::Bool)?;
                Type::Bool
            }
            ("-_", None, [_]) | ("_-_" | "_*_" | "_/_" | "_%_", None, [_, _]) => {
                // Arithmetic can overflow or divide by zero inside the interpreter,
                // and targeting never needs it: compare values directly.
                return Err(self.error(
                        RuleErrorKind::FunctionNotAllowed,
                        e,
                        "arithmetic is not allowed in targeting rules; compare values directly (e.g. size(interests) >= 3)".into(),
                    ));
            }
            ("_==_" | "_!=_", None, [a, b]) => {
                if unify(a, b).is_none() {
                    return Err(self.type_error(e, format!("cannot compare a {a} with a {b}")));
                }
                Type::Bool
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", None, [a, b]) => {
                let ordered = matches!(a, Type::Int | Type::Uint | Type::Double | Type::String);
                if !ordered || a != b {
                    return Err(self.type_error(e, format!("cannot order a {a} against a {b}")));
                }
                Type::Bool
            }
            ("_+_", None, [a, b]) => {
                // Strings and lists only: numeric addition can overflow. The one
                // exception is `exists_one`'s own counter, bounded by its list.
                let counter = matches!(
                    c.args.first().map(|x| &x.expr),
                    Some(Expr::Ident(n)) if n.starts_with('@')
                );
                let ok = matches!(a, Type::String | Type::List(_)) || (counter && *a == Type::Int);
                match unify(a, b) {
                    Some(t) if ok => t,
                    _ => return Err(self.type_error(e, format!("cannot add a {a} and a {b}"))),
                }
            }
            ("@in", None, [a, b]) => match b {
                Type::List(elem) if unify(a, elem).is_some() => Type::Bool,
                Type::List(elem) => {
                    return Err(
                        self.type_error(e, format!("cannot look for a {a} in a list of {elem}"))
                    )
                }
                _ => {
                    return Err(self.type_error(
                        arg(1),
                        format!("`in` needs a list on its right, this is a {b}"),
                    ))
                }
            },
            ("_?_:_", None, [cond, a, b]) => {
                self.expect(arg(0), cond, &Type::Bool)?;
                unify(a, b).ok_or_else(|| {
                    self.type_error(e, format!("the branches are a {a} and a {b}"))
                })?
            }
            ("_[_]", None, [list, idx]) => match list {
                Type::List(elem) => {
                    self.expect(arg(1), idx, &Type::Int)?;
                    (**elem).clone()
                }
                _ => return Err(self.type_error(arg(0), format!("cannot index a {list}"))),
            },
            ("size", None, [a]) | ("size", Some(a), []) => {
                if !matches!(a, Type::String | Type::List(_)) {
                    return Err(
                        self.type_error(e, format!("size() takes a string or a list, not a {a}"))
                    );
                }
                Type::Int
            }
            ("contains" | "startsWith" | "endsWith", Some(t), [a]) => {
                self.expect(c.target.as_deref().unwrap_or(e), t, &Type::String)?;
                self.expect(arg(0), a, &Type::String)?;
                Type::Bool
            }
            _ => {
                return Err(self.type_error(
                    e,
                    format!(
                        "`{}` is called with the wrong number or kind of arguments",
                        display_name(name)
                    ),
                ))
            }
        };
        Ok((ty, cost))
    }

    fn expect(&self, at: &IdedExpr, got: &Type, want: &Type) -> Result<(), RuleError> {
        if unify(got, want).is_some() {
            Ok(())
        } else {
            Err(self.type_error(at, format!("expected a {want}, found a {got}")))
        }
    }
}

/// "a int" → "an int" in messages built from type names.
fn articles(m: &str) -> String {
    m.replace(" a int", " an int")
        .replace(" a uint", " an uint")
}

fn display_name(f: &str) -> &str {
    match f {
        "_&&_" => "&&",
        "_||_" => "||",
        "!_" => "!",
        "_==_" => "==",
        "_!=_" => "!=",
        "@in" => "in",
        other => other,
    }
}

fn unify(a: &Type, b: &Type) -> Option<Type> {
    match (a, b) {
        (Type::Dyn, t) | (t, Type::Dyn) => Some(t.clone()),
        (Type::List(x), Type::List(y)) => unify(x, y).map(|t| Type::List(Box::new(t))),
        (x, y) if x == y => Some(x.clone()),
        _ => None,
    }
}

fn field_names() -> String {
    FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// Names from the rule are echoed in errors; keep them short.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
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
