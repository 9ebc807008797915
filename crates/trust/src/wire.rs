//! What crosses the boundary between the trust and a transcryptor: ciphertexts
//! with the key they are under, the domain pair, the requester and, for a
//! co-op → co-op pair, the member's consent grant. Never a plaintext
//! pseudonym, never a factor or secret.

use crate::domain::{Domain, Requester};
use crate::policy::{check_domain, SignedGrant};
use crate::pseudonym::{EncryptedPseudonym, Transcryptor, ORIGIN};
use crate::TrustError;
use libpep::keys::distribution::SessionKeyShares;
use libpep::keys::PseudonymSessionPublicKey;
use serde::{Deserialize, Serialize};

/// Largest batch one request may carry.
pub const MAX_BATCH: usize = 10_000;

/// A ciphertext and the public key it is currently encrypted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// URL-safe base64, 64 bytes.
    pub ct: EncryptedPseudonym,
    /// Hex.
    pub key: PseudonymSessionPublicKey,
}

/// One transcription request: every item goes from `from` to `to`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscryptRequest {
    /// Who asked (an organisation id or `trust`), for the audit log.
    pub requester: String,
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<SignedGrant>,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscryptResponse {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyShareRequest {
    pub requester: String,
    pub domain: String,
}

impl TranscryptRequest {
    /// A short description for the audit log: domains and batch size only.
    pub fn describe(&self) -> String {
        format!("{} -> {} ({} items)", self.from, self.to, self.items.len())
    }
}

impl Transcryptor {
    /// Decides and serves one request: all items or none.
    pub fn handle<R: rand::Rng + rand::CryptoRng>(
        &self,
        req: &TranscryptRequest,
        now_ms: i64,
        rng: &mut R,
    ) -> Result<Vec<Item>, TrustError> {
        if req.items.len() > MAX_BATCH {
            return Err(TrustError::BatchTooLarge { max: MAX_BATCH });
        }
        self.policy()
            .check(&req.from, &req.to, req.grant.as_ref(), now_ms)?;
        let pairs: Vec<_> = req.items.iter().map(|i| (i.ct, i.key)).collect();
        Ok(self
            .apply_all(&pairs, &req.from, &req.to, rng)
            .into_iter()
            .map(|(ct, key)| Item { ct, key })
            .collect())
    }

    /// This transcryptor's share of a domain's session keys; never of the
    /// origin domain (that would let the holder decrypt enrolment pseudonyms).
    pub fn share(&self, domain: &str) -> Result<SessionKeyShares, TrustError> {
        check_domain(domain)?;
        if domain == ORIGIN {
            return Err(TrustError::Invalid(
                "no key share is ever given for the origin domain",
            ));
        }
        Ok(self.key_share(domain))
    }

    /// This transcryptor's share of `domain`'s keys for `requester`: the
    /// trust's own domains for the trust, a co-op's domain for that co-op
    /// only, the origin for no one.
    pub fn share_for(
        &self,
        requester: Requester,
        domain: Domain,
    ) -> Result<SessionKeyShares, TrustError> {
        if !requester.may_hold_keys_of(domain) {
            return Err(TrustError::KeyShareRefused {
                domain: domain.to_string(),
            });
        }
        self.share(&domain.to_string())
    }
}
