//! Domain types of me2b: typed identifiers, vault records, organisations and audit
//! events. This crate performs no I/O; time and randomness come in through the
//! [`Clock`] and [`Random`] traits so every caller can be tested deterministically.
#![forbid(unsafe_code)]

pub mod audit;
pub mod batch;
pub mod ids;
pub mod member;
pub mod meta;
pub mod org;
pub mod record;
pub mod text;
pub mod time;

pub use ids::{
    ApiKeyId, ConsentId, ConsentRequestId, MemberId, OfferId, OrgId, RecordId, SharingId,
    TrustReceiptId,
};
pub use time::{Clock, FixedClock, Random, SystemClock, Timestamp};

/// Errors raised while parsing untrusted input into domain types.
///
/// Messages never include the offending value: it may be personal data.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

impl DomainError {
    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Self {
        Self::Invalid { field, reason }
    }
}
