use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use utoipa::ToSchema;

/// Liveness and the storage backend in use.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub backend: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, body = Health)))]
pub async fn healthz(State(s): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        backend: s.node.backend.as_str(),
    })
}

#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "This document")))]
pub async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

/// A public key of the node, shaped as a JWK (RFC 8037, OKP / Ed25519).
#[derive(Serialize, ToSchema)]
pub struct NodeKey {
    pub kid: String,
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// The public key, base64url.
    pub x: String,
}

#[derive(Serialize, ToSchema)]
pub struct NodeKeys {
    pub keys: Vec<NodeKey>,
}

/// The node's public signing keys: anyone can check audit checkpoints with them.
#[utoipa::path(get, path = "/.well-known/me2b/node-keys", tag = "meta", responses((status = 200, body = NodeKeys)))]
pub async fn node_keys(State(s): State<AppState>) -> Json<NodeKeys> {
    let vk = s.node.keys.verifying_key();
    Json(NodeKeys {
        keys: vec![NodeKey {
            kid: vk.key_id(),
            kty: "OKP",
            crv: "Ed25519",
            alg: "EdDSA",
            use_: "sig",
            x: URL_SAFE_NO_PAD.encode(vk.to_bytes()),
        }],
    })
}

/// No route matched: the API's JSON `404 not_found` for API paths, the web
/// pages' HTML "not found" page for every other (browser) path.
pub async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if is_api_path(uri.path()) {
        ApiError::not_found().into_response()
    } else {
        me2b_web::not_found_page()
    }
}

/// Paths a program calls (JSON errors), as opposed to pages a person opens.
pub(crate) fn is_api_path(path: &str) -> bool {
    path == "/v1"
        || path.starts_with("/v1/")
        || path.starts_with("/.well-known/")
        || path.starts_with("/bench/")
        || path == "/openapi.json"
        || path == "/healthz"
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
}

/// `GET /bench/constant`: a constant answer without auth, storage or crypto.
pub fn bench_router() -> Router<AppState> {
    Router::new().route(
        "/bench/constant",
        get(|| async { Json(serde_json::json!({"ok": true})) }),
    )
}
