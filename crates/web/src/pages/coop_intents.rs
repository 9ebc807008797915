//! The organisation's side of intents (role `offers`): follow topics and
//! regions, see the matching open intents (no member, times to the hour),
//! answer each once with a price, terms and a validity date. Through the
//! same `me2b_intents::Intents` service as the API.

use super::coop::{layout, need};
use super::intents::{at, capitalised, cents, fault, field_of, money};
use super::{render, render_invalid, Done, Layout};
use crate::error::WebError;
use crate::form::{all_of, FieldErrors};
use crate::session::WebCoop;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use me2b_domain::org::Role;
use me2b_domain::Timestamp;
use me2b_intents::{
    AnswerInput, IntentId, IntentStatus, OrgIntentView, Price, Subscription, CONTACT_CATEGORIES,
};

/// Most intents shown on one page of the feed.
const FEED_PAGE: u64 = 200;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/coop/intents", get(feed))
        .route("/coop/intents/subscription", post(subscribe))
        .route("/coop/intents/{id}", get(one).post(answer))
}

/// An open intent as the organisation sees it.
#[derive(Debug)]
pub struct Shown {
    pub id: String,
    pub topic: String,
    pub region: String,
    pub text: String,
    pub budget: String,
    pub published: String,
    pub deadline: String,
    pub open: bool,
    pub may_answer: bool,
    pub answered: bool,
}

fn shown(v: OrgIntentView) -> Shown {
    Shown {
        id: v.id.to_string(),
        topic: v.topic,
        region: v.region,
        text: v.text,
        budget: format!(
            "{} to {}",
            money(v.budget.min_cents, &v.budget.currency),
            money(v.budget.max_cents, &v.budget.currency)
        ),
        published: at(v.published_at),
        deadline: at(v.deadline),
        open: v.status == IntentStatus::Open,
        may_answer: v.may_answer,
        answered: v.answered,
    }
}

#[derive(Template)]
#[template(path = "coop_intents.html")]
struct FeedPage {
    l: Layout,
    topics: String,
    regions: String,
    errors: FieldErrors,
    intents: Vec<Shown>,
    subscribed: bool,
}

async fn feed_view(
    s: &WebState,
    c: &WebCoop,
    typed: Option<(String, String)>,
    errors: FieldErrors,
) -> Result<FeedPage, WebError> {
    let sub = s
        .node
        .intents
        .subscription(c.principal.org.id)
        .await
        .map_err(fault)?;
    let intents = s
        .node
        .intents
        .feed(&c.principal.org, &c.principal.roles, 0, FEED_PAGE)
        .await
        .map_err(fault)?
        .into_iter()
        .map(shown)
        .collect();
    let (topics, regions) = typed.unwrap_or_else(|| {
        sub.as_ref().map_or_else(Default::default, |s| {
            (s.topics.join(", "), s.regions.join(", "))
        })
    });
    Ok(FeedPage {
        l: layout("Intents", "intents", c),
        topics,
        regions,
        errors,
        intents,
        subscribed: sub.is_some(),
    })
}

async fn feed(
    State(s): State<WebState>,
    c: WebCoop,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    need(&c, Role::Offers)?;
    let mut p = feed_view(&s, &c, None, FieldErrors::default()).await?;
    p.l.notice = match q.done.as_deref() {
        Some("followed") => Some("You follow these topics and regions. Matching open intents are listed below."),
        Some("answered") => Some("Your answer is sent. The member sees it beside the others; you learn who they are only if they accept yours and choose to share."),
        _ => None,
    };
    render(&p)
}

fn terms(typed: &str) -> Vec<String> {
    typed
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, serde::Deserialize)]
struct FollowForm {
    #[serde(default)]
    topics: String,
    #[serde(default)]
    regions: String,
}

async fn subscribe(
    State(s): State<WebState>,
    c: WebCoop,
    Form(f): Form<FollowForm>,
) -> Result<Response, WebError> {
    need(&c, Role::Offers)?;
    let mut errors = FieldErrors::default();
    let sub = Subscription {
        topics: terms(&f.topics),
        regions: terms(&f.regions),
    };
    if sub.topics.is_empty() {
        errors.add(
            "topics",
            "Name at least one topic of the taxonomy, e.g. cycling.",
        );
    } else {
        match s.node.intents.subscribe(c.principal.org.id, sub).await {
            Ok(_) => return Ok(Redirect::to("/coop/intents?done=followed").into_response()),
            Err(e) => match field_of(&e) {
                Some("region") => {
                    errors.add("regions", "One of these is not a region of the trust.")
                }
                Some(_) => errors.add("topics", format!("{}.", capitalised(&e.to_string()))),
                None => return Err(fault(e)),
            },
        }
    }
    render_invalid(&feed_view(&s, &c, Some((f.topics, f.regions)), errors).await?)
}

/// The answer form as typed.
#[derive(Debug, Default)]
pub struct AnswerForm {
    pub price: String,
    pub currency: String,
    pub terms: String,
    pub valid_until: String,
    pub asks: Vec<String>,
}

#[derive(Template)]
#[template(path = "coop_intent.html")]
struct OnePage {
    l: Layout,
    i: Shown,
    f: AnswerForm,
    errors: FieldErrors,
    categories: &'static [&'static str],
}

async fn one_view(
    s: &WebState,
    c: &WebCoop,
    id: IntentId,
    f: AnswerForm,
    errors: FieldErrors,
) -> Result<OnePage, WebError> {
    let v = s
        .node
        .intents
        .intent_for_org(&c.principal.org, &c.principal.roles, id)
        .await
        .map_err(fault)?;
    Ok(OnePage {
        l: layout("Answer an intent", "intents", c),
        i: shown(v),
        f,
        errors,
        categories: &CONTACT_CATEGORIES,
    })
}

async fn one(
    State(s): State<WebState>,
    c: WebCoop,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    need(&c, Role::Offers)?;
    let id: IntentId = id.parse().map_err(|_| WebError::NotFound)?;
    let f = AnswerForm {
        currency: "EUR".into(),
        ..AnswerForm::default()
    };
    render(&one_view(&s, &c, id, f, FieldErrors::default()).await?)
}

/// `YYYY-MM-DD` as the end of that day (UTC), in Unix ms.
fn end_of_day(d: &str) -> Option<i64> {
    let ok = d.len() == 10
        && d.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    ok.then(|| Timestamp::parse_rfc3339(&format!("{d}T23:59:59Z")))
        .flatten()
        .map(Timestamp::unix_millis)
}

fn answer_input(f: &AnswerForm, errors: &mut FieldErrors) -> Option<AnswerInput> {
    let price = cents(&f.price);
    if price.is_none() {
        errors.add("price", "Enter your price, e.g. 1200 or 1199.95.");
    }
    if f.terms.trim().is_empty() {
        errors.add("terms", "Describe what the price includes and your terms.");
    }
    let until = end_of_day(f.valid_until.trim());
    if until.is_none() {
        errors.add(
            "valid_until",
            "Enter the last day of the offer as YYYY-MM-DD.",
        );
    }
    if !errors.is_empty() {
        return None;
    }
    Some(AnswerInput {
        price: Price {
            amount_cents: price?,
            currency: f.currency.trim().to_uppercase(),
        },
        terms: f.terms.trim().to_owned(),
        valid_until: until?,
        asks: f
            .asks
            .iter()
            .filter(|a| CONTACT_CATEGORIES.contains(&a.as_str()))
            .cloned()
            .collect(),
    })
}

async fn answer(
    State(s): State<WebState>,
    c: WebCoop,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    need(&c, Role::Offers)?;
    let id: IntentId = id.parse().map_err(|_| WebError::NotFound)?;
    let one_of = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let f = AnswerForm {
        price: one_of("price"),
        currency: one_of("currency"),
        terms: one_of("terms"),
        valid_until: one_of("valid_until"),
        asks: all_of(&form, "asks"),
    };
    let mut errors = FieldErrors::default();
    if let Some(input) = answer_input(&f, &mut errors) {
        match s
            .node
            .intents
            .answer(&c.principal.org, &c.principal.roles, id, input)
            .await
        {
            Ok(_) => return Ok(Redirect::to("/coop/intents?done=answered").into_response()),
            Err(e) => match field_of(&e) {
                Some(field) => {
                    let at = match field {
                        "terms" => "terms",
                        _ if matches!(e, me2b_intents::IntentError::Invalid(_)) => "price",
                        _ => "",
                    };
                    errors.add(at, format!("{}.", capitalised(&e.to_string())));
                }
                None => return Err(fault(e)),
            },
        }
    }
    render_invalid(&one_view(&s, &c, id, f, errors).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validity_date_is_the_end_of_that_day() {
        let t = end_of_day("2026-12-31").unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(t).to_rfc3339(),
            "2026-12-31T23:59:59Z"
        );
        assert_eq!(end_of_day("31-12-2026"), None);
        assert_eq!(end_of_day("2026-13-45"), None);
    }

    #[test]
    fn an_answer_needs_price_terms_and_date() {
        let mut e = FieldErrors::default();
        assert!(answer_input(&AnswerForm::default(), &mut e).is_none());
        assert!(e.has("price") && e.has("terms") && e.has("valid_until"));
        let f = AnswerForm {
            price: "1199.95".into(),
            currency: "eur".into(),
            terms: "Delivered".into(),
            valid_until: "2026-12-31".into(),
            asks: vec!["email-address".into(), "shoe-size".into()],
        };
        let mut e = FieldErrors::default();
        let a = answer_input(&f, &mut e).unwrap();
        assert_eq!(a.price.amount_cents, 119_995);
        assert_eq!(a.price.currency, "EUR");
        assert_eq!(a.asks, vec!["email-address".to_owned()]);
    }
}
