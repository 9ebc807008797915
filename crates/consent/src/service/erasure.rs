//! Erasure that reaches every recipient (GDPR Art. 17 and 19): the recipient
//! register (every organisation the member gave a consent to, cross-selling
//! included, each named by its own pseudonym for the member), the signed
//! requests organisations pull and confirm, and the status a member follows
//! with their erasure receipt after their account is gone.
//!
//! Requests are made when the member is erased and released with the
//! erasure's batch (me2b-vault's erasure.rs): sent at the erasure's instant,
//! they would show two co-ops one request each at one moment, and link them.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use me2b_storage::{Confirmed, ErasureRequestRow};

/// The `typ` of a signed erasure request.
pub const ERASURE_REQUEST_TYP: &str = "me2b-erasure-request+jws";

/// What a signed erasure request says.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErasureRequestClaims {
    pub version: String,
    pub request_id: String,
    /// The organisation asked to erase.
    pub recipient: OrgId,
    /// Its own pseudonym for the member (`sub_…`, as in its consent list).
    pub subject: String,
    pub released_at: String,
    /// Confirm before this; afterwards the request is overdue.
    pub confirm_by: String,
}

/// An erasure request as its recipient pulls it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrgErasureRequest {
    pub id: String,
    pub subject: String,
    pub released_at: String,
    pub confirm_by: String,
    pub overdue: bool,
    /// The request as a compact JWS (EdDSA) signed by the node
    /// (`typ: me2b-erasure-request+jws`; key at /.well-known/me2b/node-keys).
    pub signed: String,
}

/// Where one recipient's erasure stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureStatus {
    /// Not yet sent: it leaves with the erasure's batch.
    Waiting,
    Pending,
    Confirmed,
    /// Not confirmed by the deadline.
    Overdue,
}

/// One recipient of the member's data and where its erasure stands.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecipientStatus {
    pub recipient: String,
    pub status: ErasureStatus,
    pub released_at: Option<String>,
    pub confirm_by: Option<String>,
    pub confirmed_at: Option<String>,
}

/// One request as the operator sees it (never grouped by member).
#[derive(Clone, Debug)]
pub struct OperatorErasureRequest {
    pub id: String,
    pub organisation: String,
    pub status: ErasureStatus,
    pub released_at: Option<Timestamp>,
    pub confirm_by: Option<Timestamp>,
    pub confirmed_at: Option<Timestamp>,
}

/// The consent service as the vault's recipient register.
#[derive(Clone, Debug)]
pub struct RecipientList(Consents);

#[async_trait::async_trait]
impl me2b_vault::RecipientRegister for RecipientList {
    async fn recipients(&self, member: MemberId) -> Result<Vec<(OrgId, String)>, String> {
        self.0
            .recipients_of(member)
            .await
            .map_err(|e| e.to_string())
    }
}

pub(super) fn request_id_text(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an organisation confirms: an erasure request or a rectification
/// notice (both pulled, confirmed once, audited alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Recipient {
    Erasure,
    Rectification,
}

impl Recipient {
    fn not_found(self) -> ServiceError {
        match self {
            Recipient::Erasure => ServiceError::ErasureRequestNotFound,
            Recipient::Rectification => ServiceError::RectificationNotFound,
        }
    }
}

/// A request id as shown (32 lowercase hex digits); anything else is none.
pub(super) fn parse_request_id(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn sign(keys: &Keyring, claims: &ErasureRequestClaims) -> String {
    sign_jws(keys, ERASURE_REQUEST_TYP, claims)
}

/// `claims` as a compact JWS (EdDSA) signed by the node, with `typ`.
pub(super) fn sign_jws<T: serde::Serialize>(keys: &Keyring, typ: &str, claims: &T) -> String {
    let header = serde_json::json!({
        "alg": "EdDSA",
        "kid": keys.verifying_key().key_id(),
        "typ": typ,
    });
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{h}.{p}");
    let sig = URL_SAFE_NO_PAD.encode(keys.sign(input.as_bytes()));
    format!("{input}.{sig}")
}

impl Consents {
    /// The recipient register the vault asks when a member is erased.
    pub fn recipient_register(&self) -> RecipientList {
        RecipientList(self.clone())
    }

    /// Every organisation the member gave a consent to (in force or
    /// withdrawn since; a cross-selling consent's receiving co-op too), once,
    /// with its own pseudonym for the member. Refusals gave nothing.
    async fn recipients_of(&self, member: MemberId) -> Result<Vec<(OrgId, String)>, ServiceError> {
        let mut orgs = BTreeSet::new();
        for row in self.store.consents_of_member(member).await? {
            if row.status != "refused" {
                orgs.insert(row.org);
            }
        }
        Ok(orgs
            .into_iter()
            .map(|o| (o, self.keys.subject_pseudonym(&o, &member)))
            .collect())
    }

    pub(super) fn confirm_by(&self, released: Timestamp) -> Timestamp {
        released.plus_seconds(self.vault.erasure_schedule().confirm_within_seconds)
    }

    fn status_of(&self, r: &ErasureRequestRow, now: Timestamp) -> ErasureStatus {
        match (r.released_at, r.confirmed_at) {
            (_, Some(_)) => ErasureStatus::Confirmed,
            (None, None) => ErasureStatus::Waiting,
            (Some(at), None) if self.confirm_by(at) < now => ErasureStatus::Overdue,
            (Some(_), None) => ErasureStatus::Pending,
        }
    }

    /// The released requests `org` has not confirmed, each signed.
    pub async fn erasure_requests(
        &self,
        org: OrgId,
    ) -> Result<Vec<OrgErasureRequest>, ServiceError> {
        let now = self.clock.now();
        Ok(self
            .store
            .erasure_requests_pending(org)
            .await?
            .iter()
            .filter_map(|r| self.signed_erasure_request(r, now))
            .collect())
    }

    /// A released request as its recipient gets it (pulled, or posted to its
    /// webhook), signed by the node; None if it is not released yet.
    pub fn signed_erasure_request(
        &self,
        r: &ErasureRequestRow,
        now: Timestamp,
    ) -> Option<OrgErasureRequest> {
        let released = r.released_at?;
        let claims = ErasureRequestClaims {
            version: "1".into(),
            request_id: request_id_text(&r.id),
            recipient: r.org,
            subject: r.subject.clone(),
            released_at: released.to_rfc3339(),
            confirm_by: self.confirm_by(released).to_rfc3339(),
        };
        Some(OrgErasureRequest {
            id: claims.request_id.clone(),
            subject: r.subject.clone(),
            released_at: claims.released_at.clone(),
            confirm_by: claims.confirm_by.clone(),
            overdue: self.status_of(r, now) == ErasureStatus::Overdue,
            signed: sign(&self.keys, &claims),
        })
    }

    /// `org` confirms it erased what request `id` names. A request that is
    /// not a released one of `org` is `ErasureRequestNotFound`; one
    /// confirmed before is `ErasureAlreadyConfirmed` (nothing changes).
    pub async fn confirm_erasure(&self, org: OrgId, id: &str) -> Result<Timestamp, ServiceError> {
        self.confirm_recipient(Recipient::Erasure, org, id).await
    }

    /// `org` confirms what a request or notice of `kind` names: parses the
    /// id, confirms it once, audits the attempt, and answers as `kind`
    /// says (the one path of erasure requests and rectification notices).
    pub(super) async fn confirm_recipient(
        &self,
        kind: Recipient,
        org: OrgId,
        id: &str,
    ) -> Result<Timestamp, ServiceError> {
        let id = parse_request_id(id).ok_or_else(|| kind.not_found())?;
        let now = self.clock.now();
        let outcome = match kind {
            Recipient::Erasure => self.store.erasure_confirm(org, &id, now).await?,
            Recipient::Rectification => self.store.rectification_confirm(org, &id, now).await?,
        };
        let action = match kind {
            Recipient::Erasure => Action::ErasureConfirm,
            Recipient::Rectification => Action::RectificationConfirm,
        };
        let ev = AuditEvent::new(Actor::Organisation(org), action).object(request_id_text(&id));
        match outcome {
            Confirmed::Now => {
                self.audit.record(ev).await?;
                Ok(now)
            }
            Confirmed::Already => {
                self.audit.record(ev.outcome(Outcome::Denied)).await?;
                Err(match kind {
                    Recipient::Erasure => ServiceError::ErasureAlreadyConfirmed,
                    Recipient::Rectification => ServiceError::RectificationAlreadyConfirmed,
                })
            }
            Confirmed::NotFound => {
                self.audit.record(ev.outcome(Outcome::Denied)).await?;
                Err(kind.not_found())
            }
        }
    }

    /// Where each recipient's erasure stands, for the holder of an erasure
    /// receipt (no account needed: it is gone). An unknown or altered
    /// receipt is `ErasureReceiptNotFound`.
    pub async fn erasure_status(
        &self,
        receipt: &str,
    ) -> Result<Vec<RecipientStatus>, ServiceError> {
        if !receipt.starts_with(me2b_vault::ERASURE_RECEIPT_PREFIX) || receipt.len() > 128 {
            return Err(ServiceError::ErasureReceiptNotFound);
        }
        let n = self
            .store
            .erasure_receipt(&me2b_crypto::hash_token(receipt))
            .await?
            .ok_or(ServiceError::ErasureReceiptNotFound)?;
        let tags: Vec<[u8; 32]> = (0..n)
            .map(|i| me2b_crypto::receipt_tag(receipt, i))
            .collect();
        let rows = self.store.erasure_requests_tagged(&tags).await?;
        let orgs = self.orgs_by_id().await?;
        let now = self.clock.now();
        let mut out: Vec<RecipientStatus> = rows
            .iter()
            .map(|r| RecipientStatus {
                recipient: orgs.get(&r.org).map(|o| o.name.clone()).unwrap_or_default(),
                status: self.status_of(r, now),
                released_at: r.released_at.map(Timestamp::to_rfc3339),
                confirm_by: r.released_at.map(|t| self.confirm_by(t).to_rfc3339()),
                confirmed_at: r.confirmed_at.map(Timestamp::to_rfc3339),
            })
            .collect();
        out.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        // The data trust forgot the member in the erasure itself.
        out.push(RecipientStatus {
            recipient: "the data trust".into(),
            status: ErasureStatus::Confirmed,
            released_at: None,
            confirm_by: None,
            confirmed_at: None,
        });
        Ok(out)
    }

    /// Every erasure request, as the operator sees them: one by one, never
    /// grouped by member.
    pub async fn erasure_overview(&self) -> Result<Vec<OperatorErasureRequest>, ServiceError> {
        let orgs = self.orgs_by_id().await?;
        let now = self.clock.now();
        Ok(self
            .store
            .erasure_requests_all()
            .await?
            .iter()
            .map(|r| OperatorErasureRequest {
                id: request_id_text(&r.id),
                organisation: orgs.get(&r.org).map(|o| o.name.clone()).unwrap_or_default(),
                status: self.status_of(r, now),
                released_at: r.released_at,
                confirm_by: r.released_at.map(|t| self.confirm_by(t)),
                confirmed_at: r.confirmed_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_round_trip_and_anything_else_is_none() {
        let id = [0xab; 16];
        assert_eq!(parse_request_id(&request_id_text(&id)), Some(id));
        for bad in ["", "AB", &"A".repeat(32), &"g".repeat(32), &"a".repeat(33)] {
            assert_eq!(parse_request_id(bad), None);
        }
    }
}
