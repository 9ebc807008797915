//! The me2b web UI: server-rendered pages (askama templates, a little htmx)
//! for members, served by the node next to the HTTP API.
//!
//! Every page calls the same services as the API (`me2b_node::Node`): there
//! is no second path to the data. The essential paths work without
//! JavaScript; htmx (vendored, served from `/assets/`) only boosts links and
//! forms. Every answer carries a strict Content-Security-Policy; every POST
//! passes one CSRF guard ([`session`]) before any handler runs; the session
//! cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` behind TLS.
#![forbid(unsafe_code)]

mod assets;
pub mod card;
mod console;
mod error;
mod form;
mod pages;
mod qr;
mod session;

use axum::http::{header, HeaderValue};
use axum::Router;
use me2b_node::Node;
use std::net::IpAddr;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

pub use console::ConsoleSessions;
pub use error::WebError;
pub use qr::qr_svg;

/// What the web layer needs from the server it is mounted in: the login
/// throttle (the API's, so a page and the API share the same limits) and
/// whether a request came over TLS.
pub trait LoginGate: Send + Sync + std::fmt::Debug {
    /// Takes one login attempt for the client on the account (the e-mail's
    /// keyed index): `false` when it is over the limits.
    fn allow(
        &self,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
        account: &[u8; 32],
    ) -> bool;
    /// Whether the request reached the node over TLS (from a trusted proxy
    /// that says so): the session cookie is then `Secure`.
    fn over_tls(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> bool;
    /// Takes one paper opt-out code typed at the public page by the client
    /// (the API's `POST /v1/optout` limits): `false` when over the limit.
    fn allow_optout(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> bool;
    /// Takes one sign-up from the client (the API's `POST /v1/members`
    /// limits): `false` when over the limit.
    fn allow_sign_up(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> bool;
}

/// Shared state of the web layer.
#[derive(Clone, Debug)]
pub struct WebState {
    /// Behind an `Arc`: axum clones the state for every request.
    pub node: Arc<Node>,
    pub gate: Arc<dyn LoginGate>,
    /// The co-op console's sessions (the API key held here, not in the cookie).
    pub consoles: ConsoleSessions,
}

/// The Content-Security-Policy of every page: nothing but this node's own
/// scripts, styles and images; no inline script or style, no framing, forms
/// post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The HTML "not found" page, with the pages' security headers: the
/// server's fallback answers it for a browser path no route matched (API
/// paths keep their JSON errors).
pub fn not_found_page() -> axum::response::Response {
    let mut resp = axum::response::IntoResponse::into_response(WebError::NotFound);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// The pages, with their security headers and the CSRF guard on every POST.
pub fn router(state: WebState) -> Router {
    let set = |name: header::HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    pages::router()
        .merge(assets::router())
        .layer(axum::middleware::from_fn(session::csrf_guard))
        .layer(set(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::REFERRER_POLICY, "same-origin"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::CACHE_CONTROL, "no-store"))
        .layer(set(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(set(
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(WebError::Internal)
        }))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::extract::Request| {
                    // The route template only: never the URI, ids or headers.
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("unmatched", |p| p.as_str());
                    tracing::info_span!("web", method = %req.method(), route = %route)
                },
            ),
        )
        .with_state(state)
}
