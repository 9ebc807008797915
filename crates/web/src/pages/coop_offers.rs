//! The co-op's offers: those published, and a form to write one, whose
//! rule errors are shown at their line and column.

use super::coop::{layout, need};
use super::{render, render_invalid, when, Done};
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::pages::Layout;
use crate::session::WebCoop;
use crate::WebState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use me2b_domain::org::Role;
use me2b_offers::{OfferError, OfferInput};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new().route("/coop/offers", get(page).post(publish))
}

/// One published offer.
#[derive(Debug)]
pub struct Listed {
    pub title: String,
    pub status: String,
    pub topics: String,
    pub rule: String,
    pub until: String,
}

/// The offer form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct OfferForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub topics: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub valid_until: String,
}

/// Where a rule error is: its line as written and a marker under the column.
#[derive(Debug)]
pub struct RuleMark {
    pub line: u32,
    pub column: u32,
    pub source_line: String,
    pub marker: String,
}

#[derive(Template)]
#[template(path = "coop_offers.html")]
struct OffersPage {
    l: Layout,
    offers: Vec<Listed>,
    f: OfferForm,
    errors: FieldErrors,
    rule_error: Option<String>,
    mark: Option<RuleMark>,
}

async fn offers_page(
    s: &WebState,
    c: &WebCoop,
    f: OfferForm,
    errors: FieldErrors,
    rule_error: Option<(String, RuleMark)>,
    done: Option<&str>,
) -> Result<OffersPage, WebError> {
    let offers = s
        .node
        .offers
        .list_for_org(c.principal.org.id)
        .await?
        .into_iter()
        .map(|v| Listed {
            title: v.offer.title.clone(),
            status: serde_json::to_value(v.status)
                .ok()
                .and_then(|x| x.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default(),
            topics: v.offer.topics.join(", "),
            rule: v.offer.rule.clone().unwrap_or_default(),
            until: when(v.offer.valid_until),
        })
        .collect();
    let (rule_error, mark) = rule_error.map_or((None, None), |(m, k)| (Some(m), Some(k)));
    Ok(OffersPage {
        l: layout("Offers", "offers", c).with_notice(done),
        offers,
        f,
        errors,
        rule_error,
        mark,
    })
}

async fn page(
    State(s): State<WebState>,
    c: WebCoop,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    need(&c, Role::Offers)?;
    let f = OfferForm::default();
    render(&offers_page(&s, &c, f, FieldErrors::default(), None, q.done.as_deref()).await?)
}

fn mark(rule: &str, line: u32, column: u32) -> RuleMark {
    let source_line = rule
        .lines()
        .nth(line.saturating_sub(1) as usize)
        .unwrap_or_default()
        .to_owned();
    let marker = format!("{}^", " ".repeat(column.saturating_sub(1) as usize));
    RuleMark {
        line,
        column,
        source_line,
        marker,
    }
}

/// The form as the offer the API takes, or what is wrong with each field.
fn input(f: &OfferForm, errors: &mut FieldErrors) -> Option<OfferInput> {
    if f.title.trim().is_empty() || f.title.chars().count() > 200 {
        errors.add("title", "Give the offer a title of 1 to 200 characters.");
    }
    if f.text.trim().is_empty() {
        errors.add("text", "Describe the offer to members.");
    }
    let topics: Vec<&str> = f
        .topics
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if topics.is_empty() {
        errors.add(
            "topics",
            "Name at least one topic of the taxonomy, e.g. cycling.",
        );
    }
    let date_ok = f.valid_until.len() == 10
        && f.valid_until.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !date_ok {
        errors.add("valid_until", "Enter the last day as YYYY-MM-DD.");
    }
    if !errors.is_empty() {
        return None;
    }
    let rule = (!f.rule.trim().is_empty()).then(|| f.rule.clone());
    let v = serde_json::json!({
        "title": f.title, "text": f.text, "topics": topics, "rule": rule,
        "valid_until": format!("{}T23:59:59Z", f.valid_until),
    });
    match serde_json::from_value::<OfferInput>(v) {
        Ok(i) => Some(i),
        Err(_) => {
            errors.add("valid_until", "Enter a real date, as YYYY-MM-DD.");
            None
        }
    }
}

async fn publish(
    State(s): State<WebState>,
    c: WebCoop,
    Form(f): Form<OfferForm>,
) -> Result<Response, WebError> {
    need(&c, Role::Offers)?;
    let mut errors = FieldErrors::default();
    let mut rule_error = None;
    if let Some(i) = input(&f, &mut errors) {
        match s.node.offers.publish(c.principal.org.id, i).await {
            Ok(_) => return Ok(Redirect::to("/coop/offers?done=published").into_response()),
            Err(OfferError::Rule(e)) => {
                errors.add("rule", "The rule has an error: see below, at its line and column.");
                let m = mark(&f.rule, e.position.line, e.position.column);
                rule_error = Some((e.message, m));
            }
            Err(OfferError::UnknownTopic(_)) => {
                errors.add("topics", "One of these is not a topic of the taxonomy.");
            }
            Err(OfferError::SensitiveTopic { .. }) => errors.add(
                "topics",
                "A sensitive topic (GDPR Art. 9) can only be targeted with the members' explicit consent, which this form does not ask for.",
            ),
            Err(OfferError::Invalid { field, reason }) => {
                // The service names its own field and a fixed reason.
                let at = ["title", "text", "topics", "rule", "valid_until"]
                    .into_iter()
                    .find(|f| *f == field)
                    .unwrap_or("");
                let mut msg: Vec<char> = reason.chars().collect();
                if let Some(c) = msg.first_mut() {
                    *c = c.to_ascii_uppercase();
                }
                errors.add(at, format!("{}.", msg.into_iter().collect::<String>()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    render_invalid(&offers_page(&s, &c, f, errors, rule_error, None).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_points_at_the_column() {
        let m = mark("region == \"NL\" &&\n  shoe_size > 42", 2, 3);
        assert_eq!(m.source_line, "  shoe_size > 42");
        assert_eq!(m.marker, "  ^");
        let m = mark("x", 9, 1);
        assert_eq!(m.source_line, "");
    }
}
