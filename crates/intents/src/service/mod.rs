//! The intents service: publishing, answers and acceptance for members
//! (inside their vault), subscriptions, answers and counts for
//! organisations, deletion at the deadline.

mod member;
mod org;

use crate::model::*;
use crate::{BatchGovernance, IntentError};
use me2b_audit::AuditLog;
use me2b_consent::Consents;
use me2b_crypto::Keyring;
use me2b_domain::batch::ReleaseGate;
use me2b_domain::{Clock, MemberId, Random, Timestamp};
use me2b_dp::{Accountant, Noise, Pool};
use me2b_offers::Taxonomy;
use me2b_storage::Store;
use me2b_vault::Vault;
use std::sync::Arc;

/// The abuse limits and the counts' ε.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Intents one member may publish in a week. Also the sensitivity of the
    /// weekly counts (one member adds at most this many intents to them).
    pub intents_per_week: u64,
    /// Answers one organisation may make in 24 hours.
    pub answers_per_day: u64,
    /// ε of one weekly release of counts.
    pub counts_epsilon: f64,
    /// When new intents become visible to organisations.
    pub batch: BatchGovernance,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            intents_per_week: 5,
            answers_per_day: 100,
            counts_epsilon: 0.2,
            batch: BatchGovernance::default(),
        }
    }
}

/// What the intents service is built from.
pub struct IntentsDeps {
    pub store: Arc<dyn Store>,
    pub keys: Arc<Keyring>,
    pub vault: Vault,
    pub consents: Consents,
    pub audit: AuditLog,
    pub taxonomy: Arc<Taxonomy>,
    /// The trust's area codes: the only regions an intent may name.
    pub areas: Vec<String>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
    pub noise: Arc<dyn Noise>,
    pub accountant: Accountant,
    pub limits: Limits,
}

impl std::fmt::Debug for IntentsDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentsDeps")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The intents service. Cheap to clone.
#[derive(Clone)]
pub struct Intents {
    inner: Arc<IntentsDeps>,
    /// The batch schedule, and the next boundary to look at: a boundary's
    /// batch is fixed once it passed, so it is looked at once.
    gate: Arc<ReleaseGate<BatchGovernance>>,
}

impl std::fmt::Debug for Intents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intents")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// How often expired intents are deleted in the background.
pub const PURGE_SECONDS: u64 = 600;
/// Weeks of publishing quota rows (and of released counts) kept: a member's
/// transparency view finds the intents' pool through them, over a budget
/// period of a month and the week its first release counts.
pub const KEEP_WEEKS: i64 = 6;
/// How long the operator keeps members' reports.
const REPORT_DAYS: i64 = 90;
/// Label under which accepted answers' deliveries are sealed.
const DELIVERY_LABEL: &str = "intent-delivery";

impl Intents {
    pub fn new(d: IntentsDeps) -> Self {
        Self {
            gate: Arc::new(ReleaseGate::with(d.limits.batch)),
            inner: Arc::new(d),
        }
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Deletes intents past their deadline with their unaccepted answers,
    /// old releases, quota rows and reports. Returns how many intents and
    /// answers went.
    #[tracing::instrument(skip_all)]
    pub async fn purge(&self) -> Result<u64, IntentError> {
        self.release_due().await?;
        let now = self.now();
        let n = self
            .inner
            .store
            .purge_intents(
                now,
                week_of(now) - KEEP_WEEKS,
                now.plus_seconds(-REPORT_DAYS * 86_400),
            )
            .await?;
        if n > 0 {
            self.inner
                .audit
                .record(
                    me2b_domain::audit::AuditEvent::new(
                        me2b_domain::audit::Actor::Node,
                        me2b_domain::audit::Action::IntentExpire,
                    )
                    .object(format!("{n} intents and answers")),
                )
                .await?;
        }
        Ok(n)
    }

    /// Releases the batch of the latest boundary if it is due (enough
    /// intents wait, or the oldest waited long enough): every intent waiting
    /// from before the boundary becomes visible to organisations at it, at
    /// once. Called before everything organisations read, and by the
    /// purger; returns how many intents became visible.
    #[tracing::instrument(skip_all)]
    pub async fn release_due(&self) -> Result<u64, IntentError> {
        let now = self.now();
        if !self.gate.open(now) {
            return Ok(0);
        }
        let b = self.gate.schedule().schedule();
        let boundary = b.boundary(now);
        let n = self
            .inner
            .store
            .release_intent_batch(boundary, b.min_batch, b.waited_by(boundary))
            .await?;
        self.gate.decided(&b, now);
        Ok(n)
    }

    /// Starts the background task that, every [`PURGE_SECONDS`], deletes what
    /// passed its deadline; it ends when the service is dropped.
    pub fn start_purger(&self) {
        let me = Arc::downgrade(&self.inner);
        let gate = self.gate.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(PURGE_SECONDS));
            loop {
                tick.tick().await;
                let Some(inner) = me.upgrade() else { return };
                let gate = gate.clone();
                if let Err(e) = (Intents { inner, gate }).purge().await {
                    tracing::warn!(error = %e, "could not delete expired intents; will retry");
                }
            }
        });
    }

    /// The member's quota tag of `week`: keyed on the member and the week
    /// under the node's key, pointing at no intent.
    pub(crate) fn quota_tag(&self, member: MemberId, week: i64) -> [u8; 32] {
        let mut input = member.as_bytes().to_vec();
        input.extend_from_slice(&week.to_be_bytes());
        self.inner.keys.trust_tag("intent-quota", &input)
    }

    /// The privacy pools of intents the member is in, for their transparency
    /// view: the intents' pool when they published in the last
    /// [`KEEP_WEEKS`] weeks (found through their quota tags, never through
    /// an intent).
    #[tracing::instrument(skip_all)]
    pub async fn member_pools(&self, member: MemberId) -> Result<Vec<Pool>, IntentError> {
        let now = week_of(self.now());
        let tags: Vec<[u8; 32]> = (now - KEEP_WEEKS..=now)
            .map(|w| self.quota_tag(member, w))
            .collect();
        Ok(if self.inner.store.intent_quota_rows(&tags).await? > 0 {
            vec![Pool::Intents]
        } else {
            Vec::new()
        })
    }

    /// A topic slug an intent or a subscription may name: known, not
    /// sensitive.
    fn topic(&self, slug: &str) -> Result<me2b_offers::taxonomy::TopicIdx, IntentError> {
        let t = &self.inner.taxonomy;
        let idx = t.by_slug(slug).ok_or(IntentError::UnknownTopic)?;
        if t.is_sensitive(idx) {
            return Err(IntentError::SensitiveTopic);
        }
        Ok(idx)
    }

    fn region(&self, code: &str) -> Result<(), IntentError> {
        if self.inner.areas.iter().any(|a| a == code) {
            Ok(())
        } else {
            Err(IntentError::UnknownRegion)
        }
    }
}
