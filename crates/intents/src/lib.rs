//! Intents: members' anonymous requests for proposal.
//!
//! A member publishes what they want (a taxonomy topic, a short text, a
//! budget, an area, a deadline, who may answer) under a fresh one-time
//! pseudonym: 16 random bytes, unlinkable to the member and to their other
//! intents. The node stores no member id with an intent; the member's link is
//! a secret in their encrypted vault, of which only the SHA-256 is stored.
//! Organisations see open intents on the topics and areas they follow, with
//! times to the hour and nothing about who asked, and answer each at most
//! once with a proposal. The member compares the answers in their vault and
//! accepts one: only then does contact happen, through the consent flow (a
//! consent made for this contact alone, under a pseudonym of its own). The
//! other organisations see only "closed", from the next whole hour. Intents
//! and unaccepted answers are deleted at the deadline. Counts shown to
//! organisations are released through the privacy accountant.
#![forbid(unsafe_code)]

pub mod model;
mod service;

pub use model::*;
pub use service::{Intents, IntentsDeps, Limits};

use me2b_storage::StorageError;

/// Everything that can go wrong with intents. Messages never carry a
/// submitted value or anything about a member.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("an intent needs a text saying what you are looking for")]
    Empty,
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("the topic is not in the taxonomy")]
    UnknownTopic,
    #[error("intents on sensitive topics (health, religion, politics, sexuality, …) are refused: they would reveal a special category of personal data")]
    SensitiveTopic,
    #[error("the region is not one of the trust's area codes (finer locations are refused)")]
    UnknownRegion,
    #[error("free text can identify you: read the warning and publish again with `acknowledge_free_text_warning: true`. {0}")]
    WarningNotAcknowledged(&'static str),
    #[error("you published the most intents allowed this week ({max}); try again next week")]
    IntentRateLimited { max: u64 },
    #[error(
        "this organisation answered the most intents allowed in 24 hours ({max}); try again later"
    )]
    AnswerRateLimited { max: u64 },
    #[error("no open intent with this id (it may have expired, or never existed)")]
    IntentNotFound,
    #[error("this intent is closed")]
    IntentClosed,
    #[error("the intent's publisher does not allow this organisation to answer")]
    NotAllowed,
    #[error("this organisation already answered this intent")]
    AlreadyAnswered,
    #[error("no such answer")]
    AnswerNotFound,
    #[error("the answer's validity date has passed")]
    AnswerExpired,
    #[error("a category to disclose was not asked for by the answer")]
    NotAsked,
    #[error("this answer was already reported")]
    AlreadyReported,
    #[error("the operation raced with another one; retry")]
    Conflict,
    #[error("stored intent data is corrupt ({0})")]
    Corrupt(&'static str),
    #[error(transparent)]
    Storage(StorageError),
    #[error(transparent)]
    Vault(#[from] me2b_vault::VaultError),
    #[error(transparent)]
    Audit(#[from] me2b_audit::AuditError),
    #[error(transparent)]
    Consent(#[from] me2b_consent::ServiceError),
    #[error(transparent)]
    Dp(#[from] me2b_dp::DpError),
}

impl From<StorageError> for IntentError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl IntentError {
    /// The stable error code of the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_intent",
            Self::Empty => "empty_intent",
            Self::TooLong { .. } => "too_long",
            Self::UnknownTopic => "unknown_topic",
            Self::SensitiveTopic => "sensitive_topic",
            Self::UnknownRegion => "unknown_area",
            Self::WarningNotAcknowledged(_) => "free_text_warning",
            Self::IntentRateLimited { .. } => "intent_rate_limited",
            Self::AnswerRateLimited { .. } => "answer_rate_limited",
            Self::IntentNotFound => "intent_not_found",
            Self::IntentClosed => "intent_closed",
            Self::NotAllowed => "not_allowed_to_answer",
            Self::AlreadyAnswered => "already_answered",
            Self::AnswerNotFound => "answer_not_found",
            Self::AnswerExpired => "answer_expired",
            Self::NotAsked => "not_asked",
            Self::AlreadyReported => "already_reported",
            Self::Conflict => "conflict",
            Self::Corrupt(_) => "internal",
            Self::Storage(_) => "unavailable",
            Self::Vault(_) | Self::Audit(_) | Self::Consent(_) | Self::Dp(_) => "delegated",
        }
    }
}
