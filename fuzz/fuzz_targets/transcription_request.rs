//! Arbitrary bytes into a transcryptor's request parser and decision
//! (`me2b_trust::fuzzing::transcription_request`, the body CI also runs on
//! stable through `crates/trust/tests/fuzz_body.rs`): `TranscryptRequest` JSON
//! with libpep ciphertexts and keys, the domain checks, the policy and the
//! member's grant, and the transcryption itself. A panic, or a broken invariant
//! (a parsed request that does not round-trip, an answer with a different
//! number of items), is a finding.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run transcription_request corpus/transcription_request \
//!     seeds/transcription_request -- -max_total_time=120
#![no_main]

use libfuzzer_sys::fuzz_target;
use me2b_trust::fuzzing::{transcription_request, Outcome};

fuzz_target!(|data: &[u8]| {
    if let Outcome::InvariantBroken(what) = transcription_request(data) {
        panic!("invariant broken: {what}");
    }
});
