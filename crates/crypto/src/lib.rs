//! Key handling and envelope encryption for me2b.
//!
//! * The node's **master key** is 32 random bytes in a `0600` file. Nothing is
//!   encrypted with it directly: HKDF-SHA256 derives purpose-bound keys from it
//!   ([`Keyring`]): the key-encryption key, the e-mail index key, the node's Ed25519
//!   signing key and a key check value that detects a wrong master key at start.
//! * Each member has a random **data key** ([`DataKey`]), held by the member
//!   ([`member_key`]): it is stored only wrapped under keys derived from their
//!   passphrase and their recovery code (Argon2id), and, while they are logged
//!   in, from each session token (HKDF). Nodes before member-held keys wrapped
//!   it under the key-encryption key; that wrap is kept only until the
//!   member's next login ([`Keyring::legacy_unwrap`]). Destroying the wraps
//!   makes every record of that member unreadable.
//! * What a member's consent allows an organisation to read is sealed to that
//!   organisation's API key ([`org_envelope`]).
//! * Every ciphertext carries a format version byte, and its associated data binds
//!   the member id, the object id and that version ([`Aad`]).
//!
//! Only RustCrypto and dalek primitives are used; nothing is hand-rolled.
#![forbid(unsafe_code)]

mod crockford;
mod envelope;
mod keys;
pub mod member_key;
pub mod meta;
mod optout;
pub mod org_envelope;
mod passphrase;
mod random;
mod recovery;
mod rng;
mod token;

pub use envelope::{Aad, DataKey, ENVELOPE_VERSION};
pub use keys::{Keyring, MasterKey, NodeVerifyingKey};
pub use optout::{OptOutCode, OPTOUT_CODE_BITS};
pub use passphrase::{
    default_max_concurrent, ArgonSlot, ArgonStats, PassphraseHasher, PassphraseParams,
};
pub use random::{OsRandom, SeededRandom};
pub use recovery::RecoveryCode;
pub use token::{hash_token, receipt_tag, SecretToken, TokenHash};

/// Errors of key handling and encryption. None carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("cannot read or write the master key file {path}: {source}")]
    KeyFileIo {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the master key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    KeyFilePermissions { path: String, mode: u32 },
    #[error("the master key file {path} is not a me2b master key (expected a `me2b-master-key v1` header and 64 hex digits)")]
    KeyFileFormat { path: String },
    #[error("ciphertext failed authentication: it is corrupted, truncated, or was encrypted under another key or for another object")]
    Decrypt,
    #[error("unsupported ciphertext format version {0}")]
    UnsupportedVersion(u8),
    #[error("passphrase hashing failed: {0}")]
    PassphraseHash(String),
    #[error("signature is not valid")]
    BadSignature,
    #[error("stored {0} is malformed")]
    Malformed(&'static str),
    #[error("this is not a recovery code: check it for a mistyped character (it has 28 characters, in groups of four)")]
    RecoveryCodeMistyped,
    #[error("this is not an opt-out code: check it for a mistyped character (it has 20 characters, in groups of four)")]
    OptOutCodeMistyped,
}
