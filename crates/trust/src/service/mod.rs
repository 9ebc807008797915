//! The data trust as a node runs it, one module per capability:
//!
//! * [`cards`]: **enrolment and cards.** A member's polymorphic pseudonym is
//!   random, encrypted to the federation's global key, and stored next to the
//!   member's account (erased with it). Each co-op sees only its own domain's
//!   pseudonym (`card`). Erasure forgets the member.
//! * [`receipts`]: a co-op submits receipts under its pseudonym for the
//!   member. The trust encrypts that pseudonym for the co-op's domain, has the
//!   transcryptors move it into the research domain, and stores a keyed hash
//!   of the research pseudonym with the two ciphertexts and coarse attributes
//!   (day, area, item categories, amounts). Nothing is stored unless every
//!   transcryptor answered. Members forward their own receipts.
//! * [`insights`]: counts, bounded sums and means, histograms by category and
//!   area, and overlaps between co-ops, each charged by the one privacy
//!   accountant (`me2b-dp`) to every data pool it reads before any noise is
//!   drawn, with OpenDP noise and a minimum cohort.
//! * [`sharing`]: a member's sharing consent lets the trust ask the
//!   transcryptors, with a grant signed by the node, to move one co-op's
//!   receipts into a partner co-op's domain. Without it they refuse.
//! * [`loyalty`]: a points ledger keyed by the loyalty-domain pseudonym; each
//!   co-op earns with its own pseudonym for the member and hears only
//!   "accepted"; it redeems only one-time tokens the member made.

mod cards;
mod insights;
mod loyalty;
mod receipts;
mod sharing;

pub use insights::{Ask, By, Figure, Insight, Question, Scope, TrustBudgets};
pub use loyalty::{LoyaltyDayView, MemberTrust, RedemptionToken, TOKEN_TTL_MS};
pub use receipts::{Forwarded, ItemIn, ReceiptIn, Submitted};
// CoopKeyMaterial, card_text, parse_card and MemberRequest are defined in this module.
pub use sharing::{delivery_of, SharedMember, SharedReceipt, SharingView};

use crate::domain::{Domain, Requester};
use crate::link::{pep_rng, run_chain, TranscryptorLink};
use crate::policy::{Grant, SignedGrant};
use crate::pseudonym::{
    DomainClient, ElGamalEncryptable, ElGamalEncrypted, EncryptedPseudonym, Federation, Pseudonym,
    PseudonymSessionPublicKey,
};
use crate::wire::{Item, TranscryptRequest, MAX_BATCH};
use crate::TrustError;
use me2b_audit::AuditLog;
use me2b_crypto::Keyring;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::{Clock, MemberId, OrgId, Random, SharingId, Timestamp, TrustReceiptId};
use me2b_dp::mechanisms::{self, Answer};
use me2b_dp::{Accountant, Noise, Pool, PoolClass};
use me2b_storage::{
    pack_area, NewRedemptionToken, Store, TrustDim, TrustReceiptRow, TrustSharingRow,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest number of receipts in one submission.
pub const MAX_RECEIPTS: usize = 1_000;

/// Largest number of items on one receipt.
pub const MAX_ITEMS: usize = 100;

/// Largest amount on one receipt or item, in cents.
pub const MAX_AMOUNT_CENTS: i64 = 100_000_000;

/// Largest number of points in one loyalty operation.
pub const MAX_POINTS: i64 = 1_000_000;

/// The only purpose a sharing consent can name.
pub const CROSS_SELL: &str = "cross-sell";

const MS_PER_DAY: i64 = 86_400_000;

/// `[trust]` in the governance file: contribution caps, areas, sharing and
/// research purposes. Budgets and the minimum cohort are `[privacy]`'s
/// (`me2b_dp::PrivacyGovernance`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Governance {
    /// How many values one member may add per (scope, dimension): the L1
    /// sensitivity of a histogram.
    pub max_values_per_member: u32,
    /// The area codes a store may be in (ISO 3166-2 subdivisions by default).
    /// A receipt naming anything finer (a store, a street, a postcode) is refused.
    pub areas: Vec<String>,
    /// Longest a sharing consent may run, in days.
    pub max_sharing_days: i64,
    /// The research purposes questions about all co-ops may name. Who may ask
    /// them, and how much, is `[privacy.pools.trust-research.allowances]`.
    pub research_purposes: Vec<String>,
}

impl Default for Governance {
    fn default() -> Self {
        Self {
            max_values_per_member: 5,
            areas: [
                "NL-DR", "NL-FL", "NL-FR", "NL-GE", "NL-GR", "NL-LI", "NL-NB", "NL-NH", "NL-OV",
                "NL-UT", "NL-ZE", "NL-ZH",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            max_sharing_days: 365,
            research_purposes: vec!["social-purpose".to_owned()],
        }
    }
}

impl Governance {
    pub fn check(&self) -> Result<(), TrustError> {
        if self.max_values_per_member == 0 || self.areas.is_empty() {
            return Err(TrustError::Invalid(
                "max_values_per_member and areas must be set",
            ));
        }
        if self
            .areas
            .iter()
            .any(|a| a.is_empty() || a.len() > 8 || !a.is_ascii())
        {
            return Err(TrustError::Invalid(
                "an area code is 1 to 8 ASCII characters",
            ));
        }
        if self.research_purposes.iter().any(|p| {
            p.is_empty()
                || p.len() > 64
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }) {
            return Err(TrustError::Invalid(
                "a research purpose is 1 to 64 lowercase letters, digits and hyphens",
            ));
        }
        Ok(())
    }
}

/// A taxonomy category the trust accepts on receipt items.
#[derive(Clone, Debug)]
pub struct Category {
    pub id: i64,
    pub slug: String,
    /// Special-category topics are refused on receipts.
    pub sensitive: bool,
}

/// The data trust.
#[derive(Clone)]
pub struct Trust {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    audit: AuditLog,
    keys: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    federation: Federation,
    links: Vec<Arc<dyn TranscryptorLink>>,
    single_party: bool,
    clients: tokio::sync::Mutex<HashMap<Domain, Arc<DomainClient>>>,
    /// Co-ops' domain public keys (public: they only encrypt).
    coop_keys: tokio::sync::Mutex<HashMap<OrgId, PseudonymSessionPublicKey>>,
    /// One ingest at a time stores: the per-member cap on bins is decided
    /// from what is stored, so two batches must not decide it concurrently.
    ingest: tokio::sync::Mutex<()>,
    governance: Governance,
    accountant: Accountant,
    noise: Arc<dyn Noise>,
    categories: Vec<Category>,
    by_slug: HashMap<String, usize>,
    by_id: HashMap<i64, usize>,
    consents: me2b_consent::Consents,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("transcryptors", &self.inner.links.len())
            .field("single_party", &self.inner.single_party)
            .finish_non_exhaustive()
    }
}

/// What the trust is built from.
pub struct TrustDeps {
    pub store: Arc<dyn Store>,
    pub audit: AuditLog,
    pub keys: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub federation: Federation,
    /// One link per transcryptor, in chain order.
    pub links: Vec<Arc<dyn TranscryptorLink>>,
    /// Every transcryptor runs in this process.
    pub single_party: bool,
    pub governance: Governance,
    /// The one privacy accountant (shared with offers).
    pub accountant: Accountant,
    pub noise: Arc<dyn Noise>,
    pub categories: Vec<Category>,
    /// The consent records: cross-selling consents are kept and decided there.
    pub consents: me2b_consent::Consents,
}

impl std::fmt::Debug for TrustDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustDeps")
            .field("transcryptors", &self.links.len())
            .field("single_party", &self.single_party)
            .finish_non_exhaustive()
    }
}

/// The meta key under which a co-op's domain public key is kept.
const META_COOP_KEY: &str = "trust_coop_key:";
/// How long a member request's grant is valid: the request's own duration.
const MEMBER_REQUEST_MS: i64 = 5 * 60 * 1000;

/// Why a member's pseudonym leaves the origin domain: always for a request
/// the member made in their session (or their erasure, finished later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRequest {
    Card,
    Forward,
    View,
    Share,
    Erase,
    /// A redemption token the member makes.
    Redeem,
    /// The member's own audit view (their loyalty entries).
    Audit,
}

impl MemberRequest {
    fn as_str(self) -> &'static str {
        match self {
            MemberRequest::Card => "card",
            MemberRequest::Forward => "forward",
            MemberRequest::View => "view",
            MemberRequest::Share => "share",
            MemberRequest::Erase => "erase",
            MemberRequest::Redeem => "redeem",
            MemberRequest::Audit => "audit",
        }
    }
}

/// A card as text: a ciphertext of the member's pseudonym in the co-op's
/// domain (URL-safe base64), rerandomised every time; only the co-op can
/// open it to its pseudonym for the member.
pub fn card_text(ct: &EncryptedPseudonym) -> String {
    ct.to_base64()
}

/// Parses a card (untrusted).
pub fn parse_card(s: &str) -> Result<EncryptedPseudonym, TrustError> {
    if s.len() > 200 {
        return Err(TrustError::Invalid("a card is at most 200 characters"));
    }
    EncryptedPseudonym::from_base64(s.trim()).ok_or(TrustError::Invalid(
        "`card` is a card as the member's vault shows it (base64)",
    ))
}

/// What a co-op needs to open its cards in the embedded trust.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoopKeyMaterial {
    pub v: u8,
    /// `coop:<organisation id>`.
    pub domain: String,
    /// The federation's public key material (`federation.json`).
    #[schema(value_type = Object)]
    pub federation: serde_json::Value,
    /// Each transcryptor's share of the co-op's domain keys: secret.
    #[schema(value_type = Vec<Object>)]
    pub shares: Vec<serde_json::Value>,
}

/// Key shares are secrets: printed without them.
impl std::fmt::Debug for CoopKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoopKeyMaterial")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Trust {
    pub fn new(d: TrustDeps) -> Self {
        let by_slug = d
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.slug.clone(), i))
            .collect();
        let by_id = d
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        Self {
            inner: Arc::new(Inner {
                store: d.store,
                audit: d.audit,
                keys: d.keys,
                clock: d.clock,
                random: d.random,
                federation: d.federation,
                links: d.links,
                single_party: d.single_party,
                clients: tokio::sync::Mutex::new(HashMap::new()),
                coop_keys: tokio::sync::Mutex::new(HashMap::new()),
                ingest: tokio::sync::Mutex::new(()),
                governance: d.governance,
                accountant: d.accountant,
                noise: d.noise,
                categories: d.categories,
                consents: d.consents,
                by_slug,
                by_id,
            }),
        }
    }

    /// True when every transcryptor runs in this process: one party holds
    /// every secret, so pseudonyms are only as separate as this node is honest.
    pub fn single_party(&self) -> bool {
        self.inner.single_party
    }

    pub fn transcryptors(&self) -> usize {
        self.inner.links.len()
    }

    pub fn governance(&self) -> &Governance {
        &self.inner.governance
    }

    fn rng(&self) -> rand::rngs::StdRng {
        pep_rng(self.inner.random.as_ref())
    }

    /// One of the trust's own domains' decryption keys (research, loyalty),
    /// from one share of every transcryptor. Never a co-op's: the node holds
    /// no co-op domain secret (each co-op fetches its own shares).
    async fn client(&self, domain: Domain) -> Result<Arc<DomainClient>, TrustError> {
        if !Requester::Trust.may_hold_keys_of(domain) {
            return Err(TrustError::KeyShareRefused {
                domain: domain.to_string(),
            });
        }
        let mut clients = self.inner.clients.lock().await;
        if let Some(c) = clients.get(&domain) {
            return Ok(c.clone());
        }
        let mut shares = Vec::with_capacity(self.inner.links.len());
        for l in &self.inner.links {
            shares.push(l.key_share(Requester::Trust, domain).await?);
        }
        let c = Arc::new(self.inner.federation.client(&shares));
        clients.insert(domain, c.clone());
        Ok(c)
    }

    /// The public key of a co-op's domain, learned from the first card moved
    /// into it (public: it only encrypts).
    async fn coop_key(&self, org: OrgId) -> Result<PseudonymSessionPublicKey, TrustError> {
        if let Some(k) = self.inner.coop_keys.lock().await.get(&org) {
            return Ok(*k);
        }
        let stored = self
            .inner
            .store
            .meta(&format!("{META_COOP_KEY}{org}"))
            .await?
            .ok_or(TrustError::UnknownDomainKey)?;
        let key: PseudonymSessionPublicKey =
            serde_json::from_slice(&stored).map_err(|_| TrustError::MalformedCiphertext)?;
        self.inner.coop_keys.lock().await.insert(org, key);
        Ok(key)
    }

    async fn remember_coop_key(
        &self,
        org: OrgId,
        key: PseudonymSessionPublicKey,
    ) -> Result<(), TrustError> {
        if self.inner.coop_keys.lock().await.contains_key(&org) {
            return Ok(());
        }
        self.inner
            .store
            .put_meta_if_absent(
                &format!("{META_COOP_KEY}{org}"),
                &serde_json::to_vec(&key).map_err(|_| TrustError::MalformedCiphertext)?,
            )
            .await?;
        self.inner.coop_keys.lock().await.insert(org, key);
        Ok(())
    }

    /// A co-op's key material in the embedded (single-party) trust: the
    /// federation's public part and every in-process transcryptor's share of
    /// the co-op's own domain, with which the co-op opens its cards. A
    /// distributed trust answers `ask_transcryptors`: each transcryptor gives
    /// a co-op its share itself.
    #[tracing::instrument(skip_all)]
    pub async fn coop_key_material(&self, org: OrgId) -> Result<CoopKeyMaterial, TrustError> {
        self.require_org(org).await?;
        if !self.inner.single_party {
            return Err(TrustError::AskTranscryptors);
        }
        let mut shares = Vec::with_capacity(self.inner.links.len());
        for l in &self.inner.links {
            shares.push(l.key_share(Requester::Coop(org), Domain::Coop(org)).await?);
        }
        Ok(CoopKeyMaterial {
            v: 1,
            domain: Domain::Coop(org).to_string(),
            federation: serde_json::from_str(&self.inner.federation.to_json())
                .map_err(|_| TrustError::MalformedCiphertext)?,
            shares: shares
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()
                .map_err(|_| TrustError::MalformedCiphertext)?,
        })
    }

    async fn chain(
        &self,
        requester: Requester,
        from: Domain,
        to: Domain,
        grant: Option<SignedGrant>,
        items: Vec<Item>,
    ) -> Result<Vec<Item>, TrustError> {
        let mut out = Vec::with_capacity(items.len());
        for batch in items.chunks(MAX_BATCH) {
            let req = TranscryptRequest {
                requester: requester.to_string(),
                from: from.to_string(),
                to: to.to_string(),
                grant: grant.clone(),
                items: batch.to_vec(),
            };
            out.extend(run_chain(&self.inner.links, req).await?);
        }
        Ok(out)
    }

    /// The node's attestation, to every transcryptor, that a member asked in
    /// their session for their pseudonym to leave the origin domain (a card,
    /// a forward, their own view, an erasure). Each transcryptor logs it.
    fn member_request(&self, to: Domain, why: MemberRequest) -> SignedGrant {
        Grant {
            v: 1,
            consent: crate::policy::MEMBER_REQUEST.to_owned(),
            purpose: why.as_str().to_owned(),
            from: Domain::Origin.to_string(),
            to: to.to_string(),
            expires_at_ms: self
                .inner
                .clock
                .now()
                .unix_millis()
                .saturating_add(MEMBER_REQUEST_MS),
        }
        .sign(&self.inner.keys)
    }

    /// Refuses an unknown or deleted organisation.
    async fn require_org(&self, org: OrgId) -> Result<(), TrustError> {
        match self.inner.store.org(org).await? {
            Some(row) if row.deleted_at.is_none() => Ok(()),
            _ => Err(TrustError::NotFound("organisation")),
        }
    }

    fn tag(&self, domain: Domain, p: &Pseudonym) -> [u8; 32] {
        self.inner
            .keys
            .trust_tag(&domain.to_string(), &p.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn governance_is_checked() {
        Governance::default().check().unwrap();
        let g: Governance = toml::from_str("research_purposes = [\"food-poverty\"]").unwrap();
        g.check().unwrap();
        assert_eq!(g.research_purposes, vec!["food-poverty".to_owned()]);
        for bad in [
            "areas = []",
            "areas = [\"a-very-long-area\"]",
            "max_values_per_member = 0",
            "research_purposes = [\"Food Poverty\"]",
        ] {
            let g: Governance = toml::from_str(bad).unwrap();
            assert!(g.check().is_err(), "{bad}");
        }
        assert!(
            toml::from_str::<Governance>("min_cohort = 20").is_err(),
            "the minimum cohort moved to [privacy]: unknown keys are refused"
        );
    }
}
