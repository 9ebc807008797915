//! Arbitrary bytes into consent receipt verification
//! (`me2b_consent::fuzzing::consent_receipt`, the body CI also runs on stable
//! through `crates/consent/tests/fuzz_body.rs`): compact JWS text verified with
//! the node's key, claims the key really signs, and edits of a valid receipt.
//! A panic, or a broken invariant (an edited receipt that verifies, verified
//! claims that do not round-trip), is a finding.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run consent_receipt corpus/consent_receipt \
//!     seeds/consent_receipt -- -max_total_time=120
#![no_main]

use libfuzzer_sys::fuzz_target;
use me2b_consent::fuzzing::{consent_receipt, Outcome};

fuzz_target!(|data: &[u8]| {
    if let Outcome::InvariantBroken(what) = consent_receipt(data) {
        panic!("invariant broken: {what}");
    }
});
