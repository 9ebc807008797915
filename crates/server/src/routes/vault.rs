use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Member};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use me2b_domain::record::RecordContent;
use me2b_domain::RecordId;
use me2b_vault::RecordView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A vault record as its member reads it.
#[derive(Serialize, ToSchema)]
pub struct RecordOut {
    pub id: RecordId,
    /// Increases by one on every update; pass it as `if_revision` to update safely.
    pub revision: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub content: RecordContent,
}

impl From<RecordView> for RecordOut {
    fn from(v: RecordView) -> Self {
        Self {
            id: v.id,
            revision: v.revision,
            created_at: v.created_at.to_rfc3339(),
            updated_at: v.updated_at.to_rfc3339(),
            content: v.content,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecordPage {
    pub records: Vec<RecordOut>,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub offset: u64,
    /// Default 100; more than 1000 is 1000.
    #[serde(default = "default_limit")]
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub limit: u64,
}

fn default_limit() -> u64 {
    100
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UpdateQuery {
    /// Refuse the update (409) unless the record is still at this revision.
    pub if_revision: Option<i64>,
}

pub(crate) fn bad_query(_: QueryRejection) -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::InvalidParameter,
        "a query parameter is unknown or not a valid number",
    )
}

/// Refuses a number past i64::MAX (what the database stores) as a bad
/// parameter.
pub(crate) fn within_i64(name: &str, v: u64) -> Result<(), ApiError> {
    if i64::try_from(v).is_ok() {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::ErrorCode::InvalidParameter,
            format!("`{name}` is at most 9223372036854775807"),
        ))
    }
}

fn record_id(raw: &str) -> Result<RecordId, ApiError> {
    // An id that cannot exist is "not found", like an id of someone else's record.
    raw.parse().map_err(|_| ApiError::not_found())
}

#[utoipa::path(get, path = "/v1/vault/records", tag = "member", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = RecordPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    m: Member,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<RecordPage>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    within_i64("offset", q.offset)?;
    within_i64("limit", q.limit)?;
    let limit = q.limit.clamp(1, me2b_vault::MAX_PAGE);
    let records = s
        .node
        .vault
        .list_records(&m.session, q.offset, limit)
        .await?;
    Ok(Json(RecordPage {
        records: records.into_iter().map(Into::into).collect(),
        offset: q.offset,
        limit,
    }))
}

#[utoipa::path(post, path = "/v1/vault/records", tag = "member", security(("bearer" = [])), request_body = RecordContent,
    responses((status = 201, body = RecordOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    m: Member,
    ApiJson(content): ApiJson<RecordContent>,
) -> Result<(StatusCode, Json<RecordOut>), ApiError> {
    let v = s.node.vault.create_record(&m.session, content).await?;
    Ok((StatusCode::CREATED, Json(v.into())))
}

#[utoipa::path(get, path = "/v1/vault/records/{id}", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path, description = "Record id")),
    responses((status = 200, body = RecordOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
) -> Result<Json<RecordOut>, ApiError> {
    let v = s
        .node
        .vault
        .read_record(&m.session, record_id(&id)?)
        .await?;
    Ok(Json(v.into()))
}

#[utoipa::path(put, path = "/v1/vault/records/{id}", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path, description = "Record id"), UpdateQuery), request_body = RecordContent,
    responses((status = 200, body = RecordOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
    q: Result<Query<UpdateQuery>, QueryRejection>,
    ApiJson(content): ApiJson<RecordContent>,
) -> Result<Json<RecordOut>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let v = s
        .node
        .vault
        .update_record(&m.session, record_id(&id)?, content, q.if_revision)
        .await?;
    Ok(Json(v.into()))
}

#[utoipa::path(delete, path = "/v1/vault/records/{id}", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path, description = "Record id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.node
        .vault
        .delete_record(&m.session, record_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
