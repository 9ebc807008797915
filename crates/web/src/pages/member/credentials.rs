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
use me2b_credentials::service::{Disclosure, ServiceError};
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
    /// Claims the challenge asks for that the member leaves out, separated
    /// by commas (from the warning's "show less").
    #[serde(default)]
    withhold: String,
    /// `yes`: the member confirmed showing a rare set.
    #[serde(default)]
    accept: String,
}

#[derive(Template)]
#[template(path = "member_presented.html")]
struct PresentedPage {
    l: Layout,
    verifier: String,
    discloses: Vec<(String, String)>,
    presentation: String,
    shared_by: u64,
    status_index: bool,
}

/// The warning before a rare set is shown (issue 12): how many share it,
/// what to leave out, and a confirm step.
#[derive(Template)]
#[template(path = "member_rare.html")]
struct RarePage {
    l: Layout,
    id: String,
    issuer: String,
    verifier: String,
    discloses: Vec<(String, String)>,
    shared_by: u64,
    threshold: u32,
    status_index: bool,
    challenge: String,
    /// What the member already left out (kept by "show it anyway").
    withheld: String,
    /// What "show less" leaves out (with what was already), comma-separated;
    /// empty when nothing left out makes the set common.
    withhold: String,
    withhold_shown: String,
}

fn shown_claims(m: std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    m.into_iter()
        .map(|(k, v)| (k.replace('_', " "), v))
        .collect()
}

fn verifier_name(name: Option<String>, id: &str) -> String {
    name.unwrap_or_else(|| format!("a verifier of another node ({id})"))
}

/// The warning page if what `choice` would disclose is rare and the member
/// has not accepted; `None` to present.
async fn rare_warning(
    s: &WebState,
    m: &WebMember,
    id: RecordId,
    typed: &str,
    choice: &Disclosure,
) -> Result<Option<Response>, ServiceError> {
    if choice.accept_rare {
        return Ok(None);
    }
    let p = s
        .node
        .credentials
        .preview(&m.session, id, typed.as_bytes(), choice)
        .await?;
    if !p.rarity.rare {
        return Ok(None);
    }
    let issuer = s
        .node
        .credentials
        .held_by(&m.session)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.issuer)
        .unwrap_or_else(|| "the co-op".to_owned());
    let mut withhold: Vec<String> = choice.withhold.clone();
    let suggestion = p.withhold_to_be_common.unwrap_or_default();
    let withhold_shown = suggestion
        .iter()
        .map(|c| c.replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ");
    if !suggestion.is_empty() {
        withhold.extend(suggestion);
    }
    let page = RarePage {
        l: layout(
            "Few share what you would show",
            "credentials",
            &m.csrf,
            None,
        ),
        id: id.to_string(),
        issuer,
        verifier: verifier_name(p.verifier, &p.verifier_id),
        discloses: shown_claims(p.discloses),
        shared_by: p.rarity.shared_by,
        threshold: p.rarity.threshold,
        status_index: p.rarity.status_index,
        challenge: typed.to_owned(),
        withheld: choice.withhold.join(","),
        withhold: if withhold_shown.is_empty() {
            String::new()
        } else {
            withhold.join(",")
        },
        withhold_shown,
    };
    Ok(Some(render(&page).unwrap_or_else(|e| e.into_response())))
}

/// Presents, or first warns when what it would disclose is rare.
async fn answer(
    s: &WebState,
    m: &WebMember,
    id: RecordId,
    typed: &str,
    choice: &Disclosure,
) -> Result<Response, ServiceError> {
    if let Some(warning) = rare_warning(s, m, id, typed, choice).await? {
        return Ok(warning);
    }
    let p = s
        .node
        .credentials
        .present(&m.session, id, typed.as_bytes(), choice)
        .await?;
    let presentation = serde_json::to_string(&p.presentation).map_err(|_| ServiceError::Corrupt)?;
    Ok(render(&PresentedPage {
        l: layout("Show this to the verifier", "credentials", &m.csrf, None),
        verifier: verifier_name(p.verifier, &p.verifier_id),
        discloses: shown_claims(p.discloses),
        presentation,
        shared_by: p.rarity.shared_by,
        status_index: p.rarity.status_index,
    })
    .unwrap_or_else(|e| e.into_response()))
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
    if typed.is_empty() || typed.len() > MAX_CHALLENGE || f.withhold.len() > 200 {
        errors.add(
            "challenge",
            "Paste the challenge the verifier shows you: it starts with { and ends with }.",
        );
    } else {
        let choice = Disclosure {
            extra: Vec::new(),
            withhold: f
                .withhold
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            accept_rare: f.accept == "yes",
        };
        match answer(&s, &m, id, typed, &choice).await {
            Ok(page) => return Ok(page),
            Err(ServiceError::UnknownChallenge) => errors.add(
                "challenge",
                "This challenge is not open here: it was used, it expired, or it was changed after the verifier made it. Ask the verifier for a new one.",
            ),
            Err(ServiceError::Credential(_) | ServiceError::Invalid(_)) => errors.add(
                "challenge",
                "This challenge could not be used with this credential. Paste it exactly as the verifier shows it, or ask for a new one.",
            ),
            Err(ServiceError::RareDisclosure) => errors.add(
                "challenge",
                "Few members share what this would show. Try again to see the warning and your choices.",
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
