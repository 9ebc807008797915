//! The me2b HTTP API: a thin axum layer over the node's services.
//!
//! A request flows: tower-http layers (body limit, panic catcher, trace span
//! with method and matched route only) → extractors (`Member` / `Org`
//! authenticate; `ApiJson` parses the body into domain types) → a handler that
//! calls one service method (which writes the audit entry) → a JSON response, or
//! an [`ApiError`] through the one error mapping in [`error`].
#![forbid(unsafe_code)]

/// The printable opt-out card (me2b-web draws it for its pages too).
pub use me2b_web::card;
pub mod conn;
pub mod error;
pub mod extract;
pub mod openapi;
mod routes;
pub mod throttle;
pub mod transcryptor;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue};
use axum::Router;
use me2b_node::Node;
use std::future::Future;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use conn::ConnLimits;
pub use error::{ApiError, ErrorCode};
/// A redemption token's QR code as the API draws it (SVG).
pub use routes::trust::qr_svg;
pub use throttle::ThrottleSettings;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Shared state of the HTTP layer. axum clones the state for every request
/// (each handler, `State` extractor and stateful middleware), so the node is
/// behind one `Arc`: a clone is one reference count, not one per service of
/// the node (cloning `Node` itself cost about a fifth of the constant route's
/// CPU; BENCHMARKS.md, issues 13 and 14).
#[derive(Clone, Debug)]
pub struct AppState {
    pub node: Arc<Node>,
}

/// Options of the HTTP layer.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Adds `GET /bench/constant` (no auth, no storage, no crypto), the ceiling
    /// of the HTTP stack for benchmarks. Off by default; never documented.
    pub bench_routes: bool,
    /// Timeouts and the connection cap (see [`conn`]).
    pub limits: ConnLimits,
    /// Login throttling (see [`throttle`]).
    pub throttle: ThrottleSettings,
}

/// Every error answer is JSON from the registry: one that an extractor or a
/// layer made by itself (a path id that is not UTF-8, a body over the limit
/// read as raw bytes) is replaced here by the code its status stands for,
/// with a fixed message that echoes nothing.
async fn json_errors(resp: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    use error::ErrorCode as C;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // The one HTML error that passes: the web's "not found" page for a
    // browser path no route matched (routes::meta::not_found).
    let web_page = status == axum::http::StatusCode::NOT_FOUND
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || web_page {
        return resp;
    }
    let err = match status.as_u16() {
        400 => ApiError::new(
            C::InvalidParameter,
            "a path or query parameter is not valid",
        ),
        404 => ApiError::not_found(),
        405 => ApiError::of(C::MethodNotAllowed),
        413 => ApiError::new(
            C::PayloadTooLarge,
            format!("the body is larger than the limit of {MAX_BODY_BYTES} bytes"),
        ),
        415 => ApiError::of(C::UnsupportedMediaType),
        422 => ApiError::new(C::InvalidBody, "the request does not match the schema"),
        503 => ApiError::of(C::Unavailable),
        s if s < 500 => ApiError::new(C::InvalidParameter, "the request is not valid"),
        _ => ApiError::internal(),
    };
    err.into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::internal().into_response()
}

/// Releases the erasures due before any route answers (one atomic read
/// unless a period boundary passed): no organisation is answered from before
/// a release once its boundary has passed (me2b-vault's erasure.rs).
async fn release_erasures(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match s.node.vault.release_erasures_due().await {
        Ok(_) => next.run(req).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The full router.
pub fn router(state: AppState, opts: ServerOptions) -> Router {
    let throttle = Arc::new(throttle::LoginThrottle::new(
        &opts.throttle,
        state.node.clock.clone(),
    ));
    let optout = Arc::new(throttle::OptOutThrottle::new(
        &opts.throttle,
        state.node.clock.clone(),
        throttle.clone(),
    ));
    // The web pages (me2b-web): the same services, their own HTML errors and
    // security headers, so they are merged outside the API's JSON layers.
    let web = me2b_web::router(me2b_web::WebState {
        node: state.node.clone(),
        gate: optout.clone(),
        consoles: me2b_web::ConsoleSessions::default(),
    });
    let mut app = routes::router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            release_erasures,
        ))
        .layer(axum::Extension(throttle))
        .layer(axum::Extension(optout));
    if opts.bench_routes {
        app = app.merge(routes::meta::bench_router());
    }
    hardened(conn::request_timeout_layer(
        app.fallback(routes::meta::not_found)
            .method_not_allowed_fallback(routes::meta::method_not_allowed)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES)),
        opts.limits.request_timeout,
    ))
    .with_state(state)
    .merge(conn::request_timeout_layer(
        web,
        opts.limits.request_timeout,
    ))
}

/// The layers every router of this crate gets: member data never lingers in
/// shared or browser caches, no MIME sniffing, a panic becomes a JSON 500, and
/// request spans carry the method and route template only (no ids, no query
/// strings, no headers, no bodies).
pub(crate) fn hardened<S: Clone + Send + Sync + 'static>(r: Router<S>) -> Router<S> {
    r.layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .layer(axum::middleware::map_response(json_errors))
    .layer(CatchPanicLayer::custom(panic_response))
    .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        tracing::info_span!("http", method = %req.method(), route = %route)
    }))
}

/// Serves `router` on `listener` until `shutdown` completes, then drains.
/// Raises the open-file limit first and caps connections below it
/// ([`conn::serve_router`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone(), opts.clone());
    let files = conn::raise_open_file_limit(opts.limits.max_connections);
    let cap = conn::connection_cap(&opts.limits, files);
    tracing::info!(
        max_connections = cap,
        header_timeout_s = opts.limits.header_timeout.as_secs_f64(),
        idle_timeout_s = opts.limits.idle_timeout.as_secs_f64(),
        request_timeout_s = opts.limits.request_timeout.as_secs_f64(),
        "connection limits"
    );
    let served = conn::serve_router(listener, app, opts.limits, cap, shutdown).await;
    state.node.shutdown().await;
    served
}
