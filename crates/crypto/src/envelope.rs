use crate::CryptoError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use me2b_domain::{MemberId, Random, RecordId};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The format version written as the first byte of every ciphertext.
pub const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Associated data: what a ciphertext is bound to. A ciphertext opened with any
/// other associated data fails authentication, so a record cannot be moved to
/// another member or another record id, and a format downgrade is detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aad(Vec<u8>);

impl Aad {
    fn new(purpose: &[u8], member: MemberId, object: &[u8]) -> Self {
        let mut v = Vec::with_capacity(48 + purpose.len());
        v.extend_from_slice(b"me2b/");
        v.extend_from_slice(purpose);
        v.push(0);
        v.push(ENVELOPE_VERSION);
        v.extend_from_slice(member.as_bytes());
        v.extend_from_slice(object);
        Self(v)
    }
    /// A vault record of `member` with id `record`.
    pub fn record(member: MemberId, record: RecordId) -> Self {
        Self::new(b"record", member, record.as_bytes())
    }
    /// The login e-mail of `member`.
    pub fn email(member: MemberId) -> Self {
        Self::new(b"email", member, &[])
    }
    /// The wrapped data key of `member`.
    pub fn wrapped_key(member: MemberId) -> Self {
        Self::new(b"data-key", member, &[])
    }
    /// `member`'s data key wrapped for a session token.
    pub fn session_key(member: MemberId) -> Self {
        Self::new(b"session-key", member, &[])
    }
    /// The e-mail address of a sign-up waiting for confirmation (by the
    /// member id it will have).
    pub fn sign_up(member: MemberId) -> Self {
        Self::new(b"sign-up", member, &[])
    }
    /// Member metadata sealed for one table's row (issue 13): a member id,
    /// or a consent's body, bound to the table and the row's own id.
    pub fn metadata(table: &str, row: &[u8]) -> Self {
        let mut v = b"me2b/metadata\0".to_vec();
        v.push(ENVELOPE_VERSION);
        v.extend_from_slice(&(table.len() as u64).to_be_bytes());
        v.extend_from_slice(table.as_bytes());
        v.extend_from_slice(row);
        Self(v)
    }
    /// A secret of the node itself (not a member's), named by `label`.
    pub fn node_secret(label: &str) -> Self {
        let mut v = b"me2b/node-secret\0".to_vec();
        v.push(ENVELOPE_VERSION);
        v.extend_from_slice(label.as_bytes());
        Self(v)
    }
}

/// A 256-bit XChaCha20-Poly1305 key. Zeroed on drop; `Debug` shows nothing.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<secret>)")
    }
}

impl DataKey {
    pub fn generate(rng: &dyn Random) -> Self {
        let mut k = [0u8; 32];
        rng.fill(&mut k);
        Self(k)
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext`: `version ‖ nonce ‖ ciphertext+tag`, nonce random.
    pub fn seal(&self, rng: &dyn Random, aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad.0,
                },
            )
            // Encryption fails only for messages over 256 GiB; the API caps bodies far
            // below that. An empty result would fail authentication on open.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// A keyed digest of `data` under a subkey of this key for `purpose`
    /// (HKDF-SHA256, then HMAC-SHA256): equal data gives an equal digest,
    /// and without the key nobody can test a guess of `data` against it.
    pub fn keyed_digest(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut sub = zeroize::Zeroizing::new([0u8; 32]);
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"me2b/keyed-digest"), &self.0);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        if hk.expand(purpose.as_bytes(), sub.as_mut()).is_err() {
            return [0u8; 32];
        }
        let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(sub.as_ref()) else {
            return [0u8; 32];
        };
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Decrypts what [`seal`](Self::seal) produced, checking the version and `aad`.
    pub fn open(&self, aad: &Aad, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Decrypt)?;
        if version != ENVELOPE_VERSION {
            return Err(CryptoError::UnsupportedVersion(version));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &aad.0,
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;
    use proptest::prelude::*;

    #[test]
    fn a_keyed_digest_is_stable_per_key_and_purpose_only() {
        let rng = SeededRandom::new(8);
        let (k1, k2) = (DataKey::generate(&rng), DataKey::generate(&rng));
        let d = k1.keyed_digest("p", b"region=Utrecht");
        assert_eq!(d, k1.keyed_digest("p", b"region=Utrecht"));
        assert_ne!(d, k1.keyed_digest("p", b"region=Leiden"));
        assert_ne!(d, k1.keyed_digest("q", b"region=Utrecht"));
        assert_ne!(d, k2.keyed_digest("p", b"region=Utrecht"));
        assert_ne!(d, [0u8; 32]);
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let rng = SeededRandom::new(7);
        let key = DataKey::generate(&rng);
        let m = MemberId::generate(&rng);
        let r1 = RecordId::generate(&rng);
        let r2 = RecordId::generate(&rng);
        let sealed = key.seal(&rng, &Aad::record(m, r1), b"oat milk");
        assert_eq!(sealed[0], ENVELOPE_VERSION);
        assert!(!sealed.windows(8).any(|w| w == b"oat milk"));
        assert_eq!(key.open(&Aad::record(m, r1), &sealed).unwrap(), b"oat milk");
        assert!(key.open(&Aad::record(m, r2), &sealed).is_err());
        assert!(key.open(&Aad::email(m), &sealed).is_err());
        let mut downgraded = sealed.clone();
        downgraded[0] = 0;
        assert!(matches!(
            key.open(&Aad::record(m, r1), &downgraded),
            Err(CryptoError::UnsupportedVersion(0))
        ));
        assert!(key.open(&Aad::record(m, r1), &sealed[..10]).is_err());
        assert!(key.open(&Aad::record(m, r1), &[]).is_err());
    }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1: the AEAD as we call it.
    #[test]
    fn xchacha20poly1305_official_vector() {
        let key: [u8; 32] =
            hex::decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .unwrap()
                .try_into()
                .unwrap();
        let nonce = hex::decode("404142434445464748494a4b4c4d4e4f5051525354555657").unwrap();
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let cipher = XChaCha20Poly1305::new((&key).into());
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: pt, aad: &aad })
            .unwrap();
        assert_eq!(
            hex::encode(&ct),
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52ec0875924c1c7987947deafd8780acf49"
        );
    }

    proptest! {
        #[test]
        fn any_single_byte_flip_is_detected(pt in proptest::collection::vec(any::<u8>(), 0..200), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let rng = SeededRandom::new(9);
            let key = DataKey::generate(&rng);
            let m = MemberId::generate(&rng);
            let r = RecordId::generate(&rng);
            let mut sealed = key.seal(&rng, &Aad::record(m, r), &pt);
            let i = pos.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(key.open(&Aad::record(m, r), &sealed).is_err());
        }
    }
}
