//! Property tests for offers: the rule checker on arbitrary and generated input,
//! matching's sensitive-topic gate over random catalogues and members, the
//! explanations ("why this offer"), and the taxonomy's sensitive inheritance.
//!
//! Proptest failure persistence is off: a failing case is printed, shrunk, and
//! not written next to this file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_domain::record::{Interest, InterestSource, ProfileAttribute, RecordContent};
use me2b_domain::text::{Label, Slug};
use me2b_domain::{OfferId, OrgId, Timestamp};
use me2b_offers::matching::{self, Catalogue, Mode, Outcome, Profile};
use me2b_offers::offer::{resolve_topics, PartnerPart, MAX_TOPICS_PER_OFFER};
use me2b_offers::rule::{
    self, check, ContextValues, EvalError, SensitivePolicy, FIELDS, MAX_COST, MAX_RULE_BYTES,
};
use me2b_offers::taxonomy::TopicSet;
use me2b_offers::{OfferError, PublishedOffer, Taxonomy};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::collections::BTreeSet;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------
// Shared fixtures
// ---------------------------------------------------------------------------

fn tax() -> &'static Taxonomy {
    static T: OnceLock<Taxonomy> = OnceLock::new();
    T.get_or_init(|| Taxonomy::shipped().unwrap())
}

/// Topic slugs the generators draw from.
struct Pools {
    /// Non-sensitive topics: a few everyday ones, plus every non-sensitive
    /// ancestor of a sensitive topic and their non-sensitive children (the
    /// places where a sensitive interest could leak through the hierarchy).
    plain: Vec<&'static str>,
    /// Every sensitive topic of the shipped taxonomy.
    sensitive: Vec<&'static str>,
    /// Every slug.
    all: Vec<&'static str>,
}

fn pools() -> &'static Pools {
    static P: OnceLock<Pools> = OnceLock::new();
    P.get_or_init(|| {
        let t = tax();
        let mut sensitive = Vec::new();
        let mut near = BTreeSet::new();
        for topic in t.topics() {
            let idx = t.by_slug(&topic.slug).unwrap();
            if t.is_sensitive(idx) {
                sensitive.push(topic.slug.as_str());
                for a in t.lineage(idx).iter() {
                    if !t.is_sensitive(a) {
                        near.insert(t.slug(a));
                    }
                }
            }
        }
        let mut plain: BTreeSet<&'static str> = [
            "sports",
            "cycling",
            "water-sports",
            "swimming",
            "food-and-drink",
            "food",
            "organic-and-natural-foods",
            "fair-trade",
            "organic",
        ]
        .into_iter()
        .collect();
        plain.extend(near.iter().copied());
        for topic in t.topics() {
            let idx = t.by_slug(&topic.slug).unwrap();
            if !t.is_sensitive(idx) && topic.parent.as_deref().is_some_and(|p| near.contains(p)) {
                plain.insert(topic.slug.as_str());
            }
        }
        for s in &plain {
            assert!(!t.is_sensitive(t.by_slug(s).unwrap()), "{s}");
        }
        Pools {
            plain: plain.into_iter().collect(),
            sensitive,
            all: t.topics().iter().map(|x| x.slug.as_str()).collect(),
        }
    })
}

/// A plain topic, mostly from a few related ones so that members and offers meet.
fn pick_plain() -> BoxedStrategy<&'static str> {
    prop_oneof![
        3 => select(vec![
            "sports", "cycling", "food", "organic", "parenting", "child-care", "insurance", "fair-trade",
        ]),
        2 => select(pools().plain.clone()),
    ]
    .boxed()
}

/// A sensitive topic, mostly from a few so that consents and offers meet.
fn pick_sensitive() -> BoxedStrategy<&'static str> {
    prop_oneof![
        3 => select(vec!["diabetes", "halal-food", "babies-and-toddlers", "trade-unions"]),
        1 => select(pools().sensitive.clone()),
    ]
    .boxed()
}

fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_795_000_000_000)
}

fn no_topics() -> &'static TopicSet {
    static S: OnceLock<TopicSet> = OnceLock::new();
    S.get_or_init(TopicSet::default)
}

fn plain_policy() -> SensitivePolicy<'static> {
    SensitivePolicy {
        explicit_consent: false,
        offer_topics: no_topics(),
    }
}

fn topic_set(slugs: &[&str]) -> TopicSet {
    let mut s = TopicSet::default();
    for x in slugs {
        s.insert(tax().by_slug(x).unwrap());
    }
    s
}

// ---------------------------------------------------------------------------
// a. The checker never panics, and its errors point into the source
// ---------------------------------------------------------------------------

/// Pieces of CEL, valid and not.
fn token() -> impl Strategy<Value = String> {
    let fields: Vec<&'static str> = FIELDS.iter().map(|f| f.name).collect();
    prop_oneof![
        3 => select(fields).prop_map(String::from),
        2 => select(vec![
            "x", "i", "foo", "member", "email", "now", "__result__", "has", "size", "timestamp",
            "int", "matches", "map", "filter", "null", "true", "false", "in", "dyn", "type",
        ])
        .prop_map(String::from),
        4 => select(vec![
            "&&", "||", "!", "-", "+", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", " in ",
            "?", ":", ",", ".", "(", ")", "[", "]", "{", "}",
        ])
        .prop_map(String::from),
        2 => "[a-z\\-é 0-9\\\\\"']{0,8}".prop_map(|s| format!("\"{s}\"")),
        1 => "[a-z]{0,6}".prop_map(|s| format!("'{s}'")),
        1 => select(vec!["r\"a\\b\"", "'''x'''", "b\"ab\"", "\"\\u00e9\"", "\"\\x\"", "\"", "'"])
            .prop_map(String::from),
        2 => select(vec![
            "0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
            "9223372036854775808", "0x7fffffffffffffff", "0x", "1u", "18446744073709551615u",
            "18446744073709551616u", "1.5", "1e308", "1e309", "-0.0", ".5", "1.", "07",
        ])
        .prop_map(String::from),
        2 => select(pools().all.clone()).prop_map(|s| format!("\"{s}\"")),
        2 => select(vec![
            ".exists(x, ", ".all(x, ", ".exists_one(x, ", ".map(x, ", ".filter(x, ",
            ".exists(i, i ", "has(", "size(", ".size()", ".startsWith(", ".contains(",
            ".endsWith(", ".matches(", "[0]", "[]",
        ])
        .prop_map(String::from),
        1 => select(vec![" ", "\n", "\t", "// c\n", "\r\n", "/*", "\u{0}", "\u{202e}"])
            .prop_map(String::from),
    ]
}

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((token(), select(vec!["", " ", " ", "\n"])), 0..48).prop_map(|v| {
        v.into_iter()
            .map(|(t, sep)| format!("{t}{sep}"))
            .collect::<String>()
    })
}

/// Inputs around the size limit (so the limit's error position and the
/// boundary itself are exercised, including multi-byte characters across it).
fn near_limit() -> impl Strategy<Value = String> {
    (
        token_soup(),
        MAX_RULE_BYTES - 8..MAX_RULE_BYTES + 8,
        any::<bool>(),
    )
        .prop_map(|(seed, len, wide)| {
            let seed = if seed.is_empty() {
                "region == \"é\" && ".to_owned()
            } else {
                seed
            };
            let mut s = String::new();
            while s.len() < len {
                s.push_str(if wide { "é" } else { &seed });
            }
            while s.len() > len {
                s.pop();
            }
            s
        })
}

fn any_source() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => token_soup(),
        2 => any::<String>(),
        1 => "\\PC{0,64}",
        1 => near_limit(),
    ]
}

/// Runs `f` on a thread with a large stack. In debug builds cel-parser needs
/// more than a test thread's 2 MiB for 16 nested brackets, which the checker
/// allows (see `deep_rules_neither_overflow_a_2mib_stack_nor_panic`); here the
/// properties are about logic, so the stack limit is taken out of the way. A
/// panic in `f` is re-raised for proptest to shrink.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, f)
            .unwrap();
        worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Checks one source under a policy and asserts what holds for every outcome.
fn check_invariants(src: &str, policy: SensitivePolicy<'_>) -> Option<rule::CompiledRule> {
    let started = std::time::Instant::now();
    let result = on_big_stack(|| check(src, tax(), policy));
    // "Returns": generously bounded, so only a runaway shows up here.
    assert!(
        started.elapsed().as_secs() < 10,
        "check took {:?}",
        started.elapsed()
    );
    match result {
        Ok(r) => {
            assert!(src.len() <= MAX_RULE_BYTES);
            assert!(!src.trim().is_empty());
            assert!(r.cost <= MAX_COST, "cost {} over {MAX_COST}", r.cost);
            assert_eq!(r.source, src);
            for c in &r.clauses {
                assert!(!c.text.is_empty());
            }
            Some(r)
        }
        Err(e) => {
            let p = e.position;
            let lines: Vec<&str> = src.split('\n').collect();
            assert!(p.line >= 1 && p.column >= 1, "{e:?}");
            assert!(
                (p.line as usize) <= src.lines().count() + 1,
                "line {} past the source ({} lines): {e:?}",
                p.line,
                src.lines().count()
            );
            let line = lines.get(p.line as usize - 1).copied().unwrap_or("");
            assert!(
                (p.column as usize) <= line.chars().count() + 1,
                "column {} past line {} ({} chars): {e:?}",
                p.column,
                p.line,
                line.chars().count()
            );
            assert!(!e.message.is_empty());
            None
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_checker_never_panics_and_points_into_the_source(src in any_source(), sens in select(pools().sensitive.clone())) {
        check_invariants(&src, plain_policy());
        let own = topic_set(&[sens]);
        check_invariants(&src, SensitivePolicy { explicit_consent: true, offer_topics: &own });
    }
}

// ---------------------------------------------------------------------------
// b. Accepted rules evaluate to a boolean or an error, never a panic
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    Str,
    ListStr,
    ListInt,
}

const INTS: [&str; 9] = [
    "0",
    "1",
    "-1",
    "7",
    "-9223372036854775808",
    "9223372036854775807",
    "2147483648",
    "-3",
    "4611686018427387904",
];

fn leaf(ty: Ty) -> BoxedStrategy<String> {
    let s = |v: Vec<&'static str>| select(v).prop_map(String::from).boxed();
    match ty {
        Ty::Bool => s(vec!["true", "false"]),
        Ty::Int => prop_oneof![
            3 => s(INTS.to_vec()),
            1 => s(vec!["size(region)", "size(interests)", "size(credentials)", "interests.size()"]),
        ]
        .boxed(),
        Ty::Uint => s(vec!["0u", "1u", "18446744073709551615u", "9223372036854775808u"]),
        Ty::Double => s(vec!["0.0", "-0.0", "1.5", "1e308", "-1e308", "0.1"]),
        Ty::Str => prop_oneof![
            2 => s(vec!["region", "age_band", "loyalty_tier"]),
            2 => select(pools().plain.clone()).prop_map(|t| format!("\"{t}\"")),
            1 => s(vec!["\"\"", "\"NL-NH\"", "\"gold\"", "\"25-34\"", "'é'", "\"membership\""]),
        ]
        .boxed(),
        Ty::ListStr => s(vec!["interests", "credentials", "[]", "[\"a\", region]"]),
        Ty::ListInt => s(vec!["[1, 2, 3]", "[]", "[-9223372036854775808]", "[size(region)]"]),
    }
}

/// A (mostly) well-typed expression of a type, fully parenthesised.
fn typed(ty: Ty, depth: u32) -> BoxedStrategy<String> {
    if depth == 0 {
        return leaf(ty);
    }
    let d = depth - 1;
    let t = move |ty| typed(ty, d);
    let num_op = select(vec!["+", "-", "*", "/", "%"]);
    let cmp_op = select(vec!["==", "!=", "<", "<=", ">", ">="]);
    let composite: BoxedStrategy<String> = match ty {
        Ty::Bool => prop_oneof![
            (t(Ty::Bool), select(vec!["&&", "||"]), t(Ty::Bool))
                .prop_map(|(a, o, b)| format!("({a} {o} {b})")),
            t(Ty::Bool).prop_map(|a| format!("!({a})")),
            (
                select(vec![Ty::Int, Ty::Uint, Ty::Double, Ty::Str]),
                cmp_op.clone()
            )
                .prop_flat_map(move |(ty, op)| (t(ty), Just(op), t(ty)))
                .prop_map(|(a, o, b)| format!("({a} {o} {b})")),
            (t(Ty::ListStr), t(Ty::ListStr)).prop_map(|(a, b)| format!("({a} == {b})")),
            (t(Ty::Str), t(Ty::ListStr)).prop_map(|(a, b)| format!("({a} in {b})")),
            (t(Ty::Int), t(Ty::ListInt)).prop_map(|(a, b)| format!("({a} in {b})")),
            (
                t(Ty::Str),
                select(vec!["startsWith", "endsWith", "contains"]),
                t(Ty::Str)
            )
                .prop_map(|(a, f, b)| format!("{a}.{f}({b})")),
            (
                t(Ty::ListStr),
                select(vec!["exists", "all", "exists_one"]),
                leaf(Ty::Str)
            )
                .prop_map(|(l, m, s)| format!("{l}.{m}(x, x == {s} || x.startsWith({s}))")),
            (t(Ty::ListInt), select(vec!["exists", "all"]), leaf(Ty::Int))
                .prop_map(|(l, m, n)| format!("{l}.{m}(x, x - {n} > 0)")),
            (t(Ty::Bool), t(Ty::Bool), t(Ty::Bool))
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
        .boxed(),
        // Arithmetic and negation weigh most: the integer edges live there.
        Ty::Int => prop_oneof![
            3 => (t(Ty::Int), num_op, t(Ty::Int)).prop_map(|(a, o, b)| format!("({a} {o} {b})")),
            3 => t(Ty::Int).prop_map(|a| format!("-({a})")),
            1 => t(Ty::ListStr).prop_map(|a| format!("size({a})")),
            1 => t(Ty::Str).prop_map(|a| format!("{a}.size()")),
            1 => (t(Ty::ListInt), t(Ty::Int)).prop_map(|(l, i)| format!("{l}[{i}]")),
            1 => (t(Ty::Bool), t(Ty::Int), t(Ty::Int))
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
        .boxed(),
        Ty::Uint => (t(Ty::Uint), num_op, t(Ty::Uint))
            .prop_map(|(a, o, b)| format!("({a} {o} {b})"))
            .boxed(),
        Ty::Double => prop_oneof![
            (
                t(Ty::Double),
                select(vec!["+", "-", "*", "/"]),
                t(Ty::Double)
            )
                .prop_map(|(a, o, b)| format!("({a} {o} {b})")),
            t(Ty::Double).prop_map(|a| format!("-({a})")),
        ]
        .boxed(),
        Ty::Str => prop_oneof![
            (t(Ty::Str), t(Ty::Str)).prop_map(|(a, b)| format!("({a} + {b})")),
            (t(Ty::ListStr), t(Ty::Int)).prop_map(|(l, i)| format!("{l}[{i}]")),
            (t(Ty::Bool), t(Ty::Str), t(Ty::Str))
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
        .boxed(),
        Ty::ListStr => prop_oneof![
            (t(Ty::ListStr), t(Ty::ListStr)).prop_map(|(a, b)| format!("({a} + {b})")),
            (t(Ty::Str), t(Ty::Str)).prop_map(|(a, b)| format!("[{a}, {b}]")),
            t(Ty::ListStr).prop_map(|l| format!("{l}.filter(y, y != \"\")")),
        ]
        .boxed(),
        Ty::ListInt => prop_oneof![
            (t(Ty::ListInt), t(Ty::ListInt)).prop_map(|(a, b)| format!("({a} + {b})")),
            (t(Ty::Int), t(Ty::Int)).prop_map(|(a, b)| format!("[{a}, {b}]")),
        ]
        .boxed(),
    };
    prop_oneof![1 => leaf(ty), 3 => composite].boxed()
}

fn context_values() -> impl Strategy<Value = ContextValues> {
    let word = prop_oneof![
        3 => select(pools().all.clone()).prop_map(String::from),
        1 => "\\PC{0,12}",
    ];
    (
        prop::collection::vec(word, 0..12),
        prop::collection::vec(
            prop_oneof![
                select(vec!["membership", "student", ""]).prop_map(String::from),
                "\\PC{0,8}"
            ],
            0..4,
        ),
        prop_oneof![
            select(vec!["", "NL-NH", "BE", "DE"]).prop_map(String::from),
            "\\PC{0,8}"
        ],
        select(vec![
            "", "under-18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+",
        ]),
        prop_oneof![
            select(vec!["", "gold", "silver"]).prop_map(String::from),
            "\\PC{0,8}"
        ],
    )
        .prop_map(
            |(interests, credentials, region, age_band, loyalty_tier)| ContextValues {
                interests,
                credentials,
                region,
                age_band: age_band.to_owned(),
                loyalty_tier,
            },
        )
}

fn eval_never_panics(r: &rule::CompiledRule, values: &ContextValues) {
    on_big_stack(|| {
        let ctx = rule::context(values);
        match r.eval(&ctx) {
            Ok(_) | Err(EvalError::Failed(_)) | Err(EvalError::NotBool) => {}
        }
        for c in r.holding_clauses(&ctx) {
            assert!(r.clauses.iter().any(|k| std::ptr::eq(k, c)));
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Generated, mostly well-typed rules: most are accepted, so evaluation is
    /// exercised on integer edges, empty lists, out-of-range indexes, …
    #[test]
    fn accepted_rules_evaluate_to_a_boolean_or_an_error(src in typed(Ty::Bool, 3), values in context_values()) {
        if let Some(r) = check_invariants(&src, plain_policy()) {
            eval_never_panics(&r, &values);
        }
    }

    /// The same for whatever the token soup gets accepted.
    #[test]
    fn accepted_token_soup_evaluates_without_panicking(src in token_soup(), values in context_values()) {
        if let Some(r) = check_invariants(&src, plain_policy()) {
            eval_never_panics(&r, &values);
        }
    }
}

/// cel-interpreter negates with `-i` (objects.rs, `operators::NEGATE`), which
/// overflows on i64::MIN: a panic in a build with overflow checks (debug,
/// tests), a silent wrap in release. Such a rule must be refused at publish, or
/// evaluate to an error.
#[test]
fn negating_the_smallest_int_is_an_error_not_a_panic() {
    for src in [
        "-(-9223372036854775808) < 0",
        "-(size(region) - 9223372036854775807 - 1) < 0",
    ] {
        let Ok(r) = check(src, tax(), plain_policy()) else {
            continue;
        };
        let ctx = rule::context(&ContextValues::default());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.eval(&ctx)));
        assert!(
            outcome.is_ok(),
            "evaluating the accepted rule `{src}` panicked"
        );
    }
}

// ---------------------------------------------------------------------------
// Deep inputs on a 2 MiB stack (a test thread's, a tokio worker's)
// ---------------------------------------------------------------------------

fn deep_inputs() -> Vec<(String, String)> {
    let rep = |pre: &str, r: &str, n: usize, post: &str| format!("{pre}{}{post}", r.repeat(n));
    let mut v = Vec::new();
    let mut push = |label: String, src: String| v.push((label, src));
    for n in [24, 40, 66, 100, 199] {
        push(format!("1 + … ×{n} > 0"), rep("", "1 + ", n, "1 > 0"));
        push(
            format!("region + … ×{n}"),
            rep("", "region + ", n, "region == \"\""),
        );
        push(format!("1 * … ×{n} > 0"), rep("", "1 * ", n, "1 > 0"));
    }
    for n in [100, 300, 500] {
        push(format!("1 < … ×{n}"), rep("1", " < 1", n, " == 1"));
        push(
            format!("interests[0] ×{n}"),
            rep("interests", "[0]", n, " == \"x\""),
        );
    }
    push("region.a ×1000".into(), rep("region", ".a", 1000, " == 1"));
    push(
        "ternary ×140".into(),
        rep("", "true ? true : ", 140, "true"),
    );
    push("&& ×250".into(), rep("", "true && ", 250, "true"));
    push("|| ×250".into(), rep("", "true || ", 250, "true"));
    push("- ×24".into(), rep("", "- ", 24, "1 < 0"));
    push("! ×24".into(), rep("", "!", 24, "true"));
    for n in [12, 16, 24] {
        push(
            format!("( ×{n}"),
            rep("", "(", n, &format!("true{}", ")".repeat(n))),
        );
    }
    push(
        "[ ×24".into(),
        rep("", "[", 23, &format!("1{}.size() > 0", "]".repeat(23))),
    );
    push(
        "!( ×24".into(),
        rep("", "!(", 24, &format!("true{}", ")".repeat(24))),
    );
    push(
        "exists( ×12".into(),
        rep(
            "",
            "interests.exists(x, ",
            12,
            &format!("true{}", ")".repeat(12)),
        ),
    );
    push(
        "size( ×24".into(),
        rep("", "size(", 24, &format!("region{} > 0", ")".repeat(24))),
    );
    v
}

/// Set in the child process: the index of the first input to run.
const DEEP_CHILD: &str = "ME2B_OFFERS_DEEP_CHILD";

/// A stack overflow aborts the process, so the inputs run in a child process
/// (this test binary, re-run with [`DEEP_CHILD`] set); when it dies, the parent
/// notes the input and starts another child after it, so one run lists every
/// input that brings a process down.
#[test]
fn deep_rules_neither_overflow_a_2mib_stack_nor_panic() {
    let inputs = deep_inputs();
    if let Some(from) = std::env::var_os(DEEP_CHILD) {
        let from: usize = from.to_str().unwrap().parse().unwrap();
        for (i, (label, src)) in inputs.into_iter().enumerate().skip(from) {
            eprintln!("DEEP-START {i}");
            let worker = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    if let Ok(r) = check(&src, tax(), plain_policy()) {
                        let values = ContextValues {
                            interests: vec!["cycling".into(), "x".into()],
                            ..ContextValues::default()
                        };
                        let _ = r.eval(&rule::context(&values));
                    }
                })
                .unwrap();
            if worker.join().is_err() {
                eprintln!("DEEP-PANIC {label}");
            }
        }
        eprintln!("DEEP-DONE");
        return;
    }
    let mut died = Vec::new();
    let mut panicked = Vec::new();
    let mut from = 0;
    loop {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "deep_rules_neither_overflow_a_2mib_stack_nor_panic",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DEEP_CHILD, from.to_string())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        panicked.extend(
            log.lines()
                .filter_map(|l| l.strip_prefix("DEEP-PANIC "))
                .map(str::to_owned),
        );
        if out.status.success() && log.contains("DEEP-DONE") {
            break;
        }
        let last: usize = log
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("DEEP-START "))
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("the child died before any input ({}): {log}", out.status));
        died.push(format!("{} ({})", inputs[last].0, out.status));
        from = last + 1;
    }
    assert!(
        died.is_empty() && panicked.is_empty(),
        "on a 2 MiB stack, the process died on {died:?} and panicked on {panicked:?}"
    );
}

// ---------------------------------------------------------------------------
// Random catalogues and members
// ---------------------------------------------------------------------------

/// A generated rule: its top-level clauses, joined with `&&`.
#[derive(Clone, Debug)]
struct GenRule {
    clauses: Vec<String>,
}

impl GenRule {
    fn source(&self) -> String {
        self.clauses
            .iter()
            .map(|c| {
                if c.contains("||") {
                    format!("({c})")
                } else {
                    c.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" && ")
    }
}

/// One valid clause; `own` are sensitive topics the offer may name.
fn clause(own: Vec<&'static str>) -> BoxedStrategy<String> {
    let plain = pick_plain;
    let regions = || select(vec!["NL-NH", "BE", "DE", ""]);
    let fixed = |s: &'static str| Just(s.to_owned()).boxed();
    // Half of the weight is on clauses that usually hold, so that offers with
    // rules match often enough for the explanations to be checked.
    let mut options: Vec<(u32, BoxedStrategy<String>)> = vec![
        (
            3,
            plain()
                .prop_map(|t| format!("\"{t}\" in interests"))
                .boxed(),
        ),
        (
            2,
            regions().prop_map(|r| format!("region == \"{r}\"")).boxed(),
        ),
        (
            2,
            regions().prop_map(|r| format!("region != \"{r}\"")).boxed(),
        ),
        (2, fixed("age_band != \"under-18\"")),
        (
            1,
            fixed("loyalty_tier == \"gold\" || loyalty_tier == \"silver\""),
        ),
        (1, fixed("loyalty_tier != \"bronze\" || region == \"BE\"")),
        (1, fixed("\"membership\" in credentials")),
        (1, fixed("age_band in [\"25-34\", \"35-44\", \"\"]")),
        (1, fixed("size(credentials) > 0")),
        (2, fixed("size(credentials) >= 0")),
        (
            2,
            select(vec!["cyc", "foo", "sw", "par", ""])
                .prop_map(|p| format!("interests.exists(i, i.startsWith(\"{p}\"))"))
                .boxed(),
        ),
        (
            2,
            plain()
                .prop_map(|t| format!("!(\"{t}\" in interests)"))
                .boxed(),
        ),
        (1, fixed("region.startsWith(\"NL\")")),
        (1, fixed("!region.endsWith(\"XX\")")),
        (1, fixed("(region) != \"XX\"")),
        (1, fixed("-1 < size(interests)")),
        (1, fixed("true")),
    ];
    if !own.is_empty() {
        options.push((
            4,
            select(own)
                .prop_map(|t| format!("\"{t}\" in interests"))
                .boxed(),
        ));
    }
    prop::strategy::Union::new_weighted(options).boxed()
}

fn gen_rule(own: Vec<&'static str>) -> BoxedStrategy<Option<GenRule>> {
    prop::option::of(
        prop::collection::vec(clause(own), 1..=3).prop_map(|mut clauses| {
            // At most one macro: two cost 2×8199, a third would be refused as too costly.
            let mut seen = false;
            clauses.retain(|c| !c.contains(".exists(") || !std::mem::replace(&mut seen, true));
            GenRule { clauses }
        }),
    )
    .boxed()
}

#[derive(Clone, Debug)]
struct GenOffer {
    /// The publisher's topics.
    topics: Vec<&'static str>,
    /// A coalition partner's topics (empty: no partner).
    partner_topics: Vec<&'static str>,
    rule: Option<GenRule>,
    explicit: bool,
    /// An offer that must not get into any vault's catalogue (a sensitive topic
    /// or rule without the flag, or a rule naming a sensitive topic that is not
    /// the offer's own).
    smuggler: bool,
}

impl GenOffer {
    fn all_topics(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.topics
            .iter()
            .chain(self.partner_topics.iter())
            .copied()
    }

    fn sensitive(&self) -> BTreeSet<&'static str> {
        let t = tax();
        let mut s: BTreeSet<&'static str> = self
            .all_topics()
            .filter(|x| t.is_sensitive(t.by_slug(x).unwrap()))
            .collect();
        // Sensitive topics the rule names.
        if let Some(r) = &self.rule {
            for x in &pools().sensitive {
                if r.source().contains(&format!("\"{x}\"")) {
                    s.insert(x);
                }
            }
        }
        s
    }
}

fn plain_offer() -> impl Strategy<Value = GenOffer> {
    let plain = pick_plain;
    (
        prop::collection::vec(plain(), 1..=3),
        prop::collection::vec(plain(), 0..=1),
        gen_rule(vec![]),
    )
        .prop_map(|(topics, partner_topics, rule)| GenOffer {
            topics,
            partner_topics,
            rule,
            explicit: false,
            smuggler: false,
        })
}

fn explicit_offer() -> impl Strategy<Value = GenOffer> {
    (
        prop::collection::vec(pick_sensitive(), 1..=2),
        prop::collection::vec(pick_plain(), 0..=1),
        any::<bool>(),
    )
        .prop_flat_map(|(sens, plain, in_partner)| {
            let own = sens.clone();
            let (topics, partner_topics) = if in_partner && !plain.is_empty() {
                (plain, sens)
            } else {
                ([sens, plain].concat(), vec![])
            };
            (Just(topics), Just(partner_topics), gen_rule(own))
        })
        .prop_map(|(topics, partner_topics, rule)| GenOffer {
            topics,
            partner_topics,
            rule,
            explicit: true,
            smuggler: false,
        })
}

fn smuggler_offer() -> impl Strategy<Value = GenOffer> {
    let plain = pick_plain;
    let sens = pick_sensitive;
    let n = pools().sensitive.len();
    prop_oneof![
        // A sensitive topic without the flag.
        (plain(), sens()).prop_map(|(p, s)| GenOffer {
            topics: vec![p, s],
            partner_topics: vec![],
            rule: None,
            explicit: false,
            smuggler: true,
        }),
        // … hidden in a partner's part.
        (plain(), sens()).prop_map(|(p, s)| GenOffer {
            topics: vec![p],
            partner_topics: vec![s],
            rule: None,
            explicit: false,
            smuggler: true,
        }),
        // A rule naming a sensitive topic on a plain offer.
        (plain(), sens()).prop_map(|(p, s)| GenOffer {
            topics: vec![p],
            partner_topics: vec![],
            rule: Some(GenRule {
                clauses: vec![format!("\"{s}\" in interests")]
            }),
            explicit: false,
            smuggler: true,
        }),
        // An explicit offer's rule naming another sensitive topic.
        (0..n, 1..n).prop_map(move |(a, d)| {
            let p = &pools().sensitive;
            let (own, other) = (p[a], p[(a + d) % n]);
            GenOffer {
                topics: vec![own],
                partner_topics: vec![],
                rule: Some(GenRule {
                    clauses: vec![format!("\"{other}\" in interests")],
                }),
                explicit: true,
                smuggler: true,
            }
        }),
    ]
}

fn gen_offer() -> impl Strategy<Value = GenOffer> {
    prop_oneof![5 => plain_offer(), 4 => explicit_offer(), 1 => smuggler_offer()]
}

fn catalogue_offers() -> impl Strategy<Value = Vec<GenOffer>> {
    prop::collection::vec(gen_offer(), 0..12)
}

fn offer_id(i: usize) -> OfferId {
    OfferId::from_slice(&[u8::try_from(i + 1).unwrap(); 16]).unwrap()
}

fn published(i: usize, g: &GenOffer) -> PublishedOffer {
    let org = OrgId::from_slice(&[1; 16]).unwrap();
    PublishedOffer {
        v: 1,
        id: offer_id(i),
        org,
        org_name: "Green Wheels".into(),
        title: format!("Offer {i}"),
        text: "text".into(),
        topics: g.topics.iter().map(|s| s.to_string()).collect(),
        rule: g.rule.as_ref().map(GenRule::source),
        valid_from: Timestamp::from_unix_millis(0),
        valid_until: Timestamp::from_unix_millis(i64::MAX / 2),
        frequency_cap: None,
        coalition: if g.partner_topics.is_empty() {
            vec![]
        } else {
            vec![PartnerPart {
                org: OrgId::from_slice(&[2; 16]).unwrap(),
                org_name: "Partner".into(),
                title: "Partner part".into(),
                text: "text".into(),
                topics: g.partner_topics.iter().map(|s| s.to_string()).collect(),
                endorsed_at: Some(Timestamp::from_unix_millis(0)),
            }]
        },
        explicit_consent: g.explicit,
        contact_request: None,
        published_at: Timestamp::from_unix_millis(0),
    }
}

#[derive(Clone, Debug)]
struct GenInterest {
    topic: &'static str,
    explicit_consent: bool,
    from_receipts: bool,
}

#[derive(Clone, Debug)]
struct GenMember {
    /// One record per topic.
    interests: Vec<GenInterest>,
    region: Option<&'static str>,
    loyalty_tier: Option<&'static str>,
    birth_year: Option<i32>,
    credentials: Vec<&'static str>,
}

fn gen_member() -> impl Strategy<Value = GenMember> {
    let interest = (
        prop_oneof![3 => pick_plain(), 2 => pick_sensitive()],
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(topic, explicit_consent, from_receipts)| GenInterest {
            topic,
            explicit_consent,
            from_receipts,
        });
    (
        prop::collection::vec(interest, 0..8),
        prop::option::of(select(vec!["NL-NH", "BE", "DE"])),
        prop::option::of(select(vec!["gold", "silver", "bronze"])),
        prop::option::of(1940..2015i32),
        prop::collection::vec(select(vec!["membership", "student"]), 0..2),
    )
        .prop_map(
            |(mut interests, region, loyalty_tier, birth_year, credentials)| {
                let mut seen = BTreeSet::new();
                interests.retain(|i| seen.insert(i.topic));
                GenMember {
                    interests,
                    region,
                    loyalty_tier,
                    birth_year,
                    credentials,
                }
            },
        )
}

impl GenMember {
    fn records(&self) -> Vec<RecordContent> {
        let mut r: Vec<RecordContent> = self
            .interests
            .iter()
            .map(|i| {
                RecordContent::Interest(Interest {
                    topic: Slug::try_from(i.topic).unwrap(),
                    note: None,
                    source: if i.from_receipts {
                        InterestSource::FromReceipts
                    } else {
                        InterestSource::Declared
                    },
                    explicit_consent: i.explicit_consent,
                })
            })
            .collect();
        let attr = |name: &str, v: String| {
            RecordContent::ProfileAttribute(ProfileAttribute {
                name: Slug::try_from(name).unwrap(),
                value: Label::try_from(v).unwrap(),
            })
        };
        if let Some(x) = self.region {
            r.push(attr("region", x.into()));
        }
        if let Some(x) = self.loyalty_tier {
            r.push(attr("loyalty_tier", x.into()));
        }
        if let Some(y) = self.birth_year {
            r.push(attr("birth_year", y.to_string()));
        }
        r
    }

    fn profile(&self) -> Profile {
        let mut p = Profile::from_records(&self.records(), tax());
        p.credentials = self.credentials.iter().map(|s| s.to_string()).collect();
        p
    }

    /// Sensitive topics the member declared with explicit consent.
    fn consented(&self) -> BTreeSet<&'static str> {
        let t = tax();
        self.interests
            .iter()
            .filter(|i| i.explicit_consent && t.is_sensitive(t.by_slug(i.topic).unwrap()))
            .map(|i| i.topic)
            .collect()
    }

    /// Non-sensitive interests with their ancestors.
    fn plain_reach(&self) -> TopicSet {
        let t = tax();
        let mut s = TopicSet::default();
        for i in &self.interests {
            let idx = t.by_slug(i.topic).unwrap();
            if !t.is_sensitive(idx) {
                s.union_with(&t.lineage(idx));
            }
        }
        s
    }

    /// The context an offer's rule sees for this member, as documented: plain
    /// interests with their parents, plus (explicit offers) the offer's own
    /// sensitive topics the member consented to.
    fn context_for(&self, offer: &GenOffer) -> ContextValues {
        let t = tax();
        let mut interests: Vec<String> = self
            .plain_reach()
            .iter()
            .map(|i| t.slug(i).to_owned())
            .collect();
        if offer.explicit {
            let consented = self.consented();
            for s in offer.sensitive() {
                if consented.contains(s) {
                    interests.push(s.to_owned());
                }
            }
        }
        ContextValues {
            interests,
            credentials: self.credentials.iter().map(|s| s.to_string()).collect(),
            region: self.region.unwrap_or("").to_owned(),
            age_band: matching::age_band(self.birth_year, now()),
            loyalty_tier: self.loyalty_tier.unwrap_or("").to_owned(),
        }
    }
}

fn policy_topics(g: &GenOffer) -> TopicSet {
    topic_set(&g.all_topics().collect::<Vec<_>>())
}

struct World {
    offers: Vec<GenOffer>,
    catalogue: Catalogue,
    rejected: BTreeSet<OfferId>,
}

fn world(offers: Vec<GenOffer>) -> World {
    let published: Vec<_> = offers
        .iter()
        .enumerate()
        .map(|(i, g)| published(i, g))
        .collect();
    let (catalogue, rejected) = Catalogue::ingest(published, tax());
    World {
        offers,
        catalogue,
        rejected: rejected.into_iter().map(|r| r.offer).collect(),
    }
}

impl World {
    fn gen(&self, id: OfferId) -> &GenOffer {
        let i = usize::from(id.as_bytes()[0]) - 1;
        &self.offers[i]
    }

    /// What matching should return, from the documented rules alone.
    fn expected_matches(&self, m: &GenMember) -> BTreeSet<OfferId> {
        let t = tax();
        let reach = m.plain_reach();
        let consented = m.consented();
        let mut out = BTreeSet::new();
        for (i, g) in self.offers.iter().enumerate() {
            if g.smuggler {
                continue;
            }
            let sensitive = g.sensitive();
            if !sensitive.iter().all(|s| consented.contains(s)) {
                continue;
            }
            let meets = g.all_topics().any(|x| {
                let idx = t.by_slug(x).unwrap();
                if t.is_sensitive(idx) {
                    consented.contains(x)
                } else {
                    reach.contains(idx)
                }
            });
            if !meets {
                continue;
            }
            let held = match &g.rule {
                None => true,
                Some(r) => {
                    let own = policy_topics(g);
                    let policy = SensitivePolicy {
                        explicit_consent: g.explicit,
                        offer_topics: &own,
                    };
                    let compiled = check(&r.source(), t, policy).unwrap();
                    compiled.eval(&rule::context(&m.context_for(g))) == Ok(true)
                }
            };
            if held {
                out.insert(offer_id(i));
            }
        }
        out
    }
}

fn ids(o: &Outcome) -> Vec<OfferId> {
    o.matches.iter().map(|m| m.offer.id).collect()
}

/// A catalogue and a member, with about half of the offers aimed at the member:
/// one of the member's interests (plain for plain offers, sensitive for
/// explicit ones) is added to the offer's topics, so that the prefilter lets
/// enough offers through to their rules.
fn catalogue_and_member() -> impl Strategy<Value = (Vec<GenOffer>, GenMember)> {
    (
        catalogue_offers(),
        gen_member(),
        prop::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 12),
    )
        .prop_map(|(mut offers, member, aims)| {
            let t = tax();
            let (sens, plain): (Vec<&'static str>, Vec<&'static str>) = member
                .interests
                .iter()
                .map(|i| i.topic)
                .partition(|x| t.is_sensitive(t.by_slug(x).unwrap()));
            for (o, (aim, which)) in offers.iter_mut().zip(aims) {
                let from = if o.explicit { &sens } else { &plain };
                if aim && !o.smuggler && !from.is_empty() {
                    o.topics.push(from[which.index(from.len())]);
                }
            }
            (offers, member)
        })
}

// ---------------------------------------------------------------------------
// c. Without explicit consent for a sensitive topic, never an offer on it
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_offer_on_a_sensitive_topic_without_explicit_consent((offers, member) in catalogue_and_member()) {
        let t = tax();
        let w = world(offers);
        // The ingest gate: exactly the smugglers are kept out.
        for (i, g) in w.offers.iter().enumerate() {
            prop_assert_eq!(w.rejected.contains(&offer_id(i)), g.smuggler, "offer {}: {:?}", i, g);
        }
        let profile = member.profile();
        let out = matching::match_member(&w.catalogue, &profile, t, now(), Mode::Prefilter);
        let consented = member.consented();
        let reach = member.plain_reach();
        let names = |pred: &dyn Fn(&GenInterest) -> bool| -> BTreeSet<String> {
            member.interests.iter().filter(|i| pred(i)).map(|i| t.name(t.by_slug(i.topic).unwrap()).to_owned()).collect()
        };
        for m in &out.matches {
            let g = w.gen(m.offer.id);
            prop_assert!(!g.smuggler, "a refused offer matched: {:?}", g);
            let sensitive = g.sensitive();
            for s in &sensitive {
                prop_assert!(consented.contains(s), "offer {:?} on {} matched a member without explicit consent for it: {:?}", g, s, member);
            }
            prop_assert!(sensitive.is_empty() || m.offer.explicit_consent);
            // Some topic of the offer meets the member.
            let meets: Vec<&str> = g.all_topics().filter(|x| {
                let idx = t.by_slug(x).unwrap();
                if t.is_sensitive(idx) { consented.contains(x) } else { reach.contains(idx) }
            }).collect();
            prop_assert!(!meets.is_empty(), "offer {:?} matched without a meeting topic: {:?}", g, member);
            // The explanation only names interests that may take part in this offer.
            let allowed = names(&|i| {
                let idx = t.by_slug(i.topic).unwrap();
                !t.is_sensitive(idx) || (i.explicit_consent && sensitive.contains(i.topic))
            });
            prop_assert!(!m.why.topics.is_empty());
            for r in &m.why.topics {
                prop_assert!(allowed.contains(&r.your_interest), "why names {}: {:?}", r.your_interest, m.why);
            }
            let mut nameable: BTreeSet<String> = reach.iter().map(|x| t.name(x).to_owned()).collect();
            nameable.extend(sensitive.iter().filter(|s| consented.contains(*s)).map(|s| t.name(t.by_slug(s).unwrap()).to_owned()));
            for c in &m.why.conditions {
                for b in &c.because {
                    if let Some(name) = b.strip_prefix("you are interested in ") {
                        prop_assert!(nameable.contains(name), "why names {}: {:?}", name, m.why);
                    }
                }
            }
        }
        // And matching is exactly what the documented rules say (so the above is
        // not vacuous, and nothing that should match is lost).
        let got: BTreeSet<OfferId> = ids(&out).into_iter().collect();
        prop_assert_eq!(got, w.expected_matches(&member), "member {:?}", member);
    }

    #[test]
    fn prefilter_and_rule_on_every_offer_agree((offers, member) in catalogue_and_member()) {
        let t = tax();
        let w = world(offers);
        let profile = member.profile();
        let a = matching::match_member(&w.catalogue, &profile, t, now(), Mode::Prefilter);
        let b = matching::match_member(&w.catalogue, &profile, t, now(), Mode::RuleOnEveryOffer);
        prop_assert_eq!(ids(&a), ids(&b));
        for (x, y) in a.matches.iter().zip(&b.matches) {
            prop_assert_eq!(x.score, y.score);
            prop_assert_eq!(&x.why, &y.why);
        }
    }
}

/// The generators are not vacuous: over a fixed sample, plain and sensitive
/// offers both match, and some offers with rules match.
#[test]
fn the_generators_produce_matches_of_every_kind() {
    let mut runner = TestRunner::deterministic();
    let (mut plain, mut sensitive, mut ruled, mut rejected) = (0, 0, 0, 0);
    let strategy = catalogue_and_member();
    for _ in 0..192 {
        let (offers, member) = strategy.new_tree(&mut runner).unwrap().current();
        let w = world(offers);
        rejected += w.rejected.len();
        let out = matching::match_member(
            &w.catalogue,
            &member.profile(),
            tax(),
            now(),
            Mode::Prefilter,
        );
        for m in &out.matches {
            let g = w.gen(m.offer.id);
            if g.explicit {
                sensitive += 1;
            } else {
                plain += 1;
            }
            ruled += usize::from(g.rule.is_some());
        }
    }
    eprintln!("over 192 samples: plain {plain}, sensitive {sensitive}, with a rule {ruled}, rejected {rejected}");
    assert!(
        plain > 20 && sensitive > 5 && ruled > 10 && rejected > 5,
        "plain {plain}, sensitive {sensitive}, with a rule {ruled}, rejected {rejected}"
    );
}

// ---------------------------------------------------------------------------
// d. Explanations list the rule's clauses that held
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn explanations_are_the_clauses_of_the_rule_that_fired((offers, member) in catalogue_and_member()) {
        let t = tax();
        let w = world(offers);
        let out = matching::match_member(&w.catalogue, &member.profile(), t, now(), Mode::Prefilter);
        for m in &out.matches {
            let g = w.gen(m.offer.id);
            let Some(r) = &g.rule else {
                prop_assert!(m.why.conditions.is_empty());
                continue;
            };
            let conditions: Vec<&str> = m.why.conditions.iter().map(|c| c.condition.as_str()).collect();
            for c in &conditions {
                prop_assert!(r.clauses.iter().any(|k| k == c), "condition `{}` is not a clause of `{}`", c, r.source());
            }
            // Every generated rule is a conjunction: all clauses held, all are listed.
            prop_assert_eq!(conditions.len(), r.clauses.len(), "rule `{}` matched with conditions {:?}", r.source(), conditions);
            let own = policy_topics(g);
            let policy = SensitivePolicy { explicit_consent: g.explicit, offer_topics: &own };
            let ctx = rule::context(&member.context_for(g));
            for c in &conditions {
                let alone = check(c, t, policy).map_err(|e| TestCaseError::fail(format!("`{c}` alone: {e}")))?;
                prop_assert_eq!(alone.eval(&ctx), Ok(true), "`{}` listed but does not hold", c);
            }
        }
    }
}

/// Clause texts for a table of clause shapes, each before and after another
/// clause: the exact inputs behind a failure of the property above. Each shape
/// is (as written in the rule, the clause text expected: the shape without
/// brackets around the whole of it); shapes the checker refuses are skipped.
#[test]
fn clause_texts_are_the_top_level_clauses() {
    let shapes = [
        ("\"cycling\" in interests", "\"cycling\" in interests"),
        (
            "(region == \"a\" || region == \"b\")",
            "region == \"a\" || region == \"b\"",
        ),
        ("region.startsWith(\"NL\")", "region.startsWith(\"NL\")"),
        ("size(credentials) > 0", "size(credentials) > 0"),
        ("0 < size(interests)", "0 < size(interests)"),
        ("!(\"cycling\" in interests)", "!(\"cycling\" in interests)"),
        (
            "interests.exists(i, i == \"x\")",
            "interests.exists(i, i == \"x\")",
        ),
        (
            "age_band in [\"25-34\", \"35-44\"]",
            "age_band in [\"25-34\", \"35-44\"]",
        ),
        ("(region) == \"a\"", "(region) == \"a\""),
        ("-1 < size(interests)", "-1 < size(interests)"),
        ("size(interests) != 0", "size(interests) != 0"),
        ("-size(interests) < 0", "-size(interests) < 0"),
        ("interests.size() > 0", "interests.size() > 0"),
        ("(region + \"x\") == \"ax\"", "(region + \"x\") == \"ax\""),
        ("[region][0] == \"a\"", "[region][0] == \"a\""),
        (
            "(\"a\" in interests) == true",
            "(\"a\" in interests) == true",
        ),
        (
            "(region == \"a\") == (age_band == \"b\")",
            "(region == \"a\") == (age_band == \"b\")",
        ),
        (
            "(region == \"a\" // a comment\n  || region == \"b\")",
            "region == \"a\" // a comment\n  || region == \"b\"",
        ),
        (
            "(region == 'a' ? true : false)",
            "region == 'a' ? true : false",
        ),
        ("((region == \"a\"))", "region == \"a\""),
    ];
    let mut wrong = Vec::new();
    for (shape, bare) in shapes {
        for src in [
            format!("{shape} && loyalty_tier == \"gold\""),
            format!("loyalty_tier == \"gold\" && {shape}"),
        ] {
            // A shape the checker refuses has no clauses to explain.
            let Ok(r) = check(&src, tax(), plain_policy()) else {
                continue;
            };
            let got: Vec<&str> = r.clauses.iter().map(|c| c.text.as_str()).collect();
            let want: Vec<&str> = if src.starts_with("loyalty") {
                vec!["loyalty_tier == \"gold\"", bare]
            } else {
                vec![bare, "loyalty_tier == \"gold\""]
            };
            if got != want {
                wrong.push(format!("{src:?}\n    clauses {got:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "wrong clauses for:\n  {}",
        wrong.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// e. The taxonomy: sensitivity is inherited, and resolve_topics refuses it
// ---------------------------------------------------------------------------

#[test]
fn every_child_of_a_sensitive_topic_is_sensitive() {
    let t = tax();
    for topic in t.topics() {
        let idx = t.by_slug(&topic.slug).unwrap();
        assert_eq!(
            t.is_sensitive(idx),
            topic.sensitive.is_some(),
            "{}",
            topic.slug
        );
        assert_eq!(t.sensitive_category(idx), topic.sensitive.as_deref());
        if let Some(parent) = &topic.parent {
            if t.is_sensitive(t.by_slug(parent).unwrap()) {
                assert!(
                    t.is_sensitive(idx),
                    "{} under sensitive {parent}",
                    topic.slug
                );
            }
        }
        // … and through any ancestor, not only the parent.
        if t.lineage(idx).iter().any(|a| t.is_sensitive(a)) {
            assert!(
                t.is_sensitive(idx),
                "{} below a sensitive topic",
                topic.slug
            );
        }
    }
    assert!(pools().sensitive.len() >= 20);
}

#[test]
fn resolve_topics_refuses_every_sensitive_topic_without_explicit_consent() {
    let t = tax();
    for s in &pools().sensitive {
        let one = vec![(*s).to_owned()];
        match resolve_topics(t, &one, false, "an offer topic") {
            Err(OfferError::SensitiveTopic { topic, .. }) => assert_eq!(topic, *s),
            other => panic!("{s}: {other:?}"),
        }
        assert!(
            resolve_topics(t, &one, true, "an offer topic").is_ok(),
            "{s}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn resolve_topics_refuses_any_list_with_a_sensitive_topic(
        slugs in prop::collection::vec(
            prop_oneof![3 => select(pools().plain.clone()), 1 => select(pools().sensitive.clone()), 1 => select(pools().all.clone())],
            1..=MAX_TOPICS_PER_OFFER,
        )
    ) {
        let t = tax();
        let owned: Vec<String> = slugs.iter().map(|s| s.to_string()).collect();
        let any_sensitive = slugs.iter().any(|s| t.is_sensitive(t.by_slug(s).unwrap()));
        match resolve_topics(t, &owned, false, "an offer topic") {
            Ok(idx) => {
                prop_assert!(!any_sensitive);
                prop_assert!(idx.iter().all(|i| !t.is_sensitive(*i)));
                let distinct: BTreeSet<&str> = slugs.iter().copied().collect();
                prop_assert_eq!(idx.len(), distinct.len());
            }
            Err(OfferError::SensitiveTopic { topic, .. }) => {
                prop_assert!(any_sensitive);
                prop_assert!(t.is_sensitive(t.by_slug(&topic).unwrap()));
            }
            Err(e) => prop_assert!(false, "{}", e),
        }
        prop_assert!(resolve_topics(t, &owned, true, "an offer topic").is_ok());
    }
}
