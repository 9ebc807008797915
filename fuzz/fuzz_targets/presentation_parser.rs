//! Arbitrary bytes into `Presentation::parse`, and whatever parses into
//! `verify_presentation` against a fixed challenge
//! (`me2b_credentials::fuzzing::presentation_parser`, the body CI also runs on
//! stable through `crates/credentials/tests/fuzz_body.rs`). A panic anywhere, or a
//! broken invariant (a parsed presentation that does not round-trip, verified
//! claims that differ from the disclosed ones), is a finding.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run presentation_parser corpus/presentation_parser \
//!     seeds/presentation_parser -- -max_total_time=120
#![no_main]

use libfuzzer_sys::fuzz_target;
use me2b_credentials::fuzzing::{presentation_parser, Outcome};

fuzz_target!(|data: &[u8]| {
    if let Outcome::InvariantBroken(what) = presentation_parser(data) {
        panic!("invariant broken: {what}");
    }
});
