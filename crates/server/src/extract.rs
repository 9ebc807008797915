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
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ))
    }
}

/// Rewrites serde's message so that it never echoes a submitted value.
fn sanitize(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    if msg.starts_with("invalid type")
        || msg.starts_with("invalid value")
        || msg.starts_with("invalid length")
    {
        return match msg.rfind(", expected ") {
            Some(i) => format!("wrong type or value; expected {}", &msg[i + 11..]),
            None => "wrong type or value".to_owned(),
        };
    }
    msg.chars().take(300).collect()
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
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!(
                        "the body is larger than the limit of {} bytes",
                        crate::MAX_BODY_BYTES
                    ),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "the body could not be read",
                )
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: Result<T, _> = serde_path_to_error::deserialize(&mut de);
        if value.is_ok() && de.end().is_err() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the body is not valid JSON: trailing characters after the value",
            ));
        }
        match value {
            Ok(v) => Ok(ApiJson(v)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let msg = sanitize(&inner.to_string());
                if inner.is_data() {
                    let at = if path == "." {
                        String::new()
                    } else {
                        format!(" at `{path}`")
                    };
                    Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_body",
                        format!("the body does not match the schema{at}: {msg}"),
                    ))
                } else {
                    Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
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
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "send `Authorization: Bearer <token>`",
    )
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
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
                StatusCode::FORBIDDEN,
                "organisation_forbidden",
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
                StatusCode::FORBIDDEN,
                "organisation_only",
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
            "unknown field `x`, expected `a`"
        );
    }
}
