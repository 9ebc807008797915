//! Co-op credentials: BBS signatures with selective disclosure, unlinkable
//! presentations bound to a verifier's challenge, a promo-code verifier, and
//! revocation by status list (DESIGN.md, capability *Credentials*).
//!
//! * [`bbs`]: the [`Bbs`] trait and its implementation over zkryptium
//!   (IETF CFRG BBS, ciphersuite BLS12-381-SHA-256).
//! * [`schema`]: the versioned, ordered claims of a credential and their encoding
//!   as BBS messages.
//! * [`credential`]: issuer key pairs, issuing, credentials and presenting them.
//! * [`presentation`]: the presentation wire format and its strict parser.
//! * [`verifier`]: challenges and [`verify_presentation`], pure and offline-capable.
//! * [`status`]: W3C Bitstring Status Lists.
//! * [`service`]: the node's promo-code flow over storage, the vault and the
//!   audit log (codes, issuance into the vault under the federation's one
//!   issuer key, challenges, presentations, verification, revocation, the
//!   published key).
//!
//! `LINKABILITY.md` (next to this crate's `Cargo.toml`) explains what each choice
//! leaves linkable, and the defaults.
#![forbid(unsafe_code)]

pub mod bbs;
pub mod credential;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod presentation;
pub mod schema;
pub mod service;
pub mod status;
pub mod tags;
pub mod verifier;

pub use bbs::{
    default_bbs, Bbs, BbsProof, BbsPublicKey, BbsSecretKey, BbsSignature, RawZkryptiumBbs,
};
pub use credential::{Credential, IssuerKeyId, IssuerKeyPair, OrgCredential, SignedCredential};
pub use error::CredentialError;
pub use presentation::{presentation_header, Nonce, Presentation, VerifierId};
pub use schema::{
    ClaimName, ClaimSet, ClaimText, ClaimValue, Claims, CredentialSchema, Epoch, Interests,
    MemberSince, OrgClaims, SchemaVersion, StatusIndex, ValidityPeriod,
};
pub use status::StatusList;
pub use verifier::{verify_presentation, Challenge, IssuerKeys, StatusLists, VerifiedClaims};
