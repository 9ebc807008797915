//! The organisations' side: subscriptions, the feed of open intents, answers,
//! and the weekly counts released through the privacy accountant.

use super::{Intents, DELIVERY_LABEL};
use crate::model::*;
use crate::IntentError;
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::org::Roles;
use me2b_domain::{OrgId, Timestamp};
use me2b_dp::Pool;
use me2b_storage::{IntentAnswerRow, IntentRow, OrgRow, StorageError};
use std::collections::HashSet;

/// Intents per page of the feed.
pub const MAX_PAGE: u64 = 200;

/// How organisations see an intent's status at `now`: closed only from its
/// visible hour, so the moment it closed is not shown.
fn status_at(row: &IntentRow, now: Timestamp) -> IntentStatus {
    match row.closed_visible_at {
        Some(t) if row.closed && t <= now => IntentStatus::Closed,
        _ => IntentStatus::Open,
    }
}

impl Intents {
    /// The credential audiences `org` proved and may still use, as keys
    /// (`claim=value` and `claim=value@issuer` for each proof).
    async fn proven(&self, org: OrgId, now: Timestamp) -> Result<Vec<String>, IntentError> {
        let mut out = Vec::new();
        for p in self.inner.store.audience_proofs(org, now).await? {
            out.push(audience_key(&p.claim, &p.value, None));
            out.push(audience_key(&p.claim, &p.value, Some(p.issuer)));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn org_view(
        &self,
        row: IntentRow,
        org: &OrgRow,
        roles: &Roles,
        proven: &[String],
        answered: bool,
        now: Timestamp,
    ) -> Result<OrgIntentView, IntentError> {
        let body: IntentBody =
            serde_json::from_slice(&row.body).map_err(|_| IntentError::Corrupt("intent"))?;
        let status = status_at(&row, now);
        Ok(OrgIntentView {
            id: IntentId(row.id),
            topic: row.topic,
            region: row.region,
            text: body.text,
            budget: body.budget,
            may_answer: status == IntentStatus::Open
                && body.audience.allows(org.kind, roles, proven),
            audience: body.audience,
            // The batch's boundary, not the hour it was made.
            published_at: floor_hour(row.visible_hour.unwrap_or(row.published_hour)).unix_millis(),
            deadline: floor_hour(row.deadline).unix_millis(),
            status,
            answered,
        })
    }

    /// Replaces what the organisation follows.
    #[tracing::instrument(skip_all)]
    pub async fn subscribe(
        &self,
        org: OrgId,
        sub: Subscription,
    ) -> Result<Subscription, IntentError> {
        if sub.topics.is_empty()
            || sub.topics.len() > MAX_SUBSCRIPTION_TERMS
            || sub.regions.len() > MAX_SUBSCRIPTION_TERMS
        {
            return Err(IntentError::Invalid(
                "a subscription names 1 to 50 topics and at most 50 areas",
            ));
        }
        let mut topics = Vec::new();
        for t in &sub.topics {
            self.topic(t)?;
            if !topics.contains(t) {
                topics.push(t.clone());
            }
        }
        let mut regions = Vec::new();
        for r in &sub.regions {
            self.region(r)?;
            if !regions.contains(r) {
                regions.push(r.clone());
            }
        }
        let row = self
            .inner
            .store
            .put_intent_subscription(org, &topics, &regions, self.now())
            .await?;
        Ok(Subscription {
            topics: row.topics,
            regions: row.regions,
        })
    }

    pub async fn subscription(&self, org: OrgId) -> Result<Option<Subscription>, IntentError> {
        Ok(self
            .inner
            .store
            .intent_subscription(org)
            .await?
            .map(|r| Subscription {
                topics: r.topics,
                regions: r.regions,
            }))
    }

    /// The topics an intent may have to match `followed`: each followed
    /// topic and every non-sensitive topic within it.
    fn expand(&self, followed: &[String]) -> Vec<String> {
        let t = &self.inner.taxonomy;
        let roots: Vec<_> = followed.iter().filter_map(|s| t.by_slug(s)).collect();
        t.topics()
            .iter()
            .filter_map(|topic| t.by_slug(&topic.slug))
            .filter(|idx| !t.is_sensitive(*idx) && roots.iter().any(|r| t.is_within(*idx, *r)))
            .map(|idx| t.slug(idx).to_owned())
            .collect()
    }

    /// The open intents on the topics and areas the organisation follows,
    /// the latest hour first (then in the order of their random ids).
    #[tracing::instrument(skip_all)]
    pub async fn feed(
        &self,
        org: &OrgRow,
        roles: &Roles,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<OrgIntentView>, IntentError> {
        self.release_due().await?;
        let Some(sub) = self.inner.store.intent_subscription(org.id).await? else {
            return Ok(Vec::new());
        };
        let now = self.now();
        let topics = self.expand(&sub.topics);
        let audiences = self.proven(org.id, now).await?;
        let rows = self
            .inner
            .store
            .open_intents(
                now,
                &topics,
                &sub.regions,
                &audiences,
                offset,
                limit.clamp(1, MAX_PAGE),
            )
            .await?;
        let answered: HashSet<[u8; 16]> = self
            .inner
            .store
            .intent_answers_of_org(org.id, now)
            .await?
            .into_iter()
            .map(|a| a.intent)
            .collect();
        rows.into_iter()
            .map(|r| {
                let a = answered.contains(&r.id);
                self.org_view(r, org, roles, &audiences, a, now)
            })
            .collect()
    }

    /// An intent `org` may see: released in a batch, not past its deadline,
    /// and of a credential audience only once `org` proved it (`proven`). One
    /// still waiting for its batch, or of an audience it did not prove, is
    /// unknown to it: the same answer as an id that never existed.
    async fn visible_intent(
        &self,
        id: IntentId,
        proven: &[String],
    ) -> Result<IntentRow, IntentError> {
        self.release_due().await?;
        self.inner
            .store
            .intent(&id.0, self.now())
            .await?
            .filter(|r| r.visible_hour.is_some())
            .filter(|r| r.audience_key.as_ref().is_none_or(|k| proven.contains(k)))
            .ok_or(IntentError::IntentNotFound)
    }

    /// One intent, open or closed, unless past its deadline.
    pub async fn intent_for_org(
        &self,
        org: &OrgRow,
        roles: &Roles,
        id: IntentId,
    ) -> Result<OrgIntentView, IntentError> {
        let proven = self.proven(org.id, self.now()).await?;
        let row = self.visible_intent(id, &proven).await?;
        let now = self.now();
        let answered = self
            .inner
            .store
            .intent_answers_of_org(org.id, now)
            .await?
            .iter()
            .any(|a| a.intent == id.0);
        self.org_view(row, org, roles, &proven, answered, now)
    }

    /// Answers an open intent, once per organisation.
    #[tracing::instrument(skip_all)]
    pub async fn answer(
        &self,
        org: &OrgRow,
        roles: &Roles,
        id: IntentId,
        input: AnswerInput,
    ) -> Result<OrgAnswerView, IntentError> {
        let proven = self.proven(org.id, self.now()).await?;
        let row = self.visible_intent(id, &proven).await?;
        let now = self.now();
        // Closed but not yet visibly: the answer is taken like any other and
        // shows closed from the visible hour (an error now would tell when
        // the member closed it).
        if status_at(&row, now) == IntentStatus::Closed {
            return Err(IntentError::IntentClosed);
        }
        let intent: IntentBody =
            serde_json::from_slice(&row.body).map_err(|_| IntentError::Corrupt("intent"))?;
        if !intent.audience.allows(org.kind, roles, &proven) {
            return Err(IntentError::NotAllowed);
        }
        input.price.check()?;
        let terms = check_text(
            "terms",
            &input.terms,
            MAX_TERMS_CHARS,
            IntentError::Invalid("an answer needs terms"),
        )?;
        let valid_until = floor_hour(Timestamp::from_unix_millis(input.valid_until));
        if valid_until <= now || valid_until > now.plus_seconds(MAX_VALIDITY_DAYS * 86_400) {
            return Err(IntentError::Invalid(
                "valid_until is a later hour, within a year",
            ));
        }
        if input.asks.len() > CONTACT_CATEGORIES.len() {
            return Err(IntentError::Invalid("asks names at most 8 categories"));
        }
        let mut asks = Vec::new();
        for c in &input.asks {
            if !CONTACT_CATEGORIES.contains(&c.as_str()) {
                return Err(IntentError::Invalid(
                    "asks names contact categories only: name, email-address, telephone-number, postal-code, physical-address, region, country, language",
                ));
            }
            if !asks.contains(c) {
                asks.push(c.clone());
            }
        }
        let max = self.inner.limits.answers_per_day;
        let since = floor_hour(now.plus_seconds(-86_400));
        if self
            .inner
            .store
            .count_intent_answers_since(org.id, since)
            .await?
            >= max
        {
            return Err(IntentError::AnswerRateLimited { max });
        }
        let body = AnswerBody {
            v: 1,
            price: input.price,
            terms,
            asks,
        };
        let a = IntentAnswerRow {
            id: AnswerId::generate(self.inner.rng.as_ref()).0,
            intent: row.id,
            org: org.id,
            created_hour: floor_hour(now),
            valid_until,
            keep_until: row.deadline,
            body: serde_json::to_vec(&body).map_err(|_| IntentError::Corrupt("answer"))?,
            accepted: false,
            delivery: None,
        };
        match self.inner.store.insert_intent_answer(&a).await {
            Ok(()) => {}
            Err(StorageError::Conflict) => return Err(IntentError::AlreadyAnswered),
            Err(e) => return Err(e.into()),
        }
        self.inner
            .audit
            .record(
                AuditEvent::new(Actor::Organisation(org.id), Action::IntentAnswer)
                    .object(AnswerId(a.id)),
            )
            .await?;
        self.answer_view(a)
    }

    fn answer_view(&self, a: IntentAnswerRow) -> Result<OrgAnswerView, IntentError> {
        let body: AnswerBody =
            serde_json::from_slice(&a.body).map_err(|_| IntentError::Corrupt("answer"))?;
        let contact = match (&a.delivery, a.accepted) {
            (Some(sealed), true) => {
                let plain = self
                    .inner
                    .keys
                    .open_node_secret(DELIVERY_LABEL, sealed)
                    .map_err(|_| IntentError::Corrupt("delivery"))?;
                let d: Delivery =
                    serde_json::from_slice(&plain).map_err(|_| IntentError::Corrupt("delivery"))?;
                Some(d.contact)
            }
            _ => None,
        };
        Ok(OrgAnswerView {
            answer_id: AnswerId(a.id),
            intent_id: IntentId(a.intent),
            price: body.price,
            terms: body.terms,
            asks: body.asks,
            valid_until: a.valid_until.unix_millis(),
            created_at: a.created_hour.unix_millis(),
            status: if a.accepted {
                AnswerStatus::Accepted
            } else {
                AnswerStatus::Open
            },
            contact,
        })
    }

    /// The organisation's answers: open, closed (not accepted; nothing more),
    /// or accepted with the contact the member chose.
    #[tracing::instrument(skip_all)]
    pub async fn answers_of_org(&self, org: OrgId) -> Result<Vec<OrgAnswerView>, IntentError> {
        self.release_due().await?;
        let now = self.now();
        let mut out = Vec::new();
        for a in self.inner.store.intent_answers_of_org(org, now).await? {
            let closed = !a.accepted
                && match self.inner.store.intent(&a.intent, now).await? {
                    Some(row) => status_at(&row, now) == IntentStatus::Closed,
                    None => true,
                };
            let mut v = self.answer_view(a)?;
            if closed {
                v.status = AnswerStatus::Closed;
            }
            out.push(v);
        }
        Ok(out)
    }

    /// The noisy counts of intents published in the last full week, per
    /// topic. One release per week, shared by every organisation: the first
    /// to ask in a week has it charged to the intents' pool (its allowance);
    /// later askers see the same release at no cost.
    #[tracing::instrument(skip_all)]
    pub async fn counts(&self, asker: OrgId) -> Result<IntentCounts, IntentError> {
        let now = self.now();
        let week = week_of(now);
        if let Some(b) = self.inner.store.intent_release(week).await? {
            return serde_json::from_slice(&b).map_err(|_| IntentError::Corrupt("release"));
        }
        let from = Timestamp::from_unix_millis((week - 1) * WEEK_MS);
        let to = Timestamp::from_unix_millis(week * WEEK_MS);
        let l = self.inner.limits;
        let pool = Pool::Intents;
        let mechanism = format!(
            "histogram of intents per topic, sensitivity {} (intents one member may publish in a week), {}",
            l.intents_per_week,
            self.inner.noise.mechanism()
        );
        self.inner
            .accountant
            .charge(me2b_dp::Release {
                asker,
                pools: vec![pool],
                epsilon: l.counts_epsilon,
                mechanism: mechanism.clone(),
                what: format!("intents published per topic, week {}", week - 1),
            })
            .await?;
        // Bins: the top-level topics (an intent counts in its topic's); few
        // bins, so that noise alone rarely crosses the threshold.
        let t = &self.inner.taxonomy;
        let top = |slug: &str| {
            let idx = t.by_slug(slug)?;
            t.lineage(idx)
                .iter()
                .find(|a| t.lineage(*a).iter().count() == 1)
                .map(|a| t.slug(a).to_owned())
        };
        let mut categories: Vec<String> = t
            .topics()
            .iter()
            .filter_map(|topic| t.by_slug(&topic.slug))
            .filter(|i| !t.is_sensitive(*i) && t.lineage(*i).iter().count() == 1)
            .map(|i| t.slug(i).to_owned())
            .collect();
        categories.sort();
        let mut counted: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for (topic, n) in self.inner.store.intent_counts_published(from, to).await? {
            if let Some(root) = top(&topic) {
                *counted.entry(root).or_default() += n;
            }
        }
        let counts: Vec<u64> = categories
            .iter()
            .map(|c| counted.get(c).copied().unwrap_or(0))
            .collect();
        let sensitivity = u32::try_from(l.intents_per_week).unwrap_or(u32::MAX).max(1);
        // The minimum cohort plus a margin: noise of this scale crosses it in
        // a bin with no intent at all with probability at most 5% / bins.
        let scale = f64::from(sensitivity) / l.counts_epsilon;
        let bins = categories.len().max(1) as f64;
        let margin = (scale * (bins / 0.05).ln()).ceil().max(0.0) as u64;
        let threshold = self.inner.accountant.min_cohort().saturating_add(margin);
        let h = me2b_dp::mechanisms::histogram(
            self.inner.noise.as_ref(),
            &categories,
            &counts,
            sensitivity,
            l.counts_epsilon,
            threshold,
        )?;
        let release = IntentCounts {
            v: 1,
            published_from: from.unix_millis(),
            published_to: to.unix_millis(),
            bins: h
                .bins
                .into_iter()
                .filter_map(|b| {
                    b.value.map(|count| CountBin {
                        topic: b.category,
                        count,
                    })
                })
                .collect(),
            epsilon: h.epsilon,
            noise_scale: h.noise_scale,
            min_cohort: h.min_cohort,
            mechanism,
            pool: pool.to_string(),
        };
        let bytes = serde_json::to_vec(&release).map_err(|_| IntentError::Corrupt("release"))?;
        let kept = self.inner.store.put_intent_release(week, &bytes).await?;
        serde_json::from_slice(&kept).map_err(|_| IntentError::Corrupt("release"))
    }
}
