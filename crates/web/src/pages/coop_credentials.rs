//! The co-op's credentials (role `credentials`): make a one-time code for a
//! member (shown once, printable), revoke one; the till: make a challenge,
//! show it to the member, check the member's presentation and see only
//! what it disclosed. And the public challenge page a member opens to read
//! what a verifier asks. All through `me2b_credentials::service`, as the API.

use super::coop::{layout, need};
use super::{render, render_invalid, Done, Layout};
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::session::{Visitor, WebCoop};
use crate::WebState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine;
use me2b_credentials::service::{ChallengeRequest, CodeRequest, ServiceError};
use me2b_credentials::{Challenge, ClaimName};
use me2b_domain::org::Role;
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/coop/credentials", get(codes_page).post(make_code))
        .route("/coop/credentials/revoke", post(revoke))
        .route("/coop/till", get(till_page).post(make_challenge))
        .route("/coop/till/verify", post(verify))
        .route("/verify", get(public_challenge))
}

/// The service's errors that are not the form's fault.
fn fault(e: ServiceError) -> WebError {
    match e {
        ServiceError::NotFound(_) => WebError::NotFound,
        other => {
            tracing::error!(code = other.code(), "credentials error");
            WebError::Internal
        }
    }
}

/// Claims a verifier may ask the member to disclose, in plain words.
const ASKABLE: [(&str, &str); 3] = [
    ("tier", "Membership tier"),
    ("region", "Region"),
    ("member_since", "Member since (year)"),
];

fn claim_label(name: &str) -> String {
    match name {
        "issuer" => "Issuing co-op".into(),
        "credential_type" => "Kind of credential".into(),
        "federation" => "Federation".into(),
        "validity_epoch" => "Valid in week".into(),
        "status_index" => "Status list entry".into(),
        n if n.starts_with("interest_") => "Declared interest".into(),
        n => ASKABLE
            .iter()
            .find(|(k, _)| *k == n)
            .map_or_else(|| n.replace('_', " "), |(_, l)| (*l).to_owned()),
    }
}

// --- codes ---------------------------------------------------------------------------

/// The code form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub tier: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub member_since: String,
    #[serde(default)]
    pub interests: String,
}

/// A code just made, shown once.
#[derive(Debug)]
pub struct Made {
    pub code: String,
    pub qr: String,
    pub status_index: u32,
    pub redeem_before: String,
}

#[derive(Template)]
#[template(path = "coop_credentials.html")]
struct CodesPage {
    l: Layout,
    tiers: Vec<String>,
    regions: Vec<String>,
    f: CodeForm,
    errors: FieldErrors,
    made: Option<Made>,
    revoke_errors: FieldErrors,
    revoke_index: String,
}

async fn codes(
    s: &WebState,
    c: &WebCoop,
    f: CodeForm,
    errors: FieldErrors,
    done: Option<&str>,
) -> Result<CodesPage, WebError> {
    let doc = s.node.credentials.published().await.map_err(fault)?;
    Ok(CodesPage {
        l: layout("Membership credentials", "credentials", c).with_notice(done),
        tiers: doc.tiers,
        regions: doc.regions,
        f,
        errors,
        made: None,
        revoke_errors: FieldErrors::default(),
        revoke_index: String::new(),
    })
}

async fn codes_page(
    State(s): State<WebState>,
    c: WebCoop,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    need(&c, Role::Credentials)?;
    let done = match q.done.as_deref() {
        Some("revoked") => Some("revoked"),
        _ => None,
    };
    let mut p = codes(&s, &c, CodeForm::default(), FieldErrors::default(), None).await?;
    if done.is_some() {
        p.l.notice = Some("The credential is revoked: verifiers that check the status list refuse it from now on.");
    }
    render(&p)
}

/// The form as the API's request, or what is wrong with each field.
fn code_request(f: &CodeForm, errors: &mut FieldErrors) -> Option<CodeRequest> {
    if f.tier.trim().is_empty() {
        errors.add("tier", "Choose the member's tier.");
    }
    if f.region.trim().is_empty() {
        errors.add("region", "Choose the member's region.");
    }
    let since = f
        .member_since
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|y| (1900..=2200).contains(y));
    if since.is_none() {
        errors.add(
            "member_since",
            "Enter the year the membership began, e.g. 2021.",
        );
    }
    let interests: Vec<String> = f
        .interests
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if interests.len() > me2b_credentials::service::MAX_ISSUED_INTERESTS {
        errors.add(
            "interests",
            "A credential carries at most two interests, top-level topics of the taxonomy.",
        );
    }
    Some(CodeRequest {
        federation: None,
        tier: f.tier.trim().to_owned(),
        region: f.region.trim().to_owned(),
        member_since: since?,
        interests,
    })
    .filter(|_| errors.is_empty())
}

async fn make_code(
    State(s): State<WebState>,
    c: WebCoop,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    need(&c, Role::Credentials)?;
    let mut errors = FieldErrors::default();
    if let Some(req) = code_request(&f, &mut errors) {
        match s.node.credentials.create_code(c.principal.org.id, &req).await {
            Ok(out) => {
                let mut p = codes(&s, &c, CodeForm::default(), errors, None).await?;
                p.l.notice = Some("The code is made. It is shown only now: print it or hand it over, the node keeps only its hash.");
                p.made = Some(Made {
                    qr: crate::qr_svg(&out.code).unwrap_or_default(),
                    code: out.code,
                    status_index: out.status_index,
                    redeem_before: out.redeem_before,
                });
                return render(&p);
            }
            Err(ServiceError::UnknownTier) => errors.add("tier", "This is not one of the federation's tiers."),
            Err(ServiceError::UnknownRegion) => errors.add("region", "This is not one of the trust's regions."),
            Err(ServiceError::UnknownTopic) => errors.add("interests", "One of these is not a topic of the interest taxonomy."),
            Err(ServiceError::SensitiveTopic) => errors.add("interests", "A credential never carries a special-category topic (health, religion, politics and the like)."),
            Err(ServiceError::Invalid(_) | ServiceError::Credential(_)) => {
                errors.add("member_since", "Check the year and the interests: the credential cannot carry them as typed.");
            }
            Err(e) => return Err(fault(e)),
        }
    }
    render_invalid(&codes(&s, &c, f, errors, None).await?)
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    #[serde(default)]
    status_index: String,
}

async fn revoke(
    State(s): State<WebState>,
    c: WebCoop,
    Form(f): Form<RevokeForm>,
) -> Result<Response, WebError> {
    need(&c, Role::Credentials)?;
    let mut errors = FieldErrors::default();
    match f.status_index.trim().parse::<u32>() {
        Ok(i) if i < 1_048_576 => match s.node.credentials.revoke(c.principal.org.id, i).await {
            Ok(()) => return Ok(Redirect::to("/coop/credentials?done=revoked").into_response()),
            Err(ServiceError::NotFound(_) | ServiceError::Invalid(_)) => errors.add(
                "status_index",
                "No credential of yours has this status list entry.",
            ),
            Err(e) => return Err(fault(e)),
        },
        _ => errors.add(
            "status_index",
            "Enter the status list entry shown when the code was made: a number from 0 to 1048575.",
        ),
    }
    let mut p = codes(&s, &c, CodeForm::default(), FieldErrors::default(), None).await?;
    p.revoke_errors = errors;
    p.revoke_index = f.status_index;
    render_invalid(&p)
}

// --- the till ------------------------------------------------------------------------

/// A challenge made for the member at the till.
#[derive(Debug)]
pub struct Shown {
    pub json: String,
    pub qr: String,
    pub link: String,
    pub asks: Vec<String>,
}

/// A presentation checked: only what it disclosed.
#[derive(Debug)]
pub struct Checked {
    pub issuer: Option<String>,
    pub disclosed: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "coop_till.html")]
struct TillPage {
    l: Layout,
    shown: Option<Shown>,
    checked: Option<Checked>,
    errors: FieldErrors,
    presentation: String,
}

fn till(c: &WebCoop) -> TillPage {
    TillPage {
        l: layout("Till: check a membership", "till", c),
        shown: None,
        checked: None,
        errors: FieldErrors::default(),
        presentation: String::new(),
    }
}

async fn till_page(c: WebCoop) -> Result<Response, WebError> {
    need(&c, Role::Credentials)?;
    render(&till(&c))
}

/// What a challenge asks, in plain words.
fn asks(ch: &Challenge) -> Vec<String> {
    let mut out = vec!["A valid co-op membership of the federation".to_owned()];
    for n in ch.claims_to_disclose() {
        if n != ClaimName::Issuer && n != ClaimName::StatusIndex {
            out.push(claim_label(n.as_str()));
        }
    }
    if !ch.issuers().is_empty() {
        out.push("Which co-op issued it".into());
    }
    if ch.status_check() {
        out.push(
            "Its status list entry, to check it is not revoked (this entry can link your visits)"
                .into(),
        );
    }
    out
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

async fn make_challenge(
    State(s): State<WebState>,
    c: WebCoop,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    need(&c, Role::Credentials)?;
    let claims: Vec<String> = crate::form::all_of(&form, "claim")
        .into_iter()
        .filter(|n| ASKABLE.iter().any(|(k, _)| k == n))
        .collect();
    let req = ChallengeRequest {
        federation: s.node.credentials.settings().federation.as_str().to_owned(),
        issuers: None,
        claims,
        status_check: form.iter().any(|(k, v)| k == "status_check" && v == "on"),
    };
    let json = s
        .node
        .credentials
        .challenge(c.principal.org.id, &req)
        .await
        .map_err(fault)?
        .to_string();
    let ch = Challenge::parse(json.as_bytes()).map_err(|_| WebError::Internal)?;
    let mut p = till(&c);
    p.shown = Some(Shown {
        qr: crate::qr_svg(&json).unwrap_or_default(),
        link: format!("/verify?c={}", b64(&json)),
        asks: asks(&ch),
        json,
    });
    render(&p)
}

#[derive(Debug, Deserialize)]
struct VerifyForm {
    #[serde(default)]
    presentation: String,
}

async fn verify(
    State(s): State<WebState>,
    c: WebCoop,
    Form(f): Form<VerifyForm>,
) -> Result<Response, WebError> {
    need(&c, Role::Credentials)?;
    let mut p = till(&c);
    let text = f.presentation.trim();
    if text.is_empty() {
        p.errors
            .add("presentation", "Paste the member's presentation here.");
    } else {
        match s
            .node
            .credentials
            .verify(c.principal.org.id, text.as_bytes())
            .await
        {
            Ok(v) => {
                p.checked = Some(Checked {
                    issuer: v.issuer,
                    disclosed: v
                        .disclosed
                        .into_iter()
                        .filter(|(k, _)| k != "credential_type")
                        .map(|(k, v)| (claim_label(&k), v))
                        .collect(),
                });
                return render(&p);
            }
            Err(ServiceError::UnknownChallenge) => p.errors.add(
                "presentation",
                "This answers no open challenge of yours: it was already checked, is older than ten minutes, or was made for another verifier. Make a new challenge.",
            ),
            Err(ServiceError::Credential(_)) => p.errors.add(
                "presentation",
                "Not valid: the presentation does not prove a membership (it is damaged, expired, revoked or not from this federation).",
            ),
            Err(e) => return Err(fault(e)),
        }
    }
    p.presentation = f.presentation;
    render_invalid(&p)
}

// --- the public challenge page -------------------------------------------------------

#[derive(Template)]
#[template(path = "verify_challenge.html")]
struct PublicChallenge {
    l: Layout,
    verifier: String,
    asks: Vec<String>,
    json: String,
    qr: String,
    error: bool,
}

#[derive(Debug, Deserialize)]
struct ChallengeQuery {
    c: Option<String>,
}

/// A verifier's challenge for the member to read: who asks, what they
/// will learn, and the challenge to scan or copy into the vault. No login.
async fn public_challenge(
    State(s): State<WebState>,
    v: Visitor,
    Query(q): Query<ChallengeQuery>,
) -> Result<Response, WebError> {
    let parsed =
        q.c.as_deref()
            .filter(|c| c.len() <= 8192)
            .and_then(|c| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
            })
            .and_then(|b| Challenge::parse(&b).ok().map(|ch| (ch, b)));
    let mut page = PublicChallenge {
        l: Layout::visitor("A verifier's challenge", &v.csrf),
        verifier: String::new(),
        asks: Vec::new(),
        json: String::new(),
        qr: String::new(),
        error: true,
    };
    if let Some((ch, bytes)) = parsed {
        // The verifier's name, when it is an organisation of this node.
        let named = match ch.verifier_id().as_str().parse::<me2b_domain::OrgId>() {
            Ok(org) => s
                .node
                .store
                .org(org)
                .await
                .map_err(|_| WebError::Internal)?
                .filter(|o| o.deleted_at.is_none())
                .map(|o| o.name),
            Err(_) => None,
        };
        // Only a challenge an organisation of this node made here, open and
        // unaltered: the node's page never speaks in a co-op's name for a
        // challenge someone else wrote.
        let made_here = s.node.credentials.check_challenge(&ch).await.is_ok();
        let Some(verifier) = named.filter(|_| made_here) else {
            return not_found_challenge(page, &v);
        };
        page.verifier = verifier;
        page.asks = asks(&ch);
        page.json = String::from_utf8_lossy(&bytes).into_owned();
        page.qr = crate::qr_svg(&page.json).unwrap_or_default();
        page.error = false;
    }
    if page.error {
        return not_found_challenge(page, &v);
    }
    challenge_page(axum::http::StatusCode::OK, &page, &v)
}

/// The challenge page's "not a challenge of this node" answer (404).
fn not_found_challenge(mut page: PublicChallenge, v: &Visitor) -> Result<Response, WebError> {
    page.error = true;
    page.verifier.clear();
    page.asks.clear();
    page.json.clear();
    page.qr.clear();
    challenge_page(axum::http::StatusCode::NOT_FOUND, &page, v)
}

fn challenge_page(
    status: axum::http::StatusCode,
    page: &PublicChallenge,
    v: &Visitor,
) -> Result<Response, WebError> {
    let mut resp = (status, axum::response::Html(page.render()?)).into_response();
    if let Some(c) = &v.set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_request_needs_each_field() {
        let mut e = FieldErrors::default();
        assert!(code_request(&CodeForm::default(), &mut e).is_none());
        assert!(e.has("tier") && e.has("region") && e.has("member_since"));
        let mut e = FieldErrors::default();
        let f = CodeForm {
            tier: "member".into(),
            region: "NL-NH".into(),
            member_since: "2021".into(),
            interests: "sports, a, b".into(),
        };
        assert!(code_request(&f, &mut e).is_none());
        assert!(e.has("interests"));
        let f = CodeForm {
            interests: "sports".into(),
            ..f
        };
        let mut e = FieldErrors::default();
        let r = code_request(&f, &mut e).unwrap();
        assert_eq!((r.member_since, r.interests.len()), (2021, 1));
    }

    #[test]
    fn claims_read_in_plain_words() {
        assert_eq!(claim_label("tier"), "Membership tier");
        assert_eq!(claim_label("interest_2"), "Declared interest");
    }
}
