//! The offers service: publishing for organisations, matching and answers for
//! members (inside their vault), aggregate counts for organisations.
//!
//! What crosses from a member to an organisation: only what the member chooses
//! on accepting (a consent grant to the offer's contact request, through the
//! consent flow and its decision point) and aggregate counts (members reached,
//! members who accepted) released above a minimum cohort with noise. Which
//! offers matched a member, were shown, dismissed or marked not relevant stays
//! in the member's encrypted vault; the audit log records that matching ran,
//! not what it found.

use crate::derive::{self, Suggestion};
use crate::matching::{self, Catalogue, Match, Mode, Profile};
use crate::offer::{self, OfferInput, PublishedOffer};
use crate::stats::{self, OfferGovernance, OfferStats, Stream, StreamState, STREAM_VERSION};
use crate::taxonomy::Taxonomy;
use crate::OfferError;
use me2b_audit::AuditLog;
use me2b_consent::{Consents, GrantInput, Method};
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::record::{Interest, InterestSource, OfferHistory, RecordContent};
use me2b_domain::text::Slug;
use me2b_domain::{Clock, OfferId, OrgId, Random, RecordId, Timestamp};
use me2b_dp::{Accountant, Noise, Pool};
use me2b_storage::{OfferRow, Store};
use me2b_vault::{MemberSession, Vault, VaultError};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

const DAY_MS: i64 = 86_400_000;
/// Days of showings kept per offer in the member's history.
const MAX_SHOWN_DAYS: usize = 100;

/// Lifecycle of an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    /// Waiting for every coalition partner to endorse its part.
    PendingPartners,
    Active,
    Withdrawn,
}

impl OfferStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::PendingPartners => "pending_partners",
            Self::Active => "active",
            Self::Withdrawn => "withdrawn",
        }
    }

    fn parse(s: &str) -> Result<Self, OfferError> {
        match s {
            "pending_partners" => Ok(Self::PendingPartners),
            "active" => Ok(Self::Active),
            "withdrawn" => Ok(Self::Withdrawn),
            _ => Err(OfferError::Corrupt("offer status")),
        }
    }
}

/// An offer as its parties see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OfferView {
    pub status: OfferStatus,
    pub offer: PublishedOffer,
    /// At publication: whether the offer has statistics, and what they cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<StatisticsPlan>,
}

/// What publishing did about an offer's statistics.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StatisticsPlan {
    /// True when the offer's statistics stream was opened.
    pub released: bool,
    /// ε charged now for this period (0 when none); again in each later
    /// period the stream releases in.
    pub epsilon: f64,
    pub pool: String,
    pub release_every_days: u32,
    /// The audience pool's budget for this publisher after the charge, or
    /// why there are no statistics.
    pub note: String,
}

/// How a member answers an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Hide this offer.
    Dismiss,
    /// Hide it and suppress offers on the same topics.
    NotRelevant,
    /// Accept; optionally share what the offer's contact request asks for.
    Accept,
}

/// The result of accepting.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OfferAccepted)]
pub struct Accepted {
    pub offer_id: OfferId,
    /// The consent the member granted to share contact details, if they chose to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<me2b_domain::ConsentId>,
    pub disclosed: String,
}

type Cached = Option<((u64, Timestamp), Arc<Catalogue>)>;

/// Counter increments not yet written, summed across members: members reached
/// and members who accepted, per offer.
type PendingCounts = HashMap<OfferId, (u64, u64)>;

/// How offer statistics are released (the noise is OpenDP's).
pub const STREAM_MECHANISM: &str =
    "running count: noisy increments on a schedule (simple counting mechanism), discrete Laplace (OpenDP)";

/// How often pending counts are written. Writing them in batches, not at the
/// moment a member's vault matched, keeps the database's write pattern from
/// linking a member's request to the offers they were first shown.
pub const COUNT_FLUSH_SECONDS: u64 = 60;

/// What the offers service is built from.
pub struct OffersDeps {
    pub store: Arc<dyn Store>,
    pub vault: Vault,
    pub consents: Consents,
    pub audit: AuditLog,
    pub taxonomy: Arc<Taxonomy>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
    pub noise: Arc<dyn Noise>,
    pub governance: OfferGovernance,
    /// The one privacy accountant (shared with the trust).
    pub accountant: Accountant,
}

impl std::fmt::Debug for OffersDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffersDeps")
            .field("governance", &self.governance)
            .finish_non_exhaustive()
    }
}

/// The offers service. Cheap to clone.
#[derive(Clone)]
pub struct Offers {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    vault: Vault,
    consents: Consents,
    audit: AuditLog,
    taxonomy: Arc<Taxonomy>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    noise: Arc<dyn Noise>,
    governance: OfferGovernance,
    accountant: Accountant,
    catalogue: RwLock<Cached>,
    pending: Mutex<PendingCounts>,
}

impl std::fmt::Debug for Offers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offers")
            .field("topics", &self.inner.taxonomy.len())
            .field("governance", &self.inner.governance)
            .finish_non_exhaustive()
    }
}

impl Offers {
    pub fn new(d: OffersDeps) -> Self {
        let inner = Inner {
            store: d.store,
            vault: d.vault,
            consents: d.consents,
            audit: d.audit,
            taxonomy: d.taxonomy,
            clock: d.clock,
            rng: d.rng,
            noise: d.noise,
            governance: d.governance,
            accountant: d.accountant,
            catalogue: RwLock::new(None),
            pending: Mutex::new(HashMap::new()),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Starts the background task that, every [`COUNT_FLUSH_SECONDS`],
    /// writes pending counts and draws the statistics releases that are due;
    /// it ends when the service is dropped. Counts still pending at a crash
    /// are lost (at most one interval's worth of aggregates);
    /// `Node::shutdown` writes them.
    pub fn start_count_flusher(&self) {
        let me = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(std::time::Duration::from_secs(COUNT_FLUSH_SECONDS));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = me.upgrade() else { return };
                let service = Offers { inner };
                if let Err(e) = service.release_due().await {
                    tracing::warn!(error = %e, "could not write offer counts or releases; will retry");
                }
            }
        });
    }

    /// Adds to the pending counts.
    fn count(&self, id: OfferId, reached: u64, accepted: u64) {
        if let Ok(mut p) = self.inner.pending.lock() {
            let e = p.entry(id).or_insert((0, 0));
            e.0 += reached;
            e.1 += accepted;
        }
    }

    /// Writes the pending counts now.
    pub async fn flush_counts(&self) -> Result<(), OfferError> {
        flush(&self.inner.pending, self.inner.store.as_ref()).await
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.inner.taxonomy
    }

    fn row(
        &self,
        o: &PublishedOffer,
        status: OfferStatus,
        version: i64,
        created_at: Timestamp,
    ) -> OfferRow {
        OfferRow {
            id: o.id,
            org: o.org,
            status: status.as_str().to_owned(),
            version,
            created_at,
            updated_at: self.inner.clock.now(),
            valid_until: o.valid_until,
            body: o.to_bytes(),
        }
    }

    async fn load(
        &self,
        id: OfferId,
    ) -> Result<(OfferRow, PublishedOffer, OfferStatus), OfferError> {
        let row = self
            .inner
            .store
            .offer(id)
            .await?
            .ok_or(OfferError::NotFound)?;
        let offer = PublishedOffer::from_bytes(&row.body)?;
        let status = OfferStatus::parse(&row.status)?;
        Ok((row, offer, status))
    }

    fn is_party(offer: &PublishedOffer, org: OrgId) -> bool {
        offer.org == org || offer.coalition.iter().any(|p| p.org == org)
    }

    // ---- organisations ------------------------------------------------------

    /// Publishes an offer after checking it (topics, sensitive policy, rule)
    /// and the organisation's number of live offers, and opens its
    /// statistics stream if the offers' audience pool allows. A bundle waits
    /// for its partners' endorsements before reaching vaults.
    #[tracing::instrument(skip_all)]
    pub async fn publish(&self, org: OrgId, input: OfferInput) -> Result<OfferView, OfferError> {
        let me = self
            .inner
            .store
            .org(org)
            .await?
            .ok_or(OfferError::NotParty)?;
        let mut names = Vec::new();
        for p in &input.coalition {
            if let Some(o) = self
                .inner
                .store
                .org(p.org)
                .await?
                .filter(|o| o.deleted_at.is_none())
            {
                names.push((o.id, o.name));
            }
        }
        if let Some(req) = input.contact_request {
            let owned = self
                .inner
                .store
                .consent_request(req)
                .await?
                .is_some_and(|r| r.org == org);
            if !owned {
                return Err(OfferError::invalid(
                    "contact_request",
                    "must be one of this organisation's consent requests",
                ));
            }
        }
        let id = OfferId::generate(self.inner.rng.as_ref());
        let now = self.inner.clock.now();
        let lookup = |o: OrgId| names.iter().find(|(i, _)| *i == o).map(|(_, n)| n.clone());
        let offer = offer::validate(input, id, org, &me.name, &lookup, &self.inner.taxonomy, now)?;
        let max = self.inner.governance.max_live_offers;
        if self.inner.store.count_live_offers(org, now).await? >= max {
            return Err(OfferError::TooManyLiveOffers { max });
        }
        let status = if offer.coalition.is_empty() {
            OfferStatus::Active
        } else {
            OfferStatus::PendingPartners
        };
        self.inner
            .store
            .insert_offer(&self.row(&offer, status, 1, now))
            .await?;
        let statistics = self.open_stream(&offer).await?;
        self.inner
            .audit
            .record(AuditEvent::new(Actor::Organisation(org), Action::OfferPublish).object(id))
            .await?;
        Ok(OfferView {
            status,
            offer,
            statistics: Some(statistics),
        })
    }

    /// Charges the offer's statistics stream to the audience pool (once, for
    /// every release it will have) and stores it; without budget, the offer
    /// has no statistics.
    async fn open_stream(&self, offer: &PublishedOffer) -> Result<StatisticsPlan, OfferError> {
        let g = &self.inner.governance;
        let pool = Pool::OffersAudience;
        let charge = self
            .inner
            .accountant
            .charge(me2b_dp::Release {
                asker: offer.org,
                pools: vec![pool],
                epsilon: g.epsilon_per_offer,
                mechanism: STREAM_MECHANISM.to_owned(),
                what: format!("offer {} statistics stream", offer.id),
            })
            .await;
        let (state, plan) = match charge {
            Ok(c) => {
                let left = c
                    .pools
                    .first()
                    .map(|b| (b.allowance - b.allowance_spent).max(0.0))
                    .unwrap_or(0.0);
                let mut stream = Stream::open(
                    c.epsilon,
                    pool.to_string(),
                    self.inner.clock.now(),
                    g.release_every_days,
                    offer.valid_until,
                )?;
                stream
                    .charged_periods
                    .push(self.inner.accountant.period().0);
                let plan = StatisticsPlan {
                    released: true,
                    epsilon: c.epsilon,
                    pool: pool.to_string(),
                    release_every_days: g.release_every_days,
                    note: format!(
                        "statistics released every {} days and when the offer closes; ε {} charged to the offers' audience pool now, and again in each later period in which they release; {} of your allowance left this period",
                        g.release_every_days,
                        me2b_dp::governance::fmt_eps(c.epsilon),
                        me2b_dp::governance::fmt_eps(left),
                    ),
                };
                (
                    StreamState::Live {
                        v: STREAM_VERSION,
                        stream,
                    },
                    plan,
                )
            }
            Err(
                e @ (me2b_dp::DpError::OverBudget { .. } | me2b_dp::DpError::NoAllowance { .. }),
            ) => {
                let why =
                    format!("the offers' audience pool has no budget left for this offer ({e})");
                let plan = StatisticsPlan {
                    released: false,
                    epsilon: 0.0,
                    pool: pool.to_string(),
                    release_every_days: g.release_every_days,
                    note: format!("no statistics: {why}; the offer is live all the same"),
                };
                (
                    StreamState::None {
                        v: STREAM_VERSION,
                        why,
                    },
                    plan,
                )
            }
            Err(e) => return Err(e.into()),
        };
        self.inner
            .store
            .replace_offer_release(offer.id, 0, &state.to_bytes(), state.next_due())
            .await?;
        Ok(plan)
    }

    /// Draws the offer's next release if it is due at `now` (or, with
    /// `close`, its last one now), once: two nodes racing for it draw it
    /// once (compare-and-swap on the release sequence). Counts pending in
    /// memory are written first.
    async fn release_if_due(&self, id: OfferId, close: bool) -> Result<(), OfferError> {
        self.flush_counts().await?;
        for _ in 0..5 {
            let now = self.inner.clock.now();
            let counters = self
                .inner
                .store
                .offer_counters(id)
                .await?
                .ok_or(OfferError::Corrupt("offer counters"))?;
            let StreamState::Live { v, mut stream } =
                StreamState::from_stored(counters.released.as_deref())
            else {
                return Ok(());
            };
            let due = stream.next_due().is_some_and(|t| t <= now);
            if stream.closed || !(due || close) {
                return Ok(());
            }
            let offer = PublishedOffer::from_bytes(
                &self
                    .inner
                    .store
                    .offer(id)
                    .await?
                    .ok_or(OfferError::NotFound)?
                    .body,
            )?;
            // The stream's releases in a period are charged once in it.
            let period = self.inner.accountant.period();
            let paid = stream.charged_periods.contains(&period.0)
                || self.charge_period(&offer, &stream, period).await?;
            let released = paid;
            if paid {
                if !stream.charged_periods.contains(&period.0) {
                    stream.charged_periods.push(period.0);
                }
                stream.release(
                    self.inner.noise.as_ref(),
                    counters.reached,
                    counters.accepted,
                    now,
                    close,
                )?;
            } else {
                stream.skip(now, close);
            }
            let org = offer.org;
            let state = StreamState::Live { v, stream };
            if self
                .inner
                .store
                .replace_offer_release(
                    id,
                    counters.release_seq,
                    &state.to_bytes(),
                    state.next_due(),
                )
                .await?
            {
                if released {
                    self.inner
                        .accountant
                        .record_prepaid(
                            org,
                            &[Pool::OffersAudience],
                            STREAM_MECHANISM,
                            &format!("offer {id} statistics release"),
                        )
                        .await?;
                }
                return Ok(());
            }
        }
        Err(OfferError::Conflict)
    }

    /// Charges a stream's ε for a period in which it releases; false when
    /// the audience pool (or the publisher's allowance) has none left.
    async fn charge_period(
        &self,
        offer: &PublishedOffer,
        stream: &Stream,
        period: me2b_dp::Period,
    ) -> Result<bool, OfferError> {
        let label = self.inner.accountant.period_label(period);
        match self
            .inner
            .accountant
            .charge(me2b_dp::Release {
                asker: offer.org,
                pools: vec![Pool::OffersAudience],
                epsilon: stream.epsilon,
                mechanism: STREAM_MECHANISM.to_owned(),
                what: format!("offer {} statistics stream, period {label}", offer.id),
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(me2b_dp::DpError::OverBudget { .. } | me2b_dp::DpError::NoAllowance { .. }) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes pending counts and draws every statistics release that is due.
    pub async fn release_due(&self) -> Result<usize, OfferError> {
        self.flush_counts().await?;
        let due = self
            .inner
            .store
            .offers_release_due(self.inner.clock.now())
            .await?;
        for id in &due {
            self.release_if_due(*id, false).await?;
        }
        Ok(due.len())
    }

    /// A coalition partner endorses its part of a bundle.
    #[tracing::instrument(skip_all)]
    pub async fn endorse(&self, org: OrgId, id: OfferId) -> Result<OfferView, OfferError> {
        let (row, mut offer, status) = self.load(id).await?;
        let Some(part) = offer.coalition.iter_mut().find(|p| p.org == org) else {
            return Err(OfferError::NotParty);
        };
        if status == OfferStatus::Withdrawn {
            return Err(OfferError::NotActive("withdrawn"));
        }
        if part.endorsed_at.is_none() {
            part.endorsed_at = Some(self.inner.clock.now());
        }
        let status = if offer.fully_endorsed() {
            OfferStatus::Active
        } else {
            OfferStatus::PendingPartners
        };
        let next = self.row(&offer, status, row.version + 1, row.created_at);
        if !self.inner.store.update_offer(&next, row.version).await? {
            return Err(OfferError::Conflict);
        }
        self.inner
            .audit
            .record(AuditEvent::new(Actor::Organisation(org), Action::OfferEndorse).object(id))
            .await?;
        Ok(OfferView {
            status,
            offer,
            statistics: None,
        })
    }

    /// The publisher withdraws an offer; vaults drop it at their next refresh.
    #[tracing::instrument(skip_all)]
    pub async fn withdraw(&self, org: OrgId, id: OfferId) -> Result<OfferView, OfferError> {
        let (row, offer, _) = self.load(id).await?;
        if offer.org != org {
            return Err(OfferError::NotParty);
        }
        let next = self.row(
            &offer,
            OfferStatus::Withdrawn,
            row.version + 1,
            row.created_at,
        );
        if !self.inner.store.update_offer(&next, row.version).await? {
            return Err(OfferError::Conflict);
        }
        self.inner
            .audit
            .record(AuditEvent::new(Actor::Organisation(org), Action::OfferWithdraw).object(id))
            .await?;
        // The offer closes: its statistics get their last release now.
        self.release_if_due(id, true).await?;
        Ok(OfferView {
            status: OfferStatus::Withdrawn,
            offer,
            statistics: None,
        })
    }

    /// Offers this organisation published, and bundles it is a partner in.
    pub async fn list_for_org(&self, org: OrgId) -> Result<Vec<OfferView>, OfferError> {
        let mut out = Vec::new();
        for row in self.inner.store.offers_by_org(org).await? {
            out.push(OfferView {
                status: OfferStatus::parse(&row.status)?,
                offer: PublishedOffer::from_bytes(&row.body)?,
                statistics: None,
            });
        }
        // Bundles where this organisation is a partner (pending ones included,
        // so it can endorse them).
        for row in self
            .inner
            .store
            .active_offers(Timestamp::from_unix_millis(0))
            .await?
            .into_iter()
            .chain(self.pending_rows().await?)
        {
            let offer = PublishedOffer::from_bytes(&row.body)?;
            if offer.org != org && offer.coalition.iter().any(|p| p.org == org) {
                out.push(OfferView {
                    status: OfferStatus::parse(&row.status)?,
                    offer,
                    statistics: None,
                });
            }
        }
        Ok(out)
    }

    async fn pending_rows(&self) -> Result<Vec<OfferRow>, OfferError> {
        let mut rows = Vec::new();
        for o in self.inner.store.list_orgs().await? {
            for r in self.inner.store.offers_by_org(o.id).await? {
                if r.status == OfferStatus::PendingPartners.as_str() {
                    rows.push(r);
                }
            }
        }
        Ok(rows)
    }

    /// Aggregate counts for a party of the offer, as of its latest scheduled
    /// release (drawn now if one is due): noisy, above a minimum cohort.
    /// Reading never draws anything that is not due.
    #[tracing::instrument(skip_all)]
    pub async fn stats(&self, org: OrgId, id: OfferId) -> Result<OfferStats, OfferError> {
        let (_, offer, _) = self.load(id).await?;
        if !Self::is_party(&offer, org) {
            return Err(OfferError::NotFound);
        }
        let now = self.inner.clock.now();
        let counters = self
            .inner
            .store
            .offer_counters(id)
            .await?
            .ok_or(OfferError::Corrupt("offer counters"))?;
        if counters.release_due.is_some_and(|t| t <= now) {
            self.release_if_due(id, false).await?;
        }
        let counters = self
            .inner
            .store
            .offer_counters(id)
            .await?
            .ok_or(OfferError::Corrupt("offer counters"))?;
        self.inner
            .audit
            .record(AuditEvent::new(Actor::Organisation(org), Action::OfferStatsRead).object(id))
            .await?;
        Ok(stats::publish(
            &StreamState::from_stored(counters.released.as_deref()),
            self.inner.accountant.min_cohort(),
            STREAM_MECHANISM,
        ))
    }

    // ---- the catalogue every vault receives --------------------------------

    /// The published catalogue: the same for everyone.
    pub async fn catalogue(&self) -> Result<Arc<Catalogue>, OfferError> {
        let stamp = self.inner.store.offers_stamp().await?;
        if let Ok(guard) = self.inner.catalogue.read() {
            if let Some((s, c)) = guard.as_ref() {
                if *s == stamp {
                    return Ok(c.clone());
                }
            }
        }
        let rows = self
            .inner
            .store
            .active_offers(self.inner.clock.now())
            .await?;
        let mut offers = Vec::with_capacity(rows.len());
        for r in rows {
            match PublishedOffer::from_bytes(&r.body) {
                Ok(o) if o.fully_endorsed() => offers.push(o),
                Ok(_) => {}
                Err(_) => tracing::warn!(offer = %r.id, "skipping an unreadable offer"),
            }
        }
        // Compiling rules is CPU work: keep it off the async workers.
        let taxonomy = self.inner.taxonomy.clone();
        let (catalogue, rejected) =
            tokio::task::spawn_blocking(move || Catalogue::ingest(offers, &taxonomy))
                .await
                .map_err(|_| OfferError::Corrupt("catalogue ingest"))?;
        let mut keep = true;
        for r in rejected {
            if r.transient {
                // Built again on the next request rather than kept without it.
                keep = false;
                tracing::warn!(offer = %r.offer, "offer left out of this catalogue: its rule could not be checked now");
            } else {
                tracing::warn!(offer = %r.offer, "offer left out of the catalogue: it no longer checks");
            }
        }
        let catalogue = Arc::new(catalogue);
        if keep {
            if let Ok(mut guard) = self.inner.catalogue.write() {
                *guard = Some((stamp, catalogue.clone()));
            }
        }
        Ok(catalogue)
    }

    /// The published offers, as any vault (or anyone) can fetch them.
    pub async fn published(&self) -> Result<Vec<PublishedOffer>, OfferError> {
        let c = self.catalogue().await?;
        Ok(c.offers().map(|o| o.as_ref().clone()).collect())
    }

    // ---- members: inside the vault ------------------------------------------

    fn history(records: &[me2b_vault::RecordView]) -> (Option<(RecordId, i64)>, OfferHistory) {
        for r in records {
            if let RecordContent::OfferHistory(h) = &r.content {
                return (Some((r.id, r.revision)), h.clone());
            }
        }
        (None, OfferHistory::default())
    }

    async fn save_history(
        &self,
        s: &MemberSession,
        at: Option<(RecordId, i64)>,
        h: OfferHistory,
    ) -> Result<(), OfferError> {
        let content = RecordContent::OfferHistory(h);
        match at {
            Some((id, rev)) => {
                self.inner
                    .vault
                    .update_record(s, id, content, Some(rev))
                    .await?;
            }
            None => {
                self.inner.vault.create_record(s, content).await?;
            }
        }
        Ok(())
    }

    /// Matches the catalogue for the member inside their vault, records the
    /// showings in their history, and counts first showings in aggregate.
    #[tracing::instrument(skip_all)]
    pub async fn feed(&self, s: &MemberSession) -> Result<Vec<Match>, OfferError> {
        // A member opted out of direct marketing is matched against nothing
        // (and nothing is counted) until they opt back in.
        if self
            .inner
            .store
            .marketing_opted_out_since(s.member)
            .await?
            .is_some()
        {
            return Ok(Vec::new());
        }
        let catalogue = self.catalogue().await?;
        // Two tries: a concurrent answer may have changed the history record.
        for attempt in 0..2 {
            let records = self.inner.vault.all_records(s).await?;
            let contents: Vec<&RecordContent> = records.iter().map(|r| &r.content).collect();
            let profile = Profile::from_records(contents.iter().copied(), &self.inner.taxonomy);
            let now = self.inner.clock.now();
            let outcome = matching::match_member(
                &catalogue,
                &profile,
                &self.inner.taxonomy,
                now,
                Mode::Prefilter,
            );
            let (at, mut history) = Self::history(&records);
            // Offers gone from the catalogue (expired, withdrawn) need no more
            // frequency-cap or dismissal bookkeeping; what was accepted stays.
            let before = (history.shown.len(), history.dismissed.len());
            history.shown.retain(|id, _| catalogue.get(*id).is_some());
            history.dismissed.retain(|id| catalogue.get(*id).is_some());
            let pruned = before != (history.shown.len(), history.dismissed.len());
            let today = now.unix_millis().div_euclid(DAY_MS);
            let mut first_shown = Vec::new();
            for m in &outcome.matches {
                let days = history.shown.entry(m.offer.id).or_default();
                if days.is_empty() {
                    first_shown.push(m.offer.id);
                }
                days.push(today);
                if days.len() > MAX_SHOWN_DAYS {
                    days.remove(0);
                }
            }
            if !outcome.matches.is_empty() || pruned {
                match self.save_history(s, at, history).await {
                    Ok(()) => {}
                    Err(OfferError::Vault(VaultError::RevisionConflict { .. })) if attempt == 0 => {
                        continue
                    }
                    Err(e) => return Err(e),
                }
            }
            for id in first_shown {
                self.count(id, 1, 0);
            }
            self.inner
                .audit
                .record(
                    AuditEvent::new(Actor::Member(s.member), Action::OfferMatch).subject(s.member),
                )
                .await?;
            return Ok(outcome.matches);
        }
        Err(OfferError::Conflict)
    }

    /// The member answers an offer. Accepting may share contact details through
    /// the offer's consent request; nothing else reaches the organisation.
    #[tracing::instrument(skip_all)]
    pub async fn answer(
        &self,
        s: &MemberSession,
        id: OfferId,
        answer: Answer,
        share_contact: bool,
    ) -> Result<Accepted, OfferError> {
        let catalogue = self.catalogue().await?;
        let offer = catalogue
            .get(id)
            .map(|e| e.offer.clone())
            .ok_or(OfferError::NotFound)?;
        if share_contact && (answer != Answer::Accept || offer.contact_request.is_none()) {
            return Err(OfferError::NoContactRequest);
        }
        let records = self.inner.vault.all_records(s).await?;
        let (at, mut history) = Self::history(&records);
        let mut newly_accepted = false;
        match answer {
            Answer::Dismiss => {
                history.dismissed.insert(id);
            }
            Answer::NotRelevant => {
                history.not_relevant.insert(id);
                for t in offer.all_topics() {
                    if let Ok(slug) = Slug::try_from(t) {
                        history.suppressed_topics.insert(slug);
                    }
                }
            }
            Answer::Accept => newly_accepted = history.accepted.insert(id),
        }
        // The grant first: if it is refused (e.g. already answered), nothing
        // else has changed.
        let mut consent_id = None;
        if share_contact {
            if let Some(req) = offer.contact_request {
                let record = self
                    .inner
                    .consents
                    .grant(
                        s,
                        req,
                        GrantInput {
                            purposes: None,
                            categories: None,
                        },
                        Method::Web,
                    )
                    .await?;
                consent_id = Some(record.id);
            }
        }
        self.save_history(s, at, history).await?;
        if newly_accepted {
            self.count(id, 0, 1);
        }
        self.inner
            .audit
            .record(AuditEvent::new(Actor::Member(s.member), Action::OfferAnswer).subject(s.member))
            .await?;
        let disclosed = match (answer, consent_id) {
            (Answer::Accept, Some(_)) => format!(
                "{} receives what you granted in the consent; withdraw it any time under /v1/me/consents",
                offer.org_name
            ),
            _ => format!(
                "nothing: {} only sees how many members accepted, as a noisy count above {}",
                offer.org_name, self.inner.accountant.min_cohort()
            ),
        };
        Ok(Accepted {
            offer_id: id,
            consent_id,
            disclosed,
        })
    }

    /// Interest suggestions from the member's own receipts.
    pub async fn suggestions(&self, s: &MemberSession) -> Result<Vec<Suggestion>, OfferError> {
        let records = self.inner.vault.all_records(s).await?;
        Ok(derive::suggest(
            records.iter().map(|r| &r.content),
            &self.inner.taxonomy,
        ))
    }

    /// Accepts (adds as an interest) or rejects (never suggested again) one
    /// suggestion. Only a current suggestion can be accepted, so sensitive
    /// topics can never enter this way.
    #[tracing::instrument(skip_all)]
    pub async fn answer_suggestion(
        &self,
        s: &MemberSession,
        topic: &str,
        accept: bool,
    ) -> Result<(), OfferError> {
        let records = self.inner.vault.all_records(s).await?;
        let current = derive::suggest(records.iter().map(|r| &r.content), &self.inner.taxonomy);
        if !current.iter().any(|c| c.topic == topic) {
            return Err(OfferError::invalid(
                "topic",
                "not one of your current suggestions",
            ));
        }
        let slug =
            Slug::try_from(topic).map_err(|_| OfferError::invalid("topic", "not a topic"))?;
        if accept {
            self.inner
                .vault
                .create_record(
                    s,
                    RecordContent::Interest(Interest {
                        topic: slug,
                        note: None,
                        source: InterestSource::FromReceipts,
                        explicit_consent: false,
                    }),
                )
                .await?;
        } else {
            let (at, mut history) = Self::history(&records);
            history.rejected_suggestions.insert(slug);
            self.save_history(s, at, history).await?;
        }
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Member(s.member), Action::InterestSuggestionAnswer)
                    .subject(s.member),
            )
            .await?;
        Ok(())
    }
}

/// Takes the pending counts and writes them; on failure they are put back.
async fn flush(pending: &Mutex<PendingCounts>, store: &dyn Store) -> Result<(), OfferError> {
    let batch: PendingCounts = match pending.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return Ok(()),
    };
    let mut failed: PendingCounts = HashMap::new();
    let mut first_error = None;
    for (id, (reached, accepted)) in batch {
        if let Err(e) = store.count_offer_events(id, reached, accepted).await {
            failed.insert(id, (reached, accepted));
            first_error.get_or_insert(e);
        }
    }
    if !failed.is_empty() {
        if let Ok(mut p) = pending.lock() {
            for (id, (r, a)) in failed {
                let e = p.entry(id).or_insert((0, 0));
                e.0 += r;
                e.1 += a;
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
