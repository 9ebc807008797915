//! Arbitrary input (lossy UTF-8) into `me2b_offers::rule::check` with the shipped
//! taxonomy, under both sensitive-topic policies (a plain offer, and an offer
//! flagged `explicit_consent` on a few sensitive topics); whatever is accepted is
//! evaluated, with its clauses, against a fixed member context. A panic
//! (anywhere, the parser's own thread included), an abort (a stack overflow on
//! deep nesting, in the parser or the interpreter), or a broken invariant is a
//! finding:
//! * an error's position lies inside the source (1-based line and column);
//! * an accepted rule is within [`MAX_RULE_BYTES`] and [`MAX_COST`];
//! * a rule accepted for a plain offer is accepted for an explicit one (the
//!   explicit policy only allows more);
//! * evaluating twice gives the same result.
//!
//! `rule::check` parses on a thread of its own; a panic there would be a
//! refusal for the node, but libfuzzer-sys's panic hook aborts first, so the
//! fuzzer reports it: no input should make the parser panic.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run rule_validator corpus/rule_validator \
//!     -- -max_total_time=120
#![no_main]

use libfuzzer_sys::fuzz_target;
use me2b_offers::rule::{
    self, check, CompiledRule, ContextValues, RuleError, SensitivePolicy, MAX_COST, MAX_RULE_BYTES,
};
use me2b_offers::taxonomy::TopicSet;
use me2b_offers::Taxonomy;
use std::sync::OnceLock;

struct Fixture {
    taxonomy: Taxonomy,
    /// The explicit offer's own topics.
    own: TopicSet,
    none: TopicSet,
    values: ContextValues,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let taxonomy = Taxonomy::shipped().expect("the shipped taxonomy loads");
        let mut own = TopicSet::default();
        for slug in ["diabetes", "halal-food", "mental-health", "trade-unions"] {
            own.insert(taxonomy.by_slug(slug).expect("a shipped topic"));
        }
        let values = ContextValues {
            interests: vec![
                "sports".into(),
                "cycling".into(),
                "food".into(),
                "organic".into(),
                "diabetes".into(),
            ],
            credentials: vec!["membership".into()],
            region: "NL-NH".into(),
            age_band: "25-34".into(),
            loyalty_tier: "gold".into(),
        };
        Fixture {
            taxonomy,
            own,
            none: TopicSet::default(),
            values,
        }
    })
}

fn position_inside(src: &str, e: &RuleError) {
    let (line, column) = (e.position.line as usize, e.position.column as usize);
    assert!(line >= 1 && column >= 1, "position {line}:{column}: {e}");
    let text = src
        .split('\n')
        .nth(line - 1)
        .unwrap_or_else(|| panic!("line {line} past the source: {e}"));
    assert!(
        column <= text.chars().count() + 1,
        "column {column} past line {line}: {e}"
    );
}

fn exercise(src: &str, r: &CompiledRule) {
    assert!(src.len() <= MAX_RULE_BYTES, "accepted {} bytes", src.len());
    assert!(r.cost <= MAX_COST, "accepted cost {}", r.cost);
    let ctx = rule::context(&fixture().values);
    let first = r.eval(&ctx);
    assert_eq!(first, r.eval(&ctx), "evaluation is not deterministic");
    let _ = r.holding_clauses(&ctx);
}

fn run(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let f = fixture();
    let plain = check(
        &src,
        &f.taxonomy,
        SensitivePolicy {
            explicit_consent: false,
            offer_topics: &f.none,
        },
    );
    let explicit = check(
        &src,
        &f.taxonomy,
        SensitivePolicy {
            explicit_consent: true,
            offer_topics: &f.own,
        },
    );
    if let (Ok(_), Err(e)) = (&plain, &explicit) {
        panic!("accepted for a plain offer, refused for an explicit one: {e}");
    }
    for outcome in [&plain, &explicit] {
        match outcome {
            Ok(r) => exercise(&src, r),
            Err(e) => position_inside(&src, e),
        }
    }
}

fuzz_target!(|data: &[u8]| run(data));
