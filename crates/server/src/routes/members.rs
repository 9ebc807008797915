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

/// The same answer for every sign-up, whether or not the address has an account.
#[derive(Serialize, ToSchema)]
pub struct SignUpRequested {
    /// Always `confirmation_sent`.
    pub status: &'static str,
    pub message: &'static str,
}

/// The confirmation token from the message sent to the address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    #[schema(value_type = String)]
    pub token: String,
}

/// A session token, shown once. Send it as `Authorization: Bearer <token>`.
#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    pub member_id: MemberId,
    pub token: String,
    pub token_type: &'static str,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Shown once, at sign-up (and when a login moved the vault to keys
    /// the member holds, or after a recovery): print it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
    /// With a recovery code: what it is for, and that losing both it and
    /// the passphrase loses the vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_notice: Option<&'static str>,
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

/// A new passphrase; the current one opens the vault's key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassphraseChange {
    /// 10 to 1,024 characters.
    #[schema(value_type = String, format = Password, min_length = 10, max_length = 1024)]
    pub current: Passphrase,
    /// 10 to 1,024 characters.
    #[schema(value_type = String, format = Password, min_length = 10, max_length = 1024)]
    pub new: Passphrase,
}

/// Recovery: the e-mail address, the recovery code, and a new passphrase.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    #[schema(value_type = String, format = "email")]
    pub email: Email,
    /// As printed: 28 characters in groups of four; case, spaces and dashes do not matter.
    #[schema(value_type = String)]
    pub recovery_code: String,
    /// 10 to 1,024 characters.
    #[schema(value_type = String, format = Password, min_length = 10, max_length = 1024)]
    pub new_passphrase: Passphrase,
}

const SIGN_UP_MESSAGE: &str = "If this address can be used, a message is on its way to it: confirm with the token it carries (POST /v1/members/confirm). If the address already has an account, the message says so instead.";

/// Asks to open an account. The answer (and the work behind it) is the same
/// whether or not the address already has an account: a message goes to
/// the address, with a confirmation token if it is new. Throttled per
/// client address before any work (README: Configuration, `signup_burst`).
#[utoipa::path(post, path = "/v1/members", tag = "member", request_body = Credentials,
    responses((status = 202, body = SignUpRequested, description = "A message went to the address"),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many sign-ups from this address",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn sign_up(
    State(s): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<SignUpRequested>), ApiError> {
    throttle.check_sign_up(throttle.client(peer, &headers))?;
    s.node.vault.request_sign_up(c.email, c.passphrase).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SignUpRequested {
            status: "confirmation_sent",
            message: SIGN_UP_MESSAGE,
        }),
    ))
}

/// Confirms a sign-up with the token from the message: the account is made,
/// the member is logged in, and their recovery code is shown, once.
#[utoipa::path(post, path = "/v1/members/confirm", tag = "member", request_body = Confirmation,
    responses((status = 201, body = SessionCreated, description = "Account created; the member is logged in; the recovery code is shown once"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn confirm(
    State(s): State<AppState>,
    ApiJson(c): ApiJson<Confirmation>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    let done = s.node.vault.confirm_sign_up(&c.token).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated::with_code(
            done.session,
            Some(done.recovery_code),
        )),
    ))
}

impl SessionCreated {
    fn with_code(s: me2b_vault::NewSession, code: Option<me2b_crypto::RecoveryCode>) -> Self {
        let shown = code.map(|c| c.display());
        Self {
            member_id: s.member,
            token: s.token.expose().to_owned(),
            token_type: "Bearer",
            expires_at: s.expires_at.to_rfc3339(),
            recovery_notice: shown.as_ref().map(|_| me2b_vault::RECOVERY_NOTICE),
            recovery_code: shown,
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
    let l = s.node.vault.log_in(c.email, c.passphrase).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated::with_code(l.session, l.recovery_code)),
    ))
}

/// Logs in with the recovery code and sets a new passphrase. The code is
/// replaced by a new one (shown once); every other session ends. Throttled
/// as logins are (the same limits, per account and per client address).
#[utoipa::path(post, path = "/v1/sessions/recovery", tag = "member", request_body = Recovery,
    responses((status = 201, body = SessionCreated), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many attempts on this account or from this address",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn recover(
    State(s): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    ApiJson(r): ApiJson<Recovery>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    // Before any Argon2 work: by the e-mail's keyed index, never the address.
    let account = s.node.keys.email_index(&r.email);
    throttle.check(throttle.client(peer, &headers), &account)?;
    let code = me2b_crypto::RecoveryCode::parse(&r.recovery_code)
        .map_err(me2b_vault::VaultError::RecoveryCode)?;
    let l = s
        .node
        .vault
        .recover(r.email, code, r.new_passphrase)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated::with_code(l.session, l.recovery_code)),
    ))
}

/// Changes the passphrase (the vault's key is wrapped anew); every other
/// session of the member ends.
#[utoipa::path(post, path = "/v1/me/passphrase", tag = "member", security(("bearer" = [])), request_body = PassphraseChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn change_passphrase(
    State(s): State<AppState>,
    m: Member,
    ApiJson(c): ApiJson<PassphraseChange>,
) -> Result<StatusCode, ApiError> {
    s.node
        .vault
        .change_passphrase(&m.session, &m.token, c.current, c.new)
        .await?;
    Ok(StatusCode::NO_CONTENT)
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

/// What an erasure gives the member.
#[derive(Serialize, ToSchema)]
pub struct Erased {
    /// Keep it: with it (`POST /v1/erasure-receipts/status`) you see each
    /// organisation that received your data confirm its erasure, after your
    /// account is gone. None if the erasure is still finishing (the data
    /// trust could not be reached): it finishes at the node's next start.
    pub erasure_receipt: Option<String>,
    /// Organisations see the erasure (and get their requests) at the latest
    /// by then: erasures are released in batches.
    pub organisations_told_by: String,
}

/// Erases the account: the data key is destroyed first (nothing can be decrypted
/// afterwards, from the database or any backup), then every record is deleted.
/// Organisations that received data are asked to erase it, in the next batch.
#[utoipa::path(delete, path = "/v1/me", tag = "member", security(("bearer" = [])), request_body = EraseRequest,
    responses((status = 200, body = Erased), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn erase(
    State(s): State<AppState>,
    m: Member,
    ApiJson(req): ApiJson<EraseRequest>,
) -> Result<Json<Erased>, ApiError> {
    let receipt = s.node.vault.erase(&m.session, req.passphrase).await?;
    let by = s
        .node
        .clock
        .now()
        .plus_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
    Ok(Json(Erased {
        erasure_receipt: receipt.map(|r| r.expose().to_owned()),
        organisations_told_by: by.to_rfc3339(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only your entries after this one (your own numbering: `number`).
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
    /// How many events the entry stands for (failed logins: one entry per
    /// account per minute, with their count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
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
    // A sequence number is at most i64::MAX: past it is a bad request, not a
    // storage failure.
    crate::routes::vault::within_i64("after", q.after)?;
    crate::routes::vault::within_i64("limit", q.limit)?;
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
                count: ev.count,
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
