//! The `status_list` fuzz target's body (tests/fuzz_bodies/status_list.rs, the
//! same file the target includes) over a few hundred generated inputs, so CI
//! exercises it on stable Rust: arbitrary text, gzip streams (valid, truncated,
//! bombs), and lists built from revoked indices. Any panic fails the test, and
//! so does a broken invariant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

include!("fuzz_bodies/status_list.rs");

use proptest::prelude::*;
use std::io::Write;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn check(data: &[u8]) -> Result<(), TestCaseError> {
    match status_list_body(data) {
        StatusOutcome::InvariantBroken(what) => Err(TestCaseError::fail(what)),
        _ => Ok(()),
    }
}

#[test]
fn valid_lists_bombs_and_truncations() {
    use me2b_credentials::status::{MAX_STATUS_LIST_BITS, MIN_STATUS_LIST_BITS};
    let with = |mode: u8, rest: &[u8]| [&[mode][..], rest].concat();
    // A list of every size class decodes.
    for bytes in [MIN_STATUS_LIST_BITS / 8, MAX_STATUS_LIST_BITS / 8] {
        let out = status_list_body(&with(1, &gzip(&vec![0xa5; bytes])));
        assert!(matches!(out, StatusOutcome::Decoded), "{bytes}: {out:?}");
    }
    // Too short, too long (a bomb: 64 MiB of zeros in 64 KiB), cut short.
    for bytes in [MIN_STATUS_LIST_BITS / 8 - 1, MAX_STATUS_LIST_BITS / 8 + 1] {
        let out = status_list_body(&with(1, &gzip(&vec![0; bytes])));
        assert!(matches!(out, StatusOutcome::Refused(_)), "{bytes}: {out:?}");
    }
    let bomb = gzip(&vec![0; 64 << 20]);
    assert!(matches!(
        status_list_body(&with(1, &bomb)),
        StatusOutcome::Refused(_)
    ));
    let good = gzip(&vec![0; MIN_STATUS_LIST_BITS / 8]);
    for cut in [0, 1, 10, good.len() / 2, good.len() - 1] {
        assert!(matches!(
            status_list_body(&with(1, &good[..cut])),
            StatusOutcome::Refused(_)
        ));
    }
    assert!(matches!(
        status_list_body(&with(2, &[0, 0, 0, 0, 0, 13])),
        StatusOutcome::Decoded
    ));
    assert!(matches!(
        status_list_body(&with(0, b"u!!")),
        StatusOutcome::Refused(_)
    ));
}

fn arbitrary() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..512)
}

/// A valid list's text, then a few bytes changed.
fn edited_list() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec((any::<u16>(), any::<u8>()), 0..4),
    )
        .prop_map(|(bits, edits)| {
            let mut list = me2b_credentials::StatusList::new();
            for b in &bits {
                list.revoke(me2b_credentials::StatusIndex::new(u32::from(*b) * 97))
                    .unwrap();
            }
            let mut text = list.encode().into_bytes();
            for (at, v) in edits {
                let n = text.len();
                text[usize::from(at) % n] = v;
            }
            [&[0u8][..], &text].concat()
        })
}

/// A gzip stream of any bytes, sized around the minimum: below, at and above it.
fn gzip_around_the_minimum() -> impl Strategy<Value = Vec<u8>> {
    (proptest::collection::vec(any::<u8>(), 0..256), 0usize..3).prop_map(|(bytes, pad)| {
        let mut body = bytes;
        body.resize(
            me2b_credentials::status::MIN_STATUS_LIST_BITS / 8 - 1 + pad,
            0x3c,
        );
        [&[1u8][..], &gzip(&body)].concat()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: me2b_testkit::fuzz::CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_keep_the_invariants(data in arbitrary()) {
        check(&data)?;
    }

    #[test]
    fn encoded_lists_with_edits_keep_the_invariants(data in edited_list()) {
        check(&data)?;
    }

    #[test]
    fn gzip_of_any_bytes_keeps_the_invariants(data in gzip_around_the_minimum()) {
        check(&data)?;
    }
}

/// The body over all three kinds of input until `ME2B_FUZZ_SECONDS` are up
/// (CI's stand-in for the fuzz target where cargo-fuzz cannot build).
#[test]
#[ignore]
fn fuzz_for_a_while() {
    let inputs = prop_oneof![arbitrary(), edited_list(), gzip_around_the_minimum()];
    me2b_testkit::fuzz::for_a_while("status_list", inputs, |data| check(&data));
}

/// Writes the fuzzer's seeds (valid inputs of each mode):
/// `ME2B_FUZZ_SEEDS=$PWD/fuzz/seeds cargo test -p me2b-credentials --test status_list_fuzz_body -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(root) = std::env::var_os("ME2B_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&root).join("status_list");
    std::fs::create_dir_all(&dir).unwrap();
    let mut list = me2b_credentials::StatusList::new();
    list.revoke(me2b_credentials::StatusIndex::new(13)).unwrap();
    let body = gzip(&vec![0; me2b_credentials::status::MIN_STATUS_LIST_BITS / 8]);
    for (name, data) in [
        (
            "encoded-list",
            [&[0u8][..], list.encode().as_bytes()].concat(),
        ),
        ("gzip", [&[1u8][..], &body].concat()),
        ("indices", vec![2, 0, 1, 0, 0, 0, 13]),
    ] {
        std::fs::write(dir.join(name), data).unwrap();
    }
}
