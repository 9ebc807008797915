//! The `transcription_request` and `signed_grant` fuzz targets' bodies
//! (`me2b_trust::fuzzing`) over generated inputs, so CI exercises them on
//! stable Rust: arbitrary bytes, edits of valid requests and grants, and grants
//! the node's key really signs. Any panic or broken invariant fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_trust::fuzzing::{fixture, sample_request, signed_grant, transcription_request, Outcome};
use me2b_trust::policy::{SignedGrant, MEMBER_REQUEST};
use me2b_trust::pseudonym::ORIGIN;
use proptest::prelude::*;

fn check(out: Outcome) -> Result<(), TestCaseError> {
    match out {
        Outcome::InvariantBroken(what) => Err(TestCaseError::fail(what)),
        _ => Ok(()),
    }
}

fn with(mode: u8, rest: &[u8]) -> Vec<u8> {
    [&[mode][..], rest].concat()
}

fn edit(base: &[u8], edits: &[(u16, u8)]) -> Vec<u8> {
    let mut b = base.to_vec();
    for (at, v) in edits {
        let n = b.len().max(1);
        let i = usize::from(*at) % n;
        match v {
            0 => b.truncate(i),
            1..=3 => b.insert(i.min(b.len()), *v),
            _ => {
                if let Some(x) = b.get_mut(i) {
                    *x = *v;
                }
            }
        }
    }
    b
}

#[test]
fn valid_requests_are_served_and_grants_honoured() {
    assert!(matches!(
        transcription_request(&sample_request(3, false)),
        Outcome::Accepted
    ));
    // co-op → co-op with the member's grant: served.
    assert!(matches!(
        transcription_request(&sample_request(1, true)),
        Outcome::Accepted
    ));
    assert!(matches!(signed_grant(&with(2, &[])), Outcome::Accepted));
    let json = serde_json::to_vec(&fixture().grant).unwrap();
    assert!(matches!(signed_grant(&with(0, &json)), Outcome::Accepted));
    assert!(matches!(
        signed_grant(&with(
            1,
            &serde_json::to_vec(&fixture().grant.grant).unwrap()
        )),
        Outcome::Accepted
    ));
    // The member's own request opens the origin pair it names, and no other.
    let member = fixture().member_grant.clone();
    let json_member = serde_json::to_vec(&member).unwrap();
    assert!(matches!(
        signed_grant(&with(0, &json_member)),
        Outcome::Accepted
    ));
    let request = |from: &str, to: &str, grant: Option<&SignedGrant>| {
        let mut r: serde_json::Value = serde_json::from_slice(&sample_request(1, false)).unwrap();
        r["from"] = from.into();
        r["to"] = to.into();
        r["grant"] = serde_json::to_value(grant).unwrap();
        transcription_request(&serde_json::to_vec(&r).unwrap())
    };
    for (from, to, grant) in [
        (ORIGIN, "coop:a", None),
        (ORIGIN, "coop:b", Some(&member)),
        ("coop:a", "coop:b", Some(&member)),
        (ORIGIN, "coop:a", Some(&fixture().grant)),
        ("coop:a", "coop:b", None),
        ("coop:b", "coop:a", Some(&fixture().grant)),
        ("coop:a", ORIGIN, Some(&fixture().grant)),
    ] {
        let out = request(from, to, grant);
        assert!(
            matches!(out, Outcome::Refused(_)),
            "{from} -> {to}: {out:?}"
        );
    }
    // A member request signed for a co-op pair opens nothing.
    let mut g = member.grant.clone();
    (g.from, g.to) = ("coop:a".into(), "coop:b".into());
    let out = signed_grant(&with(1, &serde_json::to_vec(&g).unwrap()));
    assert!(matches!(out, Outcome::Refused(_)), "{out:?}");
    // Every single-byte change to the grant is refused or no longer parses.
    for at in 0..json.len() {
        let [hi, lo] = (at as u16).to_be_bytes();
        for v in [b'0', b'x', b'"', 0x7f] {
            check(signed_grant(&with(2, &[hi, lo, v])))
                .unwrap_or_else(|e| panic!("byte {at} to {v}: {e}"));
        }
    }
}

fn arbitrary_request() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..400)
}

fn edited_request() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec((any::<u16>(), any::<u8>()), 1..5),
    )
        .prop_map(|(cross_coop, edits)| edit(&sample_request(2, cross_coop), &edits))
}

fn arbitrary_grant() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

fn edited_grant() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6).prop_map(|edits| {
        let mut rest = Vec::new();
        for (at, v) in edits {
            rest.extend(at.to_be_bytes());
            rest.push(v);
        }
        with(2, &rest)
    })
}

/// Grants the node's key signs, for any pair (the origin included), either
/// kind of consent, any version and expiry.
fn grant_to_sign() -> impl Strategy<Value = Vec<u8>> {
    let domain = || prop_oneof![Just(ORIGIN.to_owned()), "(coop:|trust:)[a-z]{0,3}"];
    (
        0u8..3,
        prop_oneof![Just("c".to_owned()), Just(MEMBER_REQUEST.to_owned())],
        domain(),
        domain(),
        prop_oneof![Just(0i64), Just(i64::MAX), any::<i64>()],
    )
        .prop_map(|(v, consent, from, to, expires)| {
            let g = serde_json::json!({"v": v, "consent": consent, "purpose": "p", "from": from, "to": to, "expires_at_ms": expires});
            with(1, &serde_json::to_vec(&g).unwrap())
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: me2b_testkit::fuzz::CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_keep_the_invariants(data in arbitrary_request()) {
        check(transcription_request(&data))?;
    }

    #[test]
    fn edited_requests_keep_the_invariants(data in edited_request()) {
        check(transcription_request(&data))?;
    }

    #[test]
    fn arbitrary_grants_keep_the_invariants(data in arbitrary_grant()) {
        check(signed_grant(&data))?;
    }

    #[test]
    fn edited_grants_keep_the_invariants(data in edited_grant()) {
        check(signed_grant(&data))?;
    }

    #[test]
    fn grants_the_node_signs_keep_the_invariants(data in grant_to_sign()) {
        check(signed_grant(&data))?;
    }
}

/// Each body until `ME2B_FUZZ_SECONDS` are up (CI's stand-in for the fuzz
/// targets where cargo-fuzz cannot build).
#[test]
#[ignore]
fn fuzz_for_a_while() {
    let requests = prop_oneof![arbitrary_request(), edited_request()];
    me2b_testkit::fuzz::for_a_while("transcription_request", requests, |data| {
        check(transcription_request(&data))
    });
    let grants = prop_oneof![arbitrary_grant(), edited_grant(), grant_to_sign()];
    me2b_testkit::fuzz::for_a_while("signed_grant", grants, |data| check(signed_grant(&data)));
}

/// Writes the fuzzers' seeds (valid inputs):
/// `ME2B_FUZZ_SEEDS=$PWD/fuzz/seeds cargo test -p me2b-trust --test fuzz_body -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(root) = std::env::var_os("ME2B_FUZZ_SEEDS") else {
        return;
    };
    let root = std::path::Path::new(&root);
    let requests = root.join("transcription_request");
    let grants = root.join("signed_grant");
    std::fs::create_dir_all(&requests).unwrap();
    std::fs::create_dir_all(&grants).unwrap();
    std::fs::write(requests.join("origin-to-coop"), sample_request(2, false)).unwrap();
    std::fs::write(
        requests.join("coop-to-coop-granted"),
        sample_request(1, true),
    )
    .unwrap();
    let g = &fixture().grant;
    std::fs::write(
        grants.join("signed"),
        with(0, &serde_json::to_vec(g).unwrap()),
    )
    .unwrap();
    std::fs::write(
        grants.join("to-sign"),
        with(1, &serde_json::to_vec(&g.grant).unwrap()),
    )
    .unwrap();
    std::fs::write(grants.join("edit"), with(2, &[0, 30, b'1'])).unwrap();
    std::fs::write(
        grants.join("member-request"),
        with(0, &serde_json::to_vec(&fixture().member_grant).unwrap()),
    )
    .unwrap();
}
