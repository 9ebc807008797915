//! The HTTP API of one transcryptor process (`me2b transcryptor`), the server
//! side of [`me2b_trust::remote::RemoteLink`].
//!
//! * `POST /v1/transcrypt`: a [`TranscryptRequest`] in, a [`TranscryptResponse`]
//!   out. Every request is written to this transcryptor's own audit log before
//!   it is answered: served, refused, malformed or unauthenticated. The answer
//!   goes out only once its entry is durable.
//! * `POST /v1/key-share`: a [`KeyShareRequest`] in, this transcryptor's
//!   `SessionKeyShares` for the domain out (audited; never for the origin domain).
//! * `GET /v1/health`: the transcryptor's name and access rule.
//! * `GET /healthz`: `{"status": "ok"}` for monitoring, with no token.
//!
//! Every `/v1` route needs `Authorization: Bearer <token>`: the node's token
//! (it transcrypts, and gets shares of the trust's own domains only) or a
//! co-op's (registered with `me2b transcryptor add-coop`: it gets the share
//! of its own domain only, and transcrypts nothing). Only the tokens'
//! SHA-256 are held, compared in constant time. Refused unauthenticated
//! requests are audited at most once a second (each entry counts the ones
//! refused since the last), so a flood cannot fill the audit log; they carry
//! no data, as their bodies are never read. Errors are the API's usual
//! `{"error": {"code", "message"}}`; no message echoes a ciphertext or key.

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use me2b_audit::AuditLog;
use me2b_crypto::{hash_token, TokenHash};
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::OrgId;
use me2b_domain::{Clock, Random};
use me2b_trust::domain::{Domain, Requester};
use me2b_trust::link::{LocalLink, TranscryptorLink};
use me2b_trust::policy::{check_domain, PolicyFile};
use me2b_trust::pseudonym::Transcryptor;
use me2b_trust::wire::{KeyShareRequest, TranscryptRequest, TranscryptResponse};
use me2b_trust::TrustError;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Largest accepted request body: a full batch of
/// [`me2b_trust::wire::MAX_BATCH`] items is about 2 MiB of JSON.
pub const MAX_TRANSCRYPT_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Longest requester name and grant text accepted (they go into the audit log).
const MAX_LABEL: usize = 128;

/// What the transcryptor's handlers share.
#[derive(Clone)]
pub struct TranscryptorState {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    /// The transcryptor, served the same way as in a node's process: each
    /// request decided on the blocking pool and audited before it is answered.
    link: LocalLink,
    token_hash: TokenHash,
    /// Each registered co-op's token hash.
    coops: Vec<(OrgId, TokenHash)>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    /// When an unauthenticated request was last audited (ms), and how many
    /// were refused since without an entry.
    unauthenticated: std::sync::Mutex<(i64, u64)>,
}

/// At most one audit entry per this many milliseconds for unauthenticated requests.
const UNAUTHENTICATED_AUDIT_MS: i64 = 1_000;

/// Holds secrets (the transcryptor's factors, the token's hash): printed with
/// its name only.
impl std::fmt::Debug for TranscryptorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscryptorState")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl TranscryptorState {
    /// `token` is the bearer token the node must present, `coops` each
    /// registered co-op's token hash; only hashes are kept.
    pub fn new(
        name: impl Into<String>,
        transcryptor: Transcryptor,
        token: &str,
        coops: Vec<(OrgId, TokenHash)>,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            inner: Arc::new({
                let name = name.into();
                Inner {
                    link: LocalLink::new(
                        name.clone(),
                        transcryptor,
                        clock.clone(),
                        random,
                        Some(audit.clone()),
                    ),
                    name,
                    token_hash: hash_token(token),
                    coops,
                    audit,
                    clock,
                    unauthenticated: std::sync::Mutex::new((i64::MIN, 0)),
                }
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Who the bearer token belongs to: the node, a registered co-op, or no one.
    fn caller(&self, headers: &HeaderMap) -> Option<Requester> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())?;
        let h = hash_token(token);
        if bool::from(h.ct_eq(&self.inner.token_hash)) {
            return Some(Requester::Trust);
        }
        // Every registered co-op is compared, so the time does not tell which.
        let mut found = None;
        for (org, hash) in &self.inner.coops {
            if bool::from(h.ct_eq(hash)) {
                found = Some(Requester::Coop(*org));
            }
        }
        found
    }

    /// Whether the request carries the node's token.
    fn authenticated(&self, headers: &HeaderMap) -> bool {
        self.caller(headers) == Some(Requester::Trust)
    }

    /// Records `event`; an audit failure becomes the answer (nothing is served
    /// that is not logged).
    async fn record(&self, event: AuditEvent) -> Result<(), ApiError> {
        self.inner
            .audit
            .record(event)
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, "audit failure");
                unavailable()
            })
    }

    /// Audits a request that never got as far as a decision, then answers `err`.
    async fn refuse_early(
        &self,
        action: Action,
        actor: Actor,
        what: &str,
        err: ApiError,
    ) -> Response {
        let outcome = if err.status() == StatusCode::UNAUTHORIZED {
            Outcome::Denied
        } else {
            Outcome::Failed
        };
        let event = AuditEvent::new(actor, action)
            .object(format!("{}: {what}", self.inner.name))
            .outcome(outcome);
        match self.record(event).await {
            Ok(()) => err.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

fn unavailable() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::Unavailable,
        "the audit log is unavailable, so nothing is served; retry later",
    )
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::Unauthenticated,
        "this route needs `Authorization: Bearer <token>` with this transcryptor's token",
    )
}

/// The one mapping from trust errors to answers; codes are
/// [`me2b_trust::error_code`]'s. Messages name domains at most, never a
/// ciphertext or key.
pub fn api_error(e: &TrustError) -> ApiError {
    use crate::error::ErrorCode as C;
    let code = match e {
        TrustError::TranscryptionRefused { .. } => C::TranscriptionRefused,
        TrustError::GrantExpired => C::GrantExpired,
        TrustError::BadGrant => C::BadGrant,
        TrustError::KeyShareRefused { .. } => C::KeyShareRefused,
        TrustError::Forbidden(_) => C::Forbidden,
        TrustError::BatchTooLarge { .. } => C::BatchTooLarge,
        TrustError::MalformedCiphertext => return malformed(),
        TrustError::Invalid(_) => C::InvalidBody,
        TrustError::AuditFailed | TrustError::Audit(_) | TrustError::Storage(_) => {
            return unavailable()
        }
        _ => return ApiError::internal(),
    };
    ApiError::new(code, e.to_string())
}

fn malformed() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::MalformedCiphertext,
        "the body is not a transcription request with well-formed ciphertexts and keys",
    )
}

fn check_label(s: &str) -> Result<(), TrustError> {
    let ok = !s.is_empty() && s.len() <= MAX_LABEL && s.chars().all(|c| !c.is_control());
    if ok {
        Ok(())
    } else {
        Err(TrustError::Invalid(
            "the requester and grant texts are 1 to 128 printable characters",
        ))
    }
}

/// What goes into the audit log must be short and well-formed: checked before
/// the request is logged under its own names.
fn check_request(req: &TranscryptRequest) -> Result<(), TrustError> {
    check_label(&req.requester)?;
    check_domain(&req.from)?;
    check_domain(&req.to)?;
    if let Some(g) = &req.grant {
        check_label(&g.grant.purpose)?;
        check_label(&g.grant.consent)?;
    }
    Ok(())
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_TRANSCRYPT_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
        crate::error::ErrorCode::PayloadTooLarge,
                format!(
                    "the body could not be read or is larger than the limit of {MAX_TRANSCRYPT_BODY_BYTES} bytes"
                ),
            )
        })
}

fn malformed_key_share() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::MalformedJson,
        "the body is not a key share request: {\"requester\", \"domain\"}",
    )
}

impl TranscryptorState {
    /// Authenticates the caller, reads the body and parses it; every refusal
    /// is audited (as `action`) before it is answered.
    async fn admit<T: serde::de::DeserializeOwned>(
        &self,
        action: Action,
        headers: &HeaderMap,
        body: Body,
        malformed: fn() -> ApiError,
    ) -> Result<(Requester, T), Response> {
        let caller = self.caller(headers);
        let Some(caller) = caller else {
            let now = self.inner.clock.now().unix_millis();
            let since = {
                let mut g = match self.inner.unauthenticated.lock() {
                    Ok(g) => g,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if now.saturating_sub(g.0) >= UNAUTHENTICATED_AUDIT_MS {
                    let since = g.1;
                    *g = (now, 0);
                    Some(since)
                } else {
                    g.1 = g.1.saturating_add(1);
                    None
                }
            };
            let Some(since) = since else {
                return Err(unauthenticated().into_response());
            };
            let what = if since == 0 {
                "unauthenticated request".to_owned()
            } else {
                format!("unauthenticated request; {since} more refused since the last entry")
            };
            return Err(self
                .refuse_early(action, Actor::Anonymous, &what, unauthenticated())
                .await);
        };
        let actor = match caller {
            Requester::Trust => Actor::Node,
            Requester::Coop(o) => Actor::Organisation(o),
        };
        let bytes = match read_body(body).await {
            Ok(b) => b,
            Err(e) => {
                return Err(self
                    .refuse_early(action, actor, "request body too large", e)
                    .await)
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(r) => Ok((caller, r)),
            Err(_) => Err(self
                .refuse_early(action, actor, "malformed request", malformed())
                .await),
        }
    }
}

#[tracing::instrument(skip_all)]
async fn transcrypt(
    State(s): State<TranscryptorState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    const A: Action = Action::TrustTranscrypt;
    let req: TranscryptRequest = match s.admit(A, &headers, body, malformed).await {
        Ok((Requester::Trust, r)) => r,
        Ok((Requester::Coop(o), _)) => {
            return s
                .refuse_early(
                    A,
                    Actor::Organisation(o),
                    "a co-op may not transcrypt",
                    ApiError::new(
                        crate::error::ErrorCode::Forbidden,
                        "only the node transcrypts; a co-op's token fetches its own key share",
                    ),
                )
                .await
        }
        Err(resp) => return resp,
    };
    if let Err(e) = check_request(&req) {
        return s
            .refuse_early(A, Actor::Node, "invalid request", api_error(&e))
            .await;
    }
    match s.inner.link.transcrypt(&req).await {
        Ok(items) => Json(TranscryptResponse { items }).into_response(),
        Err(e) => api_error(&e).into_response(),
    }
}

#[tracing::instrument(skip_all)]
async fn key_share(State(s): State<TranscryptorState>, headers: HeaderMap, body: Body) -> Response {
    const A: Action = Action::TrustKeyShare;
    let (caller, req): (Requester, KeyShareRequest) =
        match s.admit(A, &headers, body, malformed_key_share).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
    let actor = match caller {
        Requester::Trust => Actor::Node,
        Requester::Coop(o) => Actor::Organisation(o),
    };
    let domain = match check_label(&req.requester)
        .and_then(|()| check_domain(&req.domain))
        .and_then(|()| req.domain.parse::<Domain>())
    {
        Ok(d) => d,
        Err(e) => {
            return s
                .refuse_early(A, actor, "invalid request", api_error(&e))
                .await
        }
    };
    // The share goes to the caller its token names, whatever the body says.
    let object = format!("{}: {domain} for {caller}", s.inner.name);
    let result = s
        .inner
        .link
        .transcryptor()
        .share_for(caller, domain)
        .map_err(|e| {
            ApiError::new(
                crate::error::ErrorCode::KeyShareRefused,
                if domain == Domain::Origin {
                    "no key share is ever given for the origin domain".to_owned()
                } else {
                    e.to_string()
                },
            )
        });
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(e) if e.status() == StatusCode::FORBIDDEN => Outcome::Denied,
        Err(_) => Outcome::Failed,
    };
    let event = AuditEvent::new(actor, A).object(object).outcome(outcome);
    if let Err(e) = s.record(event).await {
        return e.into_response();
    }
    match result {
        Ok(shares) => Json(shares).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/health`.
#[derive(Debug, Serialize)]
pub struct Health {
    pub name: String,
    pub policy: PolicyFile,
}

#[tracing::instrument(skip_all)]
async fn health(
    State(s): State<TranscryptorState>,
    headers: HeaderMap,
) -> Result<Json<Health>, ApiError> {
    if !s.authenticated(&headers) {
        return Err(unauthenticated());
    }
    Ok(Json(Health {
        name: s.inner.name.clone(),
        policy: s.inner.link.transcryptor().policy().to_file(),
    }))
}

/// `GET /healthz`: up, nothing else (no token).
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
}

/// The transcryptor's router (with the default request timeout).
pub fn router(state: TranscryptorState) -> Router {
    router_with(state, crate::ConnLimits::default().request_timeout)
}

/// The transcryptor's router, handling each request for at most `request_timeout`.
pub fn router_with(state: TranscryptorState, request_timeout: std::time::Duration) -> Router {
    crate::hardened(crate::conn::request_timeout_layer(
        Router::new()
            .route("/v1/transcrypt", post(transcrypt))
            .route("/v1/key-share", post(key_share))
            .route("/v1/health", get(health))
            .route("/healthz", get(healthz))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed),
        request_timeout,
    ))
    .with_state(state)
}

/// Serves the transcryptor on `listener` (over TLS with `tls`) until
/// `shutdown` completes, then drains the requests in flight. The caller signs
/// the final checkpoint.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: TranscryptorState,
    limits: crate::ConnLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let files = crate::conn::raise_open_file_limit(limits.max_connections);
    let cap = crate::conn::connection_cap(&limits, files);
    let app = router_with(state, limits.request_timeout);
    crate::conn::serve_router_with(listener, app, limits, cap, tls, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Request;
    use axum::http::Method;
    use me2b_crypto::{Keyring, MasterKey, SeededRandom};
    use me2b_trust::link::pep_rng;
    use me2b_trust::policy::Policy;
    use me2b_trust::pseudonym::{setup, Federation};
    use me2b_trust::wire::Item;
    use serde_json::Value;
    use tower::ServiceExt;

    const TOKEN: &str = "0123456789abcdef";
    const COOP_TOKEN: &str = "fedcba9876543210";
    const ORIGIN: &str = "trust:origin";
    const COOP: &str = "6f1c1e2a-0000-4000-8000-00000000000a";
    const OTHER: &str = "6f1c1e2a-0000-4000-8000-00000000000b";

    struct Fixture {
        app: Router,
        keys: Arc<Keyring>,
        fed: Federation,
        store: Arc<dyn me2b_storage::Store>,
        clock: Arc<me2b_domain::FixedClock>,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = me2b_storage::open(&format!(
            "sqlite://{}",
            dir.path().join("t.sqlite3").display()
        ))
        .await
        .unwrap();
        let keys = Arc::new(Keyring::derive(&MasterKey::from_bytes([3; 32])));
        let fixed = Arc::new(me2b_domain::FixedClock::at(
            me2b_domain::Timestamp::from_unix_millis(1_790_000_000_000),
        ));
        let clock: Arc<dyn Clock> = fixed.clone();
        let audit = AuditLog::start(store.clone(), clock.clone(), keys.clone(), 1000)
            .await
            .unwrap();
        let mut rng = pep_rng(&SeededRandom::new(5));
        let (fed, mut secrets) = setup(1, &mut rng);
        let t = Transcryptor::with_policy(
            secrets.remove(0),
            Policy::standard(Some(keys.verifying_key())),
        );
        let state = TranscryptorState::new(
            "transcryptor-1",
            t,
            TOKEN,
            vec![(COOP.parse().unwrap(), me2b_crypto::hash_token(COOP_TOKEN))],
            audit,
            clock,
            Arc::new(SeededRandom::new(6)),
        );
        assert!(!format!("{state:?}").contains("factor"));
        Fixture {
            app: router(state),
            keys,
            fed,
            store,
            clock: fixed,
            _dir: dir,
        }
    }

    async fn call(
        app: &Router,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: String,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn request(f: &Fixture, from: &str, to: &str) -> String {
        let mut rng = pep_rng(&SeededRandom::new(9));
        serde_json::to_string(&TranscryptRequest {
            requester: "trust".into(),
            from: from.into(),
            to: to.into(),
            // Out of the origin only for a member's own request.
            grant: (from == ORIGIN).then(|| {
                me2b_trust::policy::Grant {
                    v: 1,
                    consent: me2b_trust::policy::MEMBER_REQUEST.into(),
                    purpose: "card".into(),
                    from: from.into(),
                    to: to.into(),
                    expires_at_ms: i64::MAX,
                }
                .sign(&f.keys)
            }),
            items: vec![Item {
                ct: f.fed.enrol(&mut rng),
                key: f.fed.origin_key(),
            }],
        })
        .unwrap()
    }

    /// (action, outcome, object) of every audit entry after the first `after`.
    async fn audited(f: &Fixture) -> Vec<(String, String, String)> {
        let entries = f.store.audit_entries(0, 1000).await.unwrap();
        entries
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_slice(&e.event_json).unwrap();
                (
                    v["action"].as_str().unwrap().to_owned(),
                    v["outcome"].as_str().unwrap().to_owned(),
                    v["object"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn serves_allowed_pairs_and_audits_every_request() {
        let f = fixture().await;
        let ok = request(&f, ORIGIN, "coop:a");
        let (st, h, v) = call(
            &f.app,
            Method::POST,
            "/v1/transcrypt",
            Some(TOKEN),
            ok.clone(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(v["items"].as_array().unwrap().len(), 1);

        // No token, a wrong token: 401, audited as denied.
        let (st, _, v) = call(&f.app, Method::POST, "/v1/transcrypt", None, ok.clone()).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
        );
        let (st, _, _) = call(
            &f.app,
            Method::POST,
            "/v1/transcrypt",
            Some("wrong"),
            ok.clone(),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _, _) = call(&f.app, Method::GET, "/v1/health", None, String::new()).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _, v) = call(&f.app, Method::GET, "/healthz", None, String::new()).await;
        assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));

        // A pair the policy refuses: 403 transcription_refused.
        let refused = request(&f, "coop:a", "coop:b");
        let (st, _, v) = call(&f.app, Method::POST, "/v1/transcrypt", Some(TOKEN), refused).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("transcription_refused"))
        );

        // Malformed ciphertexts: 400, and the message does not echo them.
        let bad = ok.replacen("\"ct\":\"", "\"ct\":\"AAAA", 1);
        let (st, _, v) = call(&f.app, Method::POST, "/v1/transcrypt", Some(TOKEN), bad).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("malformed_ciphertext"))
        );
        assert!(!v.to_string().contains("AAAA"));
        let (st, _, _) = call(
            &f.app,
            Method::POST,
            "/v1/transcrypt",
            Some(TOKEN),
            "{".into(),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);

        let log = audited(&f).await;
        let transcrypts: Vec<_> = log.iter().filter(|e| e.0 == "trust.transcrypt").collect();
        let outcomes: Vec<&str> = transcrypts.iter().map(|e| e.1.as_str()).collect();
        // The two unauthenticated requests came within a second: the first
        // is audited, the second counted into the next such entry.
        assert_eq!(outcomes, ["ok", "denied", "denied", "failed", "failed"]);
        for _ in 0..5 {
            call(&f.app, Method::POST, "/v1/transcrypt", None, ok.clone()).await;
        }
        f.clock.advance_seconds(1);
        call(&f.app, Method::POST, "/v1/transcrypt", None, ok.clone()).await;
        let log = audited(&f).await;
        let unauth: Vec<&str> = log
            .iter()
            .filter(|e| e.2.contains("unauthenticated"))
            .map(|e| e.2.as_str())
            .collect();
        assert_eq!(
            unauth,
            [
                "transcryptor-1: unauthenticated request",
                "transcryptor-1: unauthenticated request; 6 more refused since the last entry"
            ]
        );
        assert_eq!(
            transcrypts[0].2,
            "transcryptor-1: trust:origin -> coop:a (1 items) for trust"
        );
        assert!(log.iter().all(|e| !e.2.contains(TOKEN)));
    }

    #[tokio::test]
    async fn key_shares_never_for_the_origin_and_health_shows_the_policy() {
        let f = fixture().await;
        let body = |d: &str| format!(r#"{{"requester":"trust","domain":"{d}"}}"#);
        let share = |token: &'static str, d: String| {
            let app = f.app.clone();
            let b = body(&d);
            async move {
                let (st, _, v) = call(&app, Method::POST, "/v1/key-share", Some(token), b).await;
                (st, v["error"]["code"].as_str().unwrap_or("").to_owned())
            }
        };
        // The node's token: the trust's own domains only.
        assert_eq!(
            share(TOKEN, "trust:research".into()).await.0,
            StatusCode::OK
        );
        assert_eq!(share(TOKEN, "trust:loyalty".into()).await.0, StatusCode::OK);
        for d in [format!("coop:{COOP}"), ORIGIN.into()] {
            assert_eq!(
                share(TOKEN, d.clone()).await,
                (StatusCode::FORBIDDEN, "key_share_refused".into()),
                "the node never gets {d}'s keys"
            );
        }
        // A co-op's token: its own domain only, whatever the body claims.
        assert_eq!(
            share(COOP_TOKEN, format!("coop:{COOP}")).await.0,
            StatusCode::OK
        );
        for d in [
            format!("coop:{OTHER}"),
            "trust:research".into(),
            ORIGIN.into(),
        ] {
            assert_eq!(
                share(COOP_TOKEN, d.clone()).await,
                (StatusCode::FORBIDDEN, "key_share_refused".into()),
                "a co-op never gets {d}'s keys"
            );
        }
        // And it transcrypts nothing.
        let (st, _, v) = call(
            &f.app,
            Method::POST,
            "/v1/transcrypt",
            Some(COOP_TOKEN),
            request(&f, &format!("coop:{COOP}"), "trust:research"),
        )
        .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        let (st, _, _) = call(
            &f.app,
            Method::POST,
            "/v1/key-share",
            None,
            body("trust:research"),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _, v) = call(
            &f.app,
            Method::POST,
            "/v1/key-share",
            Some(TOKEN),
            body("COOP"),
        )
        .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
        );

        let (st, _, v) = call(
            &f.app,
            Method::GET,
            "/v1/health",
            Some(TOKEN),
            String::new(),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["name"], "transcryptor-1");
        assert!(v["policy"]["allow"].as_array().unwrap().len() >= 5);
        let (st, _, v) = call(
            &f.app,
            Method::GET,
            "/v1/nothing",
            Some(TOKEN),
            String::new(),
        )
        .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );

        let log = audited(&f).await;
        let shares: Vec<_> = log
            .iter()
            .filter(|e| e.0 == "trust.key_share")
            .map(|e| (e.1.as_str(), e.2.as_str()))
            .collect();
        let c = format!("coop:{COOP}");
        let o = format!("coop:{OTHER}");
        let expect: Vec<(&str, String)> = vec![
            ("ok", "trust:research for trust".into()),
            ("ok", "trust:loyalty for trust".into()),
            ("denied", format!("{c} for trust")),
            ("denied", "trust:origin for trust".into()),
            ("ok", format!("{c} for {COOP}")),
            ("denied", format!("{o} for {COOP}")),
            ("denied", format!("trust:research for {COOP}")),
            ("denied", format!("trust:origin for {COOP}")),
            ("denied", "unauthenticated request".into()),
            ("failed", "invalid request".into()),
        ];
        let expect: Vec<(&str, String)> = expect
            .into_iter()
            .map(|(o, e)| (o, format!("transcryptor-1: {e}")))
            .collect();
        let got: Vec<(&str, String)> = shares.iter().map(|(o, e)| (*o, (*e).to_owned())).collect();
        assert_eq!(
            got, expect,
            "every share request is audited, refused ones included"
        );
    }
}
