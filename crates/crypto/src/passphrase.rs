use crate::CryptoError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use me2b_domain::Random;
use zeroize::Zeroizing;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassphraseParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl PassphraseParams {
    /// OWASP's recommended Argon2id setting: 19 MiB, 2 iterations, 1 lane.
    pub const RECOMMENDED: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
    /// The smallest parameters Argon2 accepts: for tests only.
    pub const INSECURE_FAST_FOR_TESTS: Self = Self {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

/// Hashes and verifies passphrases with Argon2id (PHC string format, which records
/// the algorithm, version, parameters and salt, so parameters can change later).
/// These calls take tens of milliseconds: callers run them off the async executor.
#[derive(Clone, Debug)]
pub struct PassphraseHasher {
    params: PassphraseParams,
    /// A hash of a random passphrase, verified against when an account does not
    /// exist, so that a failed login takes as long either way.
    dummy: String,
}

impl PassphraseHasher {
    pub fn new(params: PassphraseParams, rng: &dyn Random) -> Result<Self, CryptoError> {
        let mut h = Self {
            params,
            dummy: String::new(),
        };
        let mut junk = [0u8; 24];
        rng.fill(&mut junk);
        h.dummy = h.hash(&hex::encode(junk), rng)?;
        Ok(h)
    }

    fn argon(&self) -> Result<Argon2<'static>, CryptoError> {
        let p = Params::new(
            self.params.memory_kib,
            self.params.iterations,
            self.params.parallelism,
            None,
        )
        .map_err(|e| CryptoError::PassphraseHash(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }

    pub fn hash(&self, passphrase: &str, rng: &dyn Random) -> Result<String, CryptoError> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| CryptoError::PassphraseHash(e.to_string()))?;
        self.argon()?
            .hash_password(passphrase.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CryptoError::PassphraseHash(e.to_string()))
    }

    /// The parameters new hashes and keys are made with.
    pub fn params(&self) -> PassphraseParams {
        self.params
    }

    /// Argon2id over `secret` with `salt` and `params`: 32 bytes of key
    /// material, from which member-held keys are derived (never stored).
    /// `params` are those recorded with a stored wrap, so parameters can
    /// change later without making older wraps unreadable.
    pub fn derive_key(
        &self,
        secret: &[u8],
        salt: &[u8; 16],
        params: PassphraseParams,
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|e| CryptoError::PassphraseHash(e.to_string()))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
            .hash_password_into(secret, salt, out.as_mut())
            .map_err(|e| CryptoError::PassphraseHash(e.to_string()))?;
        Ok(out)
    }

    /// True when `passphrase` matches `phc`. With `phc` = None, verifies against a
    /// dummy hash (same cost) and returns false.
    pub fn verify(&self, passphrase: &str, phc: Option<&str>) -> bool {
        let target = phc.unwrap_or(&self.dummy);
        let Ok(parsed) = PasswordHash::new(target) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(passphrase.as_bytes(), &parsed)
            .is_ok();
        ok && phc.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    #[test]
    fn hash_and_verify() {
        let rng = SeededRandom::new(5);
        let h = PassphraseHasher::new(PassphraseParams::INSECURE_FAST_FOR_TESTS, &rng).unwrap();
        let phc = h.hash("correct horse battery", &rng).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(h.verify("correct horse battery", Some(&phc)));
        assert!(!h.verify("wrong horse battery", Some(&phc)));
        assert!(!h.verify("correct horse battery", None));
        assert!(!h.verify("x", Some("not a phc string")));
    }

    /// RFC 9106 section 5.3 (Argon2id) vector, through the argon2 crate we use.
    #[test]
    fn argon2id_rfc9106_vector() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(argon2::AssociatedData::new(&[4u8; 12]).unwrap())
            .build()
            .unwrap();
        let argon = Argon2::new_with_secret(&[3u8; 8], Algorithm::Argon2id, Version::V0x13, params)
            .unwrap();
        let mut out = [0u8; 32];
        argon
            .hash_password_into(&[1u8; 32], &[2u8; 16], &mut out)
            .unwrap();
        assert_eq!(
            hex::encode(out),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }
}
