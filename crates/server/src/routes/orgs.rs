use crate::extract::Org;
use axum::Json;
use me2b_domain::org::{OrgKind, Roles};
use me2b_domain::{ApiKeyId, OrgId};
use serde::Serialize;
use utoipa::ToSchema;

/// The organisation behind an API key.
#[derive(Serialize, ToSchema)]
pub struct OrgView {
    pub org_id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    pub api_key_id: ApiKeyId,
    pub roles: Roles,
}

/// Who am I, as an organisation.
#[utoipa::path(get, path = "/v1/org", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = OrgView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn whoami(Org(p): Org) -> Json<OrgView> {
    Json(OrgView {
        org_id: p.org.id,
        name: p.org.name,
        kind: p.org.kind,
        api_key_id: p.key,
        roles: p.roles,
    })
}
