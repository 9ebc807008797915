//! Cross-selling consents: a member's consent to one co-op's receipts about
//! them going to another, kept as an ordinary consent record (versions,
//! signed receipts, withdrawal, the decision point and GPC), made from a
//! request the node writes for the pair of co-ops.

use super::*;

/// The terms a cross-selling consent grants, and the delivery asks for.
const PURPOSE: &str = "marketing";
const CATEGORY: &str = "purchases-and-spending-habit";
const PROCESSING: &str = "share";
const NOTICE_VERSION: &str = "cross-sell/1";

/// One cross-selling consent to give: receipts `from` holds go to `to`.
#[derive(Clone, Copy, Debug)]
pub struct CrossSell {
    pub member: MemberId,
    pub from: OrgId,
    pub to: OrgId,
    /// How long it lasts, in days (at most `max_days`).
    pub days: u32,
    /// The longest period the trust's governance allows.
    pub max_days: u32,
}

impl Consents {
    /// The node's request for cross-selling from `from` to `to` under the
    /// current notice, made the first time a member asks for it.
    async fn cross_sell_request(
        &self,
        from: OrgId,
        to: OrgId,
        max_days: u32,
    ) -> Result<ConsentRequest, ServiceError> {
        let (from_name, to_name) = (self.org_name(from).await?, self.org_name(to).await?);
        let notice = format!(
            "{from_name} may share the receipts it holds about you with {to_name} through the data \
             trust, for cross-selling: {to_name} reads them under its own pseudonym for you, never \
             your name. It lasts for the period you choose (at most {max_days} days) and ends \
             when you withdraw it."
        );
        for row in self.store.consent_requests(Some(to)).await? {
            let r = Self::request_from_row(&row)?;
            if r.cross_sell_from == Some(from) && r.notice == notice && r.retention_days == max_days
            {
                return Ok(r);
            }
        }
        let id = ConsentRequestId::generate(self.rng.as_ref());
        let input = ConsentRequestInput {
            purposes: vec![PURPOSE.into()],
            categories: vec![CATEGORY.into()],
            processing: vec![PROCESSING.into()],
            legal_basis: crate::vocabulary::CONSENT.into(),
            retention_days: max_days,
            recipients: vec![to_name],
            notice,
            notice_version: NOTICE_VERSION.into(),
        };
        let mut req = input.validate(&self.vocab, id, to, self.clock.now())?;
        req.cross_sell_from = Some(from);
        self.store
            .insert_consent_request(&ConsentRequestRow {
                id,
                org: to,
                created_at: req.created_at,
                body: serde_json::to_vec(&req).unwrap_or_default(),
            })
            .await?;
        Ok(req)
    }

    /// Gives a cross-selling consent (the member's own request, in their
    /// session): a consent record with its signed receipt and audit entry.
    /// One in force per pair of co-ops.
    #[tracing::instrument(skip_all)]
    pub async fn give_cross_sell(
        &self,
        c: CrossSell,
        method: Method,
    ) -> Result<ConsentRecord, ServiceError> {
        if !(1..=c.max_days).contains(&c.days) || c.max_days > MAX_RETENTION_DAYS {
            return Err(ConsentError::Invalid(format!(
                "a sharing consent runs from 1 to {} days",
                c.max_days
            ))
            .into());
        }
        // One in force per pair; after a GPC opt-out the old one no longer
        // permits, and a new one is the member's later word.
        if self
            .cross_sell_decision(c.member, c.from, c.to)
            .await?
            .is_permit()
        {
            return Err(ServiceError::AlreadyAnswered);
        }
        let now = self.clock.now();
        let req = self.cross_sell_request(c.from, c.to, c.max_days).await?;
        let expires = now.plus_seconds(i64::from(c.days) * 86_400);
        self.answer_request(
            c.member,
            &req,
            Some(GrantInput::default()),
            method,
            Some(expires),
        )
        .await
    }

    /// The decision point's answer for one cross-sell delivery of the
    /// member's receipts at `from` to `to`, now (GPC applies: sharing is
    /// covered by an opt-out).
    pub async fn cross_sell_decision(
        &self,
        member: MemberId,
        from: OrgId,
        to: OrgId,
    ) -> Result<Decision, ServiceError> {
        let records = self.records_between(to, member).await?;
        let gpc = self.store.gpc_since(member).await?;
        let q = AccessQuery {
            org: to,
            member,
            purpose: PURPOSE,
            category: CATEGORY,
            processing: PROCESSING,
            at: self.clock.now(),
            cross_sell_from: Some(from),
        };
        Ok(decide(&self.vocab, &records, gpc, &q))
    }

    /// One of the member's consent records (None if not theirs).
    pub async fn record_of(
        &self,
        member: MemberId,
        consent: ConsentId,
    ) -> Result<Option<ConsentRecord>, ServiceError> {
        let Some(row) = self.store.consent(consent).await? else {
            return Ok(None);
        };
        if row.member != member {
            return Ok(None);
        }
        Ok(Some(ConsentRecord::from_json(&row.body)?))
    }
}
