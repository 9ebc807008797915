//! Export and import (issue 15, item 1): everything the node holds about the
//! member as one signed, versioned JSON document or as JSON-LD with W3C DPV
//! terms; and the import of another node's export into this vault.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{require_json, Member};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use me2b_node::portability::MAX_IMPORT_BYTES;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/me/export", get(export)).route(
        "/v1/me/import",
        post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
    )
}

#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// The me2b export document (README: Export and import).
    #[default]
    Json,
    /// The same as JSON-LD with W3C DPV terms.
    Jsonld,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (default) or `jsonld`.
    #[serde(default)]
    #[param(inline)]
    pub format: ExportFormat,
}

/// Everything this node holds about you, signed by the node (its key at
/// /.well-known/me2b/node-keys): vault records, consents and their receipts,
/// credentials, interests, offer history, loyalty, sharing consents, your
/// audit entries.
#[utoipa::path(get, path = "/v1/me/export", tag = "member", security(("bearer" = [])),
    params(ExportQuery),
    responses((status = 200, body = Object, description = "The signed export document"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn export(
    State(s): State<AppState>,
    m: Member,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(crate::routes::vault::bad_query)?;
    Ok(Json(match q.format {
        ExportFormat::Json => s.node.export(&m.session).await?,
        ExportFormat::Jsonld => s.node.export_jsonld(&m.session).await?,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Imported {
    /// Vault records restored (credentials, consents and the rest are kept as history).
    pub records: usize,
}

/// Imports another node's signed export (`GET /v1/me/export` there) into
/// your vault: records come back under new ids; consents, credentials,
/// loyalty and audit entries come back as history, never as live grants.
/// Checked whole before anything is written (size up to 32 MiB, format,
/// version, a signer this node trusts, the signature, every record).
#[utoipa::path(post, path = "/v1/me/import", tag = "member", security(("bearer" = [])),
    request_body(content = Object, description = "A signed me2b export document"),
    responses((status = 201, body = Imported), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import(
    State(s): State<AppState>,
    m: Member,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    require_json(&headers)?;
    let records = s.node.import(&m.session, &body).await?;
    Ok((StatusCode::CREATED, Json(Imported { records })))
}
