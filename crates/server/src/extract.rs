//! Extractors that turn untrusted requests into typed values, mapping every
//! rejection to an [`ApiError`].

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_orgs::{OrgPrincipal, API_KEY_PREFIX};
use me2b_vault::MemberSession;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// A JSON body: `Content-Type: application/json`, within the size limit, valid
/// UTF-8 JSON, matching `T` exactly (unknown fields refused).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Refuses a body that is not declared `application/json`.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::ErrorCode::UnsupportedMediaType,
            "send the body as Content-Type: application/json",
        ))
    }
}

/// Longest part of serde's own text (what was expected) kept in a message.
const MAX_EXPECTED_CHARS: usize = 160;

/// Rewrites serde's message so that it never echoes a submitted value: an
/// unknown field or variant is not named, a wrong value is not quoted, and
/// any other text that quotes something is replaced.
fn sanitize(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    let expected = |m: &str| -> String {
        m.rfind(", expected ")
            .map(|i| {
                let e: String = m[i + 11..].chars().take(MAX_EXPECTED_CHARS).collect();
                format!("; expected {e}")
            })
            .unwrap_or_default()
    };
    for (prefix, what) in [
        ("invalid type", "wrong type or value"),
        ("invalid value", "wrong type or value"),
        ("invalid length", "wrong type or value"),
        ("unknown field", "unknown field"),
        ("unknown variant", "unknown variant"),
    ] {
        if msg.starts_with(prefix) {
            return format!("{what}{}", expected(msg));
        }
    }
    // `missing field `x`` and `duplicate field `x`` name the schema's own
    // fields; anything else that quotes is not trusted.
    let schema_name = |m: &str, prefix: &str| {
        m.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('`'))
            .and_then(|r| r.strip_suffix('`'))
            .is_some_and(is_schema_word)
    };
    if schema_name(msg, "missing field ") || schema_name(msg, "duplicate field ") {
        return msg.to_owned();
    }
    if msg.contains(['`', '"', '\'']) || msg.chars().count() > MAX_EXPECTED_CHARS {
        return "wrong type or value".to_owned();
    }
    msg.to_owned()
}

/// `1.0` is an integer in JSON Schema (and in the OpenAPI document): a
/// number with no fraction is read as an integer wherever the schema wants
/// one. Only within ±2^53, where every integer is exact as a float: past it
/// the float may be an integer literal out of range that JSON parsing
/// rounded (`-9223372036854775809`), which must stay refused.
fn integral_floats_as_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && (-EXACT..=EXACT).contains(&f) {
                    // In range and whole: `as` is exact here.
                    *v = Value::from(f as i64);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(o) => o.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// A name that can be the schema's own (snake_case, short): kept in a path.
fn is_schema_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The property names and enum values of the OpenAPI document: the only
/// keys a message may name. Anything else in a body's path is a key the
/// client chose (a map's key, an unknown field) and is shown as `*`.
fn documented_words() -> &'static BTreeSet<String> {
    fn collect(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        use serde_json::Value;
        match v {
            Value::Object(o) => {
                if let Some(Value::Object(p)) = o.get("properties") {
                    out.extend(p.keys().cloned());
                }
                if let Some(Value::Array(e)) = o.get("enum") {
                    out.extend(e.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                o.values().for_each(|x| collect(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    static WORDS: OnceLock<BTreeSet<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words = BTreeSet::new();
        collect(&crate::openapi::document(), &mut words);
        words.retain(|w| is_schema_word(w));
        words
    })
}

/// Where in the body the problem is. A key is named only when the document
/// names it; for an unknown field, the place is the object that holds it,
/// never the field's own name (which is what was sent).
fn body_path(path: &serde_path_to_error::Path, unknown_field: bool) -> String {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    if unknown_field && matches!(segments.last(), Some(Segment::Map { .. })) {
        segments.pop();
    }
    let words = documented_words();
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(if words.contains(key.as_str()) {
                    key
                } else {
                    "*"
                });
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out.chars().take(80).collect()
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    crate::error::ErrorCode::PayloadTooLarge,
                    format!(
                        "the body is larger than the limit of {} bytes",
                        crate::MAX_BODY_BYTES
                    ),
                )
            } else {
                ApiError::new(
                    crate::error::ErrorCode::MalformedJson,
                    "the body could not be read",
                )
            }
        })?;
        // JSON first (a syntax error is `malformed_json`), then the schema.
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                crate::error::ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {}", sanitize(&e.to_string())),
            )
        })?;
        integral_floats_as_integers(&mut json);
        let value: Result<T, _> = serde_path_to_error::deserialize(json);
        match value {
            Ok(v) => Ok(ApiJson(v)),
            Err(e) => {
                let raw = e.inner().to_string();
                let path = body_path(e.path(), raw.starts_with("unknown field"));
                let inner = e.into_inner();
                let msg = sanitize(&raw);
                if inner.is_data() {
                    let at = if path.is_empty() {
                        String::new()
                    } else {
                        format!(" at `{path}`")
                    };
                    Err(ApiError::new(
                        crate::error::ErrorCode::InvalidBody,
                        format!("the body does not match the schema{at}: {msg}"),
                    ))
                } else {
                    Err(ApiError::new(
                        crate::error::ErrorCode::MalformedJson,
                        format!("the body is not valid JSON: {msg}"),
                    ))
                }
            }
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(v) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| invalid_token())?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(invalid_token()),
    }
}

fn invalid_token() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::InvalidToken,
        "send `Authorization: Bearer <token>`",
    )
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::Unauthenticated,
        "this route needs `Authorization: Bearer <token>`",
    )
}

/// An authenticated member. Organisations are refused here: member data is
/// reachable by an organisation only through consent.
#[derive(Debug)]
pub struct Member {
    pub session: MemberSession,
    pub token: String,
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?.ok_or_else(unauthenticated)?;
        if token.starts_with(API_KEY_PREFIX) {
            let org = state.node.orgs.authenticate(token).await?;
            state
                .node
                .audit
                .record(
                    AuditEvent::new(Actor::Organisation(org.org.id), Action::AccessDenied)
                        .object(org.key)
                        .outcome(Outcome::Denied),
                )
                .await?;
            return Err(ApiError::new(
        crate::error::ErrorCode::OrganisationForbidden,
                "organisations cannot reach member data on this route; access to member data requires the member's consent",
            ));
        }
        let session = state.node.vault.authenticate(token).await?;
        // Global Privacy Control: a member's request carrying `Sec-GPC: 1` opts
        // them out of sale/sharing and third-party advertising (recorded once).
        let gpc = parts
            .headers
            .get("sec-gpc")
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"1");
        if gpc {
            state.node.consents.record_gpc(session.member).await?;
        }
        Ok(Member {
            session,
            token: token.to_owned(),
        })
    }
}

/// An authenticated organisation. Member session tokens are refused here.
#[derive(Debug)]
pub struct Org(pub OrgPrincipal);

impl FromRequestParts<AppState> for Org {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?.ok_or_else(unauthenticated)?;
        if !token.starts_with(API_KEY_PREFIX) {
            return Err(ApiError::new(
                crate::error::ErrorCode::OrganisationOnly,
                "this route is for organisations' API keys",
            ));
        }
        Ok(Org(state.node.orgs.authenticate(token).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn sanitize_drops_values() {
        let m =
            sanitize("invalid type: string \"alice@example.org\", expected u32 at line 1 column 9");
        assert_eq!(m, "wrong type or value; expected u32");
        assert_eq!(
            sanitize("unknown field `x`, expected `a`"),
            "unknown field; expected `a`"
        );
        assert_eq!(
            sanitize("unknown variant `SECRET`, expected one of `a`, `b`"),
            "unknown variant; expected one of `a`, `b`"
        );
        assert_eq!(sanitize("missing field `email`"), "missing field `email`");
        assert_eq!(
            sanitize("invalid character: found `Z` at 3"),
            "wrong type or value"
        );
    }
}
