//! Arbitrary bytes into the status-list decoder (`StatusList::decode`: multibase,
//! base64url, gzip with a bound on what it inflates), as an `encodedList`, as a
//! raw gzip stream, or as indices of a list that must encode and decode to
//! itself. The body is `crates/credentials/tests/fuzz_bodies/status_list.rs`,
//! which `crates/credentials/tests/status_list_fuzz_body.rs` also runs on stable.
//! A panic, an out-of-memory inflation, or a broken invariant is a finding.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run status_list corpus/status_list \
//!     seeds/status_list -- -max_total_time=120
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../../crates/credentials/tests/fuzz_bodies/status_list.rs");

fuzz_target!(|data: &[u8]| {
    if let StatusOutcome::InvariantBroken(what) = status_list_body(data) {
        panic!("invariant broken: {what}");
    }
});
