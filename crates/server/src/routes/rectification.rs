//! Rectification that reaches every recipient (GDPR Art. 16 and 19): the
//! organisations' pull and confirm of rectification notices, and the
//! member's view of each recipient's status.

use super::erasure::need_consent_role;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Member, Org};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use me2b_consent::service::{MemberRectification, OrgRectificationNotice};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct RectificationNotices {
    /// Sent and not yet confirmed, oldest first.
    pub notices: Vec<OrgRectificationNotice>,
}

/// Rectification notices for this organisation: a member corrected data of
/// a category it received under one of their consents. Each names the
/// member by the organisation's own pseudonym (`subject`), the consent and
/// the category, never a value: fetch the corrected data through data
/// access under that consent, then confirm. Signed by the node
/// (`typ: me2b-rectification-notice+jws`), sent in batches at period
/// boundaries as erasure requests are, and listed until confirmed (overdue
/// after the deadline). A separate list from erasure requests, so that a
/// client that erases what `/v1/org/erasure-requests` lists never erases
/// on a correction.
#[utoipa::path(get, path = "/v1/org/rectification-notices", operation_id = "list_rectification_notices", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = RectificationNotices), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    o: Org,
) -> Result<Json<RectificationNotices>, ApiError> {
    need_consent_role(&o)?;
    Ok(Json(RectificationNotices {
        notices: s.node.consents.rectification_notices(o.0.org.id).await?,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RectificationConfirmed {
    pub id: String,
    pub confirmed_at: String,
}

/// Confirms that the organisation corrected what the notice names. A notice
/// confirmed before is `409 rectification_already_confirmed`; an id that is
/// not one of this organisation's sent notices is
/// `404 rectification_notice_not_found`.
#[utoipa::path(post, path = "/v1/org/rectification-notices/{id}/confirm", operation_id = "confirm_rectification_notice", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path, description = "32 hex digits")),
    responses((status = 200, body = RectificationConfirmed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn confirm(
    State(s): State<AppState>,
    o: Org,
    Path(id): Path<String>,
) -> Result<Json<RectificationConfirmed>, ApiError> {
    need_consent_role(&o)?;
    let at = s
        .node
        .consents
        .confirm_rectification(o.0.org.id, &id)
        .await?;
    Ok(Json(RectificationConfirmed {
        id,
        confirmed_at: at.to_rfc3339(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Rectifications {
    /// One per recipient told of a correction, newest first: `waiting` (it
    /// leaves with the next batch), `pending`, `confirmed` or `overdue`.
    pub rectifications: Vec<MemberRectification>,
}

/// Where each recipient of the member's corrections stands: every
/// organisation that received data of a corrected record's category is
/// sent a rectification notice, and confirms it.
#[utoipa::path(get, path = "/v1/me/rectifications", operation_id = "my_rectifications", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = Rectifications), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn mine(State(s): State<AppState>, m: Member) -> Result<Json<Rectifications>, ApiError> {
    Ok(Json(Rectifications {
        rectifications: s.node.consents.rectifications_of(&m.session).await?,
    }))
}
