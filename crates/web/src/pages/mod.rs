//! The pages, one module per journey.

mod activity;
mod auth;
mod consent;
mod coop;
mod coop_credentials;
mod coop_erasure;
mod coop_insights;
mod coop_intents;
mod coop_offers;
mod info;
mod intents;
mod loyalty;
mod member;
mod offers;
mod vault;

use crate::error::WebError;
use crate::WebState;
use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;

pub fn router() -> Router<WebState> {
    Router::new()
        .merge(auth::router())
        .merge(info::router())
        .merge(vault::router())
        .merge(consent::router())
        .merge(offers::router())
        .merge(loyalty::router())
        .merge(activity::router())
        .merge(coop::router())
        .merge(member::router())
        .merge(intents::router())
}

/// What every page's frame needs.
#[derive(Debug)]
pub struct Layout {
    pub title: &'static str,
    /// The CSRF token of this request's forms.
    pub csrf: String,
    /// Logged in: the member's navigation and the log-out button are shown.
    pub member: bool,
    /// The section of the navigation this page belongs to.
    pub section: &'static str,
    /// A fixed message after a completed action (`?done=`).
    pub notice: Option<&'static str>,
    /// In the co-op console: the organisation's name.
    pub coop: Option<String>,
}

impl Layout {
    pub fn bare(title: &'static str) -> Self {
        Self {
            title,
            csrf: String::new(),
            member: false,
            section: "",
            notice: None,
            coop: None,
        }
    }

    pub fn visitor(title: &'static str, csrf: &str) -> Self {
        Self {
            csrf: csrf.to_owned(),
            ..Self::bare(title)
        }
    }

    pub fn member(title: &'static str, section: &'static str, csrf: &str) -> Self {
        Self {
            member: true,
            section,
            ..Self::visitor(title, csrf)
        }
    }

    pub fn with_notice(mut self, done: Option<&str>) -> Self {
        self.notice = done.and_then(notice);
        self
    }
}

/// The fixed message for `?done=<what>`: never the query's own text.
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "added" => "The record was added to your vault.",
        "saved" => "Your correction was saved.",
        "deleted" => "The record was deleted.",
        "granted" => "Your consent was recorded. You can withdraw it here at any time.",
        "refused" => "You said no. The organisation is not told who refused.",
        "withdrawn" => "Your consent was withdrawn. It no longer allows anything, from now on.",
        "logged_out" => "You are logged out.",
        "published" => "The offer is published. Members' vaults match it from now on; you will see only noisy counts.",
        "accepted" => {
            "You accepted the offer. The organisation learns only what you chose to share."
        }
        "dismissed" => "The offer is hidden.",
        "not_relevant" => "The offer is hidden, and offers on its topics will not be shown again.",
        _ => return None,
    })
}

/// `?done=` of a page that shows a notice after an action.
#[derive(Debug, serde::Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

/// Renders a page with status 200.
pub fn render<T: Template>(t: &T) -> Result<Response, WebError> {
    Ok(Html(t.render()?).into_response())
}

/// Renders a form again with its errors: 422, what was typed kept.
pub fn render_invalid<T: Template>(t: &T) -> Result<Response, WebError> {
    Ok((
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        Html(t.render()?),
    )
        .into_response())
}

/// A timestamp as a date and time a person reads (UTC).
pub fn when(t: me2b_domain::Timestamp) -> String {
    let s = t.to_rfc3339();
    // 2026-12-05T05:30:00Z → 2026-12-05 05:30 UTC
    match (s.get(0..10), s.get(11..16)) {
        (Some(d), Some(h)) => format!("{d} {h} UTC"),
        _ => s,
    }
}
