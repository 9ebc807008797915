//! Offers matched inside the member's vault, each with *why this offer*;
//! accept (optionally sharing contact details), dismiss, or not relevant.

use super::{render, when, Done, Layout};
use crate::error::WebError;
use crate::session::WebMember;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use me2b_domain::record::{InterestSource, RecordContent};
use me2b_domain::OfferId;
use me2b_offers::service::Answer;
use serde::Deserialize;
use std::collections::BTreeSet;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/offers", get(list))
        .route("/offers/{id}/answer", post(answer))
}

/// One reason an offer matched.
#[derive(Debug)]
pub struct Reason {
    pub text: String,
}

/// An offer as the member sees it.
#[derive(Debug)]
pub struct Shown {
    pub id: String,
    pub org: String,
    pub title: String,
    pub text: String,
    pub partners: Vec<String>,
    pub until: String,
    pub can_share_contact: bool,
    pub accepted: bool,
    pub why: String,
    pub reasons: Vec<Reason>,
}

#[derive(Template)]
#[template(path = "offers.html")]
struct OffersPage {
    l: Layout,
    offers: Vec<Shown>,
}

fn topic_name(s: &WebState, slug: &str) -> String {
    let t = s.node.offers.taxonomy();
    t.by_slug(slug)
        .and_then(|i| t.get(i))
        .map_or_else(|| slug.to_owned(), |t| t.name.clone())
}

async fn list(
    State(s): State<WebState>,
    m: WebMember,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    let matches = s.node.offers.feed(&m.session).await?;
    // What the member accepted is kept in their own vault (offer history).
    let accepted: BTreeSet<OfferId> = s
        .node
        .vault
        .all_records(&m.session)
        .await?
        .into_iter()
        .find_map(|r| match r.content {
            RecordContent::OfferHistory(h) => Some(h.accepted),
            _ => None,
        })
        .unwrap_or_default();
    let offers = matches
        .into_iter()
        .map(|m| {
            let o = &m.offer;
            let mut reasons: Vec<Reason> = m
                .why
                .topics
                .iter()
                .map(|t| Reason {
                    text: format!(
                        "It is about {}, and you {} {}.",
                        topic_name(&s, &t.offer_topic),
                        match t.source {
                            InterestSource::Declared => "said you are interested in",
                            InterestSource::FromReceipts => {
                                "accepted, from your receipts, an interest in"
                            }
                        },
                        topic_name(&s, &t.your_interest)
                    ),
                })
                .collect();
            reasons.extend(m.why.conditions.iter().map(|c| Reason {
                text: format!(
                    "Its rule asks for {}; your vault has {}.",
                    c.condition,
                    c.because.join(", ")
                ),
            }));
            Shown {
                id: o.id.to_string(),
                org: o.org_name.clone(),
                title: o.title.clone(),
                text: o.text.clone(),
                partners: o
                    .coalition
                    .iter()
                    .map(|p| format!("{}: {}", p.org_name, p.title))
                    .collect(),
                until: when(o.valid_until),
                can_share_contact: o.contact_request.is_some(),
                accepted: accepted.contains(&o.id),
                why: m.why.summary.clone(),
                reasons,
            }
        })
        .collect();
    render(&OffersPage {
        l: Layout::member("Your offers", "offers", &m.csrf).with_notice(q.done.as_deref()),
        offers,
    })
}

#[derive(Deserialize)]
struct AnswerForm {
    #[serde(default)]
    answer: String,
    #[serde(default)]
    share_contact: Option<String>,
}

async fn answer(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
    Form(f): Form<AnswerForm>,
) -> Result<Response, WebError> {
    let id: OfferId = id.parse().map_err(|_| WebError::NotFound)?;
    let (answer, done) = match f.answer.as_str() {
        "accept" => (Answer::Accept, "accepted"),
        "dismiss" => (Answer::Dismiss, "dismissed"),
        "not_relevant" => (Answer::NotRelevant, "not_relevant"),
        _ => return Err(WebError::NotFound),
    };
    let share = answer == Answer::Accept && f.share_contact.is_some();
    s.node.offers.answer(&m.session, id, answer, share).await?;
    Ok(Redirect::to(&format!("/offers?done={done}")).into_response())
}
