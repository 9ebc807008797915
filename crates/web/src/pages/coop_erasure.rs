//! The co-op's erasure requests (role `consent`): members who gave it data
//! and erased their account. Each is listed by the co-op's own pseudonym
//! of the member until the co-op confirms it erased the data, through the
//! same `Consents` service as the API.

use super::coop::{layout, need};
use super::{render, when, Done, Layout};
use crate::error::WebError;
use crate::session::WebCoop;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use me2b_consent::service::ServiceError;
use me2b_domain::org::Role;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/coop/erasure", get(page))
        .route("/coop/erasure/{id}/confirm", post(confirm))
}

/// One request to erase.
#[derive(Debug)]
pub struct Pending {
    pub id: String,
    pub subject: String,
    pub released: String,
    pub confirm_by: String,
    pub overdue: bool,
}

#[derive(Template)]
#[template(path = "coop_erasure.html")]
struct ErasurePage {
    l: Layout,
    requests: Vec<Pending>,
}

/// An RFC 3339 time from the service as a person reads it.
fn readable(rfc3339: &str) -> String {
    me2b_domain::Timestamp::parse_rfc3339(rfc3339).map_or_else(|| rfc3339.to_owned(), when)
}

async fn page(
    State(s): State<WebState>,
    c: WebCoop,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    need(&c, Role::Consent)?;
    let requests = s
        .node
        .consents
        .erasure_requests(c.principal.org.id)
        .await?
        .into_iter()
        .map(|r| Pending {
            released: readable(&r.released_at),
            confirm_by: readable(&r.confirm_by),
            id: r.id,
            subject: r.subject,
            overdue: r.overdue,
        })
        .collect();
    let mut l = layout("Erasure requests", "erasure", &c);
    if q.done.as_deref() == Some("confirmed") {
        l.notice = Some(
            "Recorded: you erased this member's data. The member sees it in their erasure status.",
        );
    }
    render(&ErasurePage { l, requests })
}

async fn confirm(
    State(s): State<WebState>,
    c: WebCoop,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    need(&c, Role::Consent)?;
    match s
        .node
        .consents
        .confirm_erasure(c.principal.org.id, &id)
        .await
    {
        // Confirmed twice (a double click): the outcome is the same.
        Ok(_) | Err(ServiceError::ErasureAlreadyConfirmed) => {
            Ok(Redirect::to("/coop/erasure?done=confirmed").into_response())
        }
        Err(ServiceError::ErasureRequestNotFound) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}
