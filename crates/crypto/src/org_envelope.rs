//! Envelopes for organisations: what a member's consent allows, sealed so
//! that only the organisation's API key opens it.
//!
//! The X25519 secret key of an API key is HKDF-SHA256 over the whole key
//! string (`me2b_k_…`), salt `me2b/org-envelope`, info
//! `me2b/org-envelope/x25519/v1`. The node keeps the public key beside the
//! key's SHA-256; neither gives the secret. An envelope is one version byte
//! (1) followed by a libsodium sealed box (`crypto_box_seal`: X25519,
//! XSalsa20-Poly1305) of the plaintext, so any libsodium can open it too
//! (`crypto_box_seal_open` with the derived secret key and its public key).

use crate::rng::RngAdapter;
use crate::CryptoError;
use hkdf::Hkdf;
use me2b_domain::Random;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Format version of an organisation envelope.
pub const ORG_ENVELOPE_VERSION: u8 = 1;

/// An API key's envelope secret. Zeroed on drop; `Debug` shows nothing.
pub struct OrgEnvelopeKey(crypto_box::SecretKey);

impl std::fmt::Debug for OrgEnvelopeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgEnvelopeKey(<secret>)")
    }
}

/// The public half, stored with the API key: what the node seals to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrgEnvelopePublicKey([u8; 32]);

impl OrgEnvelopeKey {
    /// Derives the envelope key of an API key (the organisation does this
    /// with its own key to open what it receives).
    pub fn from_api_key(api_key: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"me2b/org-envelope"), api_key.as_bytes());
        let mut sk = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF's limit; expand cannot fail.
        let _ = hk.expand(b"me2b/org-envelope/x25519/v1", sk.as_mut());
        Self(crypto_box::SecretKey::from(*sk))
    }

    pub fn public_key(&self) -> OrgEnvelopePublicKey {
        OrgEnvelopePublicKey(self.0.public_key().to_bytes())
    }

    /// Opens an envelope sealed to this key.
    pub fn open(&self, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (&v, sealed) = envelope.split_first().ok_or(CryptoError::Decrypt)?;
        if v != ORG_ENVELOPE_VERSION {
            return Err(CryptoError::UnsupportedVersion(v));
        }
        self.0
            .unseal(sealed)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

impl OrgEnvelopePublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::Malformed("envelope public key"))?;
        Ok(Self(arr))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Seals `plaintext` for the holder of the API key.
    pub fn seal(&self, plaintext: &[u8], rng: &dyn Random) -> Vec<u8> {
        let pk = crypto_box::PublicKey::from(self.0);
        // Sealing fails only for messages past the cipher's limit (GiBs).
        let sealed = pk.seal(&mut RngAdapter(rng), plaintext).unwrap_or_default();
        let mut out = Vec::with_capacity(1 + sealed.len());
        out.push(ORG_ENVELOPE_VERSION);
        out.extend_from_slice(&sealed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hash_token, SecretToken, SeededRandom};

    #[test]
    fn only_the_api_key_opens_its_envelopes() {
        let rng = SeededRandom::new(31);
        let key = SecretToken::generate("me2b_k_", &rng);
        let other = SecretToken::generate("me2b_k_", &rng);
        let k = OrgEnvelopeKey::from_api_key(key.expose());
        let pk = k.public_key();
        assert_eq!(
            OrgEnvelopePublicKey::from_bytes(&pk.to_bytes()).unwrap(),
            pk
        );
        let env = pk.seal(b"{\"region\":\"Utrecht\"}", &rng);
        assert_eq!(env[0], ORG_ENVELOPE_VERSION);
        assert!(!env.windows(7).any(|w| w == b"Utrecht"));
        assert_eq!(&*k.open(&env).unwrap(), b"{\"region\":\"Utrecht\"}");
        assert!(OrgEnvelopeKey::from_api_key(other.expose())
            .open(&env)
            .is_err());
        // The stored SHA-256 of the key, used as if it were the key.
        let h = hash_token(key.expose());
        assert!(OrgEnvelopeKey::from_api_key(&hex::encode(h))
            .open(&env)
            .is_err());
        let mut bad = env.clone();
        bad[0] = 2;
        assert!(matches!(
            k.open(&bad),
            Err(CryptoError::UnsupportedVersion(2))
        ));
        assert!(k.open(&env[..20]).is_err());
        assert!(!format!("{k:?}").contains("me2b"));
    }
}
