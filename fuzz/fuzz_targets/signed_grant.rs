//! Arbitrary bytes into the signed consent grant a transcryptor checks
//! (`me2b_trust::fuzzing::signed_grant`, the body CI also runs on stable through
//! `crates/trust/tests/fuzz_body.rs`): grant JSON with its hex signature, grants
//! the node's key really signs, and edits of a valid grant, each decided by the
//! transcryptor's policy. A panic, or a broken invariant (an edited grant that
//! verifies, a grant that opens a pair it should not), is a finding.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run signed_grant corpus/signed_grant \
//!     seeds/signed_grant -- -max_total_time=120
#![no_main]

use libfuzzer_sys::fuzz_target;
use me2b_trust::fuzzing::{signed_grant, Outcome};

fuzz_target!(|data: &[u8]| {
    if let Outcome::InvariantBroken(what) = signed_grant(data) {
        panic!("invariant broken: {what}");
    }
});
