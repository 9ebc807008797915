use crate::envelope::{Aad, DataKey};
use crate::CryptoError;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use me2b_domain::{MemberId, OrgId, Random};
use sha2::Sha256;
use std::io::Write;
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const KEY_FILE_HEADER: &str = "me2b-master-key v1";

/// The node's master key. Zeroed on drop; `Debug` shows nothing.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<secret>)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn generate(rng: &dyn Random) -> Self {
        let mut k = [0u8; 32];
        rng.fill(&mut k);
        Self(k)
    }

    /// Loads the key file at `path`, or creates it (mode 0600) when absent.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path, rng: &dyn Random) -> Result<(Self, bool), CryptoError> {
        let shown = path.display().to_string();
        let io = |source| CryptoError::KeyFileIo {
            path: shown.clone(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(_) => Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate(rng);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path).map_err(io)?;
                let text = Zeroizing::new(format!("{KEY_FILE_HEADER}\n{}\n", hex::encode(key.0)));
                f.write_all(text.as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok((key, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Loads an existing key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| CryptoError::KeyFileIo {
            path: shown.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CryptoError::KeyFilePermissions { path: shown, mode });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CryptoError::KeyFileIo {
                path: shown.clone(),
                source,
            }
        })?);
        let format = || CryptoError::KeyFileFormat {
            path: shown.clone(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(format());
        }
        let hex_key = lines.next().ok_or_else(format)?.trim();
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_key, &mut key).map_err(|_| format())?;
        Ok(Self(key))
    }
}

/// The node's public verifying key (Ed25519), used to check audit checkpoints and,
/// later, signed receipts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeVerifyingKey(VerifyingKey);

impl NodeVerifyingKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadSignature)?;
        VerifyingKey::from_bytes(&arr)
            .map(Self)
            .map_err(|_| CryptoError::BadSignature)
    }
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// A short id for the key: the first 8 bytes of SHA-256 of the key, in hex.
    pub fn key_id(&self) -> String {
        use sha2::Digest;
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let sig = Signature::from_slice(signature).map_err(|_| CryptoError::BadSignature)?;
        self.0
            .verify(message, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// Keys derived from the master key, each for one purpose.
pub struct Keyring {
    kek: Zeroizing<[u8; 32]>,
    email_index: Zeroizing<[u8; 32]>,
    pseudonym: Zeroizing<[u8; 32]>,
    trust_tag: Zeroizing<[u8; 32]>,
    key_check: [u8; 32],
    signing: SigningKey,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("node_key_id", &self.verifying_key().key_id())
            .finish_non_exhaustive()
    }
}

fn derive(hk: &Hkdf<Sha256>, info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    if hk.expand(info, out.as_mut()).is_err() {
        out.zeroize();
    }
    out
}

impl Keyring {
    pub fn derive(master: &MasterKey) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"me2b/node-keys"), &master.0);
        let kek = derive(&hk, b"me2b/kek/v1");
        let email_index = derive(&hk, b"me2b/email-index/v1");
        let pseudonym = derive(&hk, b"me2b/subject-pseudonym/v1");
        let trust_tag = derive(&hk, b"me2b/trust-tag/v1");
        let key_check = *derive(&hk, b"me2b/key-check/v1");
        let signing_seed = derive(&hk, b"me2b/node-signing/v1");
        let signing = SigningKey::from_bytes(&signing_seed);
        Self {
            kek,
            email_index,
            pseudonym,
            trust_tag,
            key_check,
            signing,
        }
    }

    /// A value stored in the database at first start: if a later start derives a
    /// different one, the master key does not belong to this database.
    pub fn key_check(&self) -> [u8; 32] {
        self.key_check
    }

    /// Compares a stored key check value in constant time.
    pub fn matches_key_check(&self, stored: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        stored.len() == 32 && bool::from(self.key_check.ct_eq(stored))
    }

    /// The pseudonym under which `member` appears to organisation `org` (in consent
    /// records and receipts): stable for that pair, unlinkable across
    /// organisations without the node's key. `sub_` + 128 bits, base64url.
    pub fn subject_pseudonym(&self, org: &OrgId, member: &MemberId) -> String {
        use base64::Engine;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.pseudonym.as_ref())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(org.as_bytes());
        mac.update(member.as_bytes());
        let out = mac.finalize().into_bytes();
        format!(
            "sub_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&out[..16])
        )
    }

    /// Keyed hash of a normalised e-mail address, for lookup without storing it.
    pub fn email_index(&self, email: &me2b_domain::member::Email) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.email_index.as_ref())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(email.as_str().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The trust's grouping key for a pseudonym of one of its own domains
    /// (research, loyalty): a keyed hash, so the stored tag is useless without
    /// the node's key and differs per domain.
    pub fn trust_tag(&self, domain: &str, pseudonym: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.trust_tag.as_ref())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(pseudonym);
        mac.finalize().into_bytes().into()
    }

    /// Seals a secret of the node (e.g. the in-process transcryptors' secrets)
    /// for storage, bound to `label`.
    pub fn seal_node_secret(&self, label: &str, plaintext: &[u8], rng: &dyn Random) -> Vec<u8> {
        let kek = DataKey::from_bytes(*self.kek);
        kek.seal(rng, &Aad::node_secret(label), plaintext)
    }

    /// Opens what [`Keyring::seal_node_secret`] sealed under the same label.
    pub fn open_node_secret(
        &self,
        label: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let kek = DataKey::from_bytes(*self.kek);
        Ok(Zeroizing::new(kek.open(&Aad::node_secret(label), sealed)?))
    }

    /// Wraps a member's data key under the master key, as nodes did before
    /// member-held keys. Only tests of the upgrade make such wraps now.
    pub fn legacy_wrap(&self, member: MemberId, dek: &DataKey, rng: &dyn Random) -> Vec<u8> {
        let kek = DataKey::from_bytes(*self.kek);
        kek.seal(rng, &Aad::wrapped_key(member), dek.expose())
    }

    /// Unwraps a data key wrapped under the master key by an older node: only
    /// at the member's next login (to re-wrap it under keys they hold), and
    /// to warn them before the wrap is retired.
    pub fn legacy_unwrap(&self, member: MemberId, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let kek = DataKey::from_bytes(*self.kek);
        let bytes = Zeroizing::new(kek.open(&Aad::wrapped_key(member), wrapped)?);
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(DataKey::from_bytes(arr))
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signing.sign(message).to_bytes().to_vec()
    }

    pub fn verifying_key(&self) -> NodeVerifyingKey {
        NodeVerifyingKey(self.signing.verifying_key())
    }
}

// HMAC accepts keys of any length; this is unreachable.
#[allow(clippy::panic)]
fn unreachable_hmac() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 rejected a 32-byte key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;
    use me2b_domain::member::Email;

    #[test]
    fn key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let rng = SeededRandom::new(1);
        let (k1, created) = MasterKey::load_or_create(&path, &rng).unwrap();
        assert!(created);
        let (k2, created) = MasterKey::load_or_create(&path, &rng).unwrap();
        assert!(!created);
        assert_eq!(k1.0, k2.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                MasterKey::load(&path),
                Err(CryptoError::KeyFilePermissions { .. })
            ));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(
            MasterKey::load(&path),
            Err(CryptoError::KeyFileFormat { .. })
        ));
        assert!(!format!("{k1:?}").contains(&hex::encode(k1.0)));
    }

    #[test]
    fn different_master_keys_give_different_keyrings() {
        let rng = SeededRandom::new(2);
        let a = Keyring::derive(&MasterKey::generate(&rng));
        let b = Keyring::derive(&MasterKey::generate(&rng));
        assert!(a.matches_key_check(&a.key_check()));
        assert!(!b.matches_key_check(&a.key_check()));
        let email = Email::parse("alice@example.org").unwrap();
        assert_ne!(a.email_index(&email), b.email_index(&email));
        let m = MemberId::generate(&rng);
        let (o1, o2) = (OrgId::generate(&rng), OrgId::generate(&rng));
        assert_eq!(a.subject_pseudonym(&o1, &m), a.subject_pseudonym(&o1, &m));
        assert_ne!(a.subject_pseudonym(&o1, &m), a.subject_pseudonym(&o2, &m));
        assert_ne!(a.subject_pseudonym(&o1, &m), b.subject_pseudonym(&o1, &m));
        assert_eq!(a.email_index(&email), a.email_index(&email));
    }

    #[test]
    fn wrapped_keys_are_bound_to_member_and_kek() {
        let rng = SeededRandom::new(3);
        let ring = Keyring::derive(&MasterKey::generate(&rng));
        let other = Keyring::derive(&MasterKey::generate(&rng));
        let m1 = MemberId::generate(&rng);
        let m2 = MemberId::generate(&rng);
        let dek = DataKey::generate(&rng);
        let wrapped = ring.legacy_wrap(m1, &dek, &rng);
        assert_eq!(
            ring.legacy_unwrap(m1, &wrapped).unwrap().expose(),
            dek.expose()
        );
        assert!(ring.legacy_unwrap(m2, &wrapped).is_err());
        assert!(other.legacy_unwrap(m1, &wrapped).is_err());
    }

    #[test]
    fn signatures_verify_and_detect_tampering() {
        let rng = SeededRandom::new(4);
        let ring = Keyring::derive(&MasterKey::generate(&rng));
        let sig = ring.sign(b"checkpoint");
        let vk = ring.verifying_key();
        assert!(vk.verify(b"checkpoint", &sig).is_ok());
        assert!(vk.verify(b"checkpoinT", &sig).is_err());
        let vk2 = NodeVerifyingKey::from_bytes(&vk.to_bytes()).unwrap();
        assert_eq!(vk2.key_id(), vk.key_id());
    }

    /// RFC 8032 section 7.1, test 1: the dalek signer as we call it.
    #[test]
    fn ed25519_rfc8032_vector() {
        let sk: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let key = SigningKey::from_bytes(&sk);
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.sign(b"").to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}
