//! Erasure that reaches every recipient (GDPR Art. 17 and 19): the
//! organisations' pull and confirm, and the member's status by receipt.

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, Org};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use me2b_consent::service::{OrgErasureRequest, RecipientStatus};
use me2b_domain::org::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub(crate) fn need_consent_role(o: &Org) -> Result<(), ApiError> {
    if o.0.roles.contains(Role::Consent) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::RoleRequired,
            "this API key lacks the `consent` role",
        ))
    }
}

#[derive(Serialize, ToSchema)]
pub struct ErasureRequests {
    /// Sent and not yet confirmed, oldest first.
    pub requests: Vec<OrgErasureRequest>,
}

/// Erasure requests for this organisation: members who gave it data through
/// consent and erased their account. Each names the member by the
/// organisation's own pseudonym (`subject`, as in its consent lists), is
/// signed by the node, and stays listed until confirmed (overdue after the
/// deadline). Requests are sent in batches at period boundaries.
#[utoipa::path(get, path = "/v1/org/erasure-requests", operation_id = "list_erasure_requests", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = ErasureRequests), (status = 403, body = ErrorBody)))]
pub async fn list(State(s): State<AppState>, o: Org) -> Result<Json<ErasureRequests>, ApiError> {
    need_consent_role(&o)?;
    Ok(Json(ErasureRequests {
        requests: s.node.consents.erasure_requests(o.0.org.id).await?,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ErasureConfirmed {
    pub id: String,
    pub confirmed_at: String,
}

/// Confirms that the organisation erased what the request names. A request
/// confirmed before is `409 erasure_already_confirmed`; an id that is not
/// one of this organisation's sent requests is `404 erasure_request_not_found`.
#[utoipa::path(post, path = "/v1/org/erasure-requests/{id}/confirm", operation_id = "confirm_erasure_request", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path, description = "32 hex digits")),
    responses((status = 200, body = ErasureConfirmed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn confirm(
    State(s): State<AppState>,
    o: Org,
    Path(id): Path<String>,
) -> Result<Json<ErasureConfirmed>, ApiError> {
    need_consent_role(&o)?;
    let at = s.node.consents.confirm_erasure(o.0.org.id, &id).await?;
    Ok(Json(ErasureConfirmed {
        id,
        confirmed_at: at.to_rfc3339(),
    }))
}

/// An erasure receipt, as given by `DELETE /v1/me`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptInput {
    #[schema(max_length = 128)]
    pub receipt: String,
}

#[derive(Serialize, ToSchema)]
pub struct ErasureProgress {
    /// Every organisation that received the member's data, and the data trust.
    pub recipients: Vec<RecipientStatus>,
}

/// Where each recipient's erasure stands, for the holder of an erasure
/// receipt: no account or session needed (the account is gone).
#[utoipa::path(post, path = "/v1/erasure-receipts/status", operation_id = "erasure_receipt_status", tag = "member",
    request_body = ReceiptInput,
    responses((status = 200, body = ErasureProgress), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn status(
    State(s): State<AppState>,
    ApiJson(input): ApiJson<ReceiptInput>,
) -> Result<Json<ErasureProgress>, ApiError> {
    Ok(Json(ErasureProgress {
        recipients: s.node.consents.erasure_status(&input.receipt).await?,
    }))
}

/// An organisation's webhook for erasure requests.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// `https://…` on a public host; no credentials, no fragment.
    #[schema(max_length = 2048)]
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
    pub since: String,
}

/// Registers (or replaces) the organisation's webhook: each erasure request
/// to it is then also posted there when its batch is released, as the same
/// signed request the pull list carries (the compact JWS as the body,
/// `Content-Type: application/jose`), retried with exponential backoff until
/// a 2xx answer or 16 attempts. The organisation still confirms through
/// `POST /v1/org/erasure-requests/{id}/confirm`.
#[utoipa::path(put, path = "/v1/org/webhook", operation_id = "set_erasure_webhook", tag = "organisation", security(("bearer" = [])),
    request_body = WebhookInput,
    responses((status = 200, body = WebhookView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_webhook(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<Json<WebhookView>, ApiError> {
    need_consent_role(&o)?;
    let w = s.node.webhooks.register(o.0.org.id, &input.url).await?;
    Ok(Json(WebhookView {
        url: w.url,
        since: w.since.to_rfc3339(),
    }))
}

/// The organisation's webhook; `404 webhook_not_found` if it has none.
#[utoipa::path(get, path = "/v1/org/webhook", operation_id = "get_erasure_webhook", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = WebhookView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_webhook(State(s): State<AppState>, o: Org) -> Result<Json<WebhookView>, ApiError> {
    need_consent_role(&o)?;
    let w = s.node.webhooks.get(o.0.org.id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::WebhookNotFound,
            ErrorCode::WebhookNotFound.description(),
        )
    })?;
    Ok(Json(WebhookView {
        url: w.url,
        since: w.since.to_rfc3339(),
    }))
}

/// Removes the organisation's webhook: its requests stay on the pull list.
#[utoipa::path(delete, path = "/v1/org/webhook", operation_id = "delete_erasure_webhook", tag = "organisation", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    State(s): State<AppState>,
    o: Org,
) -> Result<axum::http::StatusCode, ApiError> {
    need_consent_role(&o)?;
    if s.node.webhooks.remove(o.0.org.id).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::WebhookNotFound,
            ErrorCode::WebhookNotFound.description(),
        ))
    }
}
