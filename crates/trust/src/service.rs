//! The data trust as a node runs it.
//!
//! * **Enrolment:** a member's polymorphic pseudonym is random, encrypted to the
//!   federation's global key, and stored next to the member's account (erased
//!   with it). Each co-op sees only its own domain's pseudonym (`card`).
//! * **Receipts:** a co-op submits receipts under its pseudonym for the member.
//!   The trust encrypts that pseudonym for the co-op's domain, has the
//!   transcryptors move it into the research domain, and stores a keyed hash of
//!   the research pseudonym with the two ciphertexts and coarse attributes
//!   (day, area, item categories, amounts). Nothing is stored unless every
//!   transcryptor answered.
//! * **Insights:** counts, bounded sums and means, histograms by category and
//!   area, and overlaps between co-ops, each charged to the requester's ε
//!   budget before any noise is drawn, with OpenDP noise and a minimum cohort.
//! * **Cross-selling:** a member's sharing consent lets the trust ask the
//!   transcryptors, with a grant signed by the node, to move one co-op's
//!   receipts into a partner co-op's domain. Without it they refuse.
//! * **Loyalty:** a points ledger keyed by the loyalty-domain pseudonym; each
//!   co-op earns and redeems with its own pseudonym for the member.

use crate::budget::{micros_down, micros_up};
use crate::insights::{self, Answer, Histogram, Noise, SumAndMean};
use crate::link::{pep_rng, run_chain, TranscryptorLink};
use crate::policy::{Grant, SignedGrant, LOYALTY};
use crate::pseudonym::{
    DomainClient, ElGamalEncryptable, ElGamalEncrypted, EncryptedPseudonym, Federation, Pseudonym,
    ORIGIN, RESEARCH,
};
use crate::wire::{Item, TranscryptRequest, MAX_BATCH};
use crate::TrustError;
use me2b_audit::AuditLog;
use me2b_crypto::Keyring;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::{Clock, MemberId, OrgId, Random, SharingId, Timestamp, TrustReceiptId};
use me2b_storage::{pack_area, BudgetCharge, Store, TrustDim, TrustReceiptRow, TrustSharingRow};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
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

/// The trust's governance: thresholds, contribution caps, budgets and areas.
/// Read from `trust.toml` in the data directory when present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Governance {
    /// Minimum cohort of every released figure.
    pub min_cohort: u64,
    /// How many values one member may add per (scope, dimension): the L1
    /// sensitivity of a histogram.
    pub max_values_per_member: u32,
    /// Total ε of an organisation without its own entry in `org_budgets`.
    pub default_org_budget: f64,
    /// Total ε per organisation id.
    pub org_budgets: BTreeMap<String, f64>,
    /// Total ε per research purpose of the trust (e.g. `food-poverty`).
    pub research_budgets: BTreeMap<String, f64>,
    /// The area codes a store may be in (ISO 3166-2 subdivisions by default).
    /// A receipt naming anything finer (a store, a street, a postcode) is refused.
    pub areas: Vec<String>,
    /// Longest a sharing consent may run, in days.
    pub max_sharing_days: i64,
}

impl Default for Governance {
    fn default() -> Self {
        Self {
            min_cohort: insights::DEFAULT_MIN_COHORT,
            max_values_per_member: 5,
            default_org_budget: 3.0,
            org_budgets: BTreeMap::new(),
            research_budgets: BTreeMap::from([("social-purpose".to_owned(), 5.0)]),
            areas: [
                "NL-DR", "NL-FL", "NL-FR", "NL-GE", "NL-GR", "NL-LI", "NL-NB", "NL-NH", "NL-OV",
                "NL-UT", "NL-ZE", "NL-ZH",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            max_sharing_days: 365,
        }
    }
}

impl Governance {
    pub fn from_toml(s: &str) -> Result<Self, TrustError> {
        let g: Self = toml::from_str(s)
            .map_err(|_| TrustError::Invalid("trust.toml is not valid governance config"))?;
        if g.min_cohort == 0 || g.max_values_per_member == 0 || g.areas.is_empty() {
            return Err(TrustError::Invalid(
                "min_cohort, max_values_per_member and areas must be set",
            ));
        }
        if g.areas
            .iter()
            .any(|a| a.is_empty() || a.len() > 8 || !a.is_ascii())
        {
            return Err(TrustError::Invalid(
                "an area code is 1 to 8 ASCII characters",
            ));
        }
        Ok(g)
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

/// One receipt as a co-op submits it.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptIn {
    /// The co-op's pseudonym for the member (64 hex, from the member's card).
    pub pseudonym: String,
    /// The day of purchase, `YYYY-MM-DD`; or give `at`.
    #[serde(default)]
    pub day: Option<String>,
    /// The time of purchase (RFC 3339), coarsened to the day.
    #[serde(default)]
    pub at: Option<String>,
    /// The store's area (one of the governance config's area codes).
    pub area: String,
    pub items: Vec<ItemIn>,
    /// Total in cents; default: the sum of the items.
    #[serde(default)]
    pub amount_cents: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// A taxonomy topic slug (`GET /v1/taxonomy`).
    pub category: String,
    pub amount_cents: i64,
}

/// What the trust answers a submission with.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Submitted {
    pub stored: usize,
    /// Positions in the batch (from 0) of receipts whose member has erased
    /// their data: not stored. Delete those cards; the trust will keep
    /// dropping what they bring.
    pub erased: Vec<usize>,
    /// How attributes were coarsened before storage.
    pub coarsened: &'static str,
}

/// What `store_rows` did.
struct Stored {
    stored: usize,
    erased: Vec<usize>,
}

/// A loyalty operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Points {
    Earn,
    Redeem,
}

/// What a member's forwarding stored.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Forwarded {
    /// Receipts stored now.
    pub forwarded: usize,
    /// Receipts forwarded to this co-op's pool before: not stored twice.
    pub already: usize,
    /// Items left out: categories outside the taxonomy, and every special
    /// category (those never leave the vault).
    pub items_left_out: usize,
    pub coarsened: &'static str,
}

/// Which members a question is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The asking co-op's own members.
    Own,
    /// All co-ops' members (research purposes only).
    All,
}

/// A question to the trust.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Question {
    /// Distinct members, optionally of one category or area.
    Count {
        scope: Scope,
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        area: Option<String>,
    },
    /// Sum and mean of members' total spend, each clamped to `upper_cents`.
    Sum {
        scope: Scope,
        #[serde(default)]
        upper_cents: Option<i64>,
    },
    /// Distinct members per category (every taxonomy topic) or per area.
    Histogram { scope: Scope, by: By },
    /// Members who shop at both the asking co-op (or `a`, research only) and `b`.
    Overlap {
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        a: Option<OrgId>,
        #[schema(value_type = String)]
        b: OrgId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Category,
    Area,
}

impl Question {
    fn kind(&self) -> &'static str {
        match self {
            Question::Count { .. } => "count",
            Question::Sum { .. } => "sum",
            Question::Histogram { .. } => "histogram",
            Question::Overlap { .. } => "overlap",
        }
    }
}

/// A question with its ε and, for the trust's own research, its purpose.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub question: Question,
    pub epsilon: f64,
    /// A research purpose from the governance config: charged to that
    /// purpose's budget instead of the organisation's.
    #[serde(default)]
    pub purpose: Option<String>,
}

/// A released figure.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Figure {
    Count(Answer),
    Sum(SumAndMean),
    Histogram(Histogram),
}

/// The budget after a query.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetState {
    pub requester: String,
    pub epsilon_spent_now: f64,
    pub spent: f64,
    pub budget: f64,
    pub remaining: f64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Insight {
    pub figure: Figure,
    pub budget: BudgetState,
}

/// A member's view of the trust.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemberTrust {
    /// The member's loyalty points, across co-ops.
    pub loyalty_points: i64,
    pub sharing: Vec<SharingView>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SharingView {
    #[schema(value_type = String)]
    pub id: SharingId,
    #[schema(value_type = String)]
    pub from: OrgId,
    #[schema(value_type = String)]
    pub to: OrgId,
    pub purpose: String,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    pub withdrawn: bool,
    /// The consent receipt for its latest event (given or withdrawn): a
    /// compact JWS signed by the node key, in the same format as every other
    /// consent's (`me2b consent verify-receipt` checks it offline). The
    /// controller is the co-op that receives the receipts, the subject your
    /// pseudonym there; the notice's hash covers the plain-language text,
    /// which names both co-ops.
    pub receipt: String,
}

/// One member's receipts as a partner co-op receives them, under its own
/// pseudonym for the member.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SharedMember {
    pub pseudonym: String,
    pub receipts: Vec<SharedReceipt>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SharedReceipt {
    pub day: String,
    pub area: String,
    pub amount_cents: i64,
    pub items: Vec<ItemIn>,
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
    clients: tokio::sync::Mutex<HashMap<String, Arc<DomainClient>>>,
    /// One ingest at a time stores: the per-member cap on bins is decided
    /// from what is stored, so two batches must not decide it concurrently.
    ingest: tokio::sync::Mutex<()>,
    governance: Governance,
    noise: Arc<dyn Noise>,
    categories: Vec<Category>,
    by_slug: HashMap<String, usize>,
    by_id: HashMap<i64, usize>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("transcryptors", &self.inner.links.len())
            .field("single_party", &self.inner.single_party)
            .finish_non_exhaustive()
    }
}

const DELIVERY: &str = " under sharing consent ";

/// The audit object of one cross-sell delivery: how many receipts, from
/// whom, under which sharing consent. [`delivery_of`] reads it back.
fn delivery_object(receipts: usize, from: OrgId, sharing: SharingId) -> String {
    format!("{receipts} receipts from {from}{DELIVERY}{sharing}")
}

/// Reads a cross-sell delivery's audit object: (receipts, sharing consent id).
pub fn delivery_of(object: &str) -> Option<(usize, &str)> {
    let (what, sharing) = object.rsplit_once(DELIVERY)?;
    let receipts = what.split(' ').next()?.parse().ok()?;
    Some((receipts, sharing))
}

/// A co-op's pseudonymisation domain.
pub fn coop_domain(org: OrgId) -> String {
    format!("coop:{org}")
}

fn day_string(day: i32) -> String {
    time::Date::from_julian_day(2_440_588 + day)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

fn parse_day(r: &ReceiptIn) -> Result<i32, TrustError> {
    let bad = TrustError::Invalid("give `day` as YYYY-MM-DD or `at` as an RFC 3339 time");
    match (&r.day, &r.at) {
        (Some(d), None) => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(d, &fmt).map_err(|_| bad)?;
            Ok(date.to_julian_day() - 2_440_588)
        }
        (None, Some(at)) => {
            let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .map_err(|_| bad)?;
            Ok(t.date().to_julian_day() - 2_440_588)
        }
        _ => Err(bad),
    }
}

/// A receipt checked and coarsened, before pseudonymisation.
struct Checked {
    pseudonym: Pseudonym,
    day: i32,
    area: String,
    amount: i64,
    items: Vec<(i64, i64)>,
}

impl Trust {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        audit: AuditLog,
        keys: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        federation: Federation,
        links: Vec<Arc<dyn TranscryptorLink>>,
        single_party: bool,
        governance: Governance,
        noise: Arc<dyn Noise>,
        categories: Vec<Category>,
    ) -> Self {
        let by_slug = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.slug.clone(), i))
            .collect();
        let by_id = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        Self {
            inner: Arc::new(Inner {
                store,
                audit,
                keys,
                clock,
                random,
                federation,
                links,
                single_party,
                clients: tokio::sync::Mutex::new(HashMap::new()),
                ingest: tokio::sync::Mutex::new(()),
                governance,
                noise,
                categories,
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

    /// A domain's decryption keys, from one share of every transcryptor.
    async fn client(&self, domain: &str) -> Result<Arc<DomainClient>, TrustError> {
        let mut clients = self.inner.clients.lock().await;
        if let Some(c) = clients.get(domain) {
            return Ok(c.clone());
        }
        let mut shares = Vec::with_capacity(self.inner.links.len());
        for l in &self.inner.links {
            shares.push(l.key_share("trust", domain).await?);
        }
        let c = Arc::new(self.inner.federation.client(&shares));
        clients.insert(domain.to_owned(), c.clone());
        Ok(c)
    }

    async fn chain(
        &self,
        requester: &str,
        from: &str,
        to: &str,
        grant: Option<SignedGrant>,
        items: Vec<Item>,
    ) -> Result<Vec<EncryptedPseudonym>, TrustError> {
        let mut out = Vec::with_capacity(items.len());
        for batch in items.chunks(MAX_BATCH) {
            let req = TranscryptRequest {
                requester: requester.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
                grant: grant.clone(),
                items: batch.to_vec(),
            };
            out.extend(
                run_chain(&self.inner.links, req)
                    .await?
                    .into_iter()
                    .map(|i| i.ct),
            );
        }
        Ok(out)
    }

    /// The member's enrolment ciphertext, created on first use.
    #[tracing::instrument(skip_all)]
    pub async fn enrolment(&self, member: MemberId) -> Result<EncryptedPseudonym, TrustError> {
        let stored = match self.inner.store.trust_enrolment(member).await? {
            Some(ct) => ct,
            None => {
                let ct = self.inner.federation.enrol(&mut self.rng());
                let kept = self
                    .inner
                    .store
                    .enrol_trust_member(member, &ct.to_bytes(), self.inner.clock.now())
                    .await?;
                self.inner
                    .audit
                    .record(AuditEvent::new(Actor::Node, Action::TrustEnrol).subject(member))
                    .await?;
                kept
            }
        };
        EncryptedPseudonym::from_slice(&stored).ok_or(TrustError::MalformedCiphertext)
    }

    /// The member's enrolment ciphertext moved into `domain` by every
    /// transcryptor. The transcryptors see the trust as the requester, never
    /// a member id.
    async fn moved(
        &self,
        member: MemberId,
        domain: &str,
    ) -> Result<EncryptedPseudonym, TrustError> {
        let item = Item {
            ct: self.enrolment(member).await?,
            key: self.inner.federation.origin_key(),
        };
        let cts = self
            .chain("trust", ORIGIN, domain, None, vec![item])
            .await?;
        cts.first().copied().ok_or(TrustError::MalformedCiphertext)
    }

    /// The member's pseudonym in one of the trust's or a co-op's domains.
    async fn pseudonym_in(&self, member: MemberId, domain: &str) -> Result<Pseudonym, TrustError> {
        let ct = self.moved(member, domain).await?;
        Ok(self.client(domain).await?.decrypt(&ct))
    }

    /// Refuses an unknown or deleted organisation.
    async fn require_org(&self, org: OrgId) -> Result<(), TrustError> {
        match self.inner.store.org(org).await? {
            Some(row) if row.deleted_at.is_none() => Ok(()),
            _ => Err(TrustError::NotFound("organisation")),
        }
    }

    /// The member's card for a co-op: that co-op's pseudonym for them (64
    /// hex), which the member hands to the co-op like a loyalty card number.
    #[tracing::instrument(skip_all)]
    pub async fn card(&self, member: MemberId, org: OrgId) -> Result<String, TrustError> {
        self.require_org(org).await?;
        Ok(self.pseudonym_in(member, &coop_domain(org)).await?.to_hex())
    }

    /// Stores pseudonymised receipts; one ingest at a time decides the bins'
    /// cap. Receipts of members who erased their data are dropped (their
    /// positions are returned), checked under the same lock `forget` takes.
    /// `skip_present` also drops receipts already stored (a member's forwarded
    /// receipts have ids fixed per record).
    async fn store_rows(
        &self,
        rows: Vec<TrustReceiptRow>,
        skip_present: bool,
    ) -> Result<Stored, TrustError> {
        let _one_at_a_time = self.inner.ingest.lock().await;
        let tags: Vec<[u8; 32]> = rows
            .iter()
            .map(|r| r.tag)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let gone: std::collections::HashSet<[u8; 32]> = self
            .inner
            .store
            .trust_erased_among(&tags)
            .await?
            .into_iter()
            .collect();
        let mut erased = Vec::new();
        let rows: Vec<TrustReceiptRow> = rows
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| {
                if gone.contains(&r.tag) {
                    erased.push(i);
                    None
                } else {
                    Some(r)
                }
            })
            .collect();
        let rows = if skip_present {
            let ids: Vec<TrustReceiptId> = rows.iter().map(|r| r.id).collect();
            let present = self.inner.store.trust_receipts_present(&ids).await?;
            rows.into_iter()
                .filter(|r| !present.contains(&r.id))
                .collect()
        } else {
            rows
        };
        self.inner
            .store
            .insert_trust_receipts(&rows, self.inner.governance.max_values_per_member)
            .await?;
        Ok(Stored {
            stored: rows.len(),
            erased,
        })
    }

    fn tag(&self, domain: &str, p: &Pseudonym) -> [u8; 32] {
        self.inner.keys.trust_tag(domain, &p.to_bytes())
    }

    fn check_receipt(&self, r: &ReceiptIn) -> Result<Checked, TrustError> {
        let pseudonym = Pseudonym::from_hex(&r.pseudonym).ok_or(TrustError::Invalid(
            "`pseudonym` is the member's 64-hex pseudonym for this co-op",
        ))?;
        let day = parse_day(r)?;
        if !self.inner.governance.areas.iter().any(|a| a == &r.area) {
            return Err(TrustError::UnknownArea);
        }
        if r.items.is_empty() || r.items.len() > MAX_ITEMS {
            return Err(TrustError::Invalid("a receipt has 1 to 100 items"));
        }
        let mut items = Vec::with_capacity(r.items.len());
        for i in &r.items {
            let c = self
                .inner
                .by_slug
                .get(&i.category)
                .and_then(|ix| self.inner.categories.get(*ix))
                .ok_or_else(|| {
                    TrustError::UnknownCategory(i.category.chars().take(64).collect())
                })?;
            if c.sensitive {
                return Err(TrustError::SensitiveCategory(c.slug.clone()));
            }
            if !(0..=MAX_AMOUNT_CENTS).contains(&i.amount_cents) {
                return Err(TrustError::Invalid("an amount is 0 to 100,000,000 cents"));
            }
            items.push((c.id, i.amount_cents));
        }
        let amount = match r.amount_cents {
            Some(a) => a,
            None => items.iter().map(|(_, a)| *a).sum(),
        };
        if !(0..=MAX_AMOUNT_CENTS).contains(&amount) {
            return Err(TrustError::Invalid("an amount is 0 to 100,000,000 cents"));
        }
        Ok(Checked {
            pseudonym,
            day,
            area: r.area.clone(),
            amount,
            items,
        })
    }

    /// Pseudonymises and stores a co-op's receipts: all or none.
    #[tracing::instrument(skip_all)]
    pub async fn submit(
        &self,
        org: OrgId,
        receipts: &[ReceiptIn],
    ) -> Result<Submitted, TrustError> {
        let result = self.submit_inner(org, receipts).await;
        let (outcome, object) = match &result {
            Ok(s) if !s.erased.is_empty() => (
                Outcome::Ok,
                format!(
                    "{} receipts, {} of members who erased their data dropped",
                    receipts.len(),
                    s.erased.len()
                ),
            ),
            Ok(_) => (Outcome::Ok, format!("{} receipts", receipts.len())),
            Err(_) => (Outcome::Failed, format!("{} receipts", receipts.len())),
        };
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Organisation(org), Action::TrustReceiptsSubmit)
                    .object(object)
                    .outcome(outcome),
            )
            .await?;
        result
    }

    async fn submit_inner(
        &self,
        org: OrgId,
        receipts: &[ReceiptIn],
    ) -> Result<Submitted, TrustError> {
        if receipts.is_empty() || receipts.len() > MAX_RECEIPTS {
            return Err(TrustError::Invalid("a submission has 1 to 1,000 receipts"));
        }
        let checked = receipts
            .iter()
            .map(|r| self.check_receipt(r))
            .collect::<Result<Vec<_>, _>>()?;
        let domain = coop_domain(org);
        let coop = self.client(&domain).await?;
        let mut rng = self.rng();
        let items: Vec<Item> = checked
            .iter()
            .map(|c| Item {
                ct: coop.encrypt_pseudonym(&c.pseudonym, &mut rng),
                key: coop.key(),
            })
            .collect();
        let research_cts = self
            .chain(&org.to_string(), &domain, RESEARCH, None, items.clone())
            .await?;
        let research = self.client(RESEARCH).await?;
        let now = self.inner.clock.now();
        let rows: Vec<TrustReceiptRow> = checked
            .into_iter()
            .zip(items)
            .zip(research_cts)
            .map(|((c, source), rct)| TrustReceiptRow {
                id: TrustReceiptId::generate(self.inner.random.as_ref()),
                org,
                tag: self.tag(RESEARCH, &research.decrypt(&rct)),
                source_ct: source.ct.to_bytes().to_vec(),
                research_ct: rct.to_bytes().to_vec(),
                day: c.day,
                area: c.area,
                amount_cents: c.amount,
                created_at: now,
                items: c.items,
            })
            .collect();
        let Stored { stored, erased } = self.store_rows(rows, false).await?;
        Ok(Submitted {
            stored,
            erased,
            coarsened: "time to the day, location to the area; the member's pseudonym stored only encrypted and as a keyed hash",
        })
    }

    /// The member forwards their own vault receipts from `org` to the trust,
    /// as if that co-op had submitted them: the member's consent is this
    /// request. Items are mapped to taxonomy topics by `topic_of` (the
    /// offers taxonomy's category map); special categories and unmapped
    /// items stay in the vault. A receipt forwarded twice is stored once.
    #[tracing::instrument(skip_all)]
    pub async fn forward(
        &self,
        member: MemberId,
        org: OrgId,
        area: &str,
        receipts: &[(me2b_domain::RecordId, &me2b_domain::record::Receipt)],
        topic_of: &(dyn Fn(&str) -> Option<String> + Send + Sync),
    ) -> Result<Forwarded, TrustError> {
        self.require_org(org).await?;
        if !self.inner.governance.areas.iter().any(|a| a == area) {
            return Err(TrustError::UnknownArea);
        }
        let mut left_out = 0;
        let mut candidates = Vec::new();
        for (record, r) in receipts {
            let mut items = Vec::new();
            for i in r.items.as_slice() {
                let c = topic_of(i.category.as_str())
                    .and_then(|slug| self.inner.by_slug.get(&slug).copied())
                    .and_then(|ix| self.inner.categories.get(ix))
                    .filter(|c| !c.sensitive);
                match c {
                    Some(c) => {
                        let qty = i64::from(u32::from(i.quantity));
                        let price = i64::from(i.unit_price.minor);
                        items.push((c.id, qty.saturating_mul(price).clamp(0, MAX_AMOUNT_CENTS)));
                    }
                    None => left_out += 1,
                }
            }
            if items.is_empty() {
                continue;
            }
            // The same record always gets the same id here: a keyed hash, so
            // the id says nothing about the member.
            let h = self.inner.keys.trust_tag(
                "forwarded-receipt",
                &[
                    member.as_bytes().as_slice(),
                    record.as_bytes().as_slice(),
                    org.as_bytes().as_slice(),
                ]
                .concat(),
            );
            let id = TrustReceiptId::from_slice(&h[..16])
                .map_err(|_| TrustError::Invalid("receipt id"))?;
            let day = i32::try_from(
                r.purchased_at
                    .timestamp()
                    .unix_millis()
                    .div_euclid(MS_PER_DAY),
            )
            .map_err(|_| TrustError::Invalid("purchase time out of range"))?;
            let amount = i64::from(r.total.minor).clamp(0, MAX_AMOUNT_CENTS);
            candidates.push((id, day, amount, items));
        }
        let present = self
            .inner
            .store
            .trust_receipts_present(&candidates.iter().map(|c| c.0).collect::<Vec<_>>())
            .await?;
        let already = present.len();
        candidates.retain(|c| !present.contains(&c.0));
        let mut forwarded = 0;
        if !candidates.is_empty() {
            let source = self.moved(member, &coop_domain(org)).await?;
            let research = self.moved(member, RESEARCH).await?;
            let tag = self.tag(RESEARCH, &self.client(RESEARCH).await?.decrypt(&research));
            let now = self.inner.clock.now();
            let rows: Vec<TrustReceiptRow> = candidates
                .into_iter()
                .map(|(id, day, amount, items)| TrustReceiptRow {
                    id,
                    org,
                    tag,
                    source_ct: source.to_bytes().to_vec(),
                    research_ct: research.to_bytes().to_vec(),
                    day,
                    area: area.to_owned(),
                    amount_cents: amount,
                    created_at: now,
                    items,
                })
                .collect();
            // Checked again under the ingest lock: a concurrent forward of the
            // same receipts may have stored them meanwhile.
            forwarded = self.store_rows(rows, true).await?.stored;
        }
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::TrustReceiptsSubmit)
                    .subject(member)
                    .object(format!("{forwarded} receipts forwarded as {org}'s"))
                    .terms(
                        "research-and-development",
                        "purchases-and-spending-habit",
                        "pseudonymise",
                    ),
            )
            .await?;
        Ok(Forwarded {
            forwarded,
            already,
            items_left_out: left_out,
            coarsened: "time to the day, location to the area you chose; special categories stay in your vault",
        })
    }

    fn budget_for(&self, org: OrgId, purpose: Option<&str>) -> Result<(String, f64), TrustError> {
        let g = &self.inner.governance;
        match purpose {
            Some(p) => g
                .research_budgets
                .get(p)
                .map(|b| (format!("research:{p}"), *b))
                .ok_or_else(|| {
                    TrustError::NoBudget(format!(
                        "research:{}",
                        p.chars().take(40).collect::<String>()
                    ))
                }),
            None => Ok((
                format!("org:{org}"),
                g.org_budgets
                    .get(&org.to_string())
                    .copied()
                    .unwrap_or(g.default_org_budget),
            )),
        }
    }

    fn scope(&self, org: OrgId, scope: Scope, research: bool) -> Result<String, TrustError> {
        match (scope, research) {
            (Scope::Own, _) => Ok(org.to_string()),
            (Scope::All, true) => Ok("*".to_owned()),
            (Scope::All, false) => Err(TrustError::Forbidden(
                "questions about all co-ops need a research purpose",
            )),
        }
    }

    fn category_id(&self, slug: &str) -> Result<i64, TrustError> {
        let c = self
            .inner
            .by_slug
            .get(slug)
            .and_then(|i| self.inner.categories.get(*i))
            .ok_or_else(|| TrustError::UnknownCategory(slug.chars().take(64).collect()))?;
        if c.sensitive {
            return Err(TrustError::SensitiveCategory(c.slug.clone()));
        }
        Ok(c.id)
    }

    /// Answers a question with differential privacy, charging the requester's
    /// budget first. Every question is audited with its ε, or why it was refused.
    #[tracing::instrument(skip_all)]
    pub async fn ask(&self, org: OrgId, ask: &Ask) -> Result<Insight, TrustError> {
        let result = self.ask_inner(org, ask).await;
        let (outcome, note) = match &result {
            Ok(i) => (Outcome::Ok, format!("ε {}", i.budget.epsilon_spent_now)),
            Err(e) => (
                Outcome::Denied,
                format!("refused: {}", crate::error_code(e)),
            ),
        };
        let mut event = AuditEvent::new(Actor::Organisation(org), Action::TrustQuery)
            .object(format!("{} ({note})", ask.question.kind()))
            .outcome(outcome);
        event.purpose = ask.purpose.as_ref().map(|p| format!("research:{p}"));
        self.inner.audit.record(event).await?;
        result
    }

    async fn ask_inner(&self, org: OrgId, ask: &Ask) -> Result<Insight, TrustError> {
        let eps = ask.epsilon;
        if !(eps.is_finite() && eps > 0.0 && eps <= 10.0) {
            return Err(TrustError::Invalid("ε is a number in (0, 10]"));
        }
        let (requester, budget) = self.budget_for(org, ask.purpose.as_deref())?;
        let research = ask.purpose.is_some();
        let store = &self.inner.store;
        let g = &self.inner.governance;
        // Everything that can be refused is checked before the budget is charged.
        enum Plan {
            Count(String, Option<(TrustDim, i64)>),
            Sum(String, i64),
            Hist(String, By),
            Overlap(String, String),
        }
        let plan = match &ask.question {
            Question::Count {
                scope,
                category,
                area,
            } => {
                let s = self.scope(org, *scope, research)?;
                let filter = match (category, area) {
                    (Some(_), Some(_)) => {
                        return Err(TrustError::Invalid(
                            "count by a category or an area, not both",
                        ))
                    }
                    (Some(c), None) => Some((TrustDim::Category, self.category_id(c)?)),
                    (None, Some(a)) => {
                        if !g.areas.contains(a) {
                            return Err(TrustError::UnknownArea);
                        }
                        Some((TrustDim::Area, pack_area(a)))
                    }
                    (None, None) => None,
                };
                Plan::Count(s, filter)
            }
            Question::Sum { scope, upper_cents } => {
                let s = self.scope(org, *scope, research)?;
                match upper_cents {
                    Some(u) if *u > 0 && *u <= MAX_AMOUNT_CENTS => Plan::Sum(s, *u),
                    _ => return Err(TrustError::UnboundedSum),
                }
            }
            Question::Histogram { scope, by } => {
                Plan::Hist(self.scope(org, *scope, research)?, *by)
            }
            Question::Overlap { a, b } => {
                let a = match a {
                    Some(a) if *a != org && !research => {
                        return Err(TrustError::Forbidden(
                            "a co-op asks about overlaps with its own members",
                        ))
                    }
                    Some(a) => *a,
                    None => org,
                };
                if a == *b {
                    return Err(TrustError::Invalid(
                        "an overlap is between two different co-ops",
                    ));
                }
                Plan::Overlap(a.to_string(), b.to_string())
            }
        };
        let needed =
            i64::try_from(micros_up(eps)).map_err(|_| TrustError::Invalid("ε too large"))?;
        let budget_m = i64::try_from(micros_down(budget))
            .map_err(|_| TrustError::Invalid("budget too large"))?;
        let spent = match store.trust_charge(&requester, needed, budget_m).await? {
            BudgetCharge::Charged { spent } => spent,
            BudgetCharge::Refused { spent } => {
                return Err(TrustError::OverBudget {
                    requester,
                    budget,
                    spent: spent as f64 / 1e6,
                    needed: needed as f64 / 1e6,
                })
            }
        };
        let eps_charged = needed as f64 / 1e6;
        let noise = self.inner.noise.as_ref();
        let min = g.min_cohort;
        let figure = match plan {
            Plan::Count(s, None) => Figure::Count(insights::count(
                noise,
                store.trust_member_count(&s).await?,
                eps_charged,
                min,
            )?),
            Plan::Count(s, Some((dim, value))) => {
                let n = store
                    .trust_bin_counts(&s, dim)
                    .await?
                    .into_iter()
                    .find(|(v, _)| *v == value)
                    .map(|(_, n)| n)
                    .unwrap_or(0);
                Figure::Count(insights::count(noise, n, eps_charged, min)?)
            }
            Plan::Overlap(a, b) => Figure::Count(insights::count(
                noise,
                store.trust_overlap(&a, &b).await?,
                eps_charged,
                min,
            )?),
            Plan::Sum(s, upper) => {
                let (n, sum) = store.trust_clamped_sum(&s, upper).await?;
                Figure::Sum(insights::aggregate_sum(
                    noise,
                    n,
                    sum,
                    upper,
                    eps_charged,
                    min,
                )?)
            }
            Plan::Hist(s, by) => {
                let (labels, values): (Vec<String>, Vec<i64>) = match by {
                    By::Category => self
                        .inner
                        .categories
                        .iter()
                        .filter(|c| !c.sensitive)
                        .map(|c| (c.slug.clone(), c.id))
                        .unzip(),
                    By::Area => g.areas.iter().map(|a| (a.clone(), pack_area(a))).unzip(),
                };
                let dim = match by {
                    By::Category => TrustDim::Category,
                    By::Area => TrustDim::Area,
                };
                let found: HashMap<i64, u64> =
                    store.trust_bin_counts(&s, dim).await?.into_iter().collect();
                let counts: Vec<u64> = values
                    .iter()
                    .map(|v| found.get(v).copied().unwrap_or(0))
                    .collect();
                Figure::Histogram(insights::histogram(
                    noise,
                    &labels,
                    &counts,
                    g.max_values_per_member,
                    eps_charged,
                    min,
                )?)
            }
        };
        let budget_state = Self::budget_state(requester, eps_charged, spent, budget_m);
        if let Figure::Count(Answer { value: None, .. }) = &figure {
            return Err(TrustError::BelowThreshold { min_cohort: min });
        }
        Ok(Insight {
            figure,
            budget: budget_state,
        })
    }

    fn budget_state(
        requester: String,
        now: f64,
        spent_micros: i64,
        budget_micros: i64,
    ) -> BudgetState {
        BudgetState {
            requester,
            epsilon_spent_now: now,
            spent: spent_micros as f64 / 1e6,
            budget: budget_micros as f64 / 1e6,
            remaining: (budget_micros - spent_micros).max(0) as f64 / 1e6,
        }
    }

    /// ε spent and left for an organisation (and its research purposes).
    pub async fn budgets(&self, org: OrgId) -> Result<Vec<BudgetState>, TrustError> {
        let mut out = Vec::new();
        let (r, b) = self.budget_for(org, None)?;
        let mut entries = vec![(r, b)];
        for (p, b) in &self.inner.governance.research_budgets {
            entries.push((format!("research:{p}"), *b));
        }
        for (requester, budget) in entries {
            let spent = self.inner.store.trust_spent(&requester).await?;
            let budget_m = i64::try_from(micros_down(budget)).unwrap_or(i64::MAX);
            out.push(Self::budget_state(requester, 0.0, spent, budget_m));
        }
        Ok(out)
    }

    /// The member consents to `from` sharing its receipts about them with `to`.
    #[tracing::instrument(skip_all)]
    pub async fn share(
        &self,
        member: MemberId,
        from: OrgId,
        to: OrgId,
        purpose: &str,
        days: i64,
    ) -> Result<SharingView, TrustError> {
        if purpose != CROSS_SELL {
            return Err(TrustError::Invalid(
                "the only sharing purpose is `cross-sell`",
            ));
        }
        if from == to {
            return Err(TrustError::Invalid(
                "sharing is between two different co-ops",
            ));
        }
        if !(1..=self.inner.governance.max_sharing_days).contains(&days) {
            return Err(TrustError::Invalid(
                "a sharing consent runs from 1 day to the trust's maximum (365 days unless its governance says otherwise)",
            ));
        }
        self.require_org(from).await?;
        self.require_org(to).await?;
        let now = self.inner.clock.now();
        let row = TrustSharingRow {
            id: SharingId::generate(self.inner.random.as_ref()),
            member,
            from_org: from,
            to_org: to,
            purpose: purpose.to_owned(),
            created_at: now,
            expires_at: Timestamp::from_unix_millis(
                now.unix_millis().saturating_add(days * MS_PER_DAY),
            ),
            withdrawn_at: None,
        };
        self.inner.store.insert_trust_sharing(&row).await?;
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::TrustSharing)
                    .subject(member)
                    .object(format!("give {} ({from} -> {to})", row.id))
                    .terms("marketing", "purchases-and-spending-habit", "transfer"),
            )
            .await?;
        self.sharing_view(&row).await
    }

    async fn org_name(&self, org: OrgId) -> Result<String, TrustError> {
        Ok(self
            .inner
            .store
            .org(org)
            .await?
            .map(|o| o.name)
            .unwrap_or_default())
    }

    /// The signed receipt of a sharing consent's latest event.
    async fn sharing_receipt(&self, r: &TrustSharingRow) -> Result<String, TrustError> {
        use me2b_consent::receipt::{sign, CitedTerm, Controller, Notice, ReceiptClaims};
        use me2b_consent::vocabulary::{Section, Vocabulary};
        use me2b_consent::{ConsentStatus, Method};
        use sha2::Digest as _;
        static VOCABULARY: std::sync::OnceLock<Option<Vocabulary>> = std::sync::OnceLock::new();
        let vocab = VOCABULARY
            .get_or_init(|| Vocabulary::shipped().ok())
            .as_ref();
        let cite = |section, id: &str| CitedTerm {
            id: id.to_owned(),
            iri: vocab
                .and_then(|v| v.term(section, id))
                .map(|t| t.iri.clone())
                .unwrap_or_default(),
        };
        let (from, to) = (
            self.org_name(r.from_org).await?,
            self.org_name(r.to_org).await?,
        );
        let notice = format!(
            "{from} may share the receipts it holds about you with {to} through the data trust, under {to}'s own pseudonym for you, for cross-selling, until {}.",
            r.expires_at.to_rfc3339()
        );
        let withdrawn = r.withdrawn_at.is_some();
        let version = if withdrawn { 2 } else { 1 };
        let keys = &self.inner.keys;
        let claims = ReceiptClaims {
            version: "me2b-consent-receipt/1".into(),
            receipt_id: format!("{}.{version}", r.id),
            event: if withdrawn {
                ConsentStatus::Withdrawn
            } else {
                ConsentStatus::Given
            },
            consent_id: r.id.to_string(),
            consent_version: version,
            controller: Controller {
                id: r.to_org.to_string(),
                name: to,
            },
            subject: keys.subject_pseudonym(&r.to_org, &r.member),
            purposes: vec![cite(Section::Purpose, "marketing")],
            categories: vec![cite(Section::Category, "purchases-and-spending-habit")],
            processing: vec![cite(Section::Processing, "transfer")],
            legal_basis: cite(Section::LegalBasis, "consent"),
            method: Method::Api,
            notice: Notice {
                version: "trust-sharing/1".into(),
                sha256: hex::encode(sha2::Sha256::digest(notice.as_bytes())),
            },
            given_at: r.created_at.to_rfc3339(),
            expires_at: r.expires_at.to_rfc3339(),
            withdrawn_at: r.withdrawn_at.map(Timestamp::to_rfc3339),
            issued_at: self.inner.clock.now().to_rfc3339(),
            issuer: format!("me2b node {}", keys.verifying_key().key_id()),
        };
        Ok(sign(keys, &claims))
    }

    async fn sharing_view(&self, r: &TrustSharingRow) -> Result<SharingView, TrustError> {
        Ok(SharingView {
            id: r.id,
            from: r.from_org,
            to: r.to_org,
            purpose: r.purpose.clone(),
            expires_at: r.expires_at,
            withdrawn: r.withdrawn_at.is_some(),
            receipt: self.sharing_receipt(r).await?,
        })
    }

    /// Withdraws a sharing consent: durable before this returns.
    #[tracing::instrument(skip_all)]
    pub async fn withdraw_sharing(
        &self,
        member: MemberId,
        id: SharingId,
    ) -> Result<(), TrustError> {
        if !self
            .inner
            .store
            .withdraw_trust_sharing(id, member, self.inner.clock.now())
            .await?
        {
            return Err(TrustError::NotFound("sharing consent"));
        }
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::TrustSharing)
                    .subject(member)
                    .object(format!("withdraw {id}")),
            )
            .await?;
        Ok(())
    }

    /// The member's sharing consents, each with its signed receipt (no
    /// transcryptor needed).
    pub async fn sharing_of(&self, member: MemberId) -> Result<Vec<SharingView>, TrustError> {
        let mut out = Vec::new();
        for r in self.inner.store.trust_sharing_of_member(member).await? {
            out.push(self.sharing_view(&r).await?);
        }
        Ok(out)
    }

    /// What the member sees of the trust: loyalty points and sharing consents.
    #[tracing::instrument(skip_all)]
    pub async fn member_view(&self, member: MemberId) -> Result<MemberTrust, TrustError> {
        let p = self.pseudonym_in(member, LOYALTY).await?;
        let loyalty_points = self
            .inner
            .store
            .trust_loyalty_balance(&self.tag(LOYALTY, &p))
            .await?;
        let sharing = self.sharing_of(member).await?;
        Ok(MemberTrust {
            loyalty_points,
            sharing,
        })
    }

    /// Receipts `from` holds about members who consented to share them with
    /// `to`, each under `to`'s own pseudonym for the member.
    #[tracing::instrument(skip_all)]
    pub async fn shared_with(
        &self,
        to: OrgId,
        from: OrgId,
    ) -> Result<Vec<SharedMember>, TrustError> {
        let now = self.inner.clock.now();
        let grants = self
            .inner
            .store
            .trust_sharing_between(from, to, now)
            .await?;
        let (from_d, to_d) = (coop_domain(from), coop_domain(to));
        let partner = self.client(&to_d).await?;
        let mut out = Vec::new();
        let mut delivered = Vec::new();
        for g in &grants {
            let rp = self.pseudonym_in(g.member, RESEARCH).await?;
            let receipts = self
                .inner
                .store
                .trust_receipts_of(from, &self.tag(RESEARCH, &rp))
                .await?;
            if receipts.is_empty() {
                continue;
            }
            let source_key = self.client(&from_d).await?.key();
            let items = receipts
                .iter()
                .map(|r| {
                    EncryptedPseudonym::from_slice(&r.source_ct)
                        .map(|ct| Item {
                            ct,
                            key: source_key,
                        })
                        .ok_or(TrustError::MalformedCiphertext)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let grant = Grant {
                v: 1,
                consent: g.id.to_string(),
                purpose: g.purpose.clone(),
                from: from_d.clone(),
                to: to_d.clone(),
                expires_at_ms: g.expires_at.unix_millis(),
            }
            .sign(&self.inner.keys);
            let cts = self
                .chain(&to.to_string(), &from_d, &to_d, Some(grant), items)
                .await?;
            let pseudonym = cts
                .first()
                .map(|ct| partner.decrypt(ct).to_hex())
                .ok_or(TrustError::MalformedCiphertext)?;
            delivered.push((g.member, g.id, receipts.len()));
            out.push(SharedMember {
                pseudonym,
                receipts: receipts
                    .iter()
                    .map(|r| SharedReceipt {
                        day: day_string(r.day),
                        area: r.area.clone(),
                        amount_cents: r.amount_cents,
                        items: r
                            .items
                            .iter()
                            .map(|(c, a)| ItemIn {
                                category: self
                                    .inner
                                    .by_id
                                    .get(c)
                                    .and_then(|i| self.inner.categories.get(*i))
                                    .map(|c| c.slug.clone())
                                    .unwrap_or_default(),
                                amount_cents: *a,
                            })
                            .collect(),
                    })
                    .collect(),
            });
        }
        // One entry per member whose receipts go (the member reads it in
        // their own audit trail and transparency view), and one summary.
        let mut events: Vec<AuditEvent> = delivered
            .iter()
            .map(|(member, sharing, n)| {
                AuditEvent::new(Actor::Organisation(to), Action::TrustCrossSell)
                    .subject(*member)
                    .object(delivery_object(*n, from, *sharing))
                    .terms("marketing", "purchases-and-spending-habit", "transfer")
            })
            .collect();
        events.push(
            AuditEvent::new(Actor::Organisation(to), Action::TrustCrossSell)
                .object(format!("from {from}: {} members", out.len()))
                .terms("marketing", "purchases-and-spending-habit", "transfer"),
        );
        self.inner.audit.record_all(events).await?;
        Ok(out)
    }

    /// Tries to move one co-op's pseudonyms into another's domain without a
    /// grant. The transcryptors refuse; used to show (and test) that they do.
    pub async fn transcrypt_without_consent(
        &self,
        from: OrgId,
        to: OrgId,
    ) -> Result<(), TrustError> {
        let (from_d, to_d) = (coop_domain(from), coop_domain(to));
        let c = self.client(&from_d).await?;
        let mut rng = self.rng();
        let item = Item {
            ct: c.encrypt_pseudonym(&Pseudonym::random(&mut rng), &mut rng),
            key: c.key(),
        };
        self.chain(&to.to_string(), &from_d, &to_d, None, vec![item])
            .await
            .map(|_| ())
    }

    /// Earns or redeems `points` (1 to 1,000,000) at `org` for the member
    /// behind the co-op's pseudonym; returns the new balance. A redemption
    /// never overdraws.
    #[tracing::instrument(skip_all)]
    pub async fn loyalty(
        &self,
        org: OrgId,
        pseudonym_hex: &str,
        op: Points,
        points: i64,
    ) -> Result<i64, TrustError> {
        if !(1..=MAX_POINTS).contains(&points) {
            return Err(TrustError::Invalid("points are 1 to 1,000,000"));
        }
        let points = match op {
            Points::Earn => points,
            Points::Redeem => -points,
        };
        let p = Pseudonym::from_hex(pseudonym_hex).ok_or(TrustError::Invalid(
            "`pseudonym` is the member's 64-hex pseudonym for this co-op",
        ))?;
        let domain = coop_domain(org);
        let c = self.client(&domain).await?;
        let item = Item {
            ct: c.encrypt_pseudonym(&p, &mut self.rng()),
            key: c.key(),
        };
        let cts = self
            .chain(&org.to_string(), &domain, LOYALTY, None, vec![item])
            .await?;
        let lp = self
            .client(LOYALTY)
            .await?
            .decrypt(cts.first().ok_or(TrustError::MalformedCiphertext)?);
        let tag = self.tag(LOYALTY, &lp);
        // A card of a member who erased their data starts no new ledger.
        let erased = !self
            .inner
            .store
            .trust_erased_among(&[tag])
            .await?
            .is_empty();
        let result = if erased {
            None
        } else {
            self.inner
                .store
                .trust_loyalty_apply(&tag, org, points, self.inner.clock.now())
                .await?
        };
        let kind = if points > 0 { "earn" } else { "redeem" };
        let why = if erased { ": member erased" } else { "" };
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Organisation(org), Action::TrustLoyalty)
                    .object(format!("{kind} {}{why}", points.abs()))
                    .outcome(if result.is_some() {
                        Outcome::Ok
                    } else {
                        Outcome::Denied
                    }),
            )
            .await?;
        if erased {
            return Err(TrustError::MemberErased);
        }
        result.ok_or(TrustError::InsufficientPoints)
    }

    /// Forgets an erased member: their pooled receipts (and what they added
    /// to every aggregate) and their loyalty points. Needs every transcryptor,
    /// to find the member's research and loyalty tags from their enrolment.
    /// Privacy budgets already spent stay spent: those answers were released.
    #[tracing::instrument(skip_all)]
    pub async fn forget(&self, member: MemberId) -> Result<u64, TrustError> {
        if self.inner.store.trust_enrolment(member).await?.is_none() {
            return Ok(0);
        }
        let research = self.pseudonym_in(member, RESEARCH).await?;
        let loyalty = self.pseudonym_in(member, LOYALTY).await?;
        let removed = {
            let _one_at_a_time = self.inner.ingest.lock().await;
            self.inner
                .store
                .trust_forget(
                    &self.tag(RESEARCH, &research),
                    &self.tag(LOYALTY, &loyalty),
                    self.inner.clock.now(),
                )
                .await?
        };
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Node, Action::TrustErase)
                    .subject(member)
                    .object(format!(
                        "{removed} receipts and the loyalty balance removed"
                    )),
            )
            .await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn receipt(day: Option<&str>, at: Option<&str>) -> ReceiptIn {
        ReceiptIn {
            pseudonym: String::new(),
            day: day.map(str::to_owned),
            at: at.map(str::to_owned),
            area: "NL-NH".into(),
            items: Vec::new(),
            amount_cents: None,
        }
    }

    #[test]
    fn times_are_coarsened_to_the_day() {
        let d = parse_day(&receipt(None, Some("2026-11-20T23:59:59+00:00"))).unwrap();
        assert_eq!(day_string(d), "2026-11-20");
        // The day of the time as given (its own offset), not of UTC.
        let d = parse_day(&receipt(None, Some("2026-11-20T00:30:00+01:00"))).unwrap();
        assert_eq!(day_string(d), "2026-11-20");
        assert_eq!(
            day_string(parse_day(&receipt(Some("1970-01-01"), None)).unwrap()),
            "1970-01-01"
        );
        assert!(parse_day(&receipt(Some("2026-11-20"), Some("2026-11-20T10:00:00Z"))).is_err());
        assert!(parse_day(&receipt(None, None)).is_err());
        assert!(parse_day(&receipt(Some("20-11-2026"), None)).is_err());
    }

    #[test]
    fn delivery_objects_read_back() {
        let org: OrgId = "6f1c1e2a-0000-4000-8000-000000000001".parse().unwrap();
        let id: SharingId = "6f1c1e2a-0000-4000-8000-000000000002".parse().unwrap();
        let o = delivery_object(3, org, id);
        assert_eq!(delivery_of(&o), Some((3, id.to_string().as_str())));
        assert_eq!(delivery_of("from x: 3 members"), None);
    }

    #[test]
    fn governance_files_are_checked() {
        assert_eq!(Governance::from_toml("").unwrap(), Governance::default());
        let g =
            Governance::from_toml("min_cohort = 50\nresearch_budgets = { \"food-poverty\" = 2.0 }")
                .unwrap();
        assert_eq!(g.min_cohort, 50);
        assert_eq!(g.research_budgets.get("food-poverty"), Some(&2.0));
        assert!(Governance::from_toml("min_cohort = 0").is_err());
        assert!(Governance::from_toml("areas = []").is_err());
        assert!(Governance::from_toml("areas = [\"a-very-long-area\"]").is_err());
        assert!(
            Governance::from_toml("budgets = 1").is_err(),
            "unknown keys are refused"
        );
    }

    proptest! {
        /// Untrusted day and time strings never panic, and whatever parses
        /// comes back as a plain `YYYY-MM-DD`.
        #[test]
        fn day_parsing_never_panics(day in "\\PC{0,40}", at in "\\PC{0,40}", which in 0u8..2) {
            let r = if which == 0 { receipt(Some(&day), None) } else { receipt(None, Some(&at)) };
            if let Ok(d) = parse_day(&r) {
                let s = day_string(d);
                prop_assert_eq!(s.len(), 10);
            }
        }

        /// Valid dates round-trip through the stored day number.
        #[test]
        fn valid_days_round_trip(y in 1970i32..2200, m in 1u8..=12, d in 1u8..=28) {
            let s = format!("{y:04}-{m:02}-{d:02}");
            prop_assert_eq!(day_string(parse_day(&receipt(Some(&s), None)).unwrap()), s);
        }
    }
}
