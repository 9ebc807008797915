//! The co-op's console: log in with an API key; one view per role the key
//! holds (consent requests and their uptake; offers: write a rule, see
//! publish errors at their line and column).

use super::{render, render_invalid, when, Done, Layout};
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::session::{self, set_cookie, Visitor, WebCoop, COOP_COOKIE};
use crate::WebState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use me2b_consent::model::ConsentStatus;
use me2b_consent::vocabulary::Section;
use me2b_domain::org::Role;
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/coop", get(home))
        .route("/coop/login", get(login_page).post(log_in))
        .route("/coop/logout", post(log_out))
        .route("/coop/consents", get(consents))
        .merge(super::coop_offers::router())
        .merge(super::coop_credentials::router())
        .merge(super::coop_erasure::router())
        .merge(super::coop_insights::router())
        .merge(super::coop_intents::router())
}

/// The console's frame: the organisation's name, its views.
pub fn layout(title: &'static str, section: &'static str, c: &WebCoop) -> Layout {
    Layout {
        coop: Some(c.principal.org.name.clone()),
        section,
        ..Layout::visitor(title, &c.csrf)
    }
}

/// The role a view needs, or a page saying the key lacks it.
pub fn need(c: &WebCoop, role: Role) -> Result<(), WebError> {
    if c.principal.roles.contains(role) {
        Ok(())
    } else {
        Err(WebError::RoleMissing)
    }
}

#[derive(Template)]
#[template(path = "coop_login.html")]
struct LoginPage {
    l: Layout,
    next: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(v: Visitor, Query(q): Query<LoginQuery>) -> Result<Response, WebError> {
    let mut resp = render(&LoginPage {
        l: Layout::visitor("Co-op console", &v.csrf),
        next: q
            .next
            .as_deref()
            .and_then(session::safe_next)
            .unwrap_or_default(),
        errors: FieldErrors::default(),
    })?;
    if let Some(c) = &v.set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    Ok(resp)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    next: String,
}

async fn log_in(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let key = f.api_key.trim();
    let next = session::safe_next(&f.next)
        .filter(|n| n.starts_with("/coop"))
        .unwrap_or_else(|| "/coop".into());
    let refused = |msg: &'static str| {
        let mut errors = FieldErrors::default();
        errors.add("api_key", msg);
        render_invalid(&LoginPage {
            l: Layout::visitor("Co-op console", &v.csrf),
            next: next.clone(),
            errors,
        })
    };
    if !key.starts_with(me2b_orgs::API_KEY_PREFIX) || key.len() > 128 {
        return refused("Paste your organisation's API key: it starts with me2b_k_.");
    }
    match s.node.orgs.authenticate(key).await {
        Ok(_) => {
            let id = s
                .consoles
                .open(s.node.clock.as_ref(), s.node.rng.as_ref(), key);
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(COOP_COOKIE, &id, v.tls, false),
            );
            Ok(resp)
        }
        Err(
            me2b_orgs::OrgError::InvalidKey
            | me2b_orgs::OrgError::RevokedKey
            | me2b_orgs::OrgError::NotFound,
        ) => refused("This API key is unknown or revoked."),
        Err(e) => Err(e.into()),
    }
}

async fn log_out(State(s): State<WebState>, v: Visitor) -> Response {
    if let Some(id) = session::cookie(&v.headers, COOP_COOKIE) {
        s.consoles.close(id);
    }
    let mut resp = Redirect::to("/coop/login").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(COOP_COOKIE, "", v.tls, true));
    resp
}

#[derive(Template)]
#[template(path = "coop_home.html")]
struct Home {
    l: Layout,
    roles: Vec<&'static str>,
    consent: bool,
    offers: bool,
    credentials: bool,
    insights: bool,
}

async fn home(c: WebCoop) -> Result<Response, WebError> {
    let roles = c.principal.roles.iter().map(Role::as_str).collect();
    render(&Home {
        consent: c.principal.roles.contains(Role::Consent),
        offers: c.principal.roles.contains(Role::Offers),
        credentials: c.principal.roles.contains(Role::Credentials),
        insights: c.principal.roles.contains(Role::Insights),
        roles,
        l: layout("Your console", "home", &c),
    })
}

/// One of the co-op's consent requests and how members answered it.
#[derive(Debug)]
pub struct Uptake {
    pub asked: String,
    pub created: String,
    pub in_force: usize,
    pub withdrawn: usize,
}

#[derive(Template)]
#[template(path = "coop_consents.html")]
struct Consents {
    l: Layout,
    requests: Vec<Uptake>,
    /// When members' answers next reach the co-op, in plain words.
    release: String,
}

/// The consent release schedule in plain words (issue 12: answers reach
/// organisations in batches, and data access answers in a window).
fn release_words(s: &WebState) -> String {
    let r = s.node.consents.release_schedule();
    let now = s.node.clock.now();
    let next = r.batch.next_boundary(now);
    format!(
        "Members' answers (yes, and withdrawals) reach you in batches, never one by one, so no \
         answer can be timed to a member: the next release is at {}, once at least {} members \
         have answered since, or at the latest {} hours after an answer. Reading members' data \
         through the API is open for {} minutes after each release.",
        when(next),
        r.batch.min_batch,
        r.batch.max_delay_seconds / 3600,
        r.access_window_seconds / 60
    )
}

async fn consents(
    State(s): State<WebState>,
    c: WebCoop,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    need(&c, Role::Consent)?;
    let org = c.principal.org.id;
    let v = s.node.consents.vocabulary();
    let labels = |sec, ids: &[String]| {
        ids.iter()
            .map(|i| v.term(sec, i).map_or(i.clone(), |t| t.label.to_lowercase()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut requests = Vec::new();
    for r in s.node.consents.requests_of(org).await? {
        // Refusals are never shown to organisations, not even as a count.
        let answers = s.node.consents.consents_for(org, r.id).await?;
        requests.push(Uptake {
            asked: format!(
                "Your {} for {}, for {} days",
                labels(Section::Category, &r.categories),
                labels(Section::Purpose, &r.purposes),
                r.retention_days
            ),
            created: when(r.created_at),
            in_force: answers
                .iter()
                .filter(|a| a.status == ConsentStatus::Given && a.withdrawn_at.is_none())
                .count(),
            withdrawn: answers
                .iter()
                .filter(|a| a.status == ConsentStatus::Withdrawn)
                .count(),
        });
    }
    render(&Consents {
        l: layout("Consent requests", "consents", &c).with_notice(q.done.as_deref()),
        requests,
        release: release_words(&s),
    })
}
