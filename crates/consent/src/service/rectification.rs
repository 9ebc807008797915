//! Rectification that reaches every recipient (GDPR Art. 16 and 19): when a
//! member corrects a record, each organisation that received data of the
//! record's category through one of their consents (in force or withdrawn
//! since; refusals gave nothing) gets a signed rectification notice. It
//! names the organisation's own pseudonym for the member, the consent and
//! the category, in the terms of its data access, and nothing else: no
//! member id, no e-mail, no value. The organisation fetches the corrected
//! value through data access, under its consent, as any other.
//!
//! Notices are released as erasure requests are (me2b-vault's erasure.rs,
//! the same schedule): at a period boundary, once enough members corrected
//! something or the oldest notice waited long enough, so that no
//! organisation learns the moment of a member's change, nor two co-ops the
//! same moment at each. The organisation pulls them
//! (`GET /v1/org/rectification-notices`), gets them posted to its webhook,
//! and confirms each through the API; the member follows each recipient's
//! status (waiting, pending, confirmed, overdue).

use super::erasure::{request_id_text, sign_jws, Recipient};
use super::*;
use me2b_domain::batch::ReleaseGate;
use me2b_storage::RectificationRow;

/// The `typ` of a signed rectification notice.
pub const RECTIFICATION_NOTICE_TYP: &str = "me2b-rectification-notice+jws";

/// The keyed-hash domain (the node keys' `trust_tag`) of the member tag an
/// older node stored on their notices in clear: the node seals those at
/// start (storage's `rectification_rekey`).
pub const LEGACY_MEMBER_TAG_DOMAIN: &str = "me2b-rectification-member-v1";

/// What a signed rectification notice says.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RectificationClaims {
    pub version: String,
    pub notice_id: String,
    /// The organisation told.
    pub recipient: OrgId,
    /// Its own pseudonym for the member (`sub_…`, as in its data access).
    pub subject: String,
    /// The consent under which it received the category.
    pub consent_id: ConsentId,
    /// The category whose data changed (as in its data access' envelopes).
    pub category: String,
    pub released_at: String,
    /// Confirm before this; afterwards the notice is overdue.
    pub confirm_by: String,
}

/// A rectification notice as its recipient pulls it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrgRectificationNotice {
    pub id: String,
    pub subject: String,
    pub consent_id: ConsentId,
    pub category: String,
    pub released_at: String,
    pub confirm_by: String,
    pub overdue: bool,
    /// The notice as a compact JWS (EdDSA) signed by the node
    /// (`typ: me2b-rectification-notice+jws`; key at /.well-known/me2b/node-keys).
    pub signed: String,
}

/// One recipient of a corrected category, as the member follows it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MemberRectification {
    /// The organisation's name.
    pub recipient: String,
    pub category: String,
    pub status: ErasureStatus,
    /// When the member corrected the record.
    pub corrected_at: String,
    pub released_at: Option<String>,
    pub confirm_by: Option<String>,
    pub confirmed_at: Option<String>,
}

/// The release state of notices a node's `Consents` clones share: a gate
/// on the erasures' schedule (the vault's, read at each decision), and the
/// lock a decision holds.
#[derive(Debug, Default)]
pub(crate) struct Releases {
    gate: ReleaseGate<()>,
    lock: tokio::sync::Mutex<()>,
}

impl Consents {
    /// After the member corrected a record that was `old`: a notice to
    /// every organisation that received its category through a consent,
    /// held for the next release. A record nobody received sends nothing;
    /// nor does a consent not yet released to its organisation (attack 2b
    /// of adv5: held back by `[consent_release]`, it is in neither the
    /// organisation's list nor its data access, so it received nothing and
    /// a notice would name the grant early). The categories are those of
    /// the version released to it.
    pub(super) async fn rectified(
        &self,
        member: MemberId,
        old: &RecordContent,
    ) -> Result<usize, ServiceError> {
        let Some(category) = self.category_of(old).map(str::to_owned) else {
            return Ok(0);
        };
        // What organisations are shown is decided first (the consent
        // release's own gate), as every read of theirs does.
        self.release_due().await?;
        let now = self.clock.now();
        let mut notices = Vec::new();
        for row in self.store.consents_of_member(member).await? {
            if row.status == "refused" {
                continue;
            }
            let Some(released) = self.store.released_consent(row.id).await? else {
                continue;
            };
            let record = ConsentRecord::from_json(&released.released_body)?;
            if record.status == ConsentStatus::Refused
                || !record
                    .categories
                    .iter()
                    .any(|g| self.vocab.category_within(&category, g))
            {
                continue;
            }
            let mut id = [0u8; 16];
            self.rng.fill(&mut id);
            notices.push(RectificationRow {
                id,
                org: row.org,
                subject: match &record.subject_pseudonym {
                    Some(p) => p.clone(),
                    None => self.keys.subject_pseudonym(&row.org, &member),
                },
                consent: row.id,
                category: category.clone(),
                member,
                created_at: now,
                released_at: None,
                confirmed_at: None,
            });
        }
        if notices.is_empty() {
            return Ok(0);
        }
        let stored = self.store.rectification_add(&notices).await?;
        self.audit
            .record(
                AuditEvent::new(Actor::Member(member), Action::RectificationNotify)
                    .object(format!("{stored} notices")),
            )
            .await?;
        Ok(stored)
    }

    /// Releases the notices held if a boundary passed since the last
    /// decision and the batch is due there (the erasures' schedule). Cheap
    /// when no boundary passed (one atomic read), so every read of notices
    /// runs it first; the sweeper too. Returns how many were released.
    pub async fn release_rectifications_due(&self) -> Result<u64, ServiceError> {
        let r = &self.releases.rectifications;
        if !r.gate.open(self.clock.now()) {
            return Ok(0);
        }
        let _one = r.lock.lock().await;
        let now = self.clock.now();
        if !r.gate.open(now) {
            return Ok(0);
        }
        let s = self.vault.erasure_schedule().batch;
        let boundary = s.boundary(now);
        let (pending, oldest) = self.store.rectification_pending_before(boundary).await?;
        let mut released = 0;
        if s.due(boundary, pending, oldest) {
            released = self.store.rectification_release(boundary, boundary).await?;
            if released > 0 {
                self.audit
                    .record(
                        AuditEvent::new(Actor::Node, Action::RectificationRelease)
                            .object(format!("{released} notices")),
                    )
                    .await?;
            }
        }
        r.gate.decided(&s, now);
        Ok(released)
    }

    fn rectification_status(&self, r: &RectificationRow, now: Timestamp) -> ErasureStatus {
        match (r.released_at, r.confirmed_at) {
            (_, Some(_)) => ErasureStatus::Confirmed,
            (None, None) => ErasureStatus::Waiting,
            (Some(at), None) if self.confirm_by(at) < now => ErasureStatus::Overdue,
            (Some(_), None) => ErasureStatus::Pending,
        }
    }

    /// The released notices `org` has not confirmed, each signed.
    pub async fn rectification_notices(
        &self,
        org: OrgId,
    ) -> Result<Vec<OrgRectificationNotice>, ServiceError> {
        self.release_rectifications_due().await?;
        let now = self.clock.now();
        Ok(self
            .store
            .rectifications_pending(org)
            .await?
            .iter()
            .filter_map(|r| self.signed_rectification(r, now))
            .collect())
    }

    /// A released notice as its recipient gets it (pulled, or posted to its
    /// webhook), signed by the node; None if it is not released yet.
    pub fn signed_rectification(
        &self,
        r: &RectificationRow,
        now: Timestamp,
    ) -> Option<OrgRectificationNotice> {
        let released = r.released_at?;
        let claims = RectificationClaims {
            version: "1".into(),
            notice_id: request_id_text(&r.id),
            recipient: r.org,
            subject: r.subject.clone(),
            consent_id: r.consent,
            category: r.category.clone(),
            released_at: released.to_rfc3339(),
            confirm_by: self.confirm_by(released).to_rfc3339(),
        };
        Some(OrgRectificationNotice {
            id: claims.notice_id.clone(),
            subject: r.subject.clone(),
            consent_id: r.consent,
            category: r.category.clone(),
            released_at: claims.released_at.clone(),
            confirm_by: claims.confirm_by.clone(),
            overdue: self.rectification_status(r, now) == ErasureStatus::Overdue,
            signed: sign_jws(&self.keys, RECTIFICATION_NOTICE_TYP, &claims),
        })
    }

    /// `org` confirms it corrected what notice `id` names (having fetched
    /// the new value through data access). A notice that is not a released
    /// one of `org` is `RectificationNotFound`; one confirmed before is
    /// `RectificationAlreadyConfirmed` (nothing changes).
    pub async fn confirm_rectification(
        &self,
        org: OrgId,
        id: &str,
    ) -> Result<Timestamp, ServiceError> {
        self.release_rectifications_due().await?;
        self.confirm_recipient(Recipient::Rectification, org, id)
            .await
    }

    /// Where each recipient of the member's corrections stands, newest
    /// correction first.
    pub async fn rectifications_of(
        &self,
        s: &MemberSession,
    ) -> Result<Vec<MemberRectification>, ServiceError> {
        self.release_rectifications_due().await?;
        let rows = self.store.rectifications_of(s.member).await?;
        let orgs = self.orgs_by_id().await?;
        let now = self.clock.now();
        Ok(rows
            .iter()
            .map(|r| MemberRectification {
                recipient: orgs.get(&r.org).map(|o| o.name.clone()).unwrap_or_default(),
                category: r.category.clone(),
                status: self.rectification_status(r, now),
                corrected_at: r.created_at.to_rfc3339(),
                released_at: r.released_at.map(Timestamp::to_rfc3339),
                confirm_by: r.released_at.map(|t| self.confirm_by(t).to_rfc3339()),
                confirmed_at: r.confirmed_at.map(Timestamp::to_rfc3339),
            })
            .collect())
    }
}
