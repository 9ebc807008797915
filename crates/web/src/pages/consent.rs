//! Consents: pending requests in plain language, a grant per purpose and
//! category, refusal, withdrawal, and the signed receipts to download.

use super::{render, render_invalid, when, Done, Layout};
use crate::error::WebError;
use crate::form::{all_of, FieldErrors};
use crate::session::WebMember;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use me2b_consent::model::{ConsentRequest, ConsentStatus, GrantInput, Method};
use me2b_consent::vocabulary::{Section, Vocabulary};
use me2b_domain::{ConsentId, ConsentRequestId};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/consents", get(overview))
        .route("/consents/requests/{id}", get(request_page))
        .route("/consents/requests/{id}/grant", post(grant))
        .route("/consents/requests/{id}/refuse", post(refuse))
        .route("/consents/{id}/withdraw", post(withdraw))
        .route("/consents/{id}/receipts/{n}", get(receipt))
}

/// A vocabulary term as a member reads it.
#[derive(Debug)]
pub struct Term {
    pub id: String,
    pub label: String,
    pub explanation: String,
    pub special: bool,
    pub checked: bool,
}

fn terms(v: &Vocabulary, section: Section, ids: &[String], checked: &[String]) -> Vec<Term> {
    ids.iter()
        .map(|i| match v.term(section, i) {
            Some(t) => Term {
                id: i.clone(),
                label: t.label.clone(),
                explanation: t.explanation.clone(),
                special: t.special,
                checked: checked.contains(i),
            },
            None => Term {
                id: i.clone(),
                label: i.clone(),
                explanation: String::new(),
                special: false,
                checked: checked.contains(i),
            },
        })
        .collect()
}

fn labels(v: &Vocabulary, section: Section, ids: &[String]) -> String {
    ids.iter()
        .map(|i| {
            v.term(section, i)
                .map_or(i.clone(), |t| t.label.to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A pending request, summarised.
#[derive(Debug)]
pub struct Pending {
    pub id: String,
    pub organisation: String,
    pub summary: String,
}

/// One of the member's consents.
#[derive(Debug)]
pub struct Mine {
    pub id: String,
    pub organisation: String,
    pub state: &'static str,
    pub summary: String,
    pub in_force: bool,
    pub given: String,
    pub until: String,
    pub receipts: Vec<usize>,
}

#[derive(Template)]
#[template(path = "consents.html")]
struct Overview {
    l: Layout,
    pending: Vec<Pending>,
    mine: Vec<Mine>,
}

fn summary(v: &Vocabulary, org: &str, r: &ConsentRequest) -> String {
    format!(
        "{org} asks to use your {} for {}, for {} days.",
        labels(v, Section::Category, &r.categories),
        labels(v, Section::Purpose, &r.purposes),
        r.retention_days
    )
}

async fn overview(
    State(s): State<WebState>,
    m: WebMember,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    let v = s.node.consents.vocabulary();
    let now = s.node.clock.now();
    let pending = s
        .node
        .consents
        .pending(m.session.member)
        .await?
        .into_iter()
        .map(|(r, org)| Pending {
            id: r.id.to_string(),
            summary: summary(v, &org.name, &r),
            organisation: org.name,
        })
        .collect();
    let mut mine = Vec::new();
    for (r, org) in s.node.consents.consents_of(m.session.member).await? {
        if r.cross_sell_from.is_some() {
            continue;
        }
        let in_force = r.in_force(now);
        let state = match r.status {
            ConsentStatus::Given if in_force => "In force",
            ConsentStatus::Given => "Expired",
            ConsentStatus::Withdrawn => "Withdrawn",
            ConsentStatus::Refused => "Refused",
        };
        let summary = if r.status == ConsentStatus::Refused {
            format!("You said no to {org}.")
        } else {
            format!(
                "{} {org} to use your {} for {}.",
                if in_force {
                    "You allow"
                } else {
                    "No longer allows"
                },
                labels(v, Section::Category, &r.categories),
                labels(v, Section::Purpose, &r.purposes),
            )
        };
        mine.push(Mine {
            id: r.id.to_string(),
            organisation: org,
            state,
            summary,
            in_force,
            given: when(r.given_at),
            until: r.withdrawn_at.map_or_else(|| when(r.expires_at), when),
            receipts: (0..r.receipts.len()).collect(),
        });
    }
    render(&Overview {
        l: Layout::member("Your consents", "consents", &m.csrf).with_notice(q.done.as_deref()),
        pending,
        mine,
    })
}

#[derive(Template)]
#[template(path = "consent_request.html")]
struct RequestPage {
    l: Layout,
    id: String,
    organisation: String,
    summary: String,
    notice: String,
    retention_days: u32,
    purposes: Vec<Term>,
    categories: Vec<Term>,
    processing: Vec<Term>,
    legal_basis: String,
    recipients: Vec<String>,
    errors: FieldErrors,
}

async fn find(
    s: &WebState,
    m: &WebMember,
    raw: &str,
) -> Result<(ConsentRequest, String), WebError> {
    let id: ConsentRequestId = raw.parse().map_err(|_| WebError::NotFound)?;
    s.node
        .consents
        .pending(m.session.member)
        .await?
        .into_iter()
        .find(|(r, _)| r.id == id)
        .map(|(r, o)| (r, o.name))
        .ok_or(WebError::NotFound)
}

fn request_view(
    s: &WebState,
    m: &WebMember,
    r: &ConsentRequest,
    org: String,
    checked: &[String],
    errors: FieldErrors,
) -> RequestPage {
    let v = s.node.consents.vocabulary();
    RequestPage {
        l: Layout::member("A consent request", "consents", &m.csrf),
        id: r.id.to_string(),
        summary: summary(v, &org, r),
        organisation: org,
        notice: r.notice.clone(),
        retention_days: r.retention_days,
        purposes: terms(v, Section::Purpose, &r.purposes, checked),
        categories: terms(v, Section::Category, &r.categories, checked),
        processing: terms(v, Section::Processing, &r.processing, &[]),
        legal_basis: labels(v, Section::LegalBasis, std::slice::from_ref(&r.legal_basis)),
        recipients: r.recipients.clone(),
        errors,
    }
}

async fn request_page(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let (r, org) = find(&s, &m, &id).await?;
    render(&request_view(&s, &m, &r, org, &[], FieldErrors::default()))
}

async fn grant(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (r, org) = find(&s, &m, &id).await?;
    // Only what the request asked for; anything else is ignored.
    let purposes: Vec<String> = all_of(&form, "purpose")
        .into_iter()
        .filter(|p| r.purposes.contains(p))
        .collect();
    let categories: Vec<String> = all_of(&form, "category")
        .into_iter()
        .filter(|c| r.categories.contains(c))
        .collect();
    let mut errors = FieldErrors::default();
    if purposes.is_empty() {
        errors.add(
            "purpose",
            "Tick at least one purpose you agree to, or say no below.",
        );
    }
    if categories.is_empty() {
        errors.add(
            "category",
            "Tick at least one kind of data you agree to share, or say no below.",
        );
    }
    if !errors.is_empty() {
        let checked: Vec<String> = purposes.iter().chain(&categories).cloned().collect();
        return render_invalid(&request_view(&s, &m, &r, org, &checked, errors));
    }
    let scope = GrantInput {
        purposes: Some(purposes),
        categories: Some(categories),
    };
    s.node
        .consents
        .grant(&m.session, r.id, scope, Method::Web)
        .await?;
    Ok(Redirect::to("/consents?done=granted").into_response())
}

async fn refuse(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let (r, _) = find(&s, &m, &id).await?;
    s.node
        .consents
        .refuse(m.session.member, r.id, Method::Web)
        .await?;
    Ok(Redirect::to("/consents?done=refused").into_response())
}

async fn withdraw(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: ConsentId = id.parse().map_err(|_| WebError::NotFound)?;
    s.node
        .consents
        .withdraw(m.session.member, id, Method::Web)
        .await?;
    Ok(Redirect::to("/consents?done=withdrawn").into_response())
}

/// A signed receipt (compact JWS), as a file to keep; `me2b consent
/// verify-receipt` checks it offline.
async fn receipt(
    State(s): State<WebState>,
    m: WebMember,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id: ConsentId = id.parse().map_err(|_| WebError::NotFound)?;
    let n: usize = n.parse().map_err(|_| WebError::NotFound)?;
    let jws = s
        .node
        .consents
        .consents_of(m.session.member)
        .await?
        .into_iter()
        .find(|(r, _)| r.id == id)
        .and_then(|(r, _)| r.receipts.get(n).cloned())
        .ok_or(WebError::NotFound)?;
    let disposition = format!("attachment; filename=\"consent-receipt-{}.jws\"", n + 1);
    Ok((
        [
            (header::CONTENT_TYPE, "application/jose".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        jws,
    )
        .into_response())
}
