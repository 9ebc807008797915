//! The one error type of this crate.

use crate::schema::ClaimName;

/// Everything that can go wrong with keys, signatures, proofs, credentials,
/// presentations and status lists. Each failure kind has its own variant and a
/// stable [`code`](CredentialError::code) for the API.
///
/// Messages never echo input values (claim values may be personal data); they name
/// at most a claim or a field of the schema.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CredentialError {
    // --- keys, signatures and proofs (the BBS layer) ---
    /// Key generation needs at least 32 bytes of key material (IETF BBS draft).
    #[error("the key material is too short: at least 32 bytes are needed")]
    KeyMaterialTooShort,
    /// Not a canonical, non-zero scalar of 32 bytes.
    #[error("invalid BBS secret key")]
    InvalidSecretKey,
    /// Not a compressed point of G2 (96 bytes), or the identity.
    #[error("invalid BBS public key")]
    InvalidPublicKey,
    /// Not 80 bytes, or not a valid (point, scalar) pair.
    #[error("malformed BBS signature")]
    MalformedSignature,
    /// The signature does not verify for these messages, header and public key.
    #[error("the BBS signature does not verify")]
    SignatureInvalid,
    /// The proof is shorter than its fixed part, ends inside a scalar, or carries
    /// fewer hidden messages than the credential has undisclosed claims.
    #[error("the proof is truncated")]
    TruncatedProof,
    /// The proof's bytes do not decode (invalid point or scalar, or too long).
    #[error("malformed proof: {0}")]
    MalformedProof(&'static str),
    /// The proof does not verify: a disclosed value, the issuer key or the
    /// presentation header differs from what was proven (tampering).
    #[error("the proof does not verify: a disclosed claim or the binding was altered")]
    ProofInvalid,
    /// Disclosed indexes out of range, not strictly increasing, or not matching
    /// the disclosed messages.
    #[error("invalid disclosure: {0}")]
    InvalidDisclosure(&'static str),
    /// More messages than this layer signs or proves ([`crate::bbs::MAX_MESSAGES`]).
    #[error("too many messages")]
    TooManyMessages,
    /// An internal failure of the BBS library (hashing, inversion): not expected
    /// with valid inputs.
    #[error("the BBS operation failed: {0}")]
    BbsFailure(&'static str),

    // --- schema and claims ---
    /// The credential or presentation names a schema version this build does not know.
    #[error("unsupported credential schema version")]
    UnsupportedSchema,
    /// A claim value does not have the form the schema requires.
    #[error("invalid value for claim `{claim}`: {reason}")]
    InvalidClaim {
        claim: &'static str,
        reason: &'static str,
    },
    /// An identifier (issuer key id, verifier id) does not have the required form.
    #[error("invalid {field}: {reason}")]
    InvalidIdentifier {
        field: &'static str,
        reason: &'static str,
    },

    // --- presentations and the verifier ---
    /// The input is larger than the parser accepts.
    #[error("the input is larger than {max} bytes")]
    Oversized { max: usize },
    /// The presentation (or challenge) is not well-formed JSON of the expected shape.
    #[error("malformed presentation: {0}")]
    MalformedPresentation(&'static str),
    /// The presentation answers another challenge (another nonce or verifier):
    /// a replay.
    #[error("the presentation answers another challenge (nonce or verifier id)")]
    WrongChallenge,
    /// The issuer key is not accepted by this challenge, or not known.
    #[error("unknown or not accepted issuer key")]
    UnknownIssuer,
    /// The challenge needs this claim disclosed and the presentation does not.
    #[error("required claim `{0}` is not disclosed")]
    MissingClaim(ClaimName),
    /// The disclosed value differs from the value the challenge requires.
    #[error("claim `{0}` does not have the required value")]
    ClaimMismatch(ClaimName),
    /// The credential's validity epoch is before the current epoch.
    #[error("the credential has expired")]
    Expired,
    /// The issuer's status list marks the credential as revoked.
    #[error("the credential has been revoked")]
    Revoked,
    /// A status check is required and no status list of the issuer is at hand.
    #[error("no status list is available for the issuer")]
    StatusUnavailable,

    // --- status lists ---
    /// The status index is beyond the end of the status list.
    #[error("the status index is outside the status list")]
    StatusIndexOutOfRange,
    /// The status list has fewer than the minimum or more than the maximum entries.
    #[error("invalid status list size")]
    InvalidStatusListSize,
    /// The encoded status list does not decode (multibase, base64url, gzip).
    #[error("malformed status list: {0}")]
    MalformedStatusList(&'static str),

    // --- the federation's settings ---
    /// A validity period outside 1 to 26 weeks.
    #[error("the validity period is 1 to 26 weeks")]
    InvalidPeriod,
}

impl CredentialError {
    /// A stable, machine-readable code for each kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeyMaterialTooShort => "key_material_too_short",
            Self::InvalidSecretKey => "invalid_secret_key",
            Self::InvalidPublicKey => "invalid_public_key",
            Self::MalformedSignature => "malformed_signature",
            Self::SignatureInvalid => "signature_invalid",
            Self::TruncatedProof => "truncated_proof",
            Self::MalformedProof(_) => "malformed_proof",
            Self::ProofInvalid => "proof_invalid",
            Self::InvalidDisclosure(_) => "invalid_disclosure",
            Self::TooManyMessages => "too_many_messages",
            Self::BbsFailure(_) => "bbs_failure",
            Self::UnsupportedSchema => "unsupported_schema",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::InvalidIdentifier { .. } => "invalid_identifier",
            Self::Oversized { .. } => "oversized_input",
            Self::MalformedPresentation(_) => "malformed_presentation",
            Self::WrongChallenge => "wrong_challenge",
            Self::UnknownIssuer => "unknown_issuer",
            Self::MissingClaim(_) => "missing_claim",
            Self::ClaimMismatch(_) => "claim_mismatch",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::StatusUnavailable => "status_unavailable",
            Self::StatusIndexOutOfRange => "status_index_out_of_range",
            Self::InvalidStatusListSize => "invalid_status_list_size",
            Self::MalformedStatusList(_) => "malformed_status_list",
            Self::InvalidPeriod => "invalid_period",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_distinct() {
        let all = [
            CredentialError::KeyMaterialTooShort,
            CredentialError::InvalidSecretKey,
            CredentialError::InvalidPublicKey,
            CredentialError::MalformedSignature,
            CredentialError::SignatureInvalid,
            CredentialError::TruncatedProof,
            CredentialError::MalformedProof("x"),
            CredentialError::ProofInvalid,
            CredentialError::InvalidDisclosure("x"),
            CredentialError::TooManyMessages,
            CredentialError::BbsFailure("x"),
            CredentialError::UnsupportedSchema,
            CredentialError::InvalidClaim {
                claim: "tier",
                reason: "x",
            },
            CredentialError::InvalidIdentifier {
                field: "verifier_id",
                reason: "x",
            },
            CredentialError::Oversized { max: 1 },
            CredentialError::MalformedPresentation("x"),
            CredentialError::WrongChallenge,
            CredentialError::UnknownIssuer,
            CredentialError::MissingClaim(ClaimName::Tier),
            CredentialError::ClaimMismatch(ClaimName::Tier),
            CredentialError::Expired,
            CredentialError::Revoked,
            CredentialError::StatusUnavailable,
            CredentialError::StatusIndexOutOfRange,
            CredentialError::InvalidStatusListSize,
            CredentialError::MalformedStatusList("x"),
            CredentialError::InvalidPeriod,
        ];
        let codes: BTreeSet<_> = all.iter().map(CredentialError::code).collect();
        assert_eq!(codes.len(), all.len());
    }
}
