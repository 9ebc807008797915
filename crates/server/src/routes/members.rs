use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Member};
use crate::throttle::{LoginThrottle, Peer};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use me2b_domain::audit::{Actor, AuditEvent, Outcome};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::MemberId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Sign-up and log-in credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The e-mail address used to log in. Stored only as a keyed hash and ciphertext.
    #[schema(value_type = String, format = "email")]
    pub email: Email,
    /// 10 to 1,024 characters.
    #[schema(value_type = String, format = Password, min_length = 10, max_length = 1024)]
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
    #[schema(value_type = String, format = Password, min_length = 10, max_length = 1024)]
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

/// Logs in. Throttled per account and per client address (README:
/// Configuration): past the limit, `429 too_many_requests` with
/// `Retry-After`, whether the passphrase is right or not.
#[utoipa::path(post, path = "/v1/sessions", tag = "member", request_body = Credentials,
    responses((status = 201, body = SessionCreated), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many attempts on this account or from this address",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn log_in(
    State(s): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    // Before any Argon2 work: by the e-mail's keyed index, never the address.
    let account = s.node.keys.email_index(&c.email);
    throttle.check(throttle.client(peer, &headers), &account)?;
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
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries after this sequence number.
    #[serde(default)]
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: u64,
    /// At most this many entries (default 100; more than 1000 is 1000).
    #[serde(default = "default_limit")]
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub limit: u64,
}

fn default_limit() -> u64 {
    100
}

/// One audit entry about the member: ids and categories, never values.
#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub seq: u64,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: Actor,
    pub action: me2b_domain::audit::Action,
    pub object: Option<String>,
    pub outcome: Outcome,
    /// How many events the entry stands for (failed logins: one entry per
    /// account per minute, with their count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// This entry's chain hash (hex).
    pub hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditView>,
    /// Pass as `after` to get the next page; absent at the end.
    pub next_after: Option<u64>,
}

/// The audit entries about the member: every access to their account and data.
#[utoipa::path(get, path = "/v1/me/audit", tag = "member", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(s): State<AppState>,
    m: Member,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = q.map_err(crate::routes::vault::bad_query)?;
    // A sequence number is at most i64::MAX: past it is a bad request, not a
    // storage failure.
    crate::routes::vault::within_i64("after", q.after)?;
    crate::routes::vault::within_i64("limit", q.limit)?;
    let limit = q.limit.clamp(1, me2b_vault::MAX_PAGE);
    let entries = s
        .node
        .vault
        .audit_entries(&m.session, q.after, limit)
        .await?;
    let next_after = (entries.len() as u64 == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let entries = entries
        .into_iter()
        .filter_map(|e| {
            let ev: AuditEvent = e.event().ok()?;
            Some(AuditView {
                seq: e.seq,
                at: e.at.to_rfc3339(),
                actor: ev.actor,
                action: ev.action,
                object: ev.object,
                outcome: ev.outcome,
                count: ev.count,
                hash: hex::encode(e.hash),
            })
        })
        .collect();
    Ok(Json(AuditPage {
        entries,
        next_after,
    }))
}
