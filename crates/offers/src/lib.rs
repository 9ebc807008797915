//! Offers: brands reach members without learning who they are.
//!
//! * [`taxonomy`]: the shipped "fair economy" interest taxonomy, each topic
//!   marked with the GDPR Art. 9 category it touches, if any.
//! * [`rule`]: targeting rules in CEL, checked at publish (fields, types, size,
//!   cost, sensitive topics) and reported with the position of the problem.
//! * [`offer`]: what an organisation publishes, parsed and validated.
//! * [`matching`]: runs inside the member's vault over the catalogue every vault
//!   receives alike: a topic-bitset prefilter, the rule, ranking, and the reasons.
//! * [`derive`]: interest suggestions from the member's own receipts.
//! * [`stats`]: what the organisation learns in aggregate: running counts
//!   released on a schedule, charged per period to the offers' audience
//!   pool of the one privacy accountant (`me2b-dp`), above a minimum cohort.
//! * [`service`]: the above wired to storage, the vault, consent and the audit log.
#![forbid(unsafe_code)]

pub mod derive;
pub mod matching;
pub mod offer;
pub mod rule;
pub mod service;
pub mod stats;
pub mod taxonomy;

pub use offer::{OfferInput, PublishedOffer};
pub use rule::{Position, RuleError, RuleErrorKind};
pub use service::{Offers, OffersDeps};
pub use stats::OfferGovernance;
pub use taxonomy::Taxonomy;

/// Offer errors. None carries a member's personal data.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("the taxonomy file is invalid: {0}")]
    Taxonomy(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("unknown topic `{0}`: see GET /v1/taxonomy")]
    UnknownTopic(String),
    #[error("topic `{topic}` ({via}) touches the special category `{category}` (GDPR Art. 9): an offer may target it only when flagged explicit_consent, and is then shown only to members who explicitly consented")]
    SensitiveTopic {
        topic: String,
        category: String,
        via: &'static str,
    },
    #[error(transparent)]
    Rule(#[from] rule::RuleError),
    #[error("offer not found")]
    NotFound,
    #[error("this organisation is not a party to the offer")]
    NotParty,
    #[error("the offer changed meanwhile; retry")]
    Conflict,
    #[error("the offer is {0}")]
    NotActive(&'static str),
    #[error("the offer has no contact request: nothing to share")]
    NoContactRequest,
    #[error(transparent)]
    Storage(#[from] me2b_storage::StorageError),
    #[error(transparent)]
    Vault(#[from] me2b_vault::VaultError),
    #[error(transparent)]
    Audit(#[from] me2b_audit::AuditError),
    #[error(transparent)]
    Consent(#[from] me2b_consent::ServiceError),
    #[error("stored offer is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("the noise mechanism failed")]
    Noise,
    #[error("this organisation already has {max} live offers, the most governance allows: withdraw one first")]
    TooManyLiveOffers { max: u64 },
    #[error(transparent)]
    Dp(#[from] me2b_dp::DpError),
}

impl OfferError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
