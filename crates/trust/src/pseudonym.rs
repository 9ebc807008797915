//! Polymorphic pseudonyms with libpep: one pseudonymisation domain per co-op
//! plus the trust's research domain, distributed transcryptors, and an access
//! rule per (from-domain, to-domain) pair.
//!
//! Enrolment: a member's pseudonym starts as a uniformly random libpep
//! `Pseudonym` (never an encoding of an id), encrypted to the federation's
//! global key and kept as a ciphertext that lives in the [`ORIGIN`] domain,
//! which no one can decrypt (the global secret key is discarded at setup).
//! Every transcryptor of the set applies its own factors in turn; all are needed
//! and none alone can link domains. A co-op decrypts only its own domain's
//! pseudonym, with session keys combined from every transcryptor's share.
//!
//! Not built yet: the transcryptor as a separate process (`me2b transcryptor`),
//! persisted secrets and the audit of each request. See `RESEARCH.md`.

use crate::TrustError;
use libpep::keys::distribution::{
    make_distributed_global_keys, BlindedGlobalSecretKeys, BlindingFactor, SessionKeyShares,
};
use libpep::keys::PseudonymSessionPublicKey;
use libpep::prelude::*;
use std::collections::BTreeSet;

/// The domain enrolment pseudonyms live in. Nothing is ever transcrypted into it.
pub const ORIGIN: &str = "trust:origin";
/// The trust's own research domain.
pub const RESEARCH: &str = "trust:research";

pub use libpep::prelude::{EncryptedPseudonym, Pseudonym};

/// The federation's public key material, created once at setup.
#[derive(Clone, Debug)]
pub struct Federation {
    global: GlobalPublicKeys,
    blinded: BlindedGlobalSecretKeys,
}

/// What one transcryptor keeps secret: its blinding factor and its own secrets.
pub struct TranscryptorSecrets {
    blinding: BlindingFactor,
    pseudonymisation: PseudonymizationSecret,
    rekeying: RekeyingSecret,
}

impl std::fmt::Debug for TranscryptorSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TranscryptorSecrets(<secret>)")
    }
}

/// Sets up a federation with `n` transcryptors. The global secret key is
/// discarded inside; each transcryptor gets fresh random secrets.
pub fn setup<R: rand::Rng + rand::CryptoRng>(
    n: usize,
    rng: &mut R,
) -> (Federation, Vec<TranscryptorSecrets>) {
    let (global, blinded, blinding) = make_distributed_global_keys(n, rng);
    let secrets = blinding
        .into_iter()
        .map(|b| {
            let mut ps = [0u8; 32];
            let mut rs = [0u8; 32];
            rng.fill_bytes(&mut ps);
            rng.fill_bytes(&mut rs);
            TranscryptorSecrets {
                blinding: b,
                pseudonymisation: PseudonymizationSecret::from(&ps[..]),
                rekeying: RekeyingSecret::from(&rs[..]),
            }
        })
        .collect();
    (Federation { global, blinded }, secrets)
}

impl Federation {
    /// A new member's polymorphic pseudonym: random, encrypted to the global key.
    pub fn enrol<R: rand::Rng + rand::CryptoRng>(&self, rng: &mut R) -> EncryptedPseudonym {
        encrypt_global(&Pseudonym::random(rng), &self.global, rng)
    }

    /// The key an enrolment ciphertext is under.
    pub fn origin_key(&self) -> PseudonymSessionPublicKey {
        PseudonymSessionPublicKey::from_point(*self.global.pseudonym.value())
    }

    /// A co-op's (or the research domain's) decryption keys, from one share of
    /// every transcryptor.
    pub fn client(&self, shares: &[SessionKeyShares]) -> DomainClient {
        DomainClient(Client::from_shares(self.blinded, shares))
    }
}

/// Decrypts the pseudonyms of one domain.
pub struct DomainClient(Client);

/// Holds secret session keys: printed without them.
impl std::fmt::Debug for DomainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DomainClient(<session keys>)")
    }
}

impl DomainClient {
    /// The member's pseudonym in this domain, as 64 hex characters.
    pub fn pseudonym(&self, ct: &EncryptedPseudonym) -> String {
        self.0.decrypt(ct).to_hex()
    }

    /// The key ciphertexts for this domain are under.
    pub fn key(&self) -> PseudonymSessionPublicKey {
        self.0.keys().pseudonym.public
    }

    /// Encrypts one of this domain's pseudonyms (hex) for a transcryption request.
    pub fn encrypt<R: rand::Rng + rand::CryptoRng>(
        &self,
        pseudonym_hex: &str,
        rng: &mut R,
    ) -> Result<EncryptedPseudonym, TrustError> {
        let p = Pseudonym::from_hex(pseudonym_hex).ok_or(TrustError::Invalid("not a pseudonym"))?;
        Ok(self.0.encrypt(&p, rng))
    }
}

fn context(domain: &str) -> EncryptionContext {
    if domain == ORIGIN {
        EncryptionContext::Global
    } else {
        EncryptionContext::from(domain)
    }
}

/// One transcryptor of the distributed set, with its access rule.
pub struct Transcryptor {
    inner: DistributedTranscryptor,
    /// Allowed (from, to) domain pairs. Nothing may go *to* [`ORIGIN`].
    allowed: BTreeSet<(String, String)>,
}

/// Holds secrets: printed with its access rule only.
impl std::fmt::Debug for Transcryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcryptor")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl Transcryptor {
    pub fn new(secrets: TranscryptorSecrets) -> Self {
        Self {
            inner: DistributedTranscryptor::new(
                secrets.pseudonymisation,
                secrets.rekeying,
                secrets.blinding,
            ),
            allowed: BTreeSet::new(),
        }
    }

    /// Allows transcription from one domain to another.
    pub fn allow(&mut self, from: &str, to: &str) -> Result<(), TrustError> {
        if to == ORIGIN {
            return Err(TrustError::Invalid(
                "nothing may be transcrypted into the origin domain",
            ));
        }
        self.allowed.insert((from.to_owned(), to.to_owned()));
        Ok(())
    }

    /// This transcryptor's share of a domain's session keys.
    pub fn key_share(&self, domain: &str) -> SessionKeyShares {
        self.inner.session_key_shares(&context(domain))
    }

    /// Applies this transcryptor's part, if the pair is allowed. Returns the
    /// ciphertext and the key it is now under (for the next transcryptor).
    pub fn step<R: rand::Rng + rand::CryptoRng>(
        &self,
        ct: &EncryptedPseudonym,
        key: &PseudonymSessionPublicKey,
        from: &str,
        to: &str,
        rng: &mut R,
    ) -> Result<(EncryptedPseudonym, PseudonymSessionPublicKey), TrustError> {
        if to == ORIGIN || !self.allowed.contains(&(from.to_owned(), to.to_owned())) {
            return Err(TrustError::TranscryptionRefused {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        let info = self.inner.pseudonymization_info(
            &PseudonymizationDomain::from(from),
            &PseudonymizationDomain::from(to),
            &context(from),
            &context(to),
        );
        let out = self.inner.pseudonymize(ct, &info, key, rng);
        Ok((out, info.rekey_public_key(key)))
    }
}

/// Runs a ciphertext through every transcryptor in turn (in-process).
pub fn chain<R: rand::Rng + rand::CryptoRng>(
    transcryptors: &[Transcryptor],
    ct: &EncryptedPseudonym,
    key: PseudonymSessionPublicKey,
    from: &str,
    to: &str,
    rng: &mut R,
) -> Result<EncryptedPseudonym, TrustError> {
    let (mut ct, mut key) = (*ct, key);
    for t in transcryptors {
        (ct, key) = t.step(&ct, &key, from, to, rng)?;
    }
    Ok(ct)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    struct World {
        fed: Federation,
        ts: Vec<Transcryptor>,
        rng: rand::rngs::StdRng,
    }

    fn world(n: usize) -> World {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (fed, secrets) = setup(n, &mut rng);
        let mut ts: Vec<Transcryptor> = secrets.into_iter().map(Transcryptor::new).collect();
        for t in &mut ts {
            for to in ["coop:a", "coop:b", RESEARCH] {
                t.allow(ORIGIN, to).unwrap();
            }
        }
        World { fed, ts, rng }
    }

    fn client(w: &World, domain: &str) -> DomainClient {
        let shares: Vec<SessionKeyShares> = w.ts.iter().map(|t| t.key_share(domain)).collect();
        w.fed.client(&shares)
    }

    fn pseudonym_in(w: &mut World, member: &EncryptedPseudonym, domain: &str) -> String {
        let key = w.fed.origin_key();
        let ct = chain(&w.ts, member, key, ORIGIN, domain, &mut w.rng).unwrap();
        client(w, domain).pseudonym(&ct)
    }

    #[test]
    fn same_within_a_domain_unlinkable_across_domains() {
        let mut w = world(3);
        let ana = w.fed.enrol(&mut w.rng);
        let bo = w.fed.enrol(&mut w.rng);
        let a1 = pseudonym_in(&mut w, &ana, "coop:a");
        let a2 = pseudonym_in(&mut w, &ana, "coop:a");
        assert_eq!(
            a1, a2,
            "the same member is the same pseudonym within a domain"
        );
        let b = pseudonym_in(&mut w, &ana, "coop:b");
        let r = pseudonym_in(&mut w, &ana, RESEARCH);
        assert!(a1 != b && a1 != r && b != r, "unlinkable across domains");
        assert_ne!(pseudonym_in(&mut w, &bo, "coop:a"), a1);
    }

    #[test]
    fn secrets_never_print() {
        let w = world(1);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (_, secrets) = setup(1, &mut rng);
        assert_eq!(format!("{:?}", secrets[0]), "TranscryptorSecrets(<secret>)");
        assert!(!format!("{:?}", w.ts[0]).contains("secret"));
        assert_eq!(
            format!("{:?}", client(&w, "coop:a")),
            "DomainClient(<session keys>)"
        );
    }

    #[test]
    fn transcryption_needs_an_allowed_pair_and_every_transcryptor() {
        let mut w = world(3);
        let ana = w.fed.enrol(&mut w.rng);
        let in_a = pseudonym_in(&mut w, &ana, "coop:a");
        let in_b = pseudonym_in(&mut w, &ana, "coop:b");
        let ca = client(&w, "coop:a");
        let ct_a = ca.encrypt(&in_a, &mut w.rng).unwrap();
        // A -> B is refused until every transcryptor allows it (the consent flow).
        let refused = chain(&w.ts, &ct_a, ca.key(), "coop:a", "coop:b", &mut w.rng);
        assert!(matches!(
            refused,
            Err(TrustError::TranscryptionRefused { .. })
        ));
        for t in &mut w.ts {
            t.allow("coop:a", "coop:b").unwrap();
        }
        let ct_b = chain(&w.ts, &ct_a, ca.key(), "coop:a", "coop:b", &mut w.rng).unwrap();
        assert_eq!(
            client(&w, "coop:b").pseudonym(&ct_b),
            in_b,
            "A→B gives B's own pseudonym"
        );
        // Never into the origin.
        assert!(w.ts[0].allow("coop:a", ORIGIN).is_err());
        // Two of three transcryptors are not enough.
        let key = w.fed.origin_key();
        let partial = chain(&w.ts[..2], &ana, key, ORIGIN, "coop:a", &mut w.rng).unwrap();
        assert_ne!(client(&w, "coop:a").pseudonym(&partial), in_a);
    }
}
