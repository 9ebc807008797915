//! The member's side: publish, list with answers, withdraw, accept, report.
//! Everything here runs inside the member's session; the audit log names the
//! member, so it never names their intents, and dates these entries to the
//! hour (`record_hourly`) like the rest of the intents' data.

use super::{Intents, DELIVERY_LABEL};
use crate::model::*;
use crate::IntentError;
use me2b_consent::{ConsentRequestInput, Method};
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::record::{IntentRecord, RecordContent};
use me2b_domain::text::LongText;
use me2b_domain::RecordId;
use me2b_storage::{IntentReportRow, IntentRow, StorageError};
use me2b_vault::MemberSession;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One of the member's intents found in their vault, checked against the
/// node's copy (a record naming an intent without its secret is ignored).
struct Mine {
    record: RecordId,
    intent: MemberIntent,
}

fn owner_check(secret: &OwnerSecret) -> [u8; 32] {
    Sha256::digest(secret.0.as_bytes()).into()
}

impl Intents {
    fn audit_member(s: &MemberSession, action: Action) -> AuditEvent {
        AuditEvent::new(Actor::Member(s.member), action).subject(s.member)
    }

    /// The member's intents in their vault.
    async fn mine(&self, s: &MemberSession) -> Result<Vec<Mine>, IntentError> {
        let mut out = Vec::new();
        for r in self.inner.vault.all_records(s).await? {
            // A record the member wrote by hand that is no intent of ours is
            // left alone (and proves nothing: the secret decides).
            if let RecordContent::Intent(i) = r.content {
                if let Ok(intent) = serde_json::from_str::<MemberIntent>(i.intent.as_str()) {
                    out.push(Mine {
                        record: r.id,
                        intent,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The member's intent `id` and the node's copy (unless past its
    /// deadline), the secret checked in constant time.
    async fn find(
        &self,
        s: &MemberSession,
        id: IntentId,
    ) -> Result<(Mine, Option<IntentRow>), IntentError> {
        let mine = self
            .mine(s)
            .await?
            .into_iter()
            .find(|m| m.intent.id == id)
            .ok_or(IntentError::IntentNotFound)?;
        let row = self.inner.store.intent(&id.0, self.now()).await?;
        if let Some(r) = &row {
            let ok: bool = r
                .owner_check
                .ct_eq(&owner_check(&mine.intent.secret))
                .into();
            if !ok {
                return Err(IntentError::IntentNotFound);
            }
        }
        Ok((mine, row))
    }

    async fn save(&self, s: &MemberSession, m: &Mine) -> Result<(), IntentError> {
        let json = serde_json::to_string(&m.intent).map_err(|_| IntentError::Corrupt("intent"))?;
        let text = LongText::try_from(json).map_err(|_| IntentError::Corrupt("intent size"))?;
        self.inner
            .vault
            .update_record(
                s,
                m.record,
                RecordContent::Intent(IntentRecord { intent: text }),
                None,
            )
            .await?;
        Ok(())
    }

    /// Publishes an intent under a fresh one-time pseudonym.
    #[tracing::instrument(skip_all)]
    pub async fn publish(
        &self,
        s: &MemberSession,
        input: IntentInput,
    ) -> Result<MemberIntentView, IntentError> {
        self.topic(&input.topic)?;
        let text = check_text("text", &input.text, MAX_TEXT_CHARS, IntentError::Empty)?;
        self.region(&input.region)?;
        input.budget.check()?;
        if !(1..=MAX_DEADLINE_DAYS).contains(&input.deadline_days) {
            return Err(IntentError::Invalid("deadline_days is 1 to 30"));
        }
        input.audience.check()?;
        if let Audience::Credential {
            issuer: Some(issuer),
            ..
        } = &input.audience
        {
            if !matches!(self.inner.store.org(*issuer).await?, Some(o) if o.deleted_at.is_none()) {
                return Err(IntentError::Invalid(
                    "the audience's issuer is not an organisation of this node",
                ));
            }
        }
        if !input.acknowledge_free_text_warning {
            return Err(IntentError::WarningNotAcknowledged(FREE_TEXT_WARNING));
        }
        let now = self.now();
        // The quota row is keyed by a tag of the member and the week under
        // the node's key: it counts, and points at no intent.
        let week = week_of(now);
        let tag = self.quota_tag(s.member, week);
        let max = self.inner.limits.intents_per_week;
        if !self.inner.store.bump_intent_quota(&tag, week, max).await? {
            return Err(IntentError::IntentRateLimited { max });
        }
        let id = IntentId::generate(self.inner.rng.as_ref());
        let mut secret = [0u8; 32];
        self.inner.rng.fill(&mut secret);
        let secret = OwnerSecret(hex::encode(secret));
        let published = floor_hour(now);
        let deadline = published.plus_seconds(i64::from(input.deadline_days) * 86_400);
        let intent = MemberIntent {
            v: 1,
            id,
            secret,
            topic: input.topic,
            region: input.region,
            text,
            budget: input.budget,
            audience: input.audience,
            published_at: published.unix_millis(),
            deadline: deadline.unix_millis(),
            withdrawn: false,
            accepted: None,
        };
        let body = IntentBody {
            v: 1,
            text: intent.text.clone(),
            budget: intent.budget.clone(),
            audience: intent.audience.clone(),
        };
        // The vault first: a failure after it leaves a record the member's
        // list drops, never an intent nobody controls.
        let json = serde_json::to_string(&intent).map_err(|_| IntentError::Corrupt("intent"))?;
        let text = LongText::try_from(json).map_err(|_| IntentError::Corrupt("intent size"))?;
        self.inner
            .vault
            .create_record(s, RecordContent::Intent(IntentRecord { intent: text }))
            .await?;
        self.inner
            .store
            .insert_member_intent(
                &IntentRow {
                    id: id.0,
                    owner_check: owner_check(&intent.secret),
                    topic: intent.topic.clone(),
                    region: intent.region.clone(),
                    body: serde_json::to_vec(&body).map_err(|_| IntentError::Corrupt("intent"))?,
                    published_hour: published,
                    // Unseen by organisations until its batch is released.
                    visible_hour: None,
                    deadline,
                    closed: false,
                    closed_visible_at: None,
                    audience_key: intent.audience.key(),
                },
                // Erasure finds the member's intents through this link.
                s.member,
            )
            .await?;
        self.inner
            .audit
            .record_hourly(Self::audit_member(s, Action::IntentPublish))
            .await?;
        Ok(view_of(intent, MemberIntentStatus::Open, Vec::new()))
    }

    /// The member's intents with their answers, newest first. Intents past
    /// their deadline leave the vault too, unless one of their answers was
    /// accepted (the member keeps what they agreed to).
    #[tracing::instrument(skip_all)]
    pub async fn my_intents(
        &self,
        s: &MemberSession,
    ) -> Result<Vec<MemberIntentView>, IntentError> {
        let now = self.now();
        let mut out = Vec::new();
        for m in self.mine(s).await? {
            let row = self.inner.store.intent(&m.intent.id.0, now).await?;
            let status = if m.intent.accepted.is_some() {
                MemberIntentStatus::Accepted
            } else if m.intent.withdrawn {
                MemberIntentStatus::Withdrawn
            } else {
                MemberIntentStatus::Open
            };
            let Some(row) = row else {
                if m.intent.accepted.is_none() {
                    self.inner.vault.delete_record(s, m.record).await?;
                } else {
                    out.push(view_of(m.intent, status, Vec::new()));
                }
                continue;
            };
            let ok: bool = row.owner_check.ct_eq(&owner_check(&m.intent.secret)).into();
            if !ok {
                continue;
            }
            let answers = self.member_answers(&row, now).await?;
            let mut v = view_of(m.intent, status, answers);
            // Released in a batch: the deadline counts from the batch.
            v.deadline = row.deadline.unix_millis();
            v.visible_from = row.visible_hour.map(|t| t.unix_millis());
            out.push(v);
        }
        out.sort_by(|a, b| b.published_at.cmp(&a.published_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn member_answers(
        &self,
        row: &IntentRow,
        now: me2b_domain::Timestamp,
    ) -> Result<Vec<MemberAnswerView>, IntentError> {
        let mut out = Vec::new();
        for a in self.inner.store.intent_answers(&row.id, now).await? {
            let Some(org) = self.inner.store.org(a.org).await? else {
                continue;
            };
            if org.deleted_at.is_some() {
                continue;
            }
            let body: AnswerBody =
                serde_json::from_slice(&a.body).map_err(|_| IntentError::Corrupt("answer"))?;
            out.push(MemberAnswerView {
                answer_id: AnswerId(a.id),
                org_id: org.id,
                org_name: org.name,
                org_kind: org.kind,
                price: body.price,
                terms: body.terms,
                asks: body.asks,
                valid_until: a.valid_until.unix_millis(),
                created_at: a.created_hour.unix_millis(),
                accepted: a.accepted,
            });
        }
        Ok(out)
    }

    /// Closes an open intent without accepting: organisations see it closed
    /// from the next whole hour, as if an answer had been accepted.
    #[tracing::instrument(skip_all)]
    pub async fn withdraw(&self, s: &MemberSession, id: IntentId) -> Result<(), IntentError> {
        let (mut mine, row) = self.find(s, id).await?;
        let row = row.ok_or(IntentError::IntentNotFound)?;
        if row.closed {
            return Err(IntentError::IntentClosed);
        }
        if !self
            .inner
            .store
            .close_intent(&id.0, next_hour(self.now()), None)
            .await?
        {
            return Err(IntentError::IntentClosed);
        }
        mine.intent.withdrawn = true;
        self.save(s, &mine).await?;
        self.inner
            .audit
            .record_hourly(Self::audit_member(s, Action::IntentWithdraw))
            .await?;
        Ok(())
    }

    /// Accepts one answer: the member's contact goes to that organisation
    /// alone, through a consent made for this contact (the categories the
    /// member chose, under a pseudonym of its own) and, if given, a
    /// credential presentation. The intent closes; the other organisations
    /// see only "closed", from the next whole hour.
    #[tracing::instrument(skip_all)]
    pub async fn accept(
        &self,
        s: &MemberSession,
        id: IntentId,
        input: AcceptInput,
    ) -> Result<AcceptedAnswer, IntentError> {
        let (mut mine, row) = self.find(s, id).await?;
        let row = row.ok_or(IntentError::IntentNotFound)?;
        if row.closed {
            return Err(IntentError::IntentClosed);
        }
        let now = self.now();
        let answer = self
            .inner
            .store
            .intent_answer(&input.answer_id.0, now)
            .await?
            .filter(|a| a.intent == id.0)
            .ok_or(IntentError::AnswerNotFound)?;
        if answer.valid_until <= now {
            return Err(IntentError::AnswerExpired);
        }
        let body: AnswerBody =
            serde_json::from_slice(&answer.body).map_err(|_| IntentError::Corrupt("answer"))?;
        let mut disclose: Vec<String> = Vec::new();
        for c in &input.disclose {
            if !body.asks.contains(c) {
                return Err(IntentError::NotAsked);
            }
            if !disclose.contains(c) {
                disclose.push(c.clone());
            }
        }
        let presentation = match &input.presentation {
            Some(p) => Some(check_text(
                "presentation",
                p,
                MAX_PRESENTATION_CHARS,
                IntentError::Invalid("an empty presentation"),
            )?),
            None => None,
        };
        let org = self
            .inner
            .store
            .org(answer.org)
            .await?
            .filter(|o| o.deleted_at.is_none())
            .ok_or(IntentError::AnswerNotFound)?;
        // The organisation knows the member by this pseudonym for this
        // contact only.
        let mut p = [0u8; 16];
        self.inner.rng.fill(&mut p);
        let subject = format!("intent-contact-{}", hex::encode(p));
        let (request_id, consent_id) = if disclose.is_empty() {
            (None, None)
        } else {
            let (req, rec) = self
                .inner
                .consents
                .grant_private(
                    s,
                    &org,
                    ConsentRequestInput {
                        purposes: vec!["service-provision".to_owned()],
                        categories: disclose.clone(),
                        processing: vec!["use".to_owned(), "store".to_owned()],
                        legal_basis: "consent".to_owned(),
                        retention_days: 90,
                        recipients: Vec::new(),
                        notice: format!(
                            "You accepted a proposal from {} for one of your intents. They receive only what you chose here, to contact you about this proposal, for 90 days; withdraw this consent at any time.",
                            org.name
                        ),
                        notice_version: "intent-contact-1".to_owned(),
                    },
                    subject.clone(),
                    Method::Api,
                )
                .await?;
            (Some(req.id), Some(rec.id))
        };
        let delivery = Delivery {
            v: 1,
            contact: Contact {
                consent_request_id: request_id,
                subject,
                presentation,
            },
        };
        let sealed = self.inner.keys.seal_node_secret(
            DELIVERY_LABEL,
            &serde_json::to_vec(&delivery).map_err(|_| IntentError::Corrupt("delivery"))?,
            self.inner.rng.as_ref(),
        );
        let keep_until = row.deadline.max(answer.valid_until);
        let closed = self
            .inner
            .store
            .close_intent(
                &id.0,
                next_hour(now),
                Some((&answer.id, &sealed, keep_until)),
            )
            .await?;
        if !closed {
            // Another request closed it first: the consent goes again.
            if let Some(c) = consent_id {
                self.inner
                    .consents
                    .withdraw(s.member, c, Method::Api)
                    .await?;
            }
            return Err(IntentError::IntentClosed);
        }
        let accepted = AcceptedAnswer {
            answer_id: input.answer_id,
            org: org.id,
            org_name: org.name,
            price: body.price,
            terms: body.terms,
            disclosed: disclose,
            consent_id,
            presented_credential: delivery.contact.presentation.is_some(),
        };
        mine.intent.accepted = Some(accepted.clone());
        self.save(s, &mine).await?;
        self.inner
            .audit
            .record_hourly(Self::audit_member(s, Action::IntentAccept))
            .await?;
        Ok(accepted)
    }

    /// Reports an answer to the operator: the organisation and a copy of
    /// what it answered, with the member's reason; nothing of the member or
    /// the intent.
    #[tracing::instrument(skip_all)]
    pub async fn report(
        &self,
        s: &MemberSession,
        id: IntentId,
        answer: AnswerId,
        input: ReportInput,
    ) -> Result<(), IntentError> {
        let reason = check_text(
            "reason",
            &input.reason,
            MAX_REASON_CHARS,
            IntentError::Invalid("a report needs a reason"),
        )?;
        let (_, row) = self.find(s, id).await?;
        let row = row.ok_or(IntentError::IntentNotFound)?;
        let now = self.now();
        let a = self
            .inner
            .store
            .intent_answer(&answer.0, now)
            .await?
            .filter(|a| a.intent == row.id)
            .ok_or(IntentError::AnswerNotFound)?;
        let mut rid = [0u8; 16];
        self.inner.rng.fill(&mut rid);
        match self
            .inner
            .store
            .insert_intent_report(&IntentReportRow {
                id: rid,
                answer: a.id,
                org: a.org,
                reason,
                body: a.body,
                at_hour: floor_hour(now),
            })
            .await
        {
            Ok(()) => {}
            Err(StorageError::Conflict) => return Err(IntentError::AlreadyReported),
            Err(e) => return Err(e.into()),
        }
        self.inner
            .audit
            .record_hourly(Self::audit_member(s, Action::IntentReport))
            .await?;
        Ok(())
    }

    /// Every report, for the operator (newest first).
    pub async fn reports(&self) -> Result<Vec<ReportView>, IntentError> {
        let mut out = Vec::new();
        for r in self.inner.store.intent_reports().await? {
            let body: AnswerBody =
                serde_json::from_slice(&r.body).map_err(|_| IntentError::Corrupt("report"))?;
            out.push(ReportView {
                answer_id: AnswerId(r.answer),
                org: r.org,
                reason: r.reason,
                price: body.price,
                terms: body.terms,
                at: r.at_hour.unix_millis(),
            });
        }
        Ok(out)
    }
}

fn view_of(
    m: MemberIntent,
    status: MemberIntentStatus,
    answers: Vec<MemberAnswerView>,
) -> MemberIntentView {
    MemberIntentView {
        id: m.id,
        topic: m.topic,
        region: m.region,
        text: m.text,
        budget: m.budget,
        audience: m.audience,
        published_at: m.published_at,
        deadline: m.deadline,
        visible_from: None,
        status,
        answers,
        accepted: m.accepted,
    }
}
