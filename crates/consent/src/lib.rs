//! Consent: the only door through which an organisation reaches a member's data.
//!
//! * [`vocabulary`]: purposes, personal-data categories, processing operations and
//!   legal bases from the W3C Data Privacy Vocabulary, shipped as a data file with
//!   plain-language explanations; special categories (GDPR Art. 9) are marked.
//! * [`model`]: consent requests (what an organisation asks for) and consent
//!   records (what a member granted), shaped after ISO/IEC TS 27560 and the
//!   Kantara consent receipt, with their full event history.
//! * [`pdp`]: the policy decision point, a pure function deciding
//!   (organisation, member, purpose, category, processing, time) → permit or deny,
//!   deny by default.
//! * [`envelope`]: what a consent allows, sealed in the member's session to
//!   the organisation's API keys; how an organisation opens it.
//! * [`receipt`]: consent receipts as compact JWS (EdDSA / Ed25519) signed by the
//!   node, verifiable offline with the node's public key.
#![forbid(unsafe_code)]

pub mod envelope;
pub mod fuzzing;
pub mod model;
pub mod pdp;
pub mod receipt;
pub mod service;
pub mod vocabulary;

pub use model::*;
pub use pdp::{decide, AccessQuery, Decision, DenyReason};
pub use service::{Consents, ServiceError};
pub use vocabulary::{Term, Vocabulary};

/// Consent errors. None carries personal data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsentError {
    #[error("unknown {kind} `{id}`: see GET /v1/vocabulary")]
    UnknownTerm { kind: &'static str, id: String },
    #[error("category `{category}` is a special category (GDPR Art. 9): it requires the legal basis `{required}`")]
    SpecialCategoryNeedsExplicitConsent {
        category: String,
        required: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the receipt is malformed: {0}")]
    MalformedReceipt(&'static str),
    #[error("the receipt's signature does not verify with the node key")]
    BadReceiptSignature,
    #[error("the vocabulary file is invalid: {0}")]
    Vocabulary(String),
    #[error("the envelope cannot be opened: {0}")]
    Envelope(&'static str),
}
