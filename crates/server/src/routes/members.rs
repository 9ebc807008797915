use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Member};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use me2b_domain::audit::{Actor, AuditEvent, Outcome};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::MemberId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Sign-up and log-in credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The e-mail address used to log in. Stored only as a keyed hash and ciphertext.
    #[schema(value_type = String, format = "email")]
    pub email: Email,
    /// 10 to 1,024 characters.
    #[schema(value_type = String, format = Password, min_length = 10)]
    pub passphrase: Passphrase,
}

/// A session token, shown once. Send it as `Authorization: Bearer <token>`.
#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    pub member_id: MemberId,
    pub token: String,
    pub token_type: &'static str,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// The member's own account.
#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub member_id: MemberId,
    pub email: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub records: u64,
}

/// Confirms erasure with the passphrase.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    #[schema(value_type = String, format = Password)]
    pub passphrase: Passphrase,
}

#[utoipa::path(post, path = "/v1/members", tag = "member", request_body = Credentials,
    responses((status = 201, body = SessionCreated, description = "Account created; the member is logged in"),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn sign_up(
    State(s): State<AppState>,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    let session = s.node.vault.sign_up(c.email, c.passphrase).await?;
    Ok((StatusCode::CREATED, Json(session.into())))
}

impl From<me2b_vault::NewSession> for SessionCreated {
    fn from(s: me2b_vault::NewSession) -> Self {
        Self {
            member_id: s.member,
            token: s.token.expose().to_owned(),
            token_type: "Bearer",
            expires_at: s.expires_at.to_rfc3339(),
        }
    }
}

#[utoipa::path(post, path = "/v1/sessions", tag = "member", request_body = Credentials,
    responses((status = 201, body = SessionCreated), (status = 401, body = ErrorBody)))]
pub async fn log_in(
    State(s): State<AppState>,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    let session = s.node.vault.log_in(c.email, c.passphrase).await?;
    Ok((StatusCode::CREATED, Json(session.into())))
}

#[utoipa::path(delete, path = "/v1/sessions/current", tag = "member", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn log_out(State(s): State<AppState>, m: Member) -> Result<StatusCode, ApiError> {
    s.node.vault.log_out(&m.session, &m.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/me", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn me(State(s): State<AppState>, m: Member) -> Result<Json<MeView>, ApiError> {
    let v = s.node.vault.me(&m.session).await?;
    Ok(Json(MeView {
        member_id: v.member,
        email: v.email.as_str().to_owned(),
        created_at: v.created_at.to_rfc3339(),
        records: v.records,
    }))
}

/// Erases the account: the data key is destroyed first (nothing can be decrypted
/// afterwards, from the database or any backup), then every record is deleted.
#[utoipa::path(delete, path = "/v1/me", tag = "member", security(("bearer" = [])), request_body = EraseRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn erase(
    State(s): State<AppState>,
    m: Member,
    ApiJson(req): ApiJson<EraseRequest>,
) -> Result<StatusCode, ApiError> {
    s.node.vault.erase(&m.session, req.passphrase).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only your entries after this one (your own numbering: `number`).
    #[serde(default)]
    pub after: u64,
    /// At most this many entries (default 100, at most 1000).
    #[serde(default = "default_limit")]
    pub limit: u64,
}

fn default_limit() -> u64 {
    100
}

/// One audit entry about the member: ids and categories, never values. No
/// node-wide counter: entries are numbered per member and timed to the minute.
#[derive(Serialize, ToSchema)]
pub struct AuditView {
    /// 1 for your first entry, 2 for the next, and so on.
    pub number: u64,
    /// When, to the minute.
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: Actor,
    pub action: me2b_domain::audit::Action,
    pub object: Option<String>,
    pub outcome: Outcome,
    /// SHA-256 of a domain tag and the entry's chain hash (hex): lets an
    /// auditor with the log find the entry, reveals nothing of the log.
    pub leaf: String,
}

/// The node's signature over this page: your member id, each entry's number,
/// minute and leaf, and the anchor of the signed head that covers the last.
#[derive(Serialize, ToSchema)]
pub struct AuditCoverage {
    /// `me2b/audit/member-view/v1`: how the signed message is laid out
    /// (ARCHITECTURE.md, "A member's audit view").
    pub format: &'static str,
    /// SHA-256 of a domain tag and the hash of the signed head written with
    /// the last entry (hex); absent on an empty page.
    pub anchor: Option<String>,
    /// Ed25519 (hex), by the node key at `/.well-known/me2b/node-keys`.
    pub signature: String,
    pub key_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditView>,
    /// Pass as `after` to get the next page; absent at the end.
    pub next_after: Option<u64>,
    pub coverage: AuditCoverage,
}

/// The audit entries about the member: every access to their account and
/// data, and their loyalty points' earning and redeeming.
#[utoipa::path(get, path = "/v1/me/audit", tag = "member", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(s): State<AppState>,
    m: Member,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = q.map_err(crate::routes::vault::bad_query)?;
    let limit = q.limit.clamp(1, me2b_vault::MAX_PAGE);
    let also = s.node.trust.audit_subjects(m.session.member).await?;
    let view = s
        .node
        .vault
        .audit_view(&m.session, &also, q.after, limit)
        .await?;
    let next_after = (view.entries.len() as u64 == limit)
        .then(|| view.entries.last().map(|e| e.number))
        .flatten();
    let entries = view
        .entries
        .into_iter()
        .filter_map(|e| {
            let ev: AuditEvent = e.entry.event().ok()?;
            Some(AuditView {
                number: e.number,
                at: e.minute.to_rfc3339(),
                actor: ev.actor,
                action: ev.action,
                object: ev.object,
                outcome: ev.outcome,
                leaf: hex::encode(e.leaf),
            })
        })
        .collect();
    Ok(Json(AuditPage {
        entries,
        next_after,
        coverage: AuditCoverage {
            format: me2b_audit::member::STATEMENT_FORMAT,
            anchor: view.statement.anchor.map(hex::encode),
            signature: hex::encode(&view.statement.signature),
            key_id: s.node.keys.verifying_key().key_id(),
        },
    }))
}
