//! Sign-up (request, confirmation with the token from the e-mail, the
//! recovery code shown once), log-in and log-out.

use super::{render, render_invalid, Done, Layout};
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::session::{self, set_cookie, Visitor, WebMember, SESSION_COOKIE};
use crate::WebState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use me2b_domain::member::{Email, Passphrase};
use me2b_vault::{NewSession, VaultError};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/signup", get(sign_up_page).post(sign_up))
        .route("/signup/confirm", get(confirm_page).post(confirm))
        .route("/login", get(login_page).post(log_in))
        .route("/logout", post(log_out))
}

const EMAIL_HELP: &str = "Enter an e-mail address, like name@example.org.";
const PASSPHRASE_HELP: &str = "Use 10 to 1,024 characters.";

#[derive(Template)]
#[template(path = "signup.html")]
struct SignUpPage {
    l: Layout,
    email: String,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    l: Layout,
    token: String,
    sent: bool,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage {
    l: Layout,
    code: String,
    notice: &'static str,
    next: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    email: String,
    next: String,
    errors: FieldErrors,
}

/// Adds the visitor's pre-login cookie to a page, when it is new.
fn with_cookie(v: &Visitor, resp: Result<Response, WebError>) -> Result<Response, WebError> {
    let mut resp = resp?;
    if let Some(c) = &v.set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    Ok(resp)
}

async fn sign_up_page(v: Visitor) -> Result<Response, WebError> {
    let page = SignUpPage {
        l: Layout::visitor("Create your vault", &v.csrf),
        email: String::new(),
        errors: FieldErrors::default(),
    };
    with_cookie(&v, render(&page))
}

#[derive(Deserialize)]
struct SignUpForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    passphrase2: String,
}

async fn sign_up(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<SignUpForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    let email = Email::parse(f.email.trim()).map_err(|_| errors.add("email", EMAIL_HELP));
    let pass =
        Passphrase::parse(f.passphrase).map_err(|_| errors.add("passphrase", PASSPHRASE_HELP));
    if f.passphrase2.is_empty() {
        errors.add("passphrase2", "Type the passphrase a second time.");
    }
    let (Ok(email), Ok(pass)) = (email, pass) else {
        return render_invalid(&SignUpPage {
            l: Layout::visitor("Create your vault", &v.csrf),
            email: f.email,
            errors,
        });
    };
    if pass.expose() != f.passphrase2 {
        errors.add(
            "passphrase2",
            "The two passphrases differ: type the same one twice.",
        );
        return render_invalid(&SignUpPage {
            l: Layout::visitor("Create your vault", &v.csrf),
            email: f.email,
            errors,
        });
    }
    // Per client address, before any Argon2 or message (adv8's fake
    // members); the same whether or not the address has an account.
    if !s.gate.allow_sign_up(v.peer, &v.headers) {
        errors.add(
            "",
            "Too many sign-ups from this address. Wait a while and try again.",
        );
        let mut resp = render_invalid(&SignUpPage {
            l: Layout::visitor("Create your vault", &v.csrf),
            email: f.email,
            errors,
        })?;
        *resp.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(resp);
    }
    s.node.vault.request_sign_up(email, pass).await?;
    render(&ConfirmPage {
        l: Layout::visitor("Check your e-mail", &v.csrf),
        token: String::new(),
        sent: true,
        errors: FieldErrors::default(),
    })
}

async fn confirm_page(v: Visitor) -> Result<Response, WebError> {
    let page = ConfirmPage {
        l: Layout::visitor("Confirm your e-mail address", &v.csrf),
        token: String::new(),
        sent: false,
        errors: FieldErrors::default(),
    };
    with_cookie(&v, render(&page))
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    token: String,
}

/// Sets the session cookie on `resp`.
fn logged_in(v: &Visitor, s: &NewSession, mut resp: Response) -> Response {
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, s.token.expose(), v.tls, false),
    );
    resp
}

async fn confirm(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    let token = f.token.trim();
    let invalid = |msg: &'static str| {
        let mut errors = FieldErrors::default();
        errors.add("token", msg);
        render_invalid(&ConfirmPage {
            l: Layout::visitor("Confirm your e-mail address", &v.csrf),
            token: f.token.clone(),
            sent: false,
            errors,
        })
    };
    if token.is_empty() {
        return invalid("Paste the code from the e-mail we sent you.");
    }
    match s.node.vault.confirm_sign_up(token).await {
        Ok(done) => {
            let page = RecoveryPage {
                l: Layout::member(
                    "Your recovery code",
                    "",
                    &session::csrf_for(done.session.token.expose()),
                ),
                code: done.recovery_code.display(),
                notice: me2b_vault::RECOVERY_NOTICE,
                next: "/vault".into(),
            };
            Ok(logged_in(&v, &done.session, render(&page)?))
        }
        Err(VaultError::UnknownConfirmation) => invalid(
            "This code is unknown, was used already or has expired. Check the e-mail, or sign up again.",
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    done: Option<String>,
}

async fn login_page(v: Visitor, Query(q): Query<LoginQuery>) -> Result<Response, WebError> {
    let next = q
        .next
        .as_deref()
        .and_then(session::safe_next)
        .unwrap_or_default();
    let l = Layout::visitor("Log in", &v.csrf).with_notice(q.done.as_deref());
    let page = LoginPage {
        l: Layout {
            notice: l.notice.or((!next.is_empty())
                .then_some("Your session ended. Log in again to go back to where you were.")),
            ..l
        },
        email: String::new(),
        next,
        errors: FieldErrors::default(),
    };
    with_cookie(&v, render(&page))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    next: String,
}

async fn log_in(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let next = session::safe_next(&f.next).unwrap_or_default();
    let mut errors = FieldErrors::default();
    let email = Email::parse(f.email.trim()).map_err(|_| errors.add("email", EMAIL_HELP));
    let pass =
        Passphrase::parse(f.passphrase).map_err(|_| errors.add("passphrase", PASSPHRASE_HELP));
    let page = |errors| LoginPage {
        l: Layout::visitor("Log in", &v.csrf),
        email: f.email.clone(),
        next: next.clone(),
        errors,
    };
    let (Ok(email), Ok(pass)) = (email, pass) else {
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
    match s.node.vault.log_in(email, pass).await {
        Ok(l) => {
            let target = if next.is_empty() {
                "/vault".to_owned()
            } else {
                next
            };
            let resp = match l.recovery_code {
                Some(code) => render(&RecoveryPage {
                    l: Layout::member(
                        "Your recovery code",
                        "",
                        &session::csrf_for(l.session.token.expose()),
                    ),
                    code: code.display(),
                    notice: me2b_vault::RECOVERY_NOTICE,
                    next: target,
                })?,
                None => Redirect::to(&target).into_response(),
            };
            Ok(logged_in(&v, &l.session, resp))
        }
        Err(VaultError::InvalidCredentials) => {
            errors.add("", "The e-mail address or the passphrase is wrong.");
            render_invalid(&page(errors))
        }
        Err(e) => Err(e.into()),
    }
}

async fn log_out(
    State(s): State<WebState>,
    m: WebMember,
    v: Visitor,
) -> Result<Response, WebError> {
    s.node.vault.log_out(&m.session, &m.token).await?;
    let mut resp = Redirect::to("/login?done=logged_out").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", v.tls, true),
    );
    Ok(resp)
}

/// `/`: the member's vault, or what me2b is and how to start.
pub async fn home(v: Visitor, Query(q): Query<Done>) -> Result<Response, WebError> {
    if v.logged_in {
        return Ok(Redirect::to("/vault").into_response());
    }
    #[derive(Template)]
    #[template(path = "home.html")]
    struct Home {
        l: Layout,
    }
    let page = Home {
        l: Layout::visitor("Welcome", &v.csrf).with_notice(q.done.as_deref()),
    };
    with_cookie(&v, render(&page))
}
