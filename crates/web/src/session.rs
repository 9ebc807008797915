//! Sessions and CSRF.
//!
//! A member's session is the API's own session token, kept in a cookie
//! (`me2b_session`: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` behind
//! TLS) and checked by the same `Vault::authenticate` as a bearer token.
//! Before login, a random `me2b_pre` cookie stands in for it.
//!
//! CSRF: every form carries `csrf` = SHA-256("me2b/web/csrf/v1" ‖ secret),
//! where the secret is the session token (else the pre-login cookie): a
//! synchronizer token bound to the session that a page of another origin
//! can neither read nor compute. [`csrf_guard`] checks it on every POST,
//! before any handler, and also refuses a POST whose `Origin` is another
//! origin, whose `Sec-Fetch-Site` says it came from another site, or that
//! carries neither header (so a cookie planted by someone else, whose
//! token they can compute, never suffices).

use crate::error::WebError;
use crate::WebState;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use me2b_vault::MemberSession;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "me2b_session";
pub const PRE_COOKIE: &str = "me2b_pre";
/// A co-op's console: a random session id; the API key stays on the server
/// ([`crate::console`]).
pub const COOP_COOKIE: &str = "me2b_coop";
/// Largest form body the guard reads (the API's body limit).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// The secret the request's CSRF token is bound to.
fn secret(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
        .or_else(|| cookie(headers, COOP_COOKIE))
        .or_else(|| cookie(headers, PRE_COOKIE))
}

/// The CSRF token for `secret`.
pub fn csrf_for(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"me2b/web/csrf/v1\0");
    h.update(secret.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Strict; Path=/`, `Secure` over TLS.
pub fn set_cookie(name: &str, value: &str, tls: bool, clear: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if clear {
        c.push_str("; Max-Age=0");
    }
    if tls {
        c.push_str("; Secure");
    }
    // Names and values are ours (token alphabet, hex): always a valid header.
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("me2b_invalid=; Max-Age=0"))
}

/// The peer's address, when the connection layer recorded it.
pub fn peer(parts_ext: &axum::http::Extensions) -> Option<IpAddr> {
    parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Whether a POST comes from a page of this origin, by the browser's own
/// headers: `Sec-Fetch-Site` (when sent) must be `same-origin` or `none`,
/// `Origin` (when sent) must name this host, and at least one of the two
/// must be sent. Every current browser sends both on a form POST. Without
/// the last rule, a request carrying neither would rest on the CSRF token
/// alone, and someone who can plant a cookie (a sibling subdomain, a
/// network attacker on plain http) chooses the secret that token is bound
/// to, and so knows the token.
fn same_origin(headers: &HeaderMap) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let site = h("sec-fetch-site");
    if let Some(site) = site {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    match h("origin") {
        None => site.is_some(),
        Some(origin) => {
            let host = h("host").unwrap_or_default();
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            !host.is_empty() && authority == Some(host)
        }
    }
}

/// Refuses every cross-site POST and every POST whose form lacks the
/// request's CSRF token, before any handler sees it.
pub async fn csrf_guard(req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    if !same_origin(req.headers()) {
        return WebError::Forbidden.into_response();
    }
    let expected = secret(req.headers()).map(csrf_for);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return WebError::TooLarge.into_response();
    };
    let sent = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|f| f.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
    let ok = match (expected, sent) {
        (Some(e), Some(s)) => bool::from(e.as_bytes().ct_eq(s.as_bytes())),
        _ => false,
    };
    if !ok {
        return WebError::Forbidden.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Where to come back to after logging in: a path on this site only.
pub fn safe_next(raw: &str) -> Option<String> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && raw.len() <= 300
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.?=&%".contains(&b));
    ok.then(|| raw.to_owned())
}

fn login_redirect(parts: &Parts, tls: bool) -> Response {
    redirect_to_login(parts, tls, "/login", SESSION_COOKIE, "/vault")
}

fn redirect_to_login(
    parts: &Parts,
    tls: bool,
    login: &str,
    cookie_name: &str,
    home: &str,
) -> Response {
    // A GET returns to itself; a POST to the page its form was on.
    let here = if parts.method == Method::GET {
        parts.uri.path_and_query().map(|p| p.as_str().to_owned())
    } else {
        parts
            .headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.split_once("://"))
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
    };
    let next = here
        .as_deref()
        .and_then(safe_next)
        .unwrap_or_else(|| home.into());
    let target = format!("{login}?next={}", urlencode(&next));
    let mut resp = Redirect::to(&target).into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(cookie_name, "", tls, true));
    resp
}

/// A co-op's console user, by its API key. Without a valid key, the
/// request is sent to the console's login page, and back afterwards.
#[derive(Debug)]
pub struct WebCoop {
    pub principal: me2b_orgs::OrgPrincipal,
    pub csrf: String,
}

impl FromRequestParts<WebState> for WebCoop {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let tls = state.gate.over_tls(peer(&parts.extensions), &parts.headers);
        let back =
            |parts: &Parts| redirect_to_login(parts, tls, "/coop/login", COOP_COOKIE, "/coop");
        let Some(id) = cookie(&parts.headers, COOP_COOKIE) else {
            return Err(back(parts));
        };
        let Some(key) = state.consoles.key(state.node.clock.as_ref(), id) else {
            return Err(back(parts));
        };
        match state.node.orgs.authenticate(key.expose_secret()).await {
            Ok(principal) => Ok(WebCoop {
                principal,
                csrf: csrf_for(secret(&parts.headers).unwrap_or(id)),
            }),
            Err(
                me2b_orgs::OrgError::InvalidKey
                | me2b_orgs::OrgError::RevokedKey
                | me2b_orgs::OrgError::NotFound,
            ) => {
                state.consoles.close(id);
                Err(back(parts))
            }
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A logged-in member. Without a valid session, the request is sent to the
/// login page, which brings the member back here afterwards.
#[derive(Debug)]
pub struct WebMember {
    pub session: MemberSession,
    pub token: String,
    pub csrf: String,
}

impl FromRequestParts<WebState> for WebMember {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let tls = state.gate.over_tls(peer(&parts.extensions), &parts.headers);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(login_redirect(parts, tls));
        };
        match state.node.vault.authenticate(token).await {
            Ok(session) => {
                // Global Privacy Control, as on the API: `Sec-GPC: 1` opts the
                // member out of sale/sharing and third-party advertising.
                let gpc = parts
                    .headers
                    .get("sec-gpc")
                    .is_some_and(|v| v.as_bytes().trim_ascii() == b"1");
                if gpc {
                    if let Err(e) = state.node.consents.record_gpc(session.member).await {
                        return Err(WebError::from(e).into_response());
                    }
                }
                Ok(WebMember {
                    session,
                    token: token.to_owned(),
                    csrf: csrf_for(token),
                })
            }
            Err(
                me2b_vault::VaultError::InvalidSession | me2b_vault::VaultError::SessionExpired,
            ) => Err(login_redirect(parts, tls)),
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

/// A visitor who may not be logged in: the CSRF token of their pages, and
/// a pre-login cookie to set when they have no secret yet.
#[derive(Debug)]
pub struct Visitor {
    pub csrf: String,
    pub set_cookie: Option<HeaderValue>,
    pub logged_in: bool,
    pub tls: bool,
    pub peer: Option<IpAddr>,
    pub headers: HeaderMap,
}

impl FromRequestParts<WebState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let peer = peer(&parts.extensions);
        let tls = state.gate.over_tls(peer, &parts.headers);
        let logged_in = cookie(&parts.headers, SESSION_COOKIE).is_some();
        let (csrf, set) = match secret(&parts.headers) {
            Some(s) => (csrf_for(s), None),
            None => {
                let mut b = [0u8; 32];
                state.node.rng.fill(&mut b);
                let v = hex(&b);
                (csrf_for(&v), Some(set_cookie(PRE_COOKIE, &v, tls, false)))
            }
        };
        Ok(Visitor {
            csrf,
            set_cookie: set,
            logged_in,
            tls,
            peer,
            headers: parts.headers.clone(),
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origin_must_be_this_host() {
        // Neither header: refused (a planted cookie would otherwise suffice).
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "same-site")
        ])));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/vault?x=1").as_deref(), Some("/vault?x=1"));
        assert_eq!(safe_next("//evil.example"), None);
        assert_eq!(safe_next("https://evil.example"), None);
        assert_eq!(safe_next("/\\evil"), None);
        assert_eq!(safe_next("/a b"), None);
    }

    #[test]
    fn csrf_token_is_bound_to_its_secret() {
        assert_eq!(csrf_for("a"), csrf_for("a"));
        assert_ne!(csrf_for("a"), csrf_for("b"));
        let h = headers(&[("cookie", "x=1; me2b_session=tok; me2b_pre=p")]);
        assert_eq!(secret(&h), Some("tok"));
        let h = headers(&[("cookie", "me2b_pre=p")]);
        assert_eq!(secret(&h), Some("p"));
        assert_eq!(secret(&HeaderMap::new()), None);
    }
}
