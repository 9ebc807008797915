//! Credentials: those in the member's vault, adding one with a co-op's
//! code, and presenting one to a verifier by pasting the verifier's
//! challenge (as `/v1/me/credentials` and `.../{id}/present`). The answer
//! is an unlinkable proof that discloses only what the challenge needs.

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
use me2b_credentials::service::ServiceError;
use me2b_domain::RecordId;
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/credentials", get(page).post(redeem))
        .route("/credentials/{id}/present", post(present))
}

/// Largest challenge accepted from the form (a challenge is small JSON).
const MAX_CHALLENGE: usize = 16 * 1024;

/// One credential held.
#[derive(Debug)]
pub struct Held {
    pub id: String,
    pub issuer: String,
    pub claims: Vec<(String, String)>,
    pub valid_until: String,
    pub status: &'static str,
    pub usable: bool,
}

#[derive(Template)]
#[template(path = "member_credentials.html")]
struct CredentialsPage {
    l: Layout,
    held: Vec<Held>,
    code: String,
    /// The credential whose challenge form is shown with errors, and what was typed.
    challenge_for: String,
    challenge: String,
    errors: FieldErrors,
}

fn status(s: &str) -> &'static str {
    match s {
        "valid" => "Valid",
        "expired" => "Expired",
        "revoked" => "Revoked by the co-op",
        "retired" => "Retired: ask the co-op for a new code",
        _ => "Unknown",
    }
}

fn credential_error(e: ServiceError) -> WebError {
    match e {
        ServiceError::NotFound(_) => WebError::NotFound,
        ServiceError::Vault(v) => v.into(),
        other => {
            tracing::error!(error = %other, "credentials error");
            WebError::Internal
        }
    }
}

async fn credentials_page(
    s: &WebState,
    m: &WebMember,
    code: String,
    challenge_for: String,
    challenge: String,
    errors: FieldErrors,
    done: Option<&str>,
) -> Result<CredentialsPage, WebError> {
    let held = s
        .node
        .credentials
        .held_by(&m.session)
        .await
        .map_err(credential_error)?
        .into_iter()
        .map(|c| Held {
            id: c.id.to_string(),
            issuer: c.issuer,
            claims: c
                .claims
                .into_iter()
                .map(|(k, v)| (k.replace('_', " "), v))
                .collect(),
            valid_until: super::shown_time(&c.valid_until),
            usable: c.status == "valid",
            status: status(c.status),
        })
        .collect();
    let mut l = layout("Your credentials", "credentials", &m.csrf, None);
    if done == Some("added") {
        l.notice = Some("The credential is in your vault. Only you can show it, and only what a verifier asks for.");
    }
    Ok(CredentialsPage {
        l,
        held,
        code,
        challenge_for,
        challenge,
        errors,
    })
}

async fn page(
    State(s): State<WebState>,
    m: WebMember,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    let page = credentials_page(
        &s,
        &m,
        String::new(),
        String::new(),
        String::new(),
        FieldErrors::default(),
        q.done.as_deref(),
    )
    .await?;
    render(&page)
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Adds a credential with the code a co-op gave.
async fn redeem(
    State(s): State<WebState>,
    m: WebMember,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    if f.code.trim().is_empty() || f.code.len() > 200 {
        errors.add("code", "Enter the code the co-op gave you.");
    } else {
        match s.node.credentials.redeem(&m.session, f.code.trim()).await {
            Ok(_) => return Ok(Redirect::to("/credentials?done=added").into_response()),
            Err(ServiceError::UnknownCode) => errors.add(
                "code",
                "This code is unknown, used already, expired or revoked. Check it, or ask the co-op for a new one.",
            ),
            Err(e) => return Err(credential_error(e)),
        }
    }
    let page = credentials_page(&s, &m, f.code, String::new(), String::new(), errors, None).await?;
    render_invalid(&page)
}

#[derive(Deserialize)]
struct PresentForm {
    #[serde(default)]
    challenge: String,
}

#[derive(Template)]
#[template(path = "member_presented.html")]
struct PresentedPage {
    l: Layout,
    verifier: String,
    discloses: Vec<(String, String)>,
    presentation: String,
}

async fn present(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
    Form(f): Form<PresentForm>,
) -> Result<Response, WebError> {
    let id: RecordId = id.parse().map_err(|_| WebError::NotFound)?;
    let typed = f.challenge.trim();
    let mut errors = FieldErrors::default();
    if typed.is_empty() || typed.len() > MAX_CHALLENGE {
        errors.add(
            "challenge",
            "Paste the challenge the verifier shows you: it starts with { and ends with }.",
        );
    } else {
        match s
            .node
            .credentials
            .present(&m.session, id, typed.as_bytes(), &[])
            .await
        {
            Ok(p) => {
                let presentation =
                    serde_json::to_string(&p.presentation).map_err(|_| WebError::Internal)?;
                return render(&PresentedPage {
                    l: layout("Show this to the verifier", "credentials", &m.csrf, None),
                    verifier: p.verifier.unwrap_or_else(|| {
                        format!("a verifier of another node ({})", p.verifier_id)
                    }),
                    discloses: p
                        .discloses
                        .into_iter()
                        .map(|(k, v)| (k.replace('_', " "), v))
                        .collect(),
                    presentation,
                });
            }
            Err(ServiceError::UnknownChallenge) => errors.add(
                "challenge",
                "This challenge is not open here: it was used, it expired, or it was changed after the verifier made it. Ask the verifier for a new one.",
            ),
            Err(ServiceError::Credential(_) | ServiceError::Invalid(_)) => errors.add(
                "challenge",
                "This challenge could not be used with this credential. Paste it exactly as the verifier shows it, or ask for a new one.",
            ),
            Err(e) => return Err(credential_error(e)),
        }
    }
    let page = credentials_page(
        &s,
        &m,
        String::new(),
        id.to_string(),
        f.challenge,
        errors,
        None,
    )
    .await?;
    render_invalid(&page)
}
