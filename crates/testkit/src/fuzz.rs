//! Fuzz bodies as property tests.
//!
//! Each fuzz target of `fuzz/` has its body in a function the crate's tests
//! also call. In the normal suite a body runs under proptest for a few hundred
//! cases ([`CASES`]); [`for_a_while`] runs it until a time is up instead: CI's
//! stand-in for `cargo fuzz run` on a machine that cannot build the fuzz
//! targets (`ME2B_FUZZ_SECONDS=30 cargo test -p … --test … -- --ignored fuzz_for_a_while`).
//! It is a bound on how long to look, not an assertion about time.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use std::time::{Duration, Instant};

/// Cases per property in the normal suite: cheap enough for every run.
pub const CASES: u32 = 256;

/// How long [`for_a_while`] runs: `ME2B_FUZZ_SECONDS`, 10 seconds without it.
pub fn seconds() -> u64 {
    std::env::var("ME2B_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// Runs `body` over inputs drawn from `strategy`, a round of [`CASES`] after
/// another, until [`seconds`] have passed. Panics with the smallest failing
/// input proptest finds; prints how many inputs it tried.
#[allow(clippy::panic)] // test support: a finding fails the calling test
pub fn for_a_while<S>(name: &str, strategy: S, body: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let seconds = seconds();
    let until = Instant::now() + Duration::from_secs(seconds);
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    // A runner counts the cases it passed: each round gets a fresh one, with a
    // random stream forked from the first.
    let mut seeds = TestRunner::new(config.clone());
    let mut rounds = 0u64;
    while Instant::now() < until {
        let mut runner = TestRunner::new_with_rng(config.clone(), seeds.new_rng());
        match runner.run(&strategy, &body) {
            Ok(()) => rounds += 1,
            Err(TestError::Fail(why, input)) => {
                panic!("{name}: {why}; minimal failing input: {input:?}")
            }
            Err(TestError::Abort(why)) => panic!("{name}: aborted: {why}"),
        }
    }
    println!(
        "{name}: {} inputs in {seconds} s, no finding",
        rounds * u64::from(CASES)
    );
}
