//! The `transcription_request` and `signed_grant` fuzz targets' bodies
//! (`me2b_trust::fuzzing`) over generated inputs, so CI exercises them on
//! stable Rust: arbitrary bytes, edits of valid requests and grants, and grants
//! the node's key really signs. Any panic or broken invariant fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_trust::fuzzing::{fixture, sample_request, signed_grant, transcription_request, Outcome};
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
    // Every single-byte change to the grant is refused or no longer parses.
    for at in 0..json.len() {
        let [hi, lo] = (at as u16).to_be_bytes();
        for v in [b'0', b'x', b'"', 0x7f] {
            check(signed_grant(&with(2, &[hi, lo, v])))
                .unwrap_or_else(|e| panic!("byte {at} to {v}: {e}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(transcription_request(&data))?;
    }

    #[test]
    fn edited_requests_keep_the_invariants(grant in any::<bool>(), edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..5)) {
        check(transcription_request(&edit(&sample_request(2, grant), &edits)))?;
    }

    #[test]
    fn arbitrary_grants_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(signed_grant(&data))?;
    }

    #[test]
    fn edited_grants_keep_the_invariants(edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6)) {
        let mut rest = Vec::new();
        for (at, v) in edits {
            rest.extend(at.to_be_bytes());
            rest.push(v);
        }
        check(signed_grant(&with(2, &rest)))?;
    }

    #[test]
    fn grants_the_node_signs_keep_the_invariants(
        v in 0u8..3, from in "(coop:|trust:)[a-z]{0,3}", to in "(coop:|trust:)[a-z]{0,3}",
        expires in prop_oneof![Just(0i64), Just(i64::MAX), any::<i64>()],
    ) {
        let g = serde_json::json!({"v": v, "consent": "c", "purpose": "p", "from": from, "to": to, "expires_at_ms": expires});
        check(signed_grant(&with(1, &serde_json::to_vec(&g).unwrap())))?;
    }
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
}
