use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use me2b_domain::Random;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The SHA-256 of a bearer token: what is stored instead of the token.
pub type TokenHash = [u8; 32];

/// A freshly made bearer token (session token or API key): 256 random bits,
/// base64url, after a readable prefix. Shown once; only its hash is stored.
pub struct SecretToken(SecretString);

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(<secret>)")
    }
}

impl SecretToken {
    pub fn generate(prefix: &str, rng: &dyn Random) -> Self {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill(bytes.as_mut());
        Self(SecretString::from(format!(
            "{prefix}{}",
            URL_SAFE_NO_PAD.encode(bytes.as_ref())
        )))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn hash(&self) -> TokenHash {
        hash_token(self.expose())
    }
}

/// Hashes a presented token for lookup. Tokens have 256 bits of entropy, so a fast
/// hash is enough (no salt or stretching needed).
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The tag of a member's `index`-th erasure request under their erasure
/// receipt (a token of this module): HMAC-SHA256 keyed with the receipt.
/// Without the receipt two requests' tags cannot be told to belong together.
pub fn receipt_tag(receipt: &str, index: u32) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    const LABEL: &[u8] = b"me2b/erasure-receipt/v1";
    match <Hmac<Sha256> as Mac>::new_from_slice(receipt.as_bytes()) {
        Ok(mut mac) => {
            mac.update(LABEL);
            mac.update(&index.to_be_bytes());
            mac.finalize().into_bytes().into()
        }
        // HMAC takes a key of any length: never reached.
        Err(_) => Sha256::digest([LABEL, receipt.as_bytes(), &index.to_be_bytes()].concat()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    #[test]
    fn tokens_are_prefixed_unique_and_hashed() {
        let rng = SeededRandom::new(6);
        let a = SecretToken::generate("me2b_s_", &rng);
        let b = SecretToken::generate("me2b_s_", &rng);
        assert!(a.expose().starts_with("me2b_s_"));
        assert_eq!(a.expose().len(), 7 + 43);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), hash_token(a.expose()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn receipt_tags_differ_per_index_and_receipt() {
        let rng = SeededRandom::new(7);
        let (a, b) = (
            SecretToken::generate("me2b_e_", &rng),
            SecretToken::generate("me2b_e_", &rng),
        );
        assert_eq!(receipt_tag(a.expose(), 0), receipt_tag(a.expose(), 0));
        assert_ne!(receipt_tag(a.expose(), 0), receipt_tag(a.expose(), 1));
        assert_ne!(receipt_tag(a.expose(), 0), receipt_tag(b.expose(), 0));
    }
}
