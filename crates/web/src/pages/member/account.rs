//! The passphrase: changed by a logged-in member, or set anew with the
//! recovery code (no login; the same limits as logging in).

use super::layout;
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::pages::{render, render_invalid, Layout};
use crate::session::{csrf_for, set_cookie, Visitor, WebMember, SESSION_COOKIE};
use crate::WebState;
use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use me2b_domain::member::{Email, Passphrase};
use me2b_vault::VaultError;
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/account/passphrase", get(change_page).post(change))
        .route("/recover", get(recover_page).post(recover))
}

const PASSPHRASE_HELP: &str = "Use 10 to 1,024 characters.";

#[derive(Template)]
#[template(path = "member_passphrase.html")]
struct ChangePage {
    l: Layout,
    errors: FieldErrors,
}

fn change_layout(csrf: &str) -> Layout {
    layout("Change your passphrase", "account", csrf, None)
}

async fn change_page(m: WebMember) -> Result<Response, WebError> {
    render(&ChangePage {
        l: change_layout(&m.csrf),
        errors: FieldErrors::default(),
    })
}

#[derive(Deserialize)]
struct ChangeForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    new2: String,
}

/// Checks a new passphrase typed twice.
fn new_passphrase(new: String, again: &str, errors: &mut FieldErrors) -> Option<Passphrase> {
    let p = Passphrase::parse(new)
        .map_err(|_| errors.add("new", PASSPHRASE_HELP))
        .ok();
    if again.is_empty() {
        errors.add("new2", "Type the new passphrase a second time.");
        return None;
    }
    let p = p?;
    if p.expose() != again {
        errors.add(
            "new2",
            "The two new passphrases differ: type the same one twice.",
        );
        return None;
    }
    Some(p)
}

/// As `POST /v1/me/passphrase`: the vault's key is wrapped anew; every
/// other session ends.
async fn change(
    State(s): State<WebState>,
    m: WebMember,
    Form(f): Form<ChangeForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    let current = Passphrase::parse(f.current)
        .map_err(|_| errors.add("current", "Enter your current passphrase."))
        .ok();
    let new = new_passphrase(f.new, &f.new2, &mut errors);
    let invalid = |errors| {
        render_invalid(&ChangePage {
            l: change_layout(&m.csrf),
            errors,
        })
    };
    let (Some(current), Some(new)) = (current, new) else {
        return invalid(errors);
    };
    match s
        .node
        .vault
        .change_passphrase(&m.session, &m.token, current, new)
        .await
    {
        Ok(()) => Ok(Redirect::to("/account?done=passphrase").into_response()),
        Err(VaultError::InvalidCredentials) => {
            errors.add("current", "This is not your current passphrase.");
            invalid(errors)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "member_recover.html")]
struct RecoverPage {
    l: Layout,
    email: String,
    errors: FieldErrors,
}

/// The new recovery code, shown once (the sign-up's page).
#[derive(Template)]
#[template(path = "recovery.html")]
struct NewCodePage {
    l: Layout,
    code: String,
    notice: &'static str,
    next: String,
}

fn recover_layout(v: &Visitor) -> Layout {
    Layout::visitor("Recover your vault", &v.csrf)
}

async fn recover_page(v: Visitor) -> Result<Response, WebError> {
    let mut resp = render(&RecoverPage {
        l: recover_layout(&v),
        email: String::new(),
        errors: FieldErrors::default(),
    })?;
    if let Some(c) = &v.set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    Ok(resp)
}

#[derive(Deserialize)]
struct RecoverForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    new2: String,
}

/// As `POST /v1/sessions/recovery`: a new passphrase set with the recovery
/// code; the code is replaced by a new one (shown once), every other
/// session ends, and the member is logged in.
async fn recover(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<RecoverForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    let email = Email::parse(f.email.trim())
        .map_err(|_| errors.add("email", "Enter an e-mail address, like name@example.org."))
        .ok();
    let code = me2b_crypto::RecoveryCode::parse(&f.code)
        .map_err(|_| {
            errors.add(
                "code",
                "This is not a recovery code: seven groups of four letters and digits, as printed.",
            )
        })
        .ok();
    let new = new_passphrase(f.new, &f.new2, &mut errors);
    let page = |errors| RecoverPage {
        l: recover_layout(&v),
        email: f.email.clone(),
        errors,
    };
    let (Some(email), Some(code), Some(new)) = (email, code, new) else {
        return render_invalid(&page(errors));
    };
    let account = s.node.keys.email_index(&email);
    if !s.gate.allow(v.peer, &v.headers, &account) {
        errors.add(
            "",
            "Too many attempts on this account or from this address. Wait a minute and try again.",
        );
        let mut resp = render_invalid(&page(errors))?;
        *resp.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(resp);
    }
    match s.node.vault.recover(email, code, new).await {
        Ok(done) => {
            let token = done.session.token.expose();
            let mut resp = match done.recovery_code {
                Some(code) => render(&NewCodePage {
                    l: Layout::member("Your new recovery code", "", &csrf_for(token)),
                    code: code.display(),
                    notice: me2b_vault::RECOVERY_NOTICE,
                    next: "/vault".into(),
                })?,
                None => Redirect::to("/vault").into_response(),
            };
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, token, v.tls, false),
            );
            Ok(resp)
        }
        Err(VaultError::InvalidCredentials) => {
            errors.add(
                "",
                "The e-mail address or the recovery code is wrong. A code works only once: after a recovery, use the new one.",
            );
            render_invalid(&page(errors))
        }
        Err(e) => Err(e.into()),
    }
}
