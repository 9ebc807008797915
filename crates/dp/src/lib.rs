//! Differential privacy for me2b: where the noise comes from, the one
//! accountant every release is charged to, and the release rules.
//!
//! * [`noise`]: OpenDP's discrete Laplace mechanism (and a seeded copy of the
//!   distribution for tests and the attack harness);
//! * [`mechanisms`]: counts, bounded sums and means, histograms, each with its
//!   noise scale, ε and a minimum cohort (a second line of defence);
//! * [`continual`]: running counts released on a schedule (continual
//!   release), whose releases cost ε once per budget period;
//! * [`pool`]: data pools and budget periods;
//! * [`governance`]: `[privacy]` in the governance file: ε per pool per
//!   period, lifetime caps, allowances per asker, the guarantee in words;
//! * [`accountant`]: charges every release to each pool it reads, all or
//!   nothing, before any noise is drawn, and audits it;
//! * [`transparency`]: what a member is told about the pools they are in.
//!
//! Offers and the data trust both release through this crate.
#![forbid(unsafe_code)]

pub mod accountant;
pub mod continual;
pub mod governance;
pub mod mechanisms;
pub mod noise;
pub mod pool;
pub mod transparency;

pub use accountant::{Accountant, Charged, PoolBudget, PoolUse, Release};
pub use governance::PrivacyGovernance;
pub use noise::{Noise, OpenDpNoise, SeededNoise};
pub use pool::{Period, PeriodLength, Pool, PoolClass};

/// Differential-privacy errors. None carries personal data.
#[derive(Debug, thiserror::Error)]
pub enum DpError {
    #[error("the privacy budget of pool `{pool}` would be exceeded ({limit}): {spent} of {budget} spent, this release needs {needed}")]
    OverBudget {
        pool: String,
        limit: &'static str,
        budget: f64,
        spent: f64,
        needed: f64,
    },
    #[error("governance gives this organisation no allowance in pool `{pool}`")]
    NoAllowance { pool: String },
    #[error("{0}")]
    Invalid(&'static str),
    #[error("unknown category `{0}`")]
    UnknownCategory(String),
    #[error("a sum needs an upper bound > 0: an unbounded sum has unbounded sensitivity")]
    UnboundedSum,
    #[error("the noise mechanism failed")]
    Noise,
    #[error("governance file: {0}")]
    Config(String),
    #[error(transparent)]
    Storage(#[from] me2b_storage::StorageError),
    #[error(transparent)]
    Audit(#[from] me2b_audit::AuditError),
}

impl DpError {
    /// The stable code of an error, for the API and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            DpError::OverBudget { .. } => "over_budget",
            DpError::NoAllowance { .. } => "no_budget",
            DpError::Invalid(_) | DpError::Config(_) => "invalid_parameter",
            DpError::UnknownCategory(_) => "unknown_category",
            DpError::UnboundedSum => "unbounded_sum",
            DpError::Noise => "noise_failed",
            DpError::Storage(_) => "unavailable",
            DpError::Audit(_) => "audit_failed",
        }
    }
}
