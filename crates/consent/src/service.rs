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

mod access;
mod answers;
mod cross_sell;
mod envelopes;
mod erasure;
pub mod optout;
mod rectification;
mod release;
pub use cross_sell::CrossSell;
pub use envelopes::EnvelopeHook;
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
