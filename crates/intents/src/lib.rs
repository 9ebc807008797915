//! Intents: members' anonymous requests for proposal.
//!
//! A member publishes what they want (a taxonomy topic, a short text, a
//! budget, an area, a deadline, who may answer) under a fresh one-time
//! pseudonym: 16 random bytes, unlinkable to the member and to their other
//! intents. The node stores no member id with an intent; the member's link is
//! a secret in their encrypted vault, of which only the SHA-256 is stored.
//! New intents reach organisations in batches ([`batch`]), never one by one.
//! Organisations see open intents on the topics and areas they follow, with
//! times to the hour and nothing about who asked, and answer each at most
//! once with a proposal. The member compares the answers in their vault and
//! accepts one: only then does contact happen, through the consent flow (a
//! consent made for this contact alone, under a pseudonym of its own). The
//! other organisations see only "closed", from the next whole hour. Intents
//! and unaccepted answers are deleted at the deadline. Counts shown to
//! organisations are released through the privacy accountant.
#![forbid(unsafe_code)]

pub mod batch;
pub mod model;
mod service;

pub use batch::BatchGovernance;
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
    // The warning itself, then what to do: within the API's 300 characters.
    #[error("{0} Then set acknowledge_free_text_warning.")]
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
    #[error("an audience names a claim organisations' credentials carry: certification (a certification of the federation's list) or federation_member (true)")]
    UnknownClaim,
    #[error("this certification would tell organisations a special category about you (religion, health): an audience cannot name it")]
    SensitiveClaim,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_free_text_warning_fits_in_an_error_message_whole() {
        // The API cuts messages at 300 characters; the warning must survive.
        let m = IntentError::WarningNotAcknowledged(FREE_TEXT_WARNING).to_string();
        assert!(m.chars().count() <= 300, "{} characters", m.chars().count());
        assert!(m.starts_with(FREE_TEXT_WARNING));
    }
}
