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
//! A transcryptor runs in-process ([`crate::link::LocalLink`], the embedded
//! single-party default) or as its own process (`me2b transcryptor`, reached
//! through [`crate::remote::RemoteLink`]). See `RESEARCH.md`.

use crate::policy::Policy;
use crate::TrustError;
pub use libpep::keys::distribution::SessionKeyShares;
use libpep::keys::distribution::{
    make_distributed_global_keys, BlindedGlobalSecretKeys, BlindingFactor,
};
pub use libpep::keys::PseudonymSessionPublicKey;
use libpep::prelude::*;

/// The domain enrolment pseudonyms live in. Nothing is ever transcrypted into it.
pub const ORIGIN: &str = "trust:origin";
/// The trust's own research domain.
pub const RESEARCH: &str = "trust:research";

/// Byte and hex conversions of ciphertexts and pseudonyms.
pub use libpep::prelude::{ElGamalEncryptable, ElGamalEncrypted};
pub use libpep::prelude::{EncryptedPseudonym, Pseudonym};

/// The federation's public key material, created once at setup. Both parts
/// are public: the global public key, and the global secret key blinded by
/// every transcryptor's factor (useless without all their shares).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Federation {
    /// Format version of the stored form.
    v: u8,
    global: GlobalPublicKeys,
    blinded: BlindedGlobalSecretKeys,
}

/// What one transcryptor keeps secret: its blinding factor and its own
/// pseudonymisation and rekeying secrets (random bytes, zeroized on drop).
pub struct TranscryptorSecrets {
    blinding: BlindingFactor,
    pseudonymisation: zeroize::Zeroizing<[u8; 32]>,
    rekeying: zeroize::Zeroizing<[u8; 32]>,
}

/// The stored form of [`TranscryptorSecrets`] (format version 1, hex).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    v: u8,
    blinding: String,
    pseudonymisation: String,
    rekeying: String,
}

fn hex32(s: &str) -> Result<zeroize::Zeroizing<[u8; 32]>, TrustError> {
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(s, out.as_mut())
        .map_err(|_| TrustError::Invalid("a secret is 64 hex characters"))?;
    Ok(out)
}

impl TranscryptorSecrets {
    /// The secrets as stored (JSON, format version 1). Keep the file private.
    pub fn to_json(&self) -> zeroize::Zeroizing<String> {
        let f = SecretsFile {
            v: 1,
            blinding: self.blinding.to_hex(),
            pseudonymisation: hex::encode(self.pseudonymisation.as_ref()),
            rekeying: hex::encode(self.rekeying.as_ref()),
        };
        zeroize::Zeroizing::new(serde_json::to_string_pretty(&f).unwrap_or_default())
    }

    /// Parses stored secrets; refuses another format version.
    pub fn from_json(s: &str) -> Result<Self, TrustError> {
        let f: SecretsFile = serde_json::from_str(s)
            .map_err(|_| TrustError::Invalid("not a transcryptor secrets file"))?;
        if f.v != 1 {
            return Err(TrustError::Invalid(
                "unsupported transcryptor secrets format version",
            ));
        }
        let blinding = BlindingFactor::from_hex(&f.blinding)
            .ok_or(TrustError::Invalid("the blinding factor is not a scalar"))?;
        Ok(Self {
            blinding,
            pseudonymisation: hex32(&f.pseudonymisation)?,
            rekeying: hex32(&f.rekeying)?,
        })
    }
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
            let mut ps = zeroize::Zeroizing::new([0u8; 32]);
            let mut rs = zeroize::Zeroizing::new([0u8; 32]);
            rng.fill_bytes(ps.as_mut());
            rng.fill_bytes(rs.as_mut());
            TranscryptorSecrets {
                blinding: b,
                pseudonymisation: ps,
                rekeying: rs,
            }
        })
        .collect();
    (
        Federation {
            v: 1,
            global,
            blinded,
        },
        secrets,
    )
}

impl Federation {
    /// The stored form (JSON, format version 1).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, TrustError> {
        let f: Self =
            serde_json::from_str(s).map_err(|_| TrustError::Invalid("not a federation file"))?;
        if f.v != 1 {
            return Err(TrustError::Invalid("unsupported federation format version"));
        }
        Ok(f)
    }

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

    /// Decrypts a ciphertext of this domain.
    pub fn decrypt(&self, ct: &EncryptedPseudonym) -> Pseudonym {
        self.0.decrypt(ct)
    }

    /// Encrypts one of this domain's pseudonyms.
    pub fn encrypt_pseudonym<R: rand::Rng + rand::CryptoRng>(
        &self,
        p: &Pseudonym,
        rng: &mut R,
    ) -> EncryptedPseudonym {
        self.0.encrypt(p, rng)
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

/// Encrypts a pseudonym to a domain's public key (no secret needed).
pub fn encrypt_to<R: rand::Rng + rand::CryptoRng>(
    p: &Pseudonym,
    key: &PseudonymSessionPublicKey,
    rng: &mut R,
) -> EncryptedPseudonym {
    libpep::client::encrypt(p, key, rng)
}

/// The same pseudonym, under the same key, as a fresh ciphertext (libpep's
/// rerandomisation): what the trust keeps of a card a co-op sent, so that the
/// co-op cannot find the bytes it sent in a copy of the database (adv8).
pub fn rerandomize<R: rand::Rng + rand::CryptoRng>(
    ct: &EncryptedPseudonym,
    key: &PseudonymSessionPublicKey,
    rng: &mut R,
) -> EncryptedPseudonym {
    libpep::transcryptor::rerandomize(ct, key, rng)
}

pub(crate) fn context(domain: &str) -> EncryptionContext {
    if domain == ORIGIN {
        EncryptionContext::Global
    } else {
        EncryptionContext::from(domain)
    }
}

/// One transcryptor of the distributed set, with its access rule.
pub struct Transcryptor {
    inner: DistributedTranscryptor,
    policy: Policy,
}

/// Holds secrets: printed with its access rule only.
impl std::fmt::Debug for Transcryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcryptor")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Transcryptor {
    /// A transcryptor that allows nothing until its policy says so.
    pub fn new(secrets: TranscryptorSecrets) -> Self {
        Self::with_policy(secrets, Policy::deny_all())
    }

    pub fn with_policy(secrets: TranscryptorSecrets, policy: Policy) -> Self {
        Self {
            inner: DistributedTranscryptor::new(
                PseudonymizationSecret::from(&secrets.pseudonymisation[..]),
                RekeyingSecret::from(&secrets.rekeying[..]),
                secrets.blinding,
            ),
            policy,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the access rule (governance changes it; secrets stay).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Allows transcription from one domain to another (patterns allowed).
    pub fn allow(&mut self, from: &str, to: &str) -> Result<(), TrustError> {
        self.policy.allow(from, to)
    }

    /// This transcryptor's share of a domain's session keys.
    pub fn key_share(&self, domain: &str) -> SessionKeyShares {
        self.inner.session_key_shares(&context(domain))
    }

    /// Applies this transcryptor's part, if the policy allows the pair (with
    /// `grant` where it needs one, checked at `now_ms`). Returns the
    /// ciphertext and the key it is now under (for the next transcryptor).
    pub fn step<R: rand::Rng + rand::CryptoRng>(
        &self,
        ct: &EncryptedPseudonym,
        key: &PseudonymSessionPublicKey,
        pair: (&str, &str),
        grant: Option<&crate::policy::SignedGrant>,
        now_ms: i64,
        rng: &mut R,
    ) -> Result<(EncryptedPseudonym, PseudonymSessionPublicKey), TrustError> {
        let (from, to) = pair;
        self.policy.check(from, to, grant, now_ms)?;
        Ok(self.apply(ct, key, from, to, rng))
    }

    /// Applies this transcryptor's factors without checking the policy: the
    /// caller (`handle`) has.
    pub(crate) fn apply<R: rand::Rng + rand::CryptoRng>(
        &self,
        ct: &EncryptedPseudonym,
        key: &PseudonymSessionPublicKey,
        from: &str,
        to: &str,
        rng: &mut R,
    ) -> (EncryptedPseudonym, PseudonymSessionPublicKey) {
        let mut out = self.apply_all(&[(*ct, *key)], from, to, rng);
        out.pop().unwrap_or((*ct, *key))
    }

    /// Applies this transcryptor's factors to a batch: the factors of the
    /// domain pair are derived once, and each distinct key is rekeyed once.
    pub(crate) fn apply_all<R: rand::Rng + rand::CryptoRng>(
        &self,
        items: &[(EncryptedPseudonym, PseudonymSessionPublicKey)],
        from: &str,
        to: &str,
        rng: &mut R,
    ) -> Vec<(EncryptedPseudonym, PseudonymSessionPublicKey)> {
        let info = self.inner.pseudonymization_info(
            &PseudonymizationDomain::from(from),
            &PseudonymizationDomain::from(to),
            &context(from),
            &context(to),
        );
        let mut rekeyed: Option<(PseudonymSessionPublicKey, PseudonymSessionPublicKey)> = None;
        items
            .iter()
            .map(|(ct, key)| {
                let out = self.inner.pseudonymize(ct, &info, key, rng);
                let next = match rekeyed {
                    Some((k, n)) if k == *key => n,
                    _ => {
                        let n = info.rekey_public_key(key);
                        rekeyed = Some((*key, n));
                        n
                    }
                };
                (out, next)
            })
            .collect()
    }
}

/// Runs a ciphertext through every transcryptor in turn (in-process), with
/// `grant` for a pair that needs one (out of the origin, co-op to co-op).
pub fn chain<R: rand::Rng + rand::CryptoRng>(
    transcryptors: &[Transcryptor],
    ct: &EncryptedPseudonym,
    key: PseudonymSessionPublicKey,
    pair: (&str, &str),
    grant: Option<&crate::policy::SignedGrant>,
    rng: &mut R,
) -> Result<EncryptedPseudonym, TrustError> {
    let (mut ct, mut key) = (*ct, key);
    for t in transcryptors {
        (ct, key) = t.step(&ct, &key, pair, grant, 0, rng)?;
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

    fn node() -> me2b_crypto::Keyring {
        me2b_crypto::Keyring::derive(&me2b_crypto::MasterKey::from_bytes([7; 32]))
    }

    /// The node's attestation that a member asked for this move.
    fn member_request(to: &str) -> crate::policy::SignedGrant {
        crate::policy::Grant {
            v: 1,
            consent: crate::policy::MEMBER_REQUEST.into(),
            purpose: "card".into(),
            from: ORIGIN.into(),
            to: to.into(),
            expires_at_ms: i64::MAX,
        }
        .sign(&node())
    }

    fn world(n: usize) -> World {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (fed, secrets) = setup(n, &mut rng);
        let grants = crate::policy::Policy::standard(Some(node().verifying_key()));
        let mut ts: Vec<Transcryptor> = secrets
            .into_iter()
            .map(|s| Transcryptor::with_policy(s, grants.clone()))
            .collect();
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
        let g = member_request(domain);
        let ct = chain(&w.ts, member, key, (ORIGIN, domain), Some(&g), &mut w.rng).unwrap();
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
        // A -> B is refused without a grant (the consent flow), and a standing
        // rule for it cannot even be configured.
        let refused = chain(
            &w.ts,
            &ct_a,
            ca.key(),
            ("coop:a", "coop:b"),
            None,
            &mut w.rng,
        );
        assert!(matches!(
            refused,
            Err(TrustError::TranscryptionRefused { .. })
        ));
        assert!(w.ts[0].allow("coop:a", "coop:b").is_err());
        // With a grant signed by the node, every transcryptor serves it.
        let node = me2b_crypto::Keyring::derive(&me2b_crypto::MasterKey::from_bytes([3; 32]));
        for t in &mut w.ts {
            t.set_policy(Policy::standard(Some(node.verifying_key())));
        }
        let granted = &w.ts;
        let grant = crate::policy::Grant {
            v: 1,
            consent: "share_1".into(),
            purpose: "cross-sell".into(),
            from: "coop:a".into(),
            to: "coop:b".into(),
            expires_at_ms: 10,
        }
        .sign(&node);
        let mut req = crate::wire::TranscryptRequest {
            requester: "coop-b".into(),
            from: "coop:a".into(),
            to: "coop:b".into(),
            grant: Some(grant),
            items: vec![crate::wire::Item {
                ct: ct_a,
                key: ca.key(),
            }],
        };
        for t in granted {
            req.items = t.handle(&req, 0, &mut w.rng).unwrap();
        }
        assert_eq!(
            client(&w, "coop:b").pseudonym(&req.items[0].ct),
            in_b,
            "A→B gives B's own pseudonym"
        );
        // An expired grant is refused.
        assert!(matches!(
            granted[0].handle(&req, 10, &mut w.rng),
            Err(TrustError::GrantExpired)
        ));
        // Never into the origin.
        assert!(w.ts[0].allow("coop:a", ORIGIN).is_err());
        // Two of three transcryptors are not enough.
        let key = w.fed.origin_key();
        let asked = crate::policy::Grant {
            v: 1,
            consent: crate::policy::MEMBER_REQUEST.into(),
            purpose: "card".into(),
            from: ORIGIN.into(),
            to: "coop:a".into(),
            expires_at_ms: 10,
        }
        .sign(&node);
        let partial = chain(
            &w.ts[..2],
            &ana,
            key,
            (ORIGIN, "coop:a"),
            Some(&asked),
            &mut w.rng,
        )
        .unwrap();
        assert_ne!(client(&w, "coop:a").pseudonym(&partial), in_a);
    }
}
