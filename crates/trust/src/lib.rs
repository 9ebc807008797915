//! The data trust (DESIGN.md, capability *Trust*). Its noise, privacy
//! accounting and release rules are `me2b-dp`'s, shared with offers.
//!
//! * [`pseudonym`]: libpep polymorphic pseudonyms per domain and the
//!   transcryptor's cryptography;
//! * [`policy`]: a transcryptor's access rule per (from, to) domain pair, and
//!   the signed consent grants that open a co-op → co-op pair;
//! * [`wire`], [`link`], [`remote`]: the transcription protocol, the in-process
//!   link and the HTTP link to a transcryptor process;
//! * [`service`]: the trust as the node runs it: enrolment, receipts,
//!   insights with budgets, cross-selling with consent, the loyalty ledger.
#![forbid(unsafe_code)]

pub mod domain;
pub mod fuzzing;
pub mod link;
pub mod policy;
pub mod pseudonym;
pub mod remote;
pub mod service;
pub mod token;
pub mod wire;

/// Trust errors. None carries personal data.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("the cohort is below the minimum of {min_cohort}: nothing is released")]
    BelowThreshold { min_cohort: u64 },
    #[error("{0}")]
    Invalid(&'static str),
    #[error("unknown category `{0}`")]
    UnknownCategory(String),
    #[error("transcription from `{from}` to `{to}` is not allowed")]
    TranscryptionRefused { from: String, to: String },
    #[error("no key share for `{domain}` is given to this requester: the trust holds its own domains' keys only, and each co-op only its own")]
    KeyShareRefused { domain: String },
    #[error("no card was shown at this co-op yet, so its domain's key is not known here")]
    UnknownDomainKey,
    #[error("this trust runs its transcryptors as separate processes: fetch your key shares from each of them")]
    AskTranscryptors,
    #[error("the consent grant has expired")]
    GrantExpired,
    #[error("the consent grant is malformed or not signed by the node")]
    BadGrant,
    #[error("a batch holds at most {max} items")]
    BatchTooLarge { max: usize },
    #[error("a ciphertext or key is malformed")]
    MalformedCiphertext,
    #[error("transcryptor `{name}` cannot be reached; nothing was stored")]
    TranscryptorDown { name: String },
    #[error("transcryptor `{name}` failed ({code}); nothing was stored")]
    TranscryptorFailed { name: String, code: String },
    #[error("the audit log could not record the request")]
    AuditFailed,
    #[error("unknown area: give one of the trust's area codes (finer locations are refused)")]
    UnknownArea,
    #[error("`{0}` is a special-category topic: the trust does not take it on receipts")]
    SensitiveCategory(String),
    #[error("a sum needs `upper_cents` > 0: an unbounded sum has unbounded sensitivity")]
    UnboundedSum,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("not enough loyalty points")]
    InsufficientPoints,
    #[error("no enrolled member holds this card; nothing was recorded")]
    UnknownCard,
    #[error("this redemption token is not valid here: unknown, used, expired, for another co-op or another amount; nothing was redeemed")]
    RedemptionRefused,
    #[error(
        "the member behind this card has erased their data: delete the card; nothing was recorded"
    )]
    MemberErased,
    #[error(transparent)]
    Dp(#[from] me2b_dp::DpError),
    /// From the consent records (cross-selling consents are consent records).
    #[error(transparent)]
    Consent(#[from] me2b_consent::ServiceError),
    #[error(transparent)]
    Storage(#[from] me2b_storage::StorageError),
    #[error(transparent)]
    Audit(#[from] me2b_audit::AuditError),
}

/// The stable code of an error, for the API and the audit log.
pub fn error_code(e: &TrustError) -> &'static str {
    match e {
        TrustError::BelowThreshold { .. } => "below_threshold",
        TrustError::Invalid(_) => "invalid_parameter",
        TrustError::UnknownCategory(_) => "unknown_category",
        TrustError::TranscryptionRefused { .. } => "transcription_refused",
        TrustError::KeyShareRefused { .. } => "key_share_refused",
        TrustError::UnknownDomainKey => "no_card_yet",
        TrustError::AskTranscryptors => "ask_transcryptors",
        TrustError::GrantExpired => "grant_expired",
        TrustError::BadGrant => "bad_grant",
        TrustError::BatchTooLarge { .. } => "batch_too_large",
        TrustError::MalformedCiphertext => "malformed_ciphertext",
        TrustError::TranscryptorDown { .. } => "transcryptor_down",
        TrustError::TranscryptorFailed { .. } => "transcryptor_failed",
        TrustError::AuditFailed | TrustError::Audit(_) => "audit_failed",
        TrustError::UnknownArea => "unknown_area",
        TrustError::SensitiveCategory(_) => "sensitive_category",
        TrustError::UnboundedSum => "unbounded_sum",
        TrustError::Forbidden(_) => "forbidden",
        TrustError::NotFound(_) => "not_found",
        TrustError::InsufficientPoints => "insufficient_points",
        TrustError::UnknownCard => "unknown_card",
        TrustError::RedemptionRefused => "redemption_refused",
        TrustError::MemberErased => "member_erased",
        TrustError::Dp(e) => e.code(),
        TrustError::Consent(_) => "consent",
        TrustError::Storage(_) => "unavailable",
    }
}

impl PartialEq for TrustError {
    /// Errors compare by their message (tests compare kinds and fields).
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}
