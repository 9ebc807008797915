//! The `presentation_parser` fuzz target's body (`me2b_credentials::fuzzing`) over
//! a few thousand generated inputs, so CI exercises it on stable Rust: arbitrary
//! bytes, JSON-shaped inputs, and mutations of a valid presentation. Any panic
//! fails the test; every rejection must carry a known error code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_credentials::fuzzing::{presentation_parser, sample_presentation, Outcome};
use me2b_crypto::SeededRandom;
use proptest::prelude::*;
use std::sync::OnceLock;

const KNOWN: &[&str] = &[
    "malformed_presentation",
    "oversized_input",
    "unsupported_schema",
    "invalid_identifier",
    "invalid_claim",
    "malformed_proof",
    "truncated_proof",
    "wrong_challenge",
    "unknown_issuer",
    "missing_claim",
    "claim_mismatch",
    "proof_invalid",
    "expired",
    "revoked",
    "status_index_out_of_range",
];

fn sample() -> &'static [u8] {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| sample_presentation(&SeededRandom::new(5)).unwrap())
}

fn check(data: &[u8]) -> Result<(), TestCaseError> {
    match presentation_parser(data) {
        Outcome::Verified => Ok(()),
        Outcome::Rejected(e) => {
            prop_assert!(KNOWN.contains(&e.code()), "unexpected error {e:?}");
            Ok(())
        }
        Outcome::InvariantBroken(what) => Err(TestCaseError::fail(what)),
    }
}

#[test]
fn the_sample_presentation_passes_the_fuzz_body() {
    assert!(matches!(presentation_parser(sample()), Outcome::Verified));
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Replace(usize, Vec<u8>),
    Duplicate(usize, usize),
}

fn apply(base: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = base.to_vec();
    for m in mutations {
        let n = b.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                let i = i % n;
                if let Some(byte) = b.get_mut(i) {
                    *byte ^= x | 1;
                }
            }
            Mutation::Truncate(i) => b.truncate(i % n),
            Mutation::Insert(i, bytes) => {
                let i = (i % n).min(b.len());
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Replace(i, bytes) => {
                let i = (i % n).min(b.len());
                let end = (i + bytes.len()).min(b.len());
                b.splice(i..end, bytes.iter().copied());
            }
            Mutation::Duplicate(i, len) => {
                let i = (i % n).min(b.len());
                let end = (i + len % 64).min(b.len());
                let chunk = b[i..end].to_vec();
                b.splice(i..i, chunk);
            }
        }
    }
    b
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (
            any::<usize>(),
            prop_oneof![
                Just(b"\"".to_vec()),
                Just(b"}".to_vec()),
                Just(b"0".to_vec()),
                Just(b"\"x\":1,".to_vec()),
                Just(b"\\u0000".to_vec()),
                proptest::collection::vec(any::<u8>(), 1..4),
            ]
        )
            .prop_map(|(i, v)| Mutation::Replace(i, v)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, l)| Mutation::Duplicate(i, l)),
    ]
}

/// JSON-shaped inputs: the right field names with random values.
fn json_like() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        "\\PC{0,80}".prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        Just(serde_json::json!({"federation": "F", "credential_type": "coop-membership"})),
        Just(serde_json::json!([])),
    ];
    proptest::collection::btree_map(
        prop_oneof![
            Just("schema_version".to_owned()),
            Just("issuer_key_id".to_owned()),
            Just("nonce".to_owned()),
            Just("verifier_id".to_owned()),
            Just("disclosed".to_owned()),
            Just("proof".to_owned()),
            "[a-z_]{1,12}",
        ],
        value,
        0..8,
    )
    .prop_map(|m| serde_json::to_vec(&m).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&data)?;
    }

    #[test]
    fn json_shaped(data in json_like()) {
        check(&data)?;
    }
}

/// Edits of a valid presentation that keep it well-formed JSON, so that most of
/// them get past the parser and into verification.
#[derive(Debug, Clone)]
enum Edit {
    SetClaim(usize, String),
    RemoveClaim(usize),
    ProofChar(usize, u8),
    ProofCut(usize),
    NonceChar(usize, u8),
    Field(&'static str, serde_json::Value),
}

const CLAIMS: [&str; 13] = [
    "issuer",
    "credential_type",
    "federation",
    "member_since",
    "tier",
    "region",
    "validity_epoch",
    "status_index",
    "interest_1",
    "interest_2",
    "interest_3",
    "interest_4",
    "nickname",
];
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn edit() -> impl Strategy<Value = Edit> {
    let claim_value = prop_oneof![
        Just("F".to_owned()),
        Just("coop-membership".to_owned()),
        Just("2900".to_owned()),
        Just("2899".to_owned()),
        Just("13".to_owned()),
        Just("12".to_owned()),
        Just(String::new()),
        "\\PC{0,12}",
    ];
    prop_oneof![
        (0..CLAIMS.len(), claim_value).prop_map(|(i, v)| Edit::SetClaim(i, v)),
        (0..CLAIMS.len()).prop_map(Edit::RemoveClaim),
        (any::<usize>(), 0..B64.len()).prop_map(|(i, c)| Edit::ProofChar(i, B64[c])),
        any::<usize>().prop_map(Edit::ProofCut),
        (0usize..64, 0u8..16)
            .prop_map(|(i, c)| Edit::NonceChar(i, b"0123456789abcdef"[c as usize])),
        prop_oneof![
            Just(("issuer_key_id", serde_json::json!("other-issuer"))),
            Just(("verifier_id", serde_json::json!("other.verifier"))),
            Just(("schema_version", serde_json::json!(2))),
            Just(("schema_version", serde_json::json!(1))),
        ]
        .prop_map(|(k, v)| Edit::Field(k, v)),
    ]
}

fn apply_edits(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(base).unwrap();
    for e in edits {
        match e {
            Edit::SetClaim(i, value) => v["disclosed"][CLAIMS[*i]] = value.clone().into(),
            Edit::RemoveClaim(i) => {
                v["disclosed"].as_object_mut().unwrap().remove(CLAIMS[*i]);
            }
            Edit::ProofChar(i, c) => {
                let mut p = v["proof"].as_str().unwrap().as_bytes().to_vec();
                if !p.is_empty() {
                    let n = p.len();
                    p[i % n] = *c;
                }
                v["proof"] = String::from_utf8(p).unwrap().into();
            }
            Edit::ProofCut(i) => {
                let p = v["proof"].as_str().unwrap().to_owned();
                let n = p.len().max(1);
                v["proof"] = p[..i % n].to_owned().into();
            }
            Edit::NonceChar(i, c) => {
                let mut n = v["nonce"].as_str().unwrap().as_bytes().to_vec();
                if *i < n.len() {
                    n[*i] = *c;
                }
                v["nonce"] = String::from_utf8(n).unwrap().into();
            }
            Edit::Field(k, value) => v[*k] = value.clone(),
        }
    }
    serde_json::to_vec(&v).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn mutated_valid_presentations(mutations in proptest::collection::vec(mutation(), 1..4)) {
        check(&apply(sample(), &mutations))?;
    }

    #[test]
    fn edited_valid_presentations(edits in proptest::collection::vec(edit(), 1..3)) {
        check(&apply_edits(sample(), &edits))?;
    }
}

/// The body over every kind of input above until `ME2B_FUZZ_SECONDS` are up
/// (CI's stand-in for the fuzz target where cargo-fuzz cannot build).
#[test]
#[ignore]
fn fuzz_for_a_while() {
    let inputs = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        json_like(),
        proptest::collection::vec(mutation(), 1..4).prop_map(|m| apply(sample(), &m)),
        proptest::collection::vec(edit(), 1..3).prop_map(|e| apply_edits(sample(), &e)),
    ];
    me2b_testkit::fuzz::for_a_while("presentation_parser", inputs, |data| check(&data));
}

#[test]
fn edits_reach_verification() {
    // The edit strategy is only useful if many edits get past the parser: count
    // the outcomes of a fixed sample of edits.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(Config::default().rng_algorithm),
    );
    let strategy = proptest::collection::vec(edit(), 1..3);
    let mut reached_crypto = 0;
    let mut outcomes = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let edits = strategy.new_tree(&mut runner).unwrap().current();
        let code = match presentation_parser(&apply_edits(sample(), &edits)) {
            Outcome::Verified => "ok",
            Outcome::Rejected(e) => e.code(),
            Outcome::InvariantBroken(what) => panic!("{what}"),
        };
        if matches!(code, "ok" | "proof_invalid" | "expired" | "revoked") {
            reached_crypto += 1;
        }
        outcomes.insert(code);
    }
    assert!(
        reached_crypto >= 40,
        "only {reached_crypto} of 200 edits reached the proof check"
    );
    for c in [
        "proof_invalid",
        "wrong_challenge",
        "truncated_proof",
        "missing_claim",
    ] {
        assert!(outcomes.contains(c), "no edit produced {c}: {outcomes:?}");
    }
}
