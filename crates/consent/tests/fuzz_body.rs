//! The `consent_receipt` fuzz target's body (`me2b_consent::fuzzing`) over a
//! few hundred generated inputs, so CI exercises it on stable Rust: arbitrary
//! text, claims the node's key really signs, and edits of a valid receipt (each
//! must be refused). Any panic or broken invariant fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_consent::fuzzing::{consent_receipt, fixture, Outcome};
use proptest::prelude::*;

fn check(data: &[u8]) -> Result<(), TestCaseError> {
    match consent_receipt(data) {
        Outcome::InvariantBroken(what) => Err(TestCaseError::fail(what)),
        _ => Ok(()),
    }
}

fn with(mode: u8, rest: &[u8]) -> Vec<u8> {
    [&[mode][..], rest].concat()
}

#[test]
fn the_fixture_receipt_verifies_and_edits_are_refused() {
    let f = fixture();
    assert!(matches!(
        consent_receipt(&with(0, f.receipt.as_bytes())),
        Outcome::Verified
    ));
    // No edit at all, and whitespace around it, still verify.
    assert!(matches!(consent_receipt(&with(2, &[])), Outcome::Verified));
    let padded = format!("  {}\n", f.receipt);
    assert!(matches!(
        consent_receipt(&with(0, padded.as_bytes())),
        Outcome::Verified
    ));
    // One byte changed anywhere is refused.
    for at in 0..f.receipt.len() {
        let [hi, lo] = (at as u16).to_be_bytes();
        let out = consent_receipt(&with(2, &[hi, lo, b'A']));
        let unchanged = f.receipt.as_bytes()[at] == b'A';
        assert!(
            matches!(out, Outcome::Verified) == unchanged,
            "byte {at}: {out:?}"
        );
    }
    // Claims the key signed: the real ones verify, junk is malformed.
    let claims = serde_json::to_vec(&f.claims).unwrap();
    assert!(matches!(
        consent_receipt(&with(1, &claims)),
        Outcome::Verified
    ));
    assert!(matches!(
        consent_receipt(&with(1, b"{}")),
        Outcome::Refused(_)
    ));
}

fn arbitrary() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..600)
}

fn jws_shaped() -> impl Strategy<Value = Vec<u8>> {
    "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,90}"
        .prop_map(|text| with(0, text.as_bytes()))
}

fn edits() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6).prop_map(|edits| {
        let mut rest = Vec::new();
        for (at, v) in edits {
            rest.extend(at.to_be_bytes());
            rest.push(v);
        }
        with(2, &rest)
    })
}

fn signed_json() -> impl Strategy<Value = Vec<u8>> {
    "\\{(\"[a-z_]{1,12}\":(\"[ -~]{0,12}\"|[0-9]{1,3}|\\[\\]|null),?){0,8}\\}"
        .prop_map(|json| with(1, json.as_bytes()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: me2b_testkit::fuzz::CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_keep_the_invariants(data in arbitrary()) {
        check(&data)?;
    }

    #[test]
    fn jws_shaped_text_keeps_the_invariants(data in jws_shaped()) {
        check(&data)?;
    }

    #[test]
    fn edited_receipts_are_refused(data in edits()) {
        check(&data)?;
    }

    #[test]
    fn signed_claims_shaped_like_json_keep_the_invariants(data in signed_json()) {
        check(&data)?;
    }
}

/// The body over all four kinds of input until `ME2B_FUZZ_SECONDS` are up
/// (CI's stand-in for the fuzz target where cargo-fuzz cannot build).
#[test]
#[ignore]
fn fuzz_for_a_while() {
    let inputs = prop_oneof![arbitrary(), jws_shaped(), edits(), signed_json()];
    me2b_testkit::fuzz::for_a_while("consent_receipt", inputs, |data| check(&data));
}

/// Writes the fuzzer's seeds (valid inputs of each mode):
/// `ME2B_FUZZ_SEEDS=$PWD/fuzz/seeds cargo test -p me2b-consent --test fuzz_body -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(root) = std::env::var_os("ME2B_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&root).join("consent_receipt");
    std::fs::create_dir_all(&dir).unwrap();
    let f = fixture();
    let claims = serde_json::to_vec(&f.claims).unwrap();
    for (name, data) in [
        ("receipt", with(0, f.receipt.as_bytes())),
        ("claims", with(1, &claims)),
        ("edit", with(2, &[0, 40, b'x'])),
    ] {
        std::fs::write(dir.join(name), data).unwrap();
    }
}
