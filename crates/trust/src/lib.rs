//! The data trust (DESIGN.md, capability *Trust*). This first part holds the
//! privacy accounting and the differentially private answers:
//!
//! * [`budget`]: a per-requester ε accountant that refuses the query that would
//!   exceed the budget, before any noise is drawn;
//! * [`insights`]: counts, bounded sums and means, and histograms over a fixed
//!   category set, each with OpenDP noise, a minimum cohort, and its noise scale
//!   in the answer.
//!
//! * [`pseudonym`]: libpep polymorphic pseudonyms per domain, distributed
//!   transcryptors with a per-pair access rule (in-process so far).
//!
//! The transcryptor processes, receipts, storage, routes and the loyalty ledger
//! are not built yet (issue 6 stays open).
#![forbid(unsafe_code)]

pub mod budget;
pub mod insights;
pub mod pseudonym;

/// Trust errors. None carries personal data.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TrustError {
    #[error("the privacy budget of `{requester}` would be exceeded: {spent} of {budget} spent, this query needs {needed}")]
    OverBudget {
        requester: String,
        budget: f64,
        spent: f64,
        needed: f64,
    },
    #[error("no privacy budget is configured for `{0}`")]
    NoBudget(String),
    #[error("the cohort is below the minimum of {min_cohort}: nothing is released")]
    BelowThreshold { min_cohort: u64 },
    #[error("{0}")]
    Invalid(&'static str),
    #[error("unknown category `{0}`")]
    UnknownCategory(String),
    #[error("the noise mechanism failed")]
    Noise,
    #[error("transcription from `{from}` to `{to}` is not allowed")]
    TranscryptionRefused { from: String, to: String },
}
