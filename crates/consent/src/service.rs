//! The consent service: requests, answers, withdrawals, GPC, disclosure to
//! organisations under a permit, and transparency for members.

use crate::model::*;
use crate::pdp::{decide, AccessQuery, Decision, DenyReason};
use crate::receipt::{self, ReceiptClaims};
use crate::vocabulary::{Section, Vocabulary};
use crate::ConsentError;
use me2b_audit::{AuditError, AuditLog};
use me2b_crypto::Keyring;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::record::RecordContent;
use me2b_domain::{Clock, ConsentId, ConsentRequestId, MemberId, OrgId, Random, Timestamp};
use me2b_storage::{ConsentRequestRow, ConsentRow, OrgRow, StorageError, Store};
use me2b_vault::{Vault, VaultError};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error("no such consent request")]
    RequestNotFound,
    #[error("no such consent")]
    ConsentNotFound,
    #[error("this request was already answered; withdraw the consent to change it")]
    AlreadyAnswered,
    #[error("the consent is not in force (already withdrawn, or a refusal)")]
    NotInForce,
    #[error("the record changed concurrently; retry")]
    Conflict,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A consent as its controller sees it: the member only by pseudonym.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrgConsentView {
    pub consent_id: ConsentId,
    pub subject: String,
    pub status: ConsentStatus,
    pub purposes: Vec<String>,
    pub categories: Vec<String>,
    pub processing: Vec<String>,
    pub given_at: String,
    pub expires_at: String,
    pub withdrawn_at: Option<String>,
    pub receipts: Vec<String>,
}

/// What one member disclosed to an organisation under a permit.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Disclosure {
    pub subject: String,
    pub consent_id: ConsentId,
    /// Category id → the member's values in that category.
    #[schema(value_type = Object)]
    pub data: BTreeMap<String, Vec<serde_json::Value>>,
}

/// The DPV category of a vault record, if it can ever be disclosed. Notes never are.
pub fn record_category(r: &RecordContent) -> Option<&'static str> {
    match r {
        RecordContent::ProfileAttribute(a) => match a.name.as_str() {
            "given_name" | "family_name" | "name" | "full_name" => Some("name"),
            "email" => Some("email-address"),
            "phone" | "telephone" => Some("telephone-number"),
            "birth_date" | "birth_year" => Some("birth-date"),
            "age" | "age_band" | "age_range" => Some("age-range"),
            "postcode" | "postal_code" => Some("postal-code"),
            "region" | "city" => Some("region"),
            "address" => Some("physical-address"),
            "country" => Some("country"),
            "language" => Some("language"),
            _ => None,
        },
        RecordContent::Interest(_) => Some("interest"),
        RecordContent::Receipt(_) => Some("purchase"),
        RecordContent::Note(_)
        | RecordContent::OfferHistory(_)
        | RecordContent::Credential(_)
        | RecordContent::Intent(_) => None,
    }
}

/// The consent service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Consents {
    store: Arc<dyn Store>,
    keys: Arc<Keyring>,
    audit: AuditLog,
    vault: Vault,
    vocab: Arc<Vocabulary>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    sensitive_topics: Arc<BTreeMap<String, String>>,
    /// Benchmarks only: every decision permits, without lookup or audit, to
    /// measure what the decision adds to a request. Not compiled into the product.
    #[cfg(feature = "bench")]
    stub_decisions: bool,
}

fn to_row(r: &ConsentRecord) -> ConsentRow {
    ConsentRow {
        id: r.id,
        request: r.request,
        org: r.controller,
        member: r.subject,
        status: match r.status {
            ConsentStatus::Given => "given",
            ConsentStatus::Refused => "refused",
            ConsentStatus::Withdrawn => "withdrawn",
        }
        .to_owned(),
        version: i64::from(r.version()),
        given_at: r.given_at,
        expires_at: r.expires_at,
        withdrawn_at: r.withdrawn_at,
        body: r.to_json(),
    }
}

impl Consents {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<Keyring>,
        audit: AuditLog,
        vault: Vault,
        vocab: Arc<Vocabulary>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Self {
        Self {
            store,
            keys,
            audit,
            vault,
            vocab,
            clock,
            rng,
            sensitive_topics: Arc::new(BTreeMap::new()),
            #[cfg(feature = "bench")]
            stub_decisions: false,
        }
    }

    /// Interest topics that touch a special category (topic slug -> DPV special
    /// category id), from the offers taxonomy. A vault interest in such a topic
    /// is disclosed only under that special category (which needs explicit
    /// consent), never under the ordinary `interest` category.
    pub fn with_sensitive_topics(mut self, topics: BTreeMap<String, String>) -> Self {
        self.sensitive_topics = Arc::new(topics);
        self
    }

    /// The DPV category a record is disclosed under, if any.
    fn category_of<'a>(&'a self, r: &RecordContent) -> Option<&'a str> {
        if let RecordContent::Interest(i) = r {
            if let Some(special) = self.sensitive_topics.get(i.topic.as_str()) {
                return Some(special.as_str());
            }
        }
        record_category(r)
    }

    /// Benchmarks only: a copy whose decisions are stubbed (always permit).
    #[cfg(feature = "bench")]
    pub fn with_stubbed_decisions(&self) -> Self {
        let mut c = self.clone();
        c.stub_decisions = true;
        c
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    fn request_from_row(row: &ConsentRequestRow) -> Result<ConsentRequest, ServiceError> {
        serde_json::from_slice(&row.body).map_err(|_| {
            ServiceError::Storage(StorageError::Corrupt("consent_requests.body".into()))
        })
    }

    async fn request(&self, id: ConsentRequestId) -> Result<ConsentRequest, ServiceError> {
        let row = self
            .store
            .consent_request(id)
            .await?
            .ok_or(ServiceError::RequestNotFound)?;
        Self::request_from_row(&row)
    }

    /// Every organisation by id, in one query (instead of one per row).
    async fn orgs_by_id(&self) -> Result<std::collections::HashMap<OrgId, OrgRow>, ServiceError> {
        Ok(self
            .store
            .list_orgs()
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect())
    }

    async fn org_name(&self, org: OrgId) -> Result<String, ServiceError> {
        Ok(self
            .store
            .org(org)
            .await?
            .map(|o| o.name)
            .unwrap_or_default())
    }

    /// Signs a receipt for the record's latest event and appends it.
    async fn add_receipt(&self, r: &mut ConsentRecord) -> Result<(), ServiceError> {
        let name = self.org_name(r.controller).await?;
        let pseudonym = self.pseudonym_of(r);
        let claims = ReceiptClaims::for_record(
            &self.vocab,
            r,
            &name,
            pseudonym,
            &format!("me2b node {}", self.keys.verifying_key().key_id()),
            self.clock.now(),
        );
        r.receipts.push(receipt::sign(&self.keys, &claims));
        Ok(())
    }

    /// The pseudonym the record's controller knows its member by: the
    /// record's own (an intent's contact), or the one per organisation.
    fn pseudonym_of(&self, r: &ConsentRecord) -> String {
        r.subject_pseudonym
            .clone()
            .unwrap_or_else(|| self.keys.subject_pseudonym(&r.controller, &r.subject))
    }

    // --- organisation side -------------------------------------------------------

    #[tracing::instrument(skip_all)]
    pub async fn create_request(
        &self,
        org: &OrgRow,
        input: ConsentRequestInput,
    ) -> Result<ConsentRequest, ServiceError> {
        let id = ConsentRequestId::generate(self.rng.as_ref());
        let req = input.validate(&self.vocab, id, org.id, self.clock.now())?;
        self.store
            .insert_consent_request(&ConsentRequestRow {
                id,
                org: org.id,
                created_at: req.created_at,
                body: serde_json::to_vec(&req).unwrap_or_default(),
            })
            .await?;
        self.audit
            .record(
                AuditEvent::new(Actor::Organisation(org.id), Action::ConsentRequestCreate)
                    .object(id),
            )
            .await?;
        Ok(req)
    }

    pub async fn requests_of(&self, org: OrgId) -> Result<Vec<ConsentRequest>, ServiceError> {
        self.store
            .consent_requests(Some(org))
            .await?
            .iter()
            .map(Self::request_from_row)
            .collect()
    }

    /// Consents given (or later withdrawn) in answer to the organisation's request.
    /// Refusals and members who did not answer are not visible, not even as a count.
    pub async fn consents_for(
        &self,
        org: OrgId,
        request: ConsentRequestId,
    ) -> Result<Vec<OrgConsentView>, ServiceError> {
        let req = self.request(request).await?;
        if req.org != org {
            return Err(ServiceError::RequestNotFound);
        }
        let rows = self.store.consents_for_request(request).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let r = ConsentRecord::from_json(&row.body)?;
            out.push(OrgConsentView {
                consent_id: r.id,
                subject: self.pseudonym_of(&r),
                status: r.status,
                purposes: r.purposes,
                categories: r.categories,
                processing: r.processing,
                given_at: r.given_at.to_rfc3339(),
                expires_at: r.expires_at.to_rfc3339(),
                withdrawn_at: r.withdrawn_at.map(Timestamp::to_rfc3339),
                receipts: r.receipts,
            });
        }
        self.audit
            .record(AuditEvent::new(Actor::Organisation(org), Action::ConsentRead).object(request))
            .await?;
        Ok(out)
    }

    /// The decision point's answers for one member and several categories, from
    /// one lookup of the stored records (no audit entry: callers that act on the
    /// answers audit them).
    pub async fn decisions(
        &self,
        org: OrgId,
        member: MemberId,
        purpose: &str,
        processing: &str,
        categories: &[&str],
    ) -> Result<Vec<Decision>, ServiceError> {
        let rows = self.store.consents_between(org, member).await?;
        let mut records: Vec<ConsentRecord> = rows
            .iter()
            .map(|r| ConsentRecord::from_json(&r.body))
            .collect::<Result<_, _>>()?;
        // A private record (an intent's contact) permits only through its own
        // request, never another one (it would tie the two together).
        records.retain(|r| r.subject_pseudonym.is_none());
        self.decide_among(&records, org, member, purpose, processing, categories)
            .await
    }

    async fn decide_among(
        &self,
        records: &[ConsentRecord],
        org: OrgId,
        member: MemberId,
        purpose: &str,
        processing: &str,
        categories: &[&str],
    ) -> Result<Vec<Decision>, ServiceError> {
        let gpc = self.store.gpc_since(member).await?;
        let at = self.clock.now();
        Ok(categories
            .iter()
            .map(|category| {
                let q = AccessQuery {
                    org,
                    member,
                    purpose,
                    category,
                    processing,
                    at,
                };
                decide(&self.vocab, records, gpc, &q)
            })
            .collect())
    }

    /// The decision point's answer for one access.
    pub async fn decision(
        &self,
        org: OrgId,
        member: MemberId,
        purpose: &str,
        category: &str,
        processing: &str,
    ) -> Result<Decision, ServiceError> {
        let d = self
            .decisions(org, member, purpose, processing, &[category])
            .await?;
        Ok(d.into_iter().next().unwrap_or(Decision::Deny {
            reason: DenyReason::NoConsent,
        }))
    }

    /// The data-access API: for each member who consented to `request`, the values
    /// of exactly the categories the decision point permits for `purpose` and
    /// `processing`. Members without a permit do not appear at all.
    #[tracing::instrument(skip_all)]
    pub async fn access(
        &self,
        org: OrgId,
        request: ConsentRequestId,
        purpose: &str,
        processing: &str,
    ) -> Result<Vec<Disclosure>, ServiceError> {
        let req = self.request(request).await?;
        if req.org != org {
            return Err(ServiceError::RequestNotFound);
        }
        self.vocab.require(Section::Purpose, purpose)?;
        self.vocab.require(Section::Processing, processing)?;
        let mut out = Vec::new();
        let mut events = Vec::new();
        for row in self.store.consents_for_request(request).await? {
            if row.status != "given" {
                continue;
            }
            let member = row.member;
            let record = ConsentRecord::from_json(&row.body)?;
            let subject = match &record.subject_pseudonym {
                Some(p) => p.clone(),
                None => self.keys.subject_pseudonym(&org, &member),
            };
            let records = self.vault.records_for_disclosure(member).await?;
            // The categories this member's vault holds that the request covers.
            let mut categories: Vec<&str> = Vec::new();
            for rec in &records {
                if let Some(c) = self.category_of(rec) {
                    let asked = req
                        .categories
                        .iter()
                        .any(|r| self.vocab.category_within(c, r));
                    if asked && !categories.contains(&c) {
                        categories.push(c);
                    }
                }
            }
            if categories.is_empty() {
                continue;
            }
            let decisions = if req.private {
                // Only its own record decides a private request.
                self.decide_among(
                    std::slice::from_ref(&record),
                    org,
                    member,
                    purpose,
                    processing,
                    &categories,
                )
                .await?
            } else {
                self.decide_for_disclosure(org, member, purpose, processing, &categories, row.id)
                    .await?
            };
            let mut consent_id = row.id;
            let mut permitted: Vec<&str> = Vec::new();
            for (category, d) in categories.iter().zip(&decisions) {
                let mut ev = AuditEvent::new(Actor::Organisation(org), Action::ConsentDecision)
                    .subject(member)
                    .terms(purpose, category, processing);
                ev = match d {
                    Decision::Permit { consent } => {
                        consent_id = *consent;
                        permitted.push(category);
                        ev.object(consent)
                    }
                    Decision::Deny { reason } => {
                        ev.object(deny_code(*reason)).outcome(Outcome::Denied)
                    }
                };
                events.push(ev);
            }
            let mut data: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
            for rec in &records {
                if let Some(c) = self.category_of(rec).filter(|c| permitted.contains(c)) {
                    data.entry(c.to_owned())
                        .or_default()
                        .push(disclosed_value(rec));
                }
            }
            if !data.is_empty() {
                out.push(Disclosure {
                    subject,
                    consent_id,
                    data,
                });
            }
        }
        // Every decision is durable in the audit log before any data leaves.
        self.record_decisions(events).await?;
        Ok(out)
    }

    async fn decide_for_disclosure(
        &self,
        org: OrgId,
        member: MemberId,
        purpose: &str,
        processing: &str,
        categories: &[&str],
        #[allow(unused_variables)] consent: ConsentId,
    ) -> Result<Vec<Decision>, ServiceError> {
        #[cfg(feature = "bench")]
        if self.stub_decisions {
            return Ok(vec![Decision::Permit { consent }; categories.len()]);
        }
        self.decisions(org, member, purpose, processing, categories)
            .await
    }

    async fn record_decisions(&self, events: Vec<AuditEvent>) -> Result<(), ServiceError> {
        #[cfg(feature = "bench")]
        if self.stub_decisions {
            return Ok(());
        }
        if !events.is_empty() {
            self.audit.record_all(events).await?;
        }
        Ok(())
    }

    pub async fn receipts_for_org(
        &self,
        org: OrgId,
        consent: ConsentId,
    ) -> Result<Vec<String>, ServiceError> {
        let row = self
            .store
            .consent(consent)
            .await?
            .ok_or(ServiceError::ConsentNotFound)?;
        let r = ConsentRecord::from_json(&row.body)?;
        if r.controller != org || r.status == ConsentStatus::Refused {
            return Err(ServiceError::ConsentNotFound);
        }
        Ok(r.receipts)
    }

    // --- member side -------------------------------------------------------------

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
            let Some(org) = orgs.get(&row.org).filter(|o| o.deleted_at.is_none()) else {
                continue;
            };
            let req = Self::request_from_row(&row)?;
            if req.private {
                continue;
            }
            out.push((req, org.clone()));
        }
        Ok(out)
    }

    async fn answer(
        &self,
        member: MemberId,
        request: ConsentRequestId,
        grant: Option<GrantInput>,
        method: Method,
    ) -> Result<ConsentRecord, ServiceError> {
        let req = self.request(request).await?;
        if req.private {
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
        let id = ConsentId::generate(self.rng.as_ref());
        let now = self.clock.now();
        let (mut r, action) = match grant {
            Some(g) => (
                ConsentRecord::grant(id, &req, member, g, method, now)?,
                Action::ConsentGrant,
            ),
            None => (
                ConsentRecord::refusal(id, &req, member, method, now),
                Action::ConsentRefuse,
            ),
        };
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

    #[tracing::instrument(skip_all)]
    pub async fn grant(
        &self,
        member: MemberId,
        request: ConsentRequestId,
        scope: GrantInput,
        method: Method,
    ) -> Result<ConsentRecord, ServiceError> {
        self.answer(member, request, Some(scope), method).await
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
        org: &OrgRow,
        member: MemberId,
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

/// The stable code of a deny reason, as audited and shown.
pub fn deny_code(r: DenyReason) -> &'static str {
    match r {
        DenyReason::UnknownTerm => "unknown_term",
        DenyReason::NoConsent => "no_consent",
        DenyReason::Refused => "refused",
        DenyReason::Withdrawn => "withdrawn",
        DenyReason::Expired => "expired",
        DenyReason::PurposeNotConsented => "purpose_not_consented",
        DenyReason::CategoryNotConsented => "category_not_consented",
        DenyReason::ProcessingNotConsented => "processing_not_consented",
        DenyReason::SpecialCategoryNeedsExplicitConsent => {
            "special_category_needs_explicit_consent"
        }
        DenyReason::GpcOptOut => "gpc_opt_out",
    }
}

fn disclosed_value(r: &RecordContent) -> serde_json::Value {
    match r {
        RecordContent::ProfileAttribute(a) => serde_json::json!({"name": a.name, "value": a.value}),
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}
