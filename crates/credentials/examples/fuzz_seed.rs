//! Prints a valid presentation for the fuzz target's fixed challenge: the seed of
//! `fuzz/seeds/presentation_parser/`.
//!
//! `cargo run -p me2b-credentials --example fuzz_seed > fuzz/seeds/presentation_parser/valid.json`

use me2b_crypto::OsRandom;
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bytes = me2b_credentials::fuzzing::sample_presentation(&OsRandom)?;
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}
