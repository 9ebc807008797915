//! BBS signatures behind the project's own small trait.
//!
//! Ciphersuite: `BBS_BLS12381G1_XMD:SHA-256_SSWU_RO_H2G_HM2S_` of the IETF CFRG
//! draft *The BBS Signature Scheme* (the version whose fixtures are in
//! `tests/fixtures/bbs-bls12-381-sha-256/`).
//!
//! The implementation, [`RawZkryptiumBbs`], calls zkryptium's own
//! `sign`/`verify`/`proof_gen`/`proof_verify` and nothing else: the scheme's steps
//! are zkryptium's, never ours ("never a cryptographic primitive by hand").
//!
//! Known limits of zkryptium 0.8.0 (the latest): it recomputes the generators
//! inside every call (the project stays on it without a generator cache, which
//! would mean writing the scheme's core steps here); and its `proof_gen` draws
//! its blinding scalars from its own `thread_rng` (an OS-seeded CSPRNG), so the
//! `rng` argument of [`Bbs::proof_gen`] is not used by it.
//!
//! Byte types ([`BbsPublicKey`], [`BbsSignature`], [`BbsProof`]) are validated when
//! they are built ("parse, don't validate"), so that no byte string can reach a code
//! path of the library that would panic on it.

mod raw;

pub use raw::RawZkryptiumBbs;

use crate::CredentialError;
use bls12_381_plus::ff::Field;
use bls12_381_plus::{G1Affine, G1Projective, G2Affine, Scalar};
use me2b_domain::Random;
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// The ciphersuite identifier of the IETF draft.
pub const CIPHERSUITE_ID: &str = "BBS_BLS12381G1_XMD:SHA-256_SSWU_RO_";
/// The largest number of messages signed or proven by one call. The credential
/// schema uses far fewer; the bound keeps an attacker-chosen proof length from
/// making a verifier compute (and cache) arbitrarily many generators.
pub const MAX_MESSAGES: usize = 128;
/// Bytes of a compressed G1 point.
pub const G1_BYTES: usize = 48;
/// Bytes of a compressed G2 point (a public key).
pub const PUBLIC_KEY_BYTES: usize = 96;
/// Bytes of a scalar.
pub const SCALAR_BYTES: usize = 32;
/// Bytes of a signature: a G1 point and a scalar.
pub const SIGNATURE_BYTES: usize = G1_BYTES + SCALAR_BYTES;
/// Bytes of a proof that hides no message: 3 points and 4 scalars.
pub const PROOF_MIN_BYTES: usize = 3 * G1_BYTES + 4 * SCALAR_BYTES;

/// The BBS implementation the project uses.
pub fn default_bbs() -> &'static RawZkryptiumBbs {
    static BBS: RawZkryptiumBbs = RawZkryptiumBbs;
    &BBS
}

/// A BBS signature scheme (one ciphersuite). Headers and presentation headers are
/// byte strings; an empty one is the draft's "absent" header.
pub trait Bbs: Send + Sync + fmt::Debug {
    /// The ciphersuite identifier, e.g. [`CIPHERSUITE_ID`].
    fn ciphersuite_id(&self) -> &'static str;

    /// KeyGen: derives a secret key from at least 32 bytes of key material.
    /// `key_dst` defaults to the ciphersuite's `api_id || "KEYGEN_DST_"`.
    fn key_gen(
        &self,
        key_material: &[u8],
        key_info: &[u8],
        key_dst: Option<&[u8]>,
    ) -> Result<BbsSecretKey, CredentialError>;

    /// A fresh secret key from 32 random bytes of `rng`.
    fn key_gen_random(&self, rng: &dyn Random) -> Result<BbsSecretKey, CredentialError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill(&mut ikm[..]);
        self.key_gen(&ikm[..], b"", None)
    }

    /// SkToPk.
    fn public_key(&self, sk: &BbsSecretKey) -> Result<BbsPublicKey, CredentialError>;

    /// Sign: one signature over the ordered `messages`, bound to `header`.
    fn sign(
        &self,
        sk: &BbsSecretKey,
        pk: &BbsPublicKey,
        header: &[u8],
        messages: &[&[u8]],
    ) -> Result<BbsSignature, CredentialError>;

    /// Verify: `Ok(())` if `signature` signs exactly `messages` under `pk` and `header`.
    fn verify(
        &self,
        pk: &BbsPublicKey,
        signature: &BbsSignature,
        header: &[u8],
        messages: &[&[u8]],
    ) -> Result<(), CredentialError>;

    /// ProofGen: a zero-knowledge proof of a signature that discloses the messages
    /// at `disclosed_indexes` (strictly increasing) and hides the others, bound to
    /// the presentation header `ph`.
    #[allow(clippy::too_many_arguments)]
    fn proof_gen(
        &self,
        pk: &BbsPublicKey,
        signature: &BbsSignature,
        header: &[u8],
        ph: &[u8],
        messages: &[&[u8]],
        disclosed_indexes: &[usize],
        rng: &dyn Random,
    ) -> Result<BbsProof, CredentialError>;

    /// ProofVerify: `disclosed` holds (index, message) pairs in strictly increasing
    /// index order. The total number of messages is taken from the proof.
    fn proof_verify(
        &self,
        pk: &BbsPublicKey,
        proof: &BbsProof,
        header: &[u8],
        ph: &[u8],
        disclosed: &[(usize, &[u8])],
    ) -> Result<(), CredentialError>;

    /// `count` generators `(Q_1, H_1, …)` and the base point `P1`.
    fn generators(&self, count: usize) -> Result<BbsGenerators, CredentialError>;

    /// hash_to_scalar(msg, dst), big-endian.
    fn hash_to_scalar(&self, msg: &[u8], dst: &[u8]) -> Result<[u8; 32], CredentialError>;

    /// MapMessageToScalarAsHash with the ciphersuite's `api_id`, big-endian.
    fn map_message_to_scalar(&self, msg: &[u8]) -> Result<[u8; 32], CredentialError>;
}

/// Generators in compressed form: the base point `P1` and `(Q_1, H_1, …, H_L)`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BbsGenerators {
    pub p1: [u8; G1_BYTES],
    pub generators: Vec<[u8; G1_BYTES]>,
}

/// A BBS secret key: a non-zero scalar, zeroized on drop, never printed.
pub struct BbsSecretKey(Zeroizing<[u8; SCALAR_BYTES]>);

impl BbsSecretKey {
    /// Parses 32 big-endian bytes (e.g. after unsealing the key at rest).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CredentialError> {
        let arr: [u8; SCALAR_BYTES] = bytes
            .try_into()
            .map_err(|_| CredentialError::InvalidSecretKey)?;
        let arr = Zeroizing::new(arr);
        let mut s = parse_scalar(&arr[..]).ok_or(CredentialError::InvalidSecretKey)?;
        let zero = bool::from(s.is_zero());
        s.zeroize();
        if zero {
            return Err(CredentialError::InvalidSecretKey);
        }
        Ok(Self(arr))
    }

    /// The 32 bytes, for sealing at rest. Zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_BYTES]> {
        Zeroizing::new(*self.0)
    }
}

impl fmt::Debug for BbsSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BbsSecretKey(<redacted>)")
    }
}

/// A BBS public key: a compressed G2 point, checked to be in the subgroup and not
/// the identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BbsPublicKey([u8; PUBLIC_KEY_BYTES]);

impl BbsPublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CredentialError> {
        let arr: [u8; PUBLIC_KEY_BYTES] = bytes
            .try_into()
            .map_err(|_| CredentialError::InvalidPublicKey)?;
        let point = Option::<G2Affine>::from(G2Affine::from_compressed(&arr))
            .ok_or(CredentialError::InvalidPublicKey)?;
        if bool::from(point.is_identity()) {
            return Err(CredentialError::InvalidPublicKey);
        }
        Ok(Self(arr))
    }

    pub fn from_hex(s: &str) -> Result<Self, CredentialError> {
        let bytes = hex::decode(s).map_err(|_| CredentialError::InvalidPublicKey)?;
        Self::from_bytes(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_BYTES] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for BbsPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BbsPublicKey({})", self.to_hex())
    }
}

impl serde::Serialize for BbsPublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for BbsPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).map_err(|_| serde::de::Error::custom("invalid BBS public key"))
    }
}

/// A BBS signature `(A, e)`: `A` a G1 point other than the identity, `e` a non-zero
/// canonical scalar. The member keeps it secret: it is a correlation handle, which
/// is why presentations carry a proof instead. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct BbsSignature([u8; SIGNATURE_BYTES]);

impl BbsSignature {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CredentialError> {
        let arr: [u8; SIGNATURE_BYTES] = bytes
            .try_into()
            .map_err(|_| CredentialError::MalformedSignature)?;
        parse_g1(&arr[..G1_BYTES]).ok_or(CredentialError::MalformedSignature)?;
        parse_nonzero_scalar(&arr[G1_BYTES..]).ok_or(CredentialError::MalformedSignature)?;
        Ok(Self(arr))
    }

    pub fn as_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.0
    }
}

impl fmt::Debug for BbsSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BbsSignature(<80 bytes>)")
    }
}

/// A BBS proof: `(Abar, Bbar, D, ê, r̂1, r̂3, m̂_1 … m̂_U, c)`, each point a valid G1
/// point other than the identity, each scalar canonical and non-zero (as the
/// draft's `octets_to_proof` requires).
#[derive(Clone, PartialEq, Eq)]
pub struct BbsProof(Vec<u8>);

impl BbsProof {
    /// Shorter than the fixed part, or ending inside a scalar: [`CredentialError::TruncatedProof`];
    /// an invalid point or scalar: [`CredentialError::MalformedProof`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CredentialError> {
        if bytes.len() < PROOF_MIN_BYTES
            || !(bytes.len() - PROOF_MIN_BYTES).is_multiple_of(SCALAR_BYTES)
        {
            return Err(CredentialError::TruncatedProof);
        }
        if (bytes.len() - PROOF_MIN_BYTES) / SCALAR_BYTES > MAX_MESSAGES {
            return Err(CredentialError::MalformedProof("too many hidden messages"));
        }
        for i in 0..3 {
            parse_g1(&bytes[i * G1_BYTES..(i + 1) * G1_BYTES])
                .ok_or(CredentialError::MalformedProof("invalid point"))?;
        }
        for chunk in bytes[3 * G1_BYTES..].chunks(SCALAR_BYTES) {
            parse_nonzero_scalar(chunk).ok_or(CredentialError::MalformedProof("invalid scalar"))?;
        }
        Ok(Self(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// U: how many messages the proof keeps hidden.
    pub fn undisclosed_count(&self) -> usize {
        (self.0.len() - PROOF_MIN_BYTES) / SCALAR_BYTES
    }

    /// The proof's byte length when it hides `undisclosed` messages.
    pub fn expected_len(undisclosed: usize) -> usize {
        PROOF_MIN_BYTES + undisclosed * SCALAR_BYTES
    }
}

impl fmt::Debug for BbsProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BbsProof(<{} bytes>)", self.0.len())
    }
}

/// A compressed G1 point in the subgroup, not the identity.
pub(crate) fn parse_g1(bytes: &[u8]) -> Option<G1Projective> {
    let arr: [u8; G1_BYTES] = bytes.try_into().ok()?;
    let p = Option::<G1Affine>::from(G1Affine::from_compressed(&arr))?;
    if bool::from(p.is_identity()) {
        return None;
    }
    Some(G1Projective::from(p))
}

/// A canonical big-endian scalar (`< r`).
pub(crate) fn parse_scalar(bytes: &[u8]) -> Option<Scalar> {
    let arr: [u8; SCALAR_BYTES] = bytes.try_into().ok()?;
    Option::<Scalar>::from(Scalar::from_be_bytes(&arr))
}

/// A canonical big-endian scalar other than zero.
pub(crate) fn parse_nonzero_scalar(bytes: &[u8]) -> Option<Scalar> {
    let s = parse_scalar(bytes)?;
    if bool::from(s.is_zero()) {
        return None;
    }
    Some(s)
}

/// Checks disclosed indexes against the message count `l`: strictly increasing and
/// in range.
pub(crate) fn check_disclosed_indexes(indexes: &[usize], l: usize) -> Result<(), CredentialError> {
    if l == 0 {
        return Err(CredentialError::InvalidDisclosure("no messages"));
    }
    if l > MAX_MESSAGES {
        return Err(CredentialError::TooManyMessages);
    }
    let mut previous: Option<usize> = None;
    for &i in indexes {
        if i >= l {
            return Err(CredentialError::InvalidDisclosure("index out of range"));
        }
        if previous.is_some_and(|p| i <= p) {
            return Err(CredentialError::InvalidDisclosure(
                "indexes must be strictly increasing",
            ));
        }
        previous = Some(i);
    }
    Ok(())
}

/// The message count a proof was made for (`U + R`), checked.
pub(crate) fn proof_message_count(
    proof: &BbsProof,
    disclosed: &[(usize, &[u8])],
) -> Result<usize, CredentialError> {
    let l = proof.undisclosed_count() + disclosed.len();
    let indexes: Vec<usize> = disclosed.iter().map(|(i, _)| *i).collect();
    check_disclosed_indexes(&indexes, l)?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_debug_is_redacted_and_zero_is_refused() {
        let mut bytes = [0u8; 32];
        assert_eq!(
            BbsSecretKey::from_bytes(&bytes).unwrap_err(),
            CredentialError::InvalidSecretKey
        );
        bytes[31] = 7;
        let sk = BbsSecretKey::from_bytes(&bytes).unwrap();
        assert_eq!(format!("{sk:?}"), "BbsSecretKey(<redacted>)");
        assert_eq!(*sk.to_bytes(), bytes);
        // Not canonical (>= r).
        assert!(BbsSecretKey::from_bytes(&[0xff; 32]).is_err());
        assert!(BbsSecretKey::from_bytes(&[1; 31]).is_err());
    }

    #[test]
    fn byte_types_refuse_bad_lengths_and_points() {
        assert_eq!(
            BbsPublicKey::from_bytes(&[0u8; 95]).unwrap_err(),
            CredentialError::InvalidPublicKey
        );
        // The identity's compressed encoding.
        let mut identity = [0u8; 96];
        identity[0] = 0xc0;
        assert!(BbsPublicKey::from_bytes(&identity).is_err());
        assert_eq!(
            BbsSignature::from_bytes(&[0u8; 79]).unwrap_err(),
            CredentialError::MalformedSignature
        );
        assert_eq!(
            BbsProof::from_bytes(&[0u8; 271]).unwrap_err(),
            CredentialError::TruncatedProof
        );
        assert_eq!(
            BbsProof::from_bytes(&[0u8; 273]).unwrap_err(),
            CredentialError::TruncatedProof
        );
        assert!(matches!(
            BbsProof::from_bytes(&[0u8; 272]).unwrap_err(),
            CredentialError::MalformedProof(_)
        ));
    }

    #[test]
    fn disclosed_indexes_are_checked() {
        assert!(check_disclosed_indexes(&[0, 2, 4], 5).is_ok());
        assert!(check_disclosed_indexes(&[], 5).is_ok());
        assert!(check_disclosed_indexes(&[4, 2], 5).is_err());
        assert!(check_disclosed_indexes(&[2, 2], 5).is_err());
        assert!(check_disclosed_indexes(&[5], 5).is_err());
        assert!(check_disclosed_indexes(&[], 0).is_err());
        assert_eq!(
            check_disclosed_indexes(&[], MAX_MESSAGES + 1).unwrap_err(),
            CredentialError::TooManyMessages
        );
    }
}
