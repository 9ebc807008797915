//! The co-op's side of the data trust.
//!
//! The node holds no co-op's domain keys: a member's card is their pseudonym
//! in the co-op's domain, encrypted, and only the co-op can open it. A co-op
//! gets its own domain's keys as one share from every transcryptor (each
//! authenticates the co-op for that domain only), keeps them in a private
//! file, and with them:
//!
//! * opens a card a member shows to the co-op's pseudonym for them (stable,
//!   64 hex; other co-ops' pseudonyms for the member are unlinkable to it);
//! * seals that pseudonym afresh for each submission to the trust (receipts,
//!   loyalty), so the node never sees the ciphertext the member showed;
//! * opens the cards of members shared with it by consent.
//!
//! In the embedded (single-party) trust the node's own transcryptors give
//! the shares through `POST /v1/org/trust/keys`; in a distributed one each
//! transcryptor does, at `POST /v1/key-share` with the co-op's token there
//! (`me2b transcryptor add-coop`).
#![forbid(unsafe_code)]

use me2b_domain::{OrgId, Random};
use me2b_trust::domain::{Domain, Requester};
use me2b_trust::link::{pep_rng, TranscryptorLink};
use me2b_trust::pseudonym::{
    DomainClient, ElGamalEncryptable, Federation, Pseudonym, SessionKeyShares,
};
use me2b_trust::remote::RemoteLink;
use me2b_trust::service::{card_text, parse_card, CoopKeyMaterial};
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::Zeroizing;

/// Co-op client errors. None carries a card, pseudonym or key.
#[derive(Debug, thiserror::Error)]
pub enum CoopError {
    #[error("the key material is not this co-op's: {0}")]
    Material(&'static str),
    #[error("not a card (a card is the base64 text a member's vault shows)")]
    NotACard,
    #[error("not a pseudonym (64 hex characters)")]
    NotAPseudonym,
    #[error("the node answered {status}: {code}")]
    Node { status: u16, code: String },
    #[error("the node could not be reached")]
    Unreachable,
    #[error(transparent)]
    Trust(#[from] me2b_trust::TrustError),
    #[error("the key file {path}: {why}")]
    File { path: String, why: String },
}

/// The stored key file (format version 1): the material as the node or the
/// transcryptors gave it. Private: it opens every card of the co-op.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    v: u8,
    org: OrgId,
    material: CoopKeyMaterial,
}

/// A co-op's keys for its own domain.
pub struct CoopKeys {
    org: OrgId,
    material: Zeroizing<String>,
    client: DomainClient,
}

/// Holds the co-op's secret keys: printed without them.
impl std::fmt::Debug for CoopKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoopKeys")
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

impl CoopKeys {
    /// Keys from the material the node (embedded trust) answered.
    pub fn from_material(org: OrgId, m: &CoopKeyMaterial) -> Result<Self, CoopError> {
        if m.v != 1 {
            return Err(CoopError::Material("unsupported format version"));
        }
        if m.domain != Domain::Coop(org).to_string() {
            return Err(CoopError::Material("it is another domain's"));
        }
        let federation = Federation::from_json(&m.federation.to_string())?;
        let shares = m
            .shares
            .iter()
            .map(|s| serde_json::from_value::<SessionKeyShares>(s.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| CoopError::Material("a share is malformed"))?;
        if shares.is_empty() {
            return Err(CoopError::Material("it has no share"));
        }
        Ok(Self {
            org,
            material: Zeroizing::new(serde_json::to_string(m).unwrap_or_default()),
            client: federation.client(&shares),
        })
    }

    /// Fetches the co-op's material from the node (embedded trust only).
    pub async fn fetch_from_node(
        node_url: &str,
        api_key: &str,
        org: OrgId,
    ) -> Result<Self, CoopError> {
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/v1/org/trust/keys",
                node_url.trim_end_matches('/')
            ))
            .bearer_auth(api_key)
            .send()
            .await
            .map_err(|_| CoopError::Unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            let code = resp
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(CoopError::Node {
                status: status.as_u16(),
                code,
            });
        }
        let m: CoopKeyMaterial = resp.json().await.map_err(|_| CoopError::Unreachable)?;
        Self::from_material(org, &m)
    }

    /// Fetches one share from every transcryptor of a distributed trust,
    /// each with the co-op's own token there, in the chain's order.
    pub async fn fetch_from_transcryptors(
        federation: &Federation,
        org: OrgId,
        transcryptors: &[RemoteLink],
    ) -> Result<Self, CoopError> {
        let mut shares = Vec::with_capacity(transcryptors.len());
        for t in transcryptors {
            let share = t.key_share(Requester::Coop(org), Domain::Coop(org)).await?;
            shares.push(
                serde_json::to_value(share)
                    .map_err(|_| CoopError::Material("a share is malformed"))?,
            );
        }
        let m = CoopKeyMaterial {
            v: 1,
            domain: Domain::Coop(org).to_string(),
            federation: serde_json::from_str(&federation.to_json())
                .map_err(|_| CoopError::Material("the federation file is malformed"))?,
            shares,
        };
        Self::from_material(org, &m)
    }

    pub fn org(&self) -> OrgId {
        self.org
    }

    /// Opens a member's card: the co-op's pseudonym for them (64 hex).
    pub fn open_card(&self, card: &str) -> Result<String, CoopError> {
        let ct = parse_card(card).map_err(|_| CoopError::NotACard)?;
        Ok(self.client.decrypt(&ct).to_hex())
    }

    /// Seals one of the co-op's pseudonyms afresh as a card for a submission
    /// to the trust (receipts, loyalty): different every time.
    pub fn seal(&self, pseudonym_hex: &str, random: &dyn Random) -> Result<String, CoopError> {
        let p = Pseudonym::from_hex(pseudonym_hex.trim()).ok_or(CoopError::NotAPseudonym)?;
        Ok(card_text(
            &self.client.encrypt_pseudonym(&p, &mut pep_rng(random)),
        ))
    }

    /// Writes the keys to a new private file (mode 0600 on unix).
    pub fn save(&self, path: &Path) -> Result<(), CoopError> {
        let err = |why: String| CoopError::File {
            path: path.display().to_string(),
            why,
        };
        let material: CoopKeyMaterial =
            serde_json::from_str(&self.material).map_err(|e| err(e.to_string()))?;
        let text = Zeroizing::new(
            serde_json::to_string_pretty(&KeyFile {
                v: 1,
                org: self.org,
                material,
            })
            .map_err(|e| err(e.to_string()))?,
        );
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        let mut f = opts.open(path).map_err(|e| {
            err(format!(
                "cannot create it ({e}); an existing file is never overwritten"
            ))
        })?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| err(e.to_string()))
    }

    /// Reads a key file written by [`CoopKeys::save`]; refuses one that
    /// others can read.
    pub fn load(path: &Path) -> Result<Self, CoopError> {
        let err = |why: String| CoopError::File {
            path: path.display().to_string(),
            why,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(err(
                    "it holds the co-op's keys but group or others can read it: chmod 600".into(),
                ));
            }
        }
        if meta.len() > 1 << 20 {
            return Err(err("too large".into()));
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let f: KeyFile =
            serde_json::from_str(&text).map_err(|_| err("not a co-op key file".into()))?;
        if f.v != 1 {
            return Err(err("unsupported format version".into()));
        }
        Self::from_material(f.org, &f.material)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_trust::pseudonym::{setup, Transcryptor};

    #[derive(Debug)]
    struct Counter(std::sync::atomic::AtomicU64);
    impl Random for Counter {
        fn fill(&self, buf: &mut [u8]) {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (n as u8).wrapping_mul(31).wrapping_add(i as u8);
            }
        }
    }

    #[test]
    fn a_coop_opens_its_cards_and_seals_them_afresh_and_nothing_else() {
        let r = Counter(std::sync::atomic::AtomicU64::new(1));
        let mut rng = pep_rng(&r);
        let (fed, secrets) = setup(2, &mut rng);
        let ts: Vec<Transcryptor> = secrets.into_iter().map(Transcryptor::new).collect();
        let a: OrgId = "6f1c1e2a-0000-4000-8000-000000000001".parse().unwrap();
        let b: OrgId = "6f1c1e2a-0000-4000-8000-000000000002".parse().unwrap();
        let material = |org: OrgId| CoopKeyMaterial {
            v: 1,
            domain: Domain::Coop(org).to_string(),
            federation: serde_json::from_str(&fed.to_json()).unwrap(),
            shares: ts
                .iter()
                .map(|t| {
                    serde_json::to_value(
                        t.share_for(Requester::Coop(org), Domain::Coop(org))
                            .unwrap(),
                    )
                    .unwrap()
                })
                .collect(),
        };
        let ka = CoopKeys::from_material(a, &material(a)).unwrap();
        let kb = CoopKeys::from_material(b, &material(b)).unwrap();
        assert!(
            CoopKeys::from_material(b, &material(a)).is_err(),
            "another co-op's material"
        );
        assert!(ts[0]
            .share_for(Requester::Coop(a), Domain::Coop(b))
            .is_err());
        // A card sealed by A opens to the same pseudonym, looks different each time.
        let p: Pseudonym = Pseudonym::random(&mut rng);
        let p = p.to_hex();
        let c1 = ka.seal(&p, &r).unwrap();
        let c2 = ka.seal(&p, &r).unwrap();
        assert_ne!(c1, c2);
        assert_eq!(ka.open_card(&c1).unwrap(), p);
        assert_eq!(ka.open_card(&c2).unwrap(), p);
        // B cannot open A's card to A's pseudonym.
        assert_ne!(kb.open_card(&c1).unwrap(), p);
        assert!(ka.open_card("not a card").is_err());
        assert!(ka.seal("nope", &r).is_err());
        // Saved and loaded, private, never overwritten, never printed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        ka.save(&path).unwrap();
        assert!(ka.save(&path).is_err());
        let back = CoopKeys::load(&path).unwrap();
        assert_eq!(back.open_card(&c1).unwrap(), p);
        assert!(!format!("{ka:?}").contains(&p));
    }
}
