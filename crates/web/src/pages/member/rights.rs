//! Export, erasure with each recipient's status, the one-click opt-out of
//! all direct marketing, the printable opt-out card, and the public paper
//! opt-out page (no login).

use super::{internal, layout, shown_time};
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::pages::{render, render_invalid, Done, Layout};
use crate::session::{csrf_for, set_cookie, Visitor, WebMember, PRE_COOKIE, SESSION_COOKIE};
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine as _;
use me2b_consent::model::Method;
use me2b_consent::service::{ErasureStatus, RecipientStatus};
use me2b_consent::ServiceError;
use me2b_domain::audit::Actor;
use me2b_domain::member::Passphrase;
use me2b_vault::VaultError;
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/account", get(account))
        .route("/account/export/{format}", get(export))
        .route("/account/opt-out", post(opt_out))
        .route("/account/opt-in", post(opt_in))
        .route("/account/card", post(card))
        .route("/account/erase", get(erase_page).post(erase))
        .route("/erasure", get(status_page).post(status))
        .route("/optout", get(optout_page).post(optout))
}

#[derive(Template)]
#[template(path = "member_account.html")]
struct AccountPage {
    l: Layout,
    opted_out_since: Option<String>,
    code_since: Option<String>,
}

async fn account(
    State(s): State<WebState>,
    m: WebMember,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    let member = m.session.member;
    let c = &s.node.consents;
    render(&AccountPage {
        l: layout(
            "Your data and account",
            "account",
            &m.csrf,
            q.done.as_deref(),
        ),
        opted_out_since: c
            .marketing_opted_out_since(member)
            .await?
            .map(super::super::when),
        code_since: c.optout_code_since(member).await?.map(super::super::when),
    })
}

/// The signed export as a download: `json` (the me2b document) or `jsonld`
/// (W3C DPV terms), the same documents as `GET /v1/me/export`.
async fn export(
    State(s): State<WebState>,
    m: WebMember,
    Path(format): Path<String>,
) -> Result<Response, WebError> {
    let (doc, kind, file) = match format.as_str() {
        "json" => (
            s.node.export(&m.session).await,
            "application/json",
            "me2b-export.json",
        ),
        "jsonld" => (
            s.node.export_jsonld(&m.session).await,
            "application/ld+json",
            "me2b-export.jsonld",
        ),
        _ => return Err(WebError::NotFound),
    };
    let doc = doc.map_err(internal("export"))?;
    let body = serde_json::to_vec_pretty(&doc).map_err(internal("export"))?;
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

async fn opt_out(State(s): State<WebState>, m: WebMember) -> Result<Response, WebError> {
    let member = m.session.member;
    s.node
        .consents
        .opt_out_of_marketing(member, Method::Web, Actor::Member(member))
        .await?;
    Ok(Redirect::to("/account?done=opted_out").into_response())
}

async fn opt_in(State(s): State<WebState>, m: WebMember) -> Result<Response, WebError> {
    s.node
        .consents
        .opt_in_to_marketing(m.session.member)
        .await?;
    Ok(Redirect::to("/account?done=opted_in").into_response())
}

#[derive(Template)]
#[template(path = "member_card.html")]
struct CardPage {
    l: Layout,
    code: String,
    card_svg: String,
    card_pdf: String,
}

/// A new paper opt-out code, shown this once with its printable card (the
/// node keeps only the code's keyed hash, so the card is drawn now and
/// handed over inline, never stored or linked).
async fn card(State(s): State<WebState>, m: WebMember) -> Result<Response, WebError> {
    let code = s.node.consents.issue_optout_code(m.session.member).await?;
    let shown = code.display();
    let input = crate::card::CardInput {
        optout_code: &shown,
        recovery_code: None,
        optout_url: None,
    };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (Some(svg), Some(pdf)) = (crate::card::svg(&input), crate::card::pdf(&input)) else {
        return Err(WebError::Internal);
    };
    render(&CardPage {
        l: layout("Your paper opt-out card", "account", &m.csrf, None),
        code: shown.clone(),
        card_svg: b64(svg.as_bytes()),
        card_pdf: b64(&pdf),
    })
}

#[derive(Template)]
#[template(path = "member_erase.html")]
struct ErasePage {
    l: Layout,
    errors: FieldErrors,
}

async fn erase_page(m: WebMember) -> Result<Response, WebError> {
    render(&ErasePage {
        l: layout("Erase your account", "account", &m.csrf, None),
        errors: FieldErrors::default(),
    })
}

#[derive(Deserialize)]
struct EraseForm {
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    confirm: String,
}

/// One recipient's status, in words and a symbol (colour is never the
/// only signal).
#[derive(Debug)]
pub struct Recipient {
    pub name: String,
    pub status: &'static str,
    pub class: &'static str,
    pub symbol: &'static str,
    pub detail: String,
}

fn recipients(list: Vec<RecipientStatus>) -> Vec<Recipient> {
    list.into_iter()
        .map(|r| {
            let at = |t: &Option<String>| t.as_deref().map(shown_time).unwrap_or_default();
            let (status, class, symbol, detail) = match r.status {
                ErasureStatus::Waiting => (
                    "Waiting",
                    "waiting",
                    "…",
                    "The request leaves with the next batch of erasures.".to_owned(),
                ),
                ErasureStatus::Pending => (
                    "Pending",
                    "pending",
                    "◷",
                    format!(
                        "Asked on {}; must confirm by {}.",
                        at(&r.released_at),
                        at(&r.confirm_by)
                    ),
                ),
                ErasureStatus::Confirmed => (
                    "Confirmed",
                    "confirmed",
                    "✓",
                    match r.confirmed_at.as_deref() {
                        Some(t) => format!("Confirmed the erasure on {}.", shown_time(t)),
                        // The trust erases at once, with no time of its own.
                        None => "Confirmed the erasure.".to_owned(),
                    },
                ),
                ErasureStatus::Overdue => (
                    "Overdue",
                    "overdue",
                    "!",
                    format!(
                        "Did not confirm by {}. You may complain to your data protection authority.",
                        at(&r.confirm_by)
                    ),
                ),
            };
            Recipient {
                name: r.recipient,
                status,
                class,
                symbol,
                detail,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "member_erasure.html")]
struct StatusPage {
    l: Layout,
    /// Shown once, right after the erasure.
    new_receipt: Option<String>,
    told_by: Option<String>,
    receipt: String,
    recipients: Option<Vec<Recipient>>,
    errors: FieldErrors,
}

async fn erase(
    State(s): State<WebState>,
    m: WebMember,
    v: Visitor,
    Form(f): Form<EraseForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    if f.confirm != "yes" {
        errors.add(
            "confirm",
            "Tick the box to confirm that you want everything erased.",
        );
    }
    let pass = Passphrase::parse(f.passphrase).map_err(|_| {
        errors.add(
            "passphrase",
            "Enter your passphrase (10 to 1,024 characters).",
        )
    });
    let invalid = |errors| {
        render_invalid(&ErasePage {
            l: layout("Erase your account", "account", &m.csrf, None),
            errors,
        })
    };
    let Ok(pass) = pass else {
        return invalid(errors);
    };
    if !errors.is_empty() {
        return invalid(errors);
    }
    let receipt = match s.node.vault.erase(&m.session, pass).await {
        Ok(r) => r,
        Err(VaultError::InvalidCredentials) => {
            errors.add("passphrase", "This is not your passphrase.");
            return invalid(errors);
        }
        Err(e) => return Err(e.into()),
    };
    let told_by = s
        .node
        .clock
        .now()
        .plus_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
    let receipt = receipt.map(|r| r.expose().to_owned());
    let list = match &receipt {
        Some(r) => Some(recipients(s.node.consents.erasure_status(r).await?)),
        None => None,
    };
    // The account is gone: the session cookie goes too, and the status form
    // below is bound to a fresh pre-login secret.
    let mut b = [0u8; 32];
    s.node.rng.fill(&mut b);
    let pre: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let mut resp = render(&StatusPage {
        l: Layout::visitor("Your account is erased", &csrf_for(&pre)),
        new_receipt: receipt.clone(),
        told_by: Some(super::super::when(told_by)),
        receipt: receipt.unwrap_or_default(),
        recipients: list,
        errors: FieldErrors::default(),
    })?;
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", v.tls, true),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(PRE_COOKIE, &pre, v.tls, false),
    );
    Ok(resp)
}

fn with_cookie(v: &Visitor, resp: Result<Response, WebError>) -> Result<Response, WebError> {
    let mut resp = resp?;
    if let Some(c) = &v.set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    Ok(resp)
}

async fn status_page(v: Visitor) -> Result<Response, WebError> {
    let page = StatusPage {
        l: Layout::visitor("Where your erasure stands", &v.csrf),
        new_receipt: None,
        told_by: None,
        receipt: String::new(),
        recipients: None,
        errors: FieldErrors::default(),
    };
    with_cookie(&v, render(&page))
}

#[derive(Deserialize)]
struct ReceiptForm {
    #[serde(default)]
    receipt: String,
}

/// Each recipient's status for the holder of an erasure receipt: no login
/// (the account is gone), as `POST /v1/erasure-receipts/status`.
async fn status(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<ReceiptForm>,
) -> Result<Response, WebError> {
    let typed = f.receipt.trim();
    let mut page = StatusPage {
        l: Layout::visitor("Where your erasure stands", &v.csrf),
        new_receipt: None,
        told_by: None,
        receipt: f.receipt.clone(),
        recipients: None,
        errors: FieldErrors::default(),
    };
    // As every API route does first: the erasures due are released, so the
    // page never shows a batch as waiting once its boundary has passed.
    s.node.vault.release_erasures_due().await?;
    match s.node.consents.erasure_status(typed).await {
        Ok(list) => {
            page.recipients = Some(recipients(list));
            render(&page)
        }
        Err(ServiceError::ErasureReceiptNotFound) => {
            page.errors.add(
                "receipt",
                "This receipt is unknown. Paste it as you were given it; it starts with me2b_e_.",
            );
            render_invalid(&page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "public_optout.html")]
struct OptOutPage {
    l: Layout,
    code: String,
    done: bool,
    errors: FieldErrors,
}

fn optout_layout(v: &Visitor) -> Layout {
    let mut l = Layout::visitor("Stop marketing with your paper code", &v.csrf);
    l.member = v.logged_in;
    l
}

async fn optout_page(v: Visitor) -> Result<Response, WebError> {
    let page = OptOutPage {
        l: optout_layout(&v),
        code: String::new(),
        done: false,
        errors: FieldErrors::default(),
    };
    with_cookie(&v, render(&page))
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The public opt-out page's action (no login): the code's member is opted
/// out of all direct marketing, as `POST /v1/optout`, under its limits.
/// The answer names no one.
async fn optout(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    let mut page = OptOutPage {
        l: optout_layout(&v),
        code: f.code.clone(),
        done: false,
        errors: FieldErrors::default(),
    };
    if !s.gate.allow_optout(v.peer, &v.headers) {
        page.errors.add(
            "",
            "Too many codes were typed from this address. Wait a minute and try again.",
        );
        let mut resp = render_invalid(&page)?;
        *resp.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(resp);
    }
    let typed = if f.code.chars().count() > 64 {
        ""
    } else {
        f.code.as_str()
    };
    match s
        .node
        .consents
        .use_optout_code(typed, Actor::Anonymous)
        .await
    {
        Ok(()) => {
            page.done = true;
            page.code = String::new();
            render(&page)
        }
        Err(ServiceError::OptOutCodeMistyped) => {
            page.errors.add(
                "code",
                "This is not an opt-out code. Check it: five groups of four letters and digits, as printed on the card.",
            );
            render_invalid(&page)
        }
        Err(ServiceError::UnknownOptOutCode) => {
            page.errors.add(
                "code",
                "This code is not known here. Check it, or ask the co-op where you got the card.",
            );
            render_invalid(&page)
        }
        Err(e) => Err(e.into()),
    }
}
