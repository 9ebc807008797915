//! Envelopes: what a member's consent allows an organisation to read, sealed
//! in the member's session so that only the organisation's API key opens it.
//! The node cannot open them: their key is derived from the API key, which
//! it keeps only as a SHA-256 (and the public key).
//!
//! # Format (content version 2)
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
//! `{"v": 2, "consent_id", "subject", "category", "values": [...], "sealed_at"}`,
//! padded with spaces (which JSON ignores after a value) to a size bucket
//! (512 bytes, then powers of two: the vault's [`me2b_vault::padded`]), so that an
//! envelope's length tells its bucket, not the length of the member's values
//! (which would pair one member's envelopes at two organisations: issue 13).
//! Content version 1 was the same JSON unpadded; [`open`] opens both.
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

/// Format version of an envelope's plaintext: 2, padded to a size bucket.
pub const CONTENT_VERSION: u8 = 2;

/// The smallest size bucket of an envelope's plaintext, in bytes. About 150
/// to 180 bytes are the same in every envelope (version, consent id, pseudonym,
/// time); 512 leaves room for a category's values of ordinary length (a
/// full name, an address, a few interests), where 256 would split names and
/// addresses across two buckets.
pub const PAD_MIN: usize = 512;

/// The version before padding: unpadded JSON, still opened.
pub const UNPADDED_CONTENT_VERSION: u8 = 1;

/// The version named in [`digest_input`]: unchanged by padding, so that an
/// envelope sealed before it is not re-sealed for padding alone.
const DIGEST_VERSION: u8 = 1;

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

/// Seals `content`, padded to its size bucket, to an API key's public key.
pub fn seal(pk: &OrgEnvelopePublicKey, content: &EnvelopeContent, rng: &dyn Random) -> Vec<u8> {
    // Room for the usual buckets, so that padding does not leave an
    // unzeroed copy of the plaintext behind.
    let mut json = Vec::with_capacity(1024);
    if serde_json::to_writer(&mut json, content).is_err() {
        json.clear();
    }
    let plain = zeroize::Zeroizing::new(me2b_vault::padded(json, PAD_MIN));
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
        "v": DIGEST_VERSION,
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
    // The padding (version 2) is spaces after the JSON value.
    let content: EnvelopeContent = serde_json::from_slice(plain.trim_ascii_end())
        .map_err(|_| bad("its content is malformed"))?;
    if content.v != CONTENT_VERSION && content.v != UNPADDED_CONTENT_VERSION {
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
    use proptest::prelude::*;

    fn content(consent: ConsentId, category: &str, values: &[(&str, &str)]) -> EnvelopeContent {
        EnvelopeContent {
            v: CONTENT_VERSION,
            consent_id: consent,
            subject: "sub_Qm9vdF9mYWtlX3BzZXVkbw".into(),
            category: category.into(),
            values: values
                .iter()
                .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
                .collect(),
            sealed_at: "2026-11-20T00:00:00+00:00".into(),
        }
    }

    /// A category and its (name, value) pairs.
    type Category<'a> = (&'a str, &'a [(&'a str, &'a str)]);

    /// Attack 3b: one member's envelopes to two co-ops have the same
    /// plaintext, so unpadded lengths pair them. Padded, two members with
    /// values of realistic, different lengths give envelopes of one length
    /// per category.
    #[test]
    fn envelopes_of_different_members_have_one_length_per_category() {
        let rng = SeededRandom::new(43);
        let key = SecretToken::generate("me2b_k_", &rng);
        let pk = OrgEnvelopeKey::from_api_key(key.expose()).public_key();
        let members: [[Category; 3]; 2] = [
            [
                ("name", &[("given_name", "Jo"), ("family_name", "Bos")]),
                ("email-address", &[("email", "jo@ab.nl")]),
                ("postcode", &[("postcode", "1011 AB")]),
            ],
            [
                (
                    "name",
                    &[
                        ("given_name", "Anne-Marijke"),
                        ("family_name", "van der Heijden"),
                    ],
                ),
                (
                    "email-address",
                    &[("email", "anne-marijke.vanderheijden@kpnmail.nl")],
                ),
                ("postcode", &[("postcode", "9999")]),
            ],
        ];
        let lengths: Vec<Vec<usize>> = members
            .iter()
            .map(|m| {
                let consent = ConsentId::generate(&rng);
                m.iter()
                    .map(|(category, values)| {
                        let c = content(consent, category, values);
                        let env = encode(&seal(&pk, &c, &rng));
                        assert_eq!(open(key.expose(), consent, category, &env).unwrap(), c);
                        env.len()
                    })
                    .collect()
            })
            .collect();
        assert_eq!(lengths[0], lengths[1]);
    }

    /// An envelope sealed before padding (content version 1, no padding)
    /// still opens.
    #[test]
    fn an_unpadded_version_1_envelope_still_opens() {
        let rng = SeededRandom::new(47);
        let key = SecretToken::generate("me2b_k_", &rng);
        let pk = OrgEnvelopeKey::from_api_key(key.expose()).public_key();
        let consent = ConsentId::generate(&rng);
        let mut c = content(consent, "postcode", &[("postcode", "3511 AB")]);
        c.v = 1;
        let plain = serde_json::to_vec(&c).unwrap();
        let env = encode(&pk.seal(&plain, &rng));
        assert_eq!(open(key.expose(), consent, "postcode", &env).unwrap(), c);
    }

    proptest! {
        /// `open` never panics, whatever an answer holds: arbitrary
        /// strings, arbitrary bytes, or arbitrary plaintext sealed to the key.
        #[test]
        fn open_never_panics(
            s in ".{0,200}",
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            plain in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let rng = SeededRandom::new(53);
            let key = SecretToken::generate("me2b_k_", &rng);
            let pk = OrgEnvelopeKey::from_api_key(key.expose()).public_key();
            let consent = ConsentId::generate(&rng);
            let _ = open(key.expose(), consent, "name", &s);
            let _ = open(key.expose(), consent, "name", &encode(&bytes));
            let _ = open(key.expose(), consent, "name", &encode(&pk.seal(&plain, &rng)));
        }
    }

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
