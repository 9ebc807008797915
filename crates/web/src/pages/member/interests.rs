//! Interests: those the member declared or accepted, kept in the vault, and
//! the suggestions computed inside the vault from their own receipts, to
//! accept or reject (as `/v1/me/interest-suggestions`).

use super::layout;
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::pages::{render, render_invalid, Done, Layout};
use crate::session::WebMember;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use me2b_domain::record::{Interest, InterestSource, RecordContent};
use me2b_domain::text::Slug;
use me2b_offers::OfferError;
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/interests", get(page).post(declare))
        .route("/interests/{topic}/{answer}", post(answer))
}

/// One interest held in the vault.
#[derive(Debug)]
pub struct Held {
    pub id: String,
    pub name: String,
    pub source: &'static str,
}

/// One suggestion.
#[derive(Debug)]
pub struct Suggested {
    pub topic: String,
    pub name: String,
    pub receipts: u32,
}

/// A topic members can declare (sensitive ones need explicit consent,
/// given in the API, and are not offered here).
#[derive(Debug)]
pub struct TopicOption {
    pub slug: String,
    pub path: String,
}

#[derive(Template)]
#[template(path = "member_interests.html")]
struct InterestsPage {
    l: Layout,
    held: Vec<Held>,
    suggested: Vec<Suggested>,
    topics: Vec<TopicOption>,
    topic: String,
    errors: FieldErrors,
}

fn shown_path(path: &str) -> String {
    path.trim_start_matches('/').replace('/', " › ")
}

async fn interests_page(
    s: &WebState,
    m: &WebMember,
    topic: String,
    errors: FieldErrors,
    done: Option<&str>,
) -> Result<InterestsPage, WebError> {
    let taxonomy = s.node.offers.taxonomy();
    let name = |slug: &str| {
        taxonomy
            .by_slug(slug)
            .and_then(|i| taxonomy.get(i))
            .map_or_else(|| slug.to_owned(), |t| shown_path(&t.path))
    };
    let held = s
        .node
        .vault
        .all_records(&m.session)
        .await?
        .into_iter()
        .filter_map(|r| match r.content {
            RecordContent::Interest(i) => Some(Held {
                id: r.id.to_string(),
                name: name(i.topic.as_str()),
                source: match i.source {
                    InterestSource::Declared => "You added it",
                    InterestSource::FromReceipts => "Suggested from your receipts, accepted by you",
                },
            }),
            _ => None,
        })
        .collect();
    let suggested = s
        .node
        .offers
        .suggestions(&m.session)
        .await?
        .into_iter()
        .map(|x| Suggested {
            name: shown_path(&x.path),
            topic: x.topic,
            receipts: x.receipts,
        })
        .collect();
    let topics = taxonomy
        .topics()
        .iter()
        .filter(|t| t.sensitive.is_none())
        .map(|t| TopicOption {
            slug: t.slug.clone(),
            path: shown_path(&t.path),
        })
        .collect();
    Ok(InterestsPage {
        l: layout("Your interests", "interests", &m.csrf, done),
        held,
        suggested,
        topics,
        topic,
        errors,
    })
}

async fn page(
    State(s): State<WebState>,
    m: WebMember,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    render(
        &interests_page(
            &s,
            &m,
            String::new(),
            FieldErrors::default(),
            q.done.as_deref(),
        )
        .await?,
    )
}

#[derive(Deserialize)]
struct DeclareForm {
    #[serde(default)]
    topic: String,
}

/// Declares an interest: a vault record, as `POST /v1/vault/records`.
async fn declare(
    State(s): State<WebState>,
    m: WebMember,
    Form(f): Form<DeclareForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    let taxonomy = s.node.offers.taxonomy();
    let topic = taxonomy
        .by_slug(f.topic.trim())
        .and_then(|i| taxonomy.get(i))
        .filter(|t| t.sensitive.is_none())
        .and_then(|t| Slug::try_from(t.slug.as_str()).ok());
    match topic {
        Some(topic) => {
            let content = RecordContent::Interest(Interest {
                topic,
                note: None,
                source: InterestSource::Declared,
                explicit_consent: false,
            });
            s.node.vault.create_record(&m.session, content).await?;
            Ok(Redirect::to("/interests?done=accepted").into_response())
        }
        None => {
            errors.add("topic", "Choose a topic from the list.");
            render_invalid(&interests_page(&s, &m, f.topic, errors, None).await?)
        }
    }
}

/// Accepts or rejects one suggestion, as
/// `POST /v1/me/interest-suggestions/{topic}/accept|reject`.
async fn answer(
    State(s): State<WebState>,
    m: WebMember,
    Path((topic, answer)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let accept = match answer.as_str() {
        "accept" => true,
        "reject" => false,
        _ => return Err(WebError::NotFound),
    };
    match s
        .node
        .offers
        .answer_suggestion(&m.session, &topic, accept)
        .await
    {
        Ok(()) => {
            let done = if accept { "accepted" } else { "rejected" };
            Ok(Redirect::to(&format!("/interests?done={done}")).into_response())
        }
        // Not (or no longer) one of the member's suggestions.
        Err(OfferError::Invalid { field: "topic", .. }) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}
