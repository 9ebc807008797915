//! Member-held keys: a member's data key wrapped under keys only the member
//! holds, so that the database and the master key together open nothing of a
//! member who is not logged in.
//!
//! * **Secret wraps** (passphrase, recovery code): Argon2id (through the
//!   [`PassphraseHasher`], so its limits apply) over the secret and a random
//!   salt gives 32 bytes; HKDF-SHA256 turns them into an X25519 secret key.
//!   The data key is sealed to its public key (a libsodium sealed box:
//!   X25519, XSalsa20-Poly1305). Wrapping needs only the public half (the
//!   [`WrapLock`]): a sign-up keeps the lock made from the passphrase and
//!   wraps the data key made at confirmation without ever storing anything
//!   that opens it. Unwrapping needs the secret.
//! * **Token wraps** (a session, a pending sign-up): HKDF-SHA256 over the
//!   bearer token gives an XChaCha20-Poly1305 key. The database keeps only the
//!   token's SHA-256, from which this key cannot be computed.
//!
//! Stored bytes start with a format version; the wrapped plaintext names the
//! member, so a wrap moved to another member does not open.

use crate::envelope::{Aad, DataKey};
use crate::rng::RngAdapter;
use crate::{ArgonSlot, CryptoError, PassphraseHasher, PassphraseParams};
use hkdf::Hkdf;
use me2b_domain::{MemberId, Random};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Format version of a stored secret wrap.
pub const WRAP_VERSION: u8 = 1;
const HEADER_LEN: usize = 2 + 12 + 16 + 32;
const DEK_LABEL: &[u8] = b"me2b/data-key/v1";

/// Which secret a wrap opens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapKind {
    Passphrase,
    RecoveryCode,
}

impl WrapKind {
    fn byte(self) -> u8 {
        match self {
            WrapKind::Passphrase => 1,
            WrapKind::RecoveryCode => 2,
        }
    }
    fn info(self) -> &'static [u8] {
        match self {
            WrapKind::Passphrase => b"me2b/member-wrap/passphrase/v1",
            WrapKind::RecoveryCode => b"me2b/member-wrap/recovery-code/v1",
        }
    }
}

/// The public half of a secret wrap: Argon2id parameters, salt and the X25519
/// public key derived from the secret. Anyone holding it can wrap a data key
/// for the secret; only the secret unwraps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrapLock {
    kind: WrapKind,
    params: PassphraseParams,
    salt: [u8; 16],
    public: [u8; 32],
}

fn secret_key(
    hasher: &PassphraseHasher,
    slot: &ArgonSlot,
    kind: WrapKind,
    secret: &str,
    salt: &[u8; 16],
    params: PassphraseParams,
) -> Result<crypto_box::SecretKey, CryptoError> {
    let stretched = hasher.derive_key(slot, secret.as_bytes(), salt, params)?;
    let hk = Hkdf::<Sha256>::new(Some(b"me2b/member-wrap"), stretched.as_ref());
    let mut sk = Zeroizing::new([0u8; 32]);
    hk.expand(kind.info(), sk.as_mut())
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(crypto_box::SecretKey::from(*sk))
}

impl WrapLock {
    /// Runs Argon2id over `secret` with a fresh salt and the hasher's current
    /// parameters (tens of milliseconds: it needs a slot, so it runs inside
    /// [`PassphraseHasher::run`], within the bound).
    pub fn derive(
        hasher: &PassphraseHasher,
        slot: &ArgonSlot,
        kind: WrapKind,
        secret: &str,
        rng: &dyn Random,
    ) -> Result<Self, CryptoError> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        let params = hasher.params();
        let sk = secret_key(hasher, slot, kind, secret, &salt, params)?;
        Ok(Self {
            kind,
            params,
            salt,
            public: sk.public_key().to_bytes(),
        })
    }

    pub fn kind(&self) -> WrapKind {
        self.kind
    }

    /// `version ‖ kind ‖ m, t, p (u32 BE) ‖ salt[16] ‖ X25519 public key[32]`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.push(WRAP_VERSION);
        out.push(self.kind.byte());
        out.extend_from_slice(&self.params.memory_kib.to_be_bytes());
        out.extend_from_slice(&self.params.iterations.to_be_bytes());
        out.extend_from_slice(&self.params.parallelism.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.public);
        out
    }

    /// Parses a lock (or the head of a wrap) of the expected kind.
    pub fn parse(bytes: &[u8], kind: WrapKind) -> Result<Self, CryptoError> {
        let bad = || CryptoError::Malformed("wrapped data key");
        let head = bytes.get(..HEADER_LEN).ok_or_else(bad)?;
        if head[0] != WRAP_VERSION {
            return Err(CryptoError::UnsupportedVersion(head[0]));
        }
        if head[1] != kind.byte() {
            return Err(bad());
        }
        let u = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let params = PassphraseParams {
            memory_kib: u(2),
            iterations: u(6),
            parallelism: u(10),
        };
        // Bounds, so that a tampered row cannot make a login run for minutes.
        if params.memory_kib > 4 * 1024 * 1024 || params.iterations > 64 || params.parallelism > 64
        {
            return Err(bad());
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&head[14..30]);
        let mut public = [0u8; 32];
        public.copy_from_slice(&head[30..62]);
        Ok(Self {
            kind,
            params,
            salt,
            public,
        })
    }

    /// Wraps `member`'s data key for this lock's secret: the lock's bytes,
    /// then a sealed box of the member id and the key.
    pub fn wrap(&self, member: MemberId, dek: &DataKey, rng: &dyn Random) -> Vec<u8> {
        let mut plain = Zeroizing::new(Vec::with_capacity(DEK_LABEL.len() + 48));
        plain.extend_from_slice(DEK_LABEL);
        plain.extend_from_slice(member.as_bytes());
        plain.extend_from_slice(dek.expose());
        let pk = crypto_box::PublicKey::from(self.public);
        // Sealing fails only for messages past the cipher's limit (GiBs).
        let sealed = pk.seal(&mut RngAdapter(rng), &plain).unwrap_or_default();
        let mut out = self.to_bytes();
        out.extend_from_slice(&sealed);
        out
    }
}

/// Opens a secret wrap with the member's secret (runs Argon2id with the
/// parameters stored in the wrap). A wrong secret, another member's wrap or
/// a damaged one all fail as [`CryptoError::Decrypt`].
pub fn unwrap_with_secret(
    hasher: &PassphraseHasher,
    slot: &ArgonSlot,
    kind: WrapKind,
    member: MemberId,
    secret: &str,
    wrapped: &[u8],
) -> Result<DataKey, CryptoError> {
    let lock = WrapLock::parse(wrapped, kind)?;
    let sk = secret_key(hasher, slot, kind, secret, &lock.salt, lock.params)?;
    let plain = Zeroizing::new(
        sk.unseal(&wrapped[HEADER_LEN..])
            .map_err(|_| CryptoError::Decrypt)?,
    );
    let rest = plain.strip_prefix(DEK_LABEL).ok_or(CryptoError::Decrypt)?;
    let (id, key) = rest.split_at_checked(16).ok_or(CryptoError::Decrypt)?;
    if id != member.as_bytes() {
        return Err(CryptoError::Decrypt);
    }
    let arr: [u8; 32] = key.try_into().map_err(|_| CryptoError::Decrypt)?;
    Ok(DataKey::from_bytes(arr))
}

/// The same Argon2id work as [`unwrap_with_secret`] with the hasher's current
/// parameters, for an account that does not exist: a failed attempt takes as
/// long either way.
pub fn burn_secret(hasher: &PassphraseHasher, slot: &ArgonSlot, secret: &str) {
    let _ = hasher.derive_key(slot, secret.as_bytes(), &[0u8; 16], hasher.params());
}

/// What a bearer token wraps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// A login session: the member's data key.
    Session,
    /// A sign-up waiting for confirmation: its e-mail address.
    SignUp,
}

impl TokenPurpose {
    fn info(self) -> &'static [u8] {
        match self {
            TokenPurpose::Session => b"me2b/token-wrap/session/v1",
            TokenPurpose::SignUp => b"me2b/token-wrap/sign-up/v1",
        }
    }
    fn aad(self, member: MemberId) -> Aad {
        match self {
            TokenPurpose::Session => Aad::session_key(member),
            TokenPurpose::SignUp => Aad::sign_up(member),
        }
    }
}

/// The key a token wraps under: HKDF-SHA256 over the token. The stored
/// SHA-256 of the token is a different function of it and gives nothing.
fn token_key(purpose: TokenPurpose, token: &str) -> DataKey {
    let hk = Hkdf::<Sha256>::new(Some(b"me2b/token-wrap"), token.as_bytes());
    let mut k = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF's limit; expand cannot fail.
    let _ = hk.expand(purpose.info(), k.as_mut());
    DataKey::from_bytes(*k)
}

/// Seals `plaintext` for `member` under a key derived from `token`.
pub fn wrap_under_token(
    purpose: TokenPurpose,
    token: &str,
    member: MemberId,
    plaintext: &[u8],
    rng: &dyn Random,
) -> Vec<u8> {
    token_key(purpose, token).seal(rng, &purpose.aad(member), plaintext)
}

/// Opens what [`wrap_under_token`] sealed.
pub fn unwrap_under_token(
    purpose: TokenPurpose,
    token: &str,
    member: MemberId,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    Ok(Zeroizing::new(
        token_key(purpose, token).open(&purpose.aad(member), sealed)?,
    ))
}

/// The member's data key, wrapped for a session token.
pub fn wrap_for_session(token: &str, member: MemberId, dek: &DataKey, rng: &dyn Random) -> Vec<u8> {
    wrap_under_token(TokenPurpose::Session, token, member, dek.expose(), rng)
}

/// The member's data key from a session's wrap and its token.
pub fn unwrap_for_session(
    token: &str,
    member: MemberId,
    wrapped: &[u8],
) -> Result<DataKey, CryptoError> {
    let plain = unwrap_under_token(TokenPurpose::Session, token, member, wrapped)?;
    let arr: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(DataKey::from_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hash_token, SecretToken, SeededRandom};

    fn hasher(rng: &SeededRandom) -> PassphraseHasher {
        PassphraseHasher::new(PassphraseParams::INSECURE_FAST_FOR_TESTS, rng).unwrap()
    }

    #[tokio::test]
    async fn secret_wraps_open_with_the_secret_only() {
        let h = hasher(&SeededRandom::new(10));
        h.run(secret_wraps_in).await.unwrap();
    }

    fn secret_wraps_in(h: &PassphraseHasher, slot: &ArgonSlot) {
        let rng = SeededRandom::new(11);
        let m = MemberId::generate(&rng);
        let other = MemberId::generate(&rng);
        let dek = DataKey::generate(&rng);
        let lock =
            WrapLock::derive(h, slot, WrapKind::Passphrase, "correct horse battery", &rng).unwrap();
        let parsed = WrapLock::parse(&lock.to_bytes(), WrapKind::Passphrase).unwrap();
        assert_eq!(parsed, lock);
        let w = parsed.wrap(m, &dek, &rng);
        assert_eq!(w[0], WRAP_VERSION);
        let k = unwrap_with_secret(
            h,
            slot,
            WrapKind::Passphrase,
            m,
            "correct horse battery",
            &w,
        )
        .unwrap();
        assert_eq!(k.expose(), dek.expose());
        for bad in [
            unwrap_with_secret(h, slot, WrapKind::Passphrase, m, "wrong horse battery", &w),
            unwrap_with_secret(
                h,
                slot,
                WrapKind::Passphrase,
                other,
                "correct horse battery",
                &w,
            ),
            unwrap_with_secret(
                h,
                slot,
                WrapKind::RecoveryCode,
                m,
                "correct horse battery",
                &w,
            ),
            unwrap_with_secret(
                h,
                slot,
                WrapKind::Passphrase,
                m,
                "correct horse battery",
                &w[..70],
            ),
        ] {
            assert!(bad.is_err());
        }
        let mut flipped = w.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(unwrap_with_secret(
            h,
            slot,
            WrapKind::Passphrase,
            m,
            "correct horse battery",
            &flipped
        )
        .is_err());
        let mut v0 = w.clone();
        v0[0] = 0;
        assert!(matches!(
            unwrap_with_secret(
                h,
                slot,
                WrapKind::Passphrase,
                m,
                "correct horse battery",
                &v0
            ),
            Err(CryptoError::UnsupportedVersion(0))
        ));
    }

    #[test]
    fn a_session_wrap_needs_the_token_not_its_stored_hash() {
        let rng = SeededRandom::new(12);
        let m = MemberId::generate(&rng);
        let dek = DataKey::generate(&rng);
        let t = SecretToken::generate("me2b_s_", &rng);
        let w = wrap_for_session(t.expose(), m, &dek, &rng);
        assert_eq!(
            unwrap_for_session(t.expose(), m, &w).unwrap().expose(),
            dek.expose()
        );
        // What the database holds: the token's SHA-256, as bytes or as hex.
        let h = hash_token(t.expose());
        assert!(unwrap_for_session(&hex::encode(h), m, &w).is_err());
        assert!(unwrap_for_session(&String::from_utf8_lossy(&h), m, &w).is_err());
        assert!(unwrap_for_session(t.expose(), MemberId::generate(&rng), &w).is_err());
        let sealed = wrap_under_token(TokenPurpose::SignUp, t.expose(), m, b"x", &rng);
        assert!(unwrap_under_token(TokenPurpose::Session, t.expose(), m, &sealed).is_err());
    }
}
