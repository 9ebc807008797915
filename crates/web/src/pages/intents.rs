//! A member's intents (issue 17): publish a request for proposal, after the
//! plain-words warning that free text can identify them; see the answers
//! side by side; accept one, choosing what to disclose. Through the same
//! `me2b_intents::Intents` service as the API.

use super::{render, render_invalid, when, Layout};
use crate::error::WebError;
use crate::form::{all_of, FieldErrors};
use crate::session::WebMember;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use me2b_domain::Timestamp;
use me2b_intents::{
    AcceptInput, AnswerId, Audience, Budget, IntentError, IntentId, IntentInput,
    MemberIntentStatus, FREE_TEXT_WARNING, MAX_DEADLINE_DAYS, MAX_TEXT_CHARS,
};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/intents", get(list))
        .route("/intents/new", get(new_page).post(publish))
        .route("/intents/{id}/accept", post(accept))
}

/// Cents as money a person reads: `1234, "EUR"` → `12.34 EUR`.
pub fn money(cents: u64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

/// Money as typed (`12`, `12.5`, `12,50`) in cents.
pub fn cents(typed: &str) -> Option<u64> {
    let t = typed.trim().replace(',', ".");
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = format!("{frac:0<2}").parse::<u64>().ok()?;
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac)
}

/// A time in Unix ms as a person reads it.
pub fn at(ms: i64) -> String {
    when(Timestamp::from_unix_millis(ms))
}

/// An intent error as a message next to its field; `None`: not the form's.
pub fn field_of(e: &IntentError) -> Option<&'static str> {
    Some(match e {
        IntentError::Empty | IntentError::TooLong { field: "text", .. } => "text",
        IntentError::TooLong { field: "terms", .. } => "terms",
        IntentError::UnknownTopic | IntentError::SensitiveTopic => "topic",
        IntentError::UnknownRegion => "region",
        IntentError::UnknownClaim | IntentError::SensitiveClaim => "audience",
        IntentError::WarningNotAcknowledged(_) => "acknowledge",
        IntentError::Invalid(_)
        | IntentError::TooLong { .. }
        | IntentError::IntentRateLimited { .. }
        | IntentError::AnswerRateLimited { .. }
        | IntentError::NotAsked
        | IntentError::AnswerExpired
        | IntentError::IntentClosed
        | IntentError::NotAllowed
        | IntentError::AlreadyAnswered => "",
        _ => return None,
    })
}

/// The errors that are not the form's.
pub fn fault(e: IntentError) -> WebError {
    match e {
        IntentError::IntentNotFound | IntentError::AnswerNotFound => WebError::NotFound,
        IntentError::Conflict => WebError::Conflict,
        IntentError::Vault(v) => v.into(),
        other => {
            tracing::error!(error = %other, "intents error");
            WebError::Internal
        }
    }
}

/// The publish form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct IntentForm {
    #[serde(default)]
    pub topic: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub min: String,
    #[serde(default)]
    pub max: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub deadline_days: String,
    #[serde(default)]
    pub audience: String,
    #[serde(default)]
    pub acknowledge: Option<String>,
}

#[derive(Template)]
#[template(path = "intent_new.html")]
struct NewPage {
    l: Layout,
    f: IntentForm,
    errors: FieldErrors,
    regions: Vec<String>,
    warning: &'static str,
    max_text: usize,
    max_days: u32,
    /// Certifications an audience may name (not the sensitive ones).
    certifications: Vec<&'static str>,
}

async fn new_view(
    s: &WebState,
    m: &WebMember,
    f: IntentForm,
    errors: FieldErrors,
) -> Result<NewPage, WebError> {
    let regions = s
        .node
        .credentials
        .published()
        .await
        .map(|d| d.regions)
        .unwrap_or_default();
    Ok(NewPage {
        l: Layout::member("Ask for offers", "intents", &m.csrf),
        f,
        errors,
        regions,
        warning: FREE_TEXT_WARNING,
        max_text: MAX_TEXT_CHARS,
        max_days: MAX_DEADLINE_DAYS,
        certifications: me2b_domain::org::CERTIFICATIONS
            .into_iter()
            .filter(|c| !me2b_domain::org::certification_is_sensitive(c))
            .collect(),
    })
}

async fn new_page(State(s): State<WebState>, m: WebMember) -> Result<Response, WebError> {
    let f = IntentForm {
        currency: "EUR".into(),
        deadline_days: "14".into(),
        audience: "any".into(),
        ..IntentForm::default()
    };
    render(&new_view(&s, &m, f, FieldErrors::default()).await?)
}

fn intent_input(f: &IntentForm, errors: &mut FieldErrors) -> Option<IntentInput> {
    if f.topic.trim().is_empty() {
        errors.add("topic", "Name a topic of the taxonomy, e.g. cycling.");
    }
    if f.text.trim().is_empty() {
        errors.add("text", "Say in a few words what you are looking for.");
    }
    let (min, max) = (cents(&f.min), cents(&f.max));
    if min.is_none() {
        errors.add("min", "Enter the least you would pay, e.g. 800.");
    }
    if max.is_none() {
        errors.add("max", "Enter the most you would pay, e.g. 1500.");
    }
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            errors.add("max", "The most you would pay is less than the least.");
        }
    }
    if f.region.trim().is_empty() {
        errors.add("region", "Choose your region.");
    }
    let days = f
        .deadline_days
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=MAX_DEADLINE_DAYS).contains(d));
    if days.is_none() {
        errors.add(
            "deadline_days",
            format!("Enter a number of days from 1 to {MAX_DEADLINE_DAYS}."),
        );
    }
    let audience = match f.audience.as_str() {
        "any" => Some(Audience::Any),
        "coops" => Some(Audience::Coops),
        "federation_member" => Some(Audience::Credential {
            issuer: None,
            claim: "federation_member".into(),
            value: "true".into(),
        }),
        a if a.starts_with("certification:") => Some(Audience::Credential {
            issuer: None,
            claim: "certification".into(),
            value: a.trim_start_matches("certification:").to_owned(),
        }),
        _ => {
            errors.add("audience", "Choose who may answer.");
            None
        }
    };
    if f.acknowledge.is_none() {
        errors.add(
            "acknowledge",
            "Confirm you read the warning about the free text.",
        );
    }
    if !errors.is_empty() {
        return None;
    }
    Some(IntentInput {
        topic: f.topic.trim().to_owned(),
        text: f.text.trim().to_owned(),
        budget: Budget {
            min_cents: min?,
            max_cents: max?,
            currency: f.currency.trim().to_uppercase(),
        },
        region: f.region.trim().to_owned(),
        deadline_days: days?,
        audience: audience?,
        acknowledge_free_text_warning: f.acknowledge.is_some(),
    })
}

async fn publish(
    State(s): State<WebState>,
    m: WebMember,
    Form(f): Form<IntentForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    if let Some(input) = intent_input(&f, &mut errors) {
        match s.node.intents.publish(&m.session, input).await {
            Ok(_) => return Ok(Redirect::to("/intents?done=published").into_response()),
            Err(e) => match field_of(&e) {
                Some(field) => errors.add(field, format!("{}.", capitalised(&e.to_string()))),
                None => return Err(fault(e)),
            },
        }
    }
    render_invalid(&new_view(&s, &m, f, errors).await?)
}

/// A fixed message of the service, as a sentence.
pub fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>(),
        None => String::new(),
    }
    .trim_end_matches('.')
    .to_owned()
}

/// One answer, for comparing.
#[derive(Debug)]
pub struct AnswerRow {
    pub id: String,
    pub org: String,
    pub kind: &'static str,
    pub price: String,
    pub terms: String,
    pub valid_until: String,
    pub asks: Vec<String>,
    pub accepted: bool,
}

/// One of the member's intents with its answers.
#[derive(Debug)]
pub struct IntentRow {
    pub id: String,
    /// Who may answer, in plain words.
    pub audience: String,
    pub topic: String,
    pub region: String,
    pub text: String,
    pub budget: String,
    pub deadline: String,
    pub status: &'static str,
    pub open: bool,
    pub answers: Vec<AnswerRow>,
    pub accepted: Option<String>,
}

#[derive(Template)]
#[template(path = "intents.html")]
struct ListPage {
    l: Layout,
    intents: Vec<IntentRow>,
    errors: FieldErrors,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    done: Option<String>,
}

async fn list_view(
    s: &WebState,
    m: &WebMember,
    done: Option<&str>,
    errors: FieldErrors,
) -> Result<ListPage, WebError> {
    let mut intents = Vec::new();
    for v in s.node.intents.my_intents(&m.session).await.map_err(fault)? {
        let mut sorted = v.answers.clone();
        // Compared by price, lowest first.
        sorted.sort_by_key(|a| a.price.amount_cents);
        let answers: Vec<AnswerRow> = sorted
            .iter()
            .map(|a| AnswerRow {
                id: a.answer_id.to_string(),
                org: a.org_name.clone(),
                kind: match a.org_kind {
                    me2b_domain::org::OrgKind::Coop => "co-op",
                    _ => "organisation",
                },
                price: money(a.price.amount_cents, &a.price.currency),
                terms: a.terms.clone(),
                valid_until: at(a.valid_until),
                asks: a.asks.clone(),
                accepted: a.accepted,
            })
            .collect();
        let issuer = match &v.audience {
            Audience::Credential {
                issuer: Some(i), ..
            } => s.node.store.org(*i).await.ok().flatten().map(|o| o.name),
            _ => None,
        };
        intents.push(IntentRow {
            audience: v.audience.describe(issuer.as_deref()),
            id: v.id.to_string(),
            topic: v.topic,
            region: v.region,
            text: v.text,
            budget: format!(
                "{} to {}",
                money(v.budget.min_cents, &v.budget.currency),
                money(v.budget.max_cents, &v.budget.currency)
            ),
            deadline: at(v.deadline),
            status: match v.status {
                MemberIntentStatus::Open => "open",
                MemberIntentStatus::Withdrawn => "withdrawn",
                MemberIntentStatus::Accepted => "accepted",
            },
            open: v.status == MemberIntentStatus::Open,
            accepted: v.accepted.map(|a| {
                format!(
                    "You accepted {}'s answer ({}). You shared: {}.",
                    a.org_name,
                    money(a.price.amount_cents, &a.price.currency),
                    if a.disclosed.is_empty() {
                        "nothing".to_owned()
                    } else {
                        a.disclosed.join(", ")
                    }
                )
            }),
            answers,
        });
    }
    let mut l = Layout::member("Your intents", "intents", &m.csrf);
    l.notice = match done {
        Some("published") => Some("Your intent is published under a fresh pseudonym. Organisations that follow its topic and region can answer until the deadline."),
        Some("accepted") => Some("You accepted the answer. The organisation gets only what you chose to share; the others learn only that your intent closed."),
        _ => None,
    };
    Ok(ListPage { l, intents, errors })
}

async fn list(
    State(s): State<WebState>,
    m: WebMember,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    render(&list_view(&s, &m, q.done.as_deref(), FieldErrors::default()).await?)
}

async fn accept(
    State(s): State<WebState>,
    m: WebMember,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id: IntentId = id.parse().map_err(|_| WebError::NotFound)?;
    let answer: AnswerId = form
        .iter()
        .find(|(k, _)| k == "answer")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or(WebError::NotFound)?;
    let input = AcceptInput {
        answer_id: answer,
        disclose: all_of(&form, "disclose"),
        presentation: None,
    };
    match s.node.intents.accept(&m.session, id, input).await {
        Ok(_) => Ok(Redirect::to("/intents?done=accepted").into_response()),
        Err(e) => match field_of(&e) {
            Some(_) => {
                let mut errors = FieldErrors::default();
                errors.add("", format!("{}.", capitalised(&e.to_string())));
                render_invalid(&list_view(&s, &m, None, errors).await?)
            }
            None => Err(fault(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_and_parses() {
        assert_eq!(money(123_456, "EUR"), "1234.56 EUR");
        assert_eq!(cents("12"), Some(1200));
        assert_eq!(cents("12,5"), Some(1250));
        assert_eq!(cents("12.05"), Some(1205));
        assert_eq!(cents("12.005"), None);
        assert_eq!(cents("-1"), None);
        assert_eq!(cents(""), None);
        assert_eq!(cents("1e3"), None);
    }

    #[test]
    fn publishing_needs_the_warning_read() {
        let f = IntentForm {
            topic: "cycling".into(),
            text: "A cargo bike".into(),
            min: "800".into(),
            max: "1500".into(),
            currency: "EUR".into(),
            region: "NL-UT".into(),
            deadline_days: "14".into(),
            audience: "any".into(),
            ..IntentForm::default()
        };
        let mut e = FieldErrors::default();
        assert!(intent_input(&f, &mut e).is_none());
        assert!(e.has("acknowledge"));
        let f = IntentForm {
            acknowledge: Some("on".into()),
            ..f
        };
        let mut e = FieldErrors::default();
        let i = intent_input(&f, &mut e).unwrap();
        assert!(i.acknowledge_free_text_warning);
        assert_eq!(i.budget.max_cents, 150_000);
    }
}
