//! Envelopes: what a member's consent allows an organisation to read, sealed
//! in the member's session so that only the organisation's API key opens it.
//! The node cannot open them: their key is derived from the API key, which
//! it keeps only as a SHA-256 (and the public key).
//!
//! # Format (version 1)
//!
//! `POST /v1/org/data-access` answers, per member with a permit, `envelopes`:
//! category id → base64url (no padding) of
//!
//! ```text
//! 0x01 ‖ crypto_box_seal(plaintext)      (libsodium sealed box: X25519, XSalsa20-Poly1305)
//! ```
//!
//! sealed to the X25519 key `HKDF-SHA256(ikm = API key, salt = "me2b/org-envelope",
//! info = "me2b/org-envelope/x25519/v1")`. The plaintext is JSON:
//! `{"v": 1, "consent_id", "subject", "category", "values": [...], "sealed_at"}`,
//! the member's values in that category as of the member's last change
//! (`sealed_at` is when that change was sealed: a session that would seal the
//! same values again leaves the envelope as it is, byte for byte). Use
//! [`open`] (or [`open_disclosure`]) with the API key that asked; it checks that
//! the envelope is the one the answer names.

use crate::service::Disclosure;
use crate::ConsentError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use me2b_crypto::org_envelope::{OrgEnvelopeKey, OrgEnvelopePublicKey};
use me2b_domain::{ConsentId, Random};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Format version of an envelope's plaintext.
pub const CONTENT_VERSION: u8 = 1;

/// What an envelope holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeContent {
    pub v: u8,
    pub consent_id: ConsentId,
    /// The member's pseudonym for this organisation.
    pub subject: String,
    pub category: String,
    pub values: Vec<serde_json::Value>,
    pub sealed_at: String,
}

/// Seals `content` to an API key's public key.
pub fn seal(pk: &OrgEnvelopePublicKey, content: &EnvelopeContent, rng: &dyn Random) -> Vec<u8> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(content).unwrap_or_default());
    pk.seal(&plain, rng)
}

/// What the keyed digest kept with an envelope is for (the member's key
/// derives one subkey per purpose).
pub const DIGEST_PURPOSE: &str = "me2b/org-envelope/digest/v1";

/// What the digest kept with an envelope covers: its plaintext but for
/// `sealed_at`, so a session that would seal the same values again is seen
/// to change nothing and the envelope served stays byte for byte.
pub fn digest_input(
    consent: ConsentId,
    subject: &str,
    category: &str,
    values: &[serde_json::Value],
) -> zeroize::Zeroizing<Vec<u8>> {
    let v = serde_json::json!({
        "v": CONTENT_VERSION,
        "consent_id": consent,
        "subject": subject,
        "category": category,
        "values": values,
    });
    zeroize::Zeroizing::new(serde_json::to_vec(&v).unwrap_or_default())
}

fn bad(what: &'static str) -> ConsentError {
    ConsentError::Envelope(what)
}

/// Opens one envelope (base64url, as data access returns it) with the API
/// key that asked, checking it is the consent's envelope for `category`.
pub fn open(
    api_key: &str,
    consent: ConsentId,
    category: &str,
    envelope: &str,
) -> Result<EnvelopeContent, ConsentError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(envelope)
        .map_err(|_| bad("not base64url"))?;
    let plain = OrgEnvelopeKey::from_api_key(api_key)
        .open(&bytes)
        .map_err(|_| bad("it does not open with this API key"))?;
    let content: EnvelopeContent =
        serde_json::from_slice(&plain).map_err(|_| bad("its content is malformed"))?;
    if content.v != CONTENT_VERSION {
        return Err(bad("unsupported content version"));
    }
    if content.consent_id != consent || content.category != category {
        return Err(bad("it belongs to another consent or category"));
    }
    Ok(content)
}

/// Opens every envelope of one disclosure: category → the member's values.
pub fn open_disclosure(
    api_key: &str,
    d: &Disclosure,
) -> Result<BTreeMap<String, Vec<serde_json::Value>>, ConsentError> {
    d.envelopes
        .iter()
        .map(|(category, env)| {
            open(api_key, d.consent_id, category, env).map(|c| (category.clone(), c.values))
        })
        .collect()
}

/// An envelope as data access serves it.
pub fn encode(sealed: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_crypto::{SecretToken, SeededRandom};

    #[test]
    fn an_envelope_opens_with_its_key_for_its_consent_and_category_only() {
        let rng = SeededRandom::new(41);
        let key = SecretToken::generate("me2b_k_", &rng);
        let pk = OrgEnvelopeKey::from_api_key(key.expose()).public_key();
        let consent = ConsentId::generate(&rng);
        let content = EnvelopeContent {
            v: CONTENT_VERSION,
            consent_id: consent,
            subject: "sub_x".into(),
            category: "region".into(),
            values: vec![serde_json::json!({"name": "region", "value": "Utrecht"})],
            sealed_at: "2026-11-20T00:00:00Z".into(),
        };
        let env = encode(&seal(&pk, &content, &rng));
        assert_eq!(
            open(key.expose(), consent, "region", &env).unwrap(),
            content
        );
        assert!(open(key.expose(), consent, "interest", &env).is_err());
        assert!(open(key.expose(), ConsentId::generate(&rng), "region", &env).is_err());
        let other = SecretToken::generate("me2b_k_", &rng);
        assert!(open(other.expose(), consent, "region", &env).is_err());
        assert!(open(key.expose(), consent, "region", "!!").is_err());
    }
}
