//! The consent service: requests, answers, withdrawals, GPC, disclosure to
//! organisations under a permit, and transparency for members.
//!
//! Disclosure never reads a vault outside its member's session: when a
//! member grants, writes under a grant, or logs in, what each consent in
//! force allows is sealed into envelopes only the organisation's API keys
//! open ([`crate::envelope`]). Data access serves those envelopes, per
//! category, after the policy decision point permits.

use crate::envelope::{self, EnvelopeContent, CONTENT_VERSION};
use crate::model::*;
use crate::pdp::{decide, AccessQuery, Decision, DenyReason};
use crate::receipt::{self, ReceiptClaims};
use crate::vocabulary::{Section, Vocabulary};
use crate::ConsentError;
use me2b_audit::{AuditError, AuditLog};
use me2b_crypto::org_envelope::OrgEnvelopePublicKey;
use me2b_crypto::Keyring;
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::org::Role;
use me2b_domain::record::RecordContent;
use me2b_domain::{
    ApiKeyId, Clock, ConsentId, ConsentRequestId, MemberId, OrgId, Random, Timestamp,
};
use me2b_storage::{
    ConsentRequestRow, ConsentRow, EnvelopeRow, EnvelopeWrite, OrgRow, StorageError, Store,
};
use me2b_vault::{MemberSession, Vault, VaultError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod cross_sell;
mod erasure;
pub mod optout;
mod rectification;
mod release;
pub use cross_sell::CrossSell;
pub use erasure::{
    ErasureRequestClaims, ErasureStatus, OperatorErasureRequest, OrgErasureRequest, RecipientList,
    RecipientStatus, ERASURE_REQUEST_TYP,
};
pub use rectification::{
    MemberRectification, OrgRectificationNotice, RectificationClaims, LEGACY_MEMBER_TAG_DOMAIN,
    RECTIFICATION_NOTICE_TYP,
};
pub use release::ConsentSchedule;

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
    #[error("no such erasure request of this organisation")]
    ErasureRequestNotFound,
    #[error("this erasure request was confirmed before")]
    ErasureAlreadyConfirmed,
    #[error("no erasure receipt matches")]
    ErasureReceiptNotFound,
    #[error("no such rectification notice of this organisation")]
    RectificationNotFound,
    #[error("this rectification notice was confirmed before")]
    RectificationAlreadyConfirmed,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("this is not an opt-out code: check it for a mistyped character (20 characters, in groups of four)")]
    OptOutCodeMistyped,
    #[error("no member holds this opt-out code (it may have been replaced)")]
    UnknownOptOutCode,
    #[error("the node's charter refuses this: {0}")]
    CharterForbids(&'static str),
    /// Data access answers only in the window after each release boundary.
    #[error("data access answers only in the window after each release of consent changes; ask again in {retry_after} s")]
    AccessWindowClosed { retry_after: u64 },
}

/// A consent as its controller sees it: the member only by pseudonym, its
/// times only to the hour (UTC; the member's own view has them exactly).
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

/// What one member disclosed to an organisation under a permit: per
/// permitted category, an envelope only the API key that asked can open
/// (`me2b_consent::envelope::open`; format in README, "Data access").
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Disclosure {
    pub subject: String,
    pub consent_id: ConsentId,
    /// Category id → envelope (base64url): the member's values in that
    /// category, sealed to this API key in the member's session.
    #[schema(value_type = Object)]
    pub envelopes: BTreeMap<String, String>,
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
    charter: Arc<crate::charter::Charter>,
    releases: Arc<release::Releases>,
    /// Wakes the paper opt-out worker when a code queues a job.
    optout_queued: Arc<tokio::sync::Notify>,
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
            charter: Arc::new(crate::charter::Charter::default()),
            releases: Arc::default(),
            optout_queued: Arc::default(),
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

    /// The charter the node runs (the governance file's `[charter]`; by
    /// default, no selling and no inference of special categories).
    pub fn with_charter(mut self, charter: crate::charter::Charter) -> Self {
        self.charter = Arc::new(charter);
        self
    }

    pub fn charter(&self) -> &crate::charter::Charter {
        &self.charter
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
        if let Some(why) = self.charter.refusal(&self.vocab, &req) {
            return Err(ServiceError::CharterForbids(why));
        }
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

    /// The organisation's own requests (never the node's cross-selling ones).
    pub async fn requests_of(&self, org: OrgId) -> Result<Vec<ConsentRequest>, ServiceError> {
        let mut out = Vec::new();
        for row in self.store.consent_requests(Some(org)).await? {
            let r = Self::request_from_row(&row)?;
            if r.cross_sell_from.is_none() {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Consents given (or later withdrawn) in answer to the organisation's request.
    /// Refusals and members who did not answer are not visible, not even as a count.
    pub async fn consents_for(
        &self,
        org: OrgId,
        request: ConsentRequestId,
    ) -> Result<Vec<OrgConsentView>, ServiceError> {
        let req = self.request(request).await?;
        if req.org != org || req.cross_sell_from.is_some() {
            return Err(ServiceError::RequestNotFound);
        }
        // As of the last release: a change shows with its period's others.
        self.release_due().await?;
        let rows = self.store.released_consents_for_request(request).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let r = ConsentRecord::from_json(&row.released_body)?;
            out.push(OrgConsentView {
                consent_id: r.id,
                subject: self.pseudonym_of(&r),
                status: r.status,
                purposes: r.purposes,
                categories: r.categories,
                processing: r.processing,
                given_at: r.given_at.hour().to_rfc3339(),
                expires_at: r.expires_at.hour().to_rfc3339(),
                withdrawn_at: r.withdrawn_at.map(|t| t.hour().to_rfc3339()),
                receipts: r.receipts,
            });
        }
        // In pseudonym order, not in the order the members answered.
        out.sort_by(|a, b| a.subject.cmp(&b.subject));
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
        // An erased member's records stay until the erasure is released;
        // nothing is permitted under them meanwhile.
        let active = self.store.member(member).await?.is_some_and(|m| !m.erasing);
        let mut records = if active {
            self.records_between(org, member).await?
        } else {
            Vec::new()
        };
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
                    cross_sell_from: None,
                };
                decide(&self.vocab, records, gpc, &q)
            })
            .collect())
    }

    /// The member's consent records with the organisation (as controller).
    async fn records_between(
        &self,
        org: OrgId,
        member: MemberId,
    ) -> Result<Vec<ConsentRecord>, ServiceError> {
        self.store
            .consents_between(org, member)
            .await?
            .iter()
            .map(|r| ConsentRecord::from_json(&r.body).map_err(Into::into))
            .collect()
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

    /// The data-access API: for each member who consented to `request`, the
    /// envelopes (sealed to API key `key` in the member's session) of exactly
    /// the categories the decision point permits for `purpose` and
    /// `processing` now. Members without a permit do not appear at all. No
    /// vault is read here: the node could not.
    #[tracing::instrument(skip_all)]
    pub async fn access(
        &self,
        org: OrgId,
        key: ApiKeyId,
        request: ConsentRequestId,
        purpose: &str,
        processing: &str,
    ) -> Result<Vec<Disclosure>, ServiceError> {
        let req = self.request(request).await?;
        if req.org != org || req.cross_sell_from.is_some() {
            return Err(ServiceError::RequestNotFound);
        }
        self.vocab.require(Section::Purpose, purpose)?;
        self.vocab.require(Section::Processing, processing)?;
        // Answered in the window after each release boundary (release.rs):
        // polling cannot time a withdrawal between two windows.
        self.access_window()?;
        self.release_due().await?;
        let now = self.clock.now();
        let mut out = Vec::new();
        let mut events = Vec::new();
        for released in self.store.released_consents_for_request(request).await? {
            // Given as the organisation last saw it (a grant not released
            // yet is not served: it would show the new pseudonym now) and
            // given now (a withdrawal stops data at once).
            let shown = ConsentRecord::from_json(&released.released_body)?;
            let row = released.now;
            if row.status != "given" || shown.status != ConsentStatus::Given {
                continue;
            }
            let member = row.member;
            // An erased member's consent stays listed until the erasure is
            // released (erasure.rs in me2b-vault), but nothing is decided
            // or served for them: their envelopes are gone with their keys.
            if self.store.member(member).await?.is_none_or(|m| m.erasing) {
                continue;
            }
            let record = ConsentRecord::from_json(&row.body)?;
            let subject = match &record.subject_pseudonym {
                Some(p) => p.clone(),
                None => self.keys.subject_pseudonym(&org, &member),
            };
            let sealed = self.store.envelopes_for(row.id, key, now).await?;
            // The categories sealed for this key that the request covers;
            // for an expired consent (its envelopes are never served), the
            // categories it granted, so that the member sees the refusal.
            let granted = if record.expires_at <= now {
                record.categories.clone()
            } else {
                Vec::new()
            };
            let mut categories: Vec<&str> = Vec::new();
            for c in sealed
                .iter()
                .map(|e| e.category.as_str())
                .chain(granted.iter().map(String::as_str))
            {
                let asked = req
                    .categories
                    .iter()
                    .any(|r| self.vocab.category_within(c, r));
                if asked && !categories.contains(&c) {
                    categories.push(c);
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
            let mut permitted: Vec<&str> = Vec::new();
            for (category, d) in categories.iter().zip(&decisions) {
                let mut ev = AuditEvent::new(Actor::Organisation(org), Action::ConsentDecision)
                    .subject(member)
                    .terms(purpose, category, processing);
                ev = match d {
                    Decision::Permit { consent } => {
                        permitted.push(category);
                        ev.object(consent)
                    }
                    Decision::Deny { reason } => {
                        ev.object(deny_code(*reason)).outcome(Outcome::Denied)
                    }
                };
                events.push(ev);
            }
            // The decision point permitted these categories to this
            // organisation for this purpose now (possibly under another of
            // the member's records with it); the envelopes are this
            // consent's, and name it.
            let envelopes: BTreeMap<String, String> = sealed
                .iter()
                .filter(|e| permitted.contains(&e.category.as_str()))
                .map(|e| (e.category.clone(), envelope::encode(&e.sealed)))
                .collect();
            if !envelopes.is_empty() {
                out.push(Disclosure {
                    subject,
                    consent_id: row.id,
                    envelopes,
                });
            }
        }
        // Every decision is durable in the audit log before any data leaves.
        self.record_decisions(events).await?;
        // In pseudonym order, not in the order the members answered.
        out.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(out)
    }

    // --- envelopes: sealed in the member's session -------------------------------

    /// The API keys of `org` envelopes are sealed to: not revoked, with the
    /// `consent` role, and a public key (older keys get one at their next use).
    async fn envelope_keys(
        &self,
        org: OrgId,
    ) -> Result<Vec<(ApiKeyId, OrgEnvelopePublicKey)>, ServiceError> {
        Ok(self
            .store
            .live_api_keys(org)
            .await?
            .into_iter()
            .filter(|k| k.roles.contains(Role::Consent))
            .filter_map(|k| {
                let pk = OrgEnvelopePublicKey::from_bytes(k.envelope_pk.as_deref()?).ok()?;
                Some((k.id, pk))
            })
            .collect())
    }

    /// Seals what `consent` allows from the member's `records` into
    /// envelopes for each of the organisation's keys, replacing those of
    /// `only` (the categories a change touched; None: all of them). Runs in
    /// the member's session: `records` were decrypted with their key.
    async fn seal_envelopes(
        &self,
        s: &MemberSession,
        consent: &ConsentRecord,
        records: &[RecordContent],
        only: Option<&BTreeSet<String>>,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        if consent.subject != s.member || !consent.in_force(now) {
            return Ok(());
        }
        let mut values: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for rec in records {
            let Some(c) = self.category_of(rec) else {
                continue;
            };
            let granted = consent
                .categories
                .iter()
                .any(|g| self.vocab.category_within(c, g));
            if granted && only.is_none_or(|o| o.contains(c)) {
                values
                    .entry(c.to_owned())
                    .or_default()
                    .push(disclosed_value(rec));
            }
        }
        let subject = self.pseudonym_of(consent);
        let mut rows = Vec::new();
        for (key, pk) in self.envelope_keys(consent.controller).await? {
            for (category, vals) in &values {
                // Equal plaintext (but for the time of sealing) gives an
                // equal digest: the store then keeps the envelope it has.
                let digest = s.keyed_digest(
                    envelope::DIGEST_PURPOSE,
                    &envelope::digest_input(consent.id, &subject, category, vals),
                );
                let content = EnvelopeContent {
                    v: CONTENT_VERSION,
                    consent_id: consent.id,
                    subject: subject.clone(),
                    category: category.clone(),
                    values: vals.clone(),
                    // To the hour: the organisation opens it.
                    sealed_at: now.hour().to_rfc3339(),
                };
                rows.push(EnvelopeRow {
                    consent: consent.id,
                    key,
                    category: category.clone(),
                    member: s.member,
                    expires_at: consent.expires_at,
                    updated_at: now,
                    sealed: envelope::seal(&pk, &content, self.rng.as_ref()),
                    digest: Some(digest),
                });
            }
        }
        let only: Option<Vec<String>> = only.map(|o| o.iter().cloned().collect());
        // Audited only when an envelope changed (a login that seals the
        // same plaintext writes nothing and tells nothing).
        if self
            .store
            .replace_envelopes(consent.id, only.as_deref(), &rows, now)
            .await?
            == EnvelopeWrite::Changed
        {
            self.audit
                .record(
                    AuditEvent::new(Actor::Member(s.member), Action::ConsentEnvelopeSeal)
                        .subject(s.member)
                        .object(consent.id),
                )
                .await?;
        }
        Ok(())
    }

    /// The member's consents in force now.
    async fn in_force_of(&self, member: MemberId) -> Result<Vec<ConsentRecord>, ServiceError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for row in self.store.consents_of_member(member).await? {
            if row.status != "given" {
                continue;
            }
            let r = ConsentRecord::from_json(&row.body)?;
            if r.in_force(now) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Brings every envelope of the member's consents in force up to date
    /// (at login: consents given before member-held keys, keys the
    /// organisation made since, a write whose update failed).
    pub async fn refresh_envelopes(&self, s: &MemberSession) -> Result<(), ServiceError> {
        let consents = self.in_force_of(s.member).await?;
        if consents.is_empty() {
            return Ok(());
        }
        let records: Vec<RecordContent> = self
            .vault
            .all_records(s)
            .await?
            .into_iter()
            .map(|r| r.content)
            .collect();
        for c in &consents {
            self.seal_envelopes(s, c, &records, None).await?;
        }
        Ok(())
    }

    /// After a write: re-seals the envelopes of the categories `old` and
    /// `new` fall in, for each consent in force that covers them.
    pub async fn record_changed(
        &self,
        s: &MemberSession,
        old: Option<&RecordContent>,
        new: Option<&RecordContent>,
    ) -> Result<(), ServiceError> {
        // A correction (Art. 16) is told to every recipient of the old
        // value (Art. 19); the envelopes are re-sealed either way.
        let told = match (old, new) {
            (Some(o), Some(n)) if o != n => self.rectified(s.member, o).await.map(|_| ()),
            _ => Ok(()),
        };
        self.reseal_after(s, old, new).await?;
        told
    }

    async fn reseal_after(
        &self,
        s: &MemberSession,
        old: Option<&RecordContent>,
        new: Option<&RecordContent>,
    ) -> Result<(), ServiceError> {
        let touched: BTreeSet<String> = [old, new]
            .into_iter()
            .flatten()
            .filter_map(|r| self.category_of(r).map(str::to_owned))
            .collect();
        if touched.is_empty() {
            return Ok(());
        }
        let consents: Vec<(ConsentRecord, BTreeSet<String>)> = self
            .in_force_of(s.member)
            .await?
            .into_iter()
            .filter_map(|c| {
                let covered: BTreeSet<String> = touched
                    .iter()
                    .filter(|t| {
                        c.categories
                            .iter()
                            .any(|g| self.vocab.category_within(t, g))
                    })
                    .cloned()
                    .collect();
                (!covered.is_empty()).then_some((c, covered))
            })
            .collect();
        if consents.is_empty() {
            return Ok(());
        }
        let records: Vec<RecordContent> = self
            .vault
            .all_records(s)
            .await?
            .into_iter()
            .map(|r| r.content)
            .collect();
        for (c, covered) in &consents {
            self.seal_envelopes(s, c, &records, Some(covered)).await?;
        }
        Ok(())
    }

    /// What the vault calls in members' sessions (install with
    /// `Vault::set_session_hook`).
    pub fn session_hook(&self) -> EnvelopeHook {
        EnvelopeHook(self.clone())
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
        self.release_due().await?;
        let row = self
            .store
            .released_consent(consent)
            .await?
            .ok_or(ServiceError::ConsentNotFound)?;
        // As of the last release (a withdrawal's receipt shows with it).
        let r = ConsentRecord::from_json(&row.released_body)?;
        if r.controller != org || r.status == ConsentStatus::Refused || r.cross_sell_from.is_some()
        {
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

    async fn answer(
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
    async fn answer_request(
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

/// The vault's session hook: keeps envelopes up to date as the member writes
/// and logs in.
#[derive(Debug)]
pub struct EnvelopeHook(Consents);

#[async_trait::async_trait]
impl me2b_vault::SessionHook for EnvelopeHook {
    async fn record_changed(
        &self,
        s: &MemberSession,
        old: Option<&RecordContent>,
        new: Option<&RecordContent>,
    ) -> Result<(), String> {
        self.0
            .record_changed(s, old, new)
            .await
            .map_err(|e| e.to_string())
    }
    async fn logged_in(&self, s: &MemberSession) -> Result<(), String> {
        self.0.refresh_envelopes(s).await.map_err(|e| e.to_string())
    }
}
