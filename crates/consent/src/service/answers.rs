//! A member's answers: pending requests, grant, refusal, private grant,
//! withdrawal, the GPC signal, and their own consents.

use super::*;

impl Consents {
    /// Requests the member has not answered (a withdrawn consent can be given again).
    pub async fn pending(
        &self,
        member: MemberId,
    ) -> Result<Vec<(ConsentRequest, OrgRow)>, ServiceError> {
        let answered: Vec<ConsentRequestId> = self
            .store
            .consents_of_member(member)
            .await?
            .into_iter()
            .filter(|c| c.status != "withdrawn")
            .map(|c| c.request)
            .collect();
        let orgs = self.orgs_by_id().await?;
        let mut out = Vec::new();
        for row in self.store.consent_requests(None).await? {
            if answered.contains(&row.id) {
                continue;
            }
            let req = Self::request_from_row(&row)?;
            // Cross-selling consents start from the member (the trust's
            // sharing); private ones are made for one member's answer.
            if req.cross_sell_from.is_some() || req.private {
                continue;
            }
            let Some(org) = orgs.get(&row.org).filter(|o| o.deleted_at.is_none()) else {
                continue;
            };
            out.push((req, org.clone()));
        }
        Ok(out)
    }

    pub(super) async fn answer(
        &self,
        member: MemberId,
        request: ConsentRequestId,
        grant: Option<GrantInput>,
        method: Method,
    ) -> Result<ConsentRecord, ServiceError> {
        let req = self.request(request).await?;
        if req.private || req.cross_sell_from.is_some() {
            // Private requests are granted only by grant_private; cross-selling
            // ones only through the trust's sharing, which chooses the period.
            return Err(ServiceError::RequestNotFound);
        }
        let open = self
            .store
            .consents_of_member(member)
            .await?
            .iter()
            .any(|c| c.request == request && c.status != "withdrawn");
        if open {
            return Err(ServiceError::AlreadyAnswered);
        }
        self.answer_request(member, &req, grant, method, None).await
    }

    /// Records the member's answer to `req`; a grant may end before the
    /// request's longest period (`expires_at`).
    pub(super) async fn answer_request(
        &self,
        member: MemberId,
        req: &ConsentRequest,
        grant: Option<GrantInput>,
        method: Method,
        expires_at: Option<Timestamp>,
    ) -> Result<ConsentRecord, ServiceError> {
        let id = ConsentId::generate(self.rng.as_ref());
        let now = self.clock.now();
        let (mut r, action) = match grant {
            Some(g) => (
                ConsentRecord::grant(id, req, member, g, method, now)?,
                Action::ConsentGrant,
            ),
            None => (
                ConsentRecord::refusal(id, req, member, method, now),
                Action::ConsentRefuse,
            ),
        };
        if let Some(e) = expires_at.filter(|e| *e < r.expires_at) {
            r.expires_at = e;
        }
        // A consent ends on the hour (never later than asked): the moment
        // the organisation stops being served then says nothing finer about
        // when the member answered than its view of the consent does.
        r.expires_at = r.expires_at.hour();
        if action == Action::ConsentGrant {
            self.add_receipt(&mut r).await?;
        }
        self.store.insert_consent(&to_row(&r)).await?;
        self.audit
            .record(
                AuditEvent::new(Actor::Member(member), action)
                    .subject(member)
                    .object(id),
            )
            .await?;
        Ok(r)
    }

    /// Grants (all or part of) a request, in the member's session: what
    /// the grant allows is sealed for the organisation now.
    #[tracing::instrument(skip_all)]
    pub async fn grant(
        &self,
        s: &MemberSession,
        request: ConsentRequestId,
        scope: GrantInput,
        method: Method,
    ) -> Result<ConsentRecord, ServiceError> {
        let r = self.answer(s.member, request, Some(scope), method).await?;
        let records: Vec<RecordContent> = self
            .vault
            .all_records(s)
            .await?
            .into_iter()
            .map(|r| r.content)
            .collect();
        self.seal_envelopes(s, &r, &records, None).await?;
        Ok(r)
    }

    #[tracing::instrument(skip_all)]
    pub async fn refuse(
        &self,
        member: MemberId,
        request: ConsentRequestId,
        method: Method,
    ) -> Result<ConsentRecord, ServiceError> {
        self.answer(member, request, None, method).await
    }

    /// A consent made for one member's answer to one organisation (an
    /// accepted intent's contact): a request in the organisation's name that
    /// no other member is offered, granted at once, whose record and receipts
    /// name the member by `pseudonym` (fresh for this contact) instead of the
    /// pseudonym the organisation knows them by elsewhere, so it cannot link
    /// this contact to the member's other consents.
    #[tracing::instrument(skip_all)]
    pub async fn grant_private(
        &self,
        s: &MemberSession,
        org: &OrgRow,
        input: ConsentRequestInput,
        pseudonym: String,
        method: Method,
    ) -> Result<(ConsentRequest, ConsentRecord), ServiceError> {
        let id = ConsentRequestId::generate(self.rng.as_ref());
        let now = self.clock.now();
        let mut req = input.validate(&self.vocab, id, org.id, now)?;
        req.private = true;
        self.store
            .insert_consent_request(&ConsentRequestRow {
                id,
                org: org.id,
                created_at: now,
                body: serde_json::to_vec(&req).unwrap_or_default(),
            })
            .await?;
        let member = s.member;
        let consent = ConsentId::generate(self.rng.as_ref());
        let mut r =
            ConsentRecord::grant(consent, &req, member, GrantInput::default(), method, now)?;
        r.subject_pseudonym = Some(pseudonym);
        self.add_receipt(&mut r).await?;
        self.store.insert_consent(&to_row(&r)).await?;
        self.audit
            .record_all(vec![
                AuditEvent::new(Actor::Organisation(org.id), Action::ConsentRequestCreate)
                    .object(id),
                AuditEvent::new(Actor::Member(member), Action::ConsentGrant)
                    .subject(member)
                    .object(consent),
            ])
            .await?;
        // What it allows is sealed for the organisation now, in the
        // member's session, under the contact's own pseudonym: before the
        // release below, so these first envelopes are served at once (a
        // later change of content waits for a release, like the member's
        // other envelopes, and shows together with them and the period's).
        let records: Vec<RecordContent> = self
            .vault
            .all_records(s)
            .await?
            .into_iter()
            .map(|r| r.content)
            .collect();
        self.seal_envelopes(s, &r, &records, None).await?;
        // The organisation asked for this contact through the intent and
        // knows its pseudonym already: the grant shows at once (a later
        // withdrawal waits for a release like every other).
        self.store.consent_release_one(consent).await?;
        Ok((req, r))
    }

    /// Withdraws a consent. Durable (committed) before this returns; effective for
    /// every decision from then on.
    #[tracing::instrument(skip_all)]
    pub async fn withdraw(
        &self,
        member: MemberId,
        consent: ConsentId,
        method: Method,
    ) -> Result<ConsentRecord, ServiceError> {
        let row = self
            .store
            .consent(consent)
            .await?
            .ok_or(ServiceError::ConsentNotFound)?;
        if row.member != member {
            return Err(ServiceError::ConsentNotFound);
        }
        let mut r = ConsentRecord::from_json(&row.body)?;
        if !r.withdraw(method, self.clock.now()) {
            return Err(ServiceError::NotInForce);
        }
        self.add_receipt(&mut r).await?;
        if !self.store.update_consent(&to_row(&r), row.version).await? {
            return Err(ServiceError::Conflict);
        }
        self.audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::ConsentWithdraw)
                    .subject(member)
                    .object(consent),
            )
            .await?;
        Ok(r)
    }

    /// Records a Global Privacy Control signal: an opt-out of sale/sharing and
    /// third-party advertising, as a consent event of method `gpc`. Idempotent:
    /// only the first signal is recorded and audited.
    pub async fn record_gpc(&self, member: MemberId) -> Result<Timestamp, ServiceError> {
        if let Some(t) = self.store.gpc_since(member).await? {
            return Ok(t);
        }
        let t = self.store.record_gpc(member, self.clock.now()).await?;
        self.audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::ConsentGpc)
                    .subject(member)
                    .object("gpc"),
            )
            .await?;
        Ok(t)
    }

    pub async fn gpc_since(&self, member: MemberId) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.store.gpc_since(member).await?)
    }

    pub async fn consents_of(
        &self,
        member: MemberId,
    ) -> Result<Vec<(ConsentRecord, String)>, ServiceError> {
        let orgs = self.orgs_by_id().await?;
        let mut out = Vec::new();
        for row in self.store.consents_of_member(member).await? {
            let r = ConsentRecord::from_json(&row.body)?;
            let name = orgs
                .get(&r.controller)
                .map(|o| o.name.clone())
                .unwrap_or_default();
            out.push((r, name));
        }
        Ok(out)
    }
}
