//! The co-op's insights from the data trust (role `insights`): ask a
//! question against the privacy budget, through the same `Trust::ask` as
//! the API, and see the answer as an SVG chart whose error bars show the
//! noise (a 95 % interval of the Laplace noise), with the remaining budget
//! of every pool. The same figures are in a table beside each chart.

use super::coop::{layout, need};
use super::{render, render_invalid, Layout};
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::session::WebCoop;
use crate::WebState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use me2b_domain::org::Role;
use me2b_trust::service::{Ask, By, Figure, Question, Scope};
use me2b_trust::TrustError;
use serde::Deserialize;
use std::fmt::Write as _;

pub fn router() -> Router<WebState> {
    Router::new().route("/coop/insights", get(page).post(ask))
}

/// A 95 % interval of Laplace noise of scale `b`: P(|X| > t) = e^(-t/b),
/// so t = b · ln 20.
fn margin95(scale: f64) -> f64 {
    scale * 20f64.ln()
}

/// One bar of a chart: its label, the released value (`None`: withheld
/// below the minimum cohort) and the half-width of its error bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: Option<i64>,
    pub margin: f64,
}

impl Bar {
    pub fn shown(&self) -> String {
        self.value.map_or_else(
            || "withheld (fewer than the minimum cohort)".into(),
            |v| v.to_string(),
        )
    }
    pub fn range(&self) -> String {
        self.value.map_or_else(String::new, |v| {
            let m = self.margin.round() as i64;
            format!("{} to {}", (v - m).max(0), v + m)
        })
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart with error bars, as SVG (no script, no style
/// attribute: the CSP allows neither). Withheld bars are drawn as a text.
pub fn bar_chart(bars: &[Bar], title_id: &str) -> String {
    const LABEL_W: f64 = 180.0;
    const PLOT_W: f64 = 400.0;
    const ROW_H: f64 = 28.0;
    let max = bars
        .iter()
        .filter_map(|b| b.value.map(|v| v as f64 + b.margin))
        .fold(1.0_f64, f64::max);
    let x = |v: f64| LABEL_W + (v.max(0.0) / max) * PLOT_W;
    let height = ROW_H * bars.len() as f64 + 30.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {height}\" role=\"img\" aria-labelledby=\"{title_id}\" class=\"chart\">",
        w = LABEL_W + PLOT_W + 80.0
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 10.0 + ROW_H * i as f64;
        let _ = write!(
            s,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" font-size=\"13\" fill=\"#1a1a1a\">{label}</text>",
            lx = LABEL_W - 8.0,
            ty = y + 15.0,
            label = esc(&b.label)
        );
        match b.value {
            Some(v) => {
                let (v, m) = (v as f64, b.margin);
                let _ = write!(
                    s,
                    "<rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{w:.1}\" height=\"20\" fill=\"#1f5f99\"/>\
<line x1=\"{lo:.1}\" x2=\"{hi:.1}\" y1=\"{my}\" y2=\"{my}\" stroke=\"#b3261e\" stroke-width=\"2\"/>\
<line x1=\"{lo:.1}\" x2=\"{lo:.1}\" y1=\"{t}\" y2=\"{bt}\" stroke=\"#b3261e\" stroke-width=\"2\"/>\
<line x1=\"{hi:.1}\" x2=\"{hi:.1}\" y1=\"{t}\" y2=\"{bt}\" stroke=\"#b3261e\" stroke-width=\"2\"/>\
<text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"13\" fill=\"#1a1a1a\">{v} ± {mr}</text>",
                    w = x(v) - LABEL_W,
                    lo = x(v - m),
                    hi = x(v + m),
                    my = y + 10.0,
                    t = y + 4.0,
                    bt = y + 16.0,
                    tx = x(v + m) + 6.0,
                    ty = y + 15.0,
                    mr = m.round()
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<text x=\"{tx}\" y=\"{ty}\" font-size=\"13\" font-style=\"italic\" fill=\"#4a4a4a\">withheld</text>",
                    tx = LABEL_W + 4.0,
                    ty = y + 15.0
                );
            }
        }
    }
    let axis_y = 10.0 + ROW_H * bars.len() as f64;
    let _ = write!(
        s,
        "<line x1=\"{LABEL_W}\" x2=\"{LABEL_W}\" y1=\"5\" y2=\"{axis_y}\" stroke=\"#1a1a1a\"/></svg>"
    );
    s
}

/// A pool's budget this period, as read.
#[derive(Debug)]
pub struct PoolLine {
    pub pool: String,
    pub period: String,
    pub budget: String,
    pub remaining: String,
    pub allowance_left: String,
    pub chart: String,
}

/// One pool's remaining budget as a bar: spent and remaining, labelled.
fn budget_chart(b: &me2b_dp::PoolBudget, id: &str) -> String {
    let total = b.budget.max(f64::EPSILON);
    let spent_w = (b.spent / total).clamp(0.0, 1.0) * 400.0;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 420 30\" role=\"img\" aria-labelledby=\"{id}\" class=\"chart budget\">\
<rect x=\"0\" y=\"5\" width=\"400\" height=\"20\" fill=\"#ffffff\" stroke=\"#1a1a1a\"/>\
<rect x=\"0\" y=\"5\" width=\"{spent_w:.1}\" height=\"20\" fill=\"#4a4a4a\"/></svg>"
    )
}

/// A pool in words ("the receipts the data trust holds from your co-op"),
/// never its raw id; an id this build cannot read is shown as it is.
fn pool_words(pool: &str, own: me2b_domain::ids::OrgId) -> String {
    match pool.parse::<me2b_dp::Pool>() {
        Ok(p) => p.describe(&|o| {
            if o == own {
                "your co-op".into()
            } else {
                "another co-op".into()
            }
        }),
        Err(_) => pool.to_owned(),
    }
}

fn pools(budgets: &[me2b_dp::PoolBudget], own: me2b_domain::ids::OrgId) -> Vec<PoolLine> {
    budgets
        .iter()
        .enumerate()
        .map(|(i, b)| PoolLine {
            pool: pool_words(&b.pool, own),
            period: b.period.clone(),
            budget: format!("{:.2}", b.budget),
            remaining: format!("{:.2}", b.remaining),
            allowance_left: format!("{:.2}", (b.allowance - b.allowance_spent).max(0.0)),
            chart: budget_chart(b, &format!("pool-{i}")),
        })
        .collect()
}

/// The question form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct AskForm {
    #[serde(default)]
    pub question: String,
    #[serde(default)]
    pub epsilon: String,
}

/// An answer to show.
#[derive(Debug)]
pub struct Answered {
    pub title: String,
    pub bars: Vec<Bar>,
    pub chart: String,
    pub epsilon: String,
    pub margin: String,
}

#[derive(Template)]
#[template(path = "coop_insights.html")]
struct InsightsPage {
    l: Layout,
    pools: Vec<PoolLine>,
    guarantee: String,
    f: AskForm,
    errors: FieldErrors,
    answer: Option<Answered>,
}

async fn view(
    s: &WebState,
    c: &WebCoop,
    f: AskForm,
    errors: FieldErrors,
    answer: Option<Answered>,
) -> Result<InsightsPage, WebError> {
    let b = s.node.trust.budgets(c.principal.org.id).await?;
    Ok(InsightsPage {
        l: layout("Insights from the trust", "insights", c),
        pools: pools(&b.pools, c.principal.org.id),
        guarantee: b.guarantee,
        f,
        errors,
        answer,
    })
}

async fn page(State(s): State<WebState>, c: WebCoop) -> Result<Response, WebError> {
    need(&c, Role::Insights)?;
    let f = AskForm {
        question: "categories".into(),
        epsilon: "0.5".into(),
    };
    render(&view(&s, &c, f, FieldErrors::default(), None).await?)
}

fn question(f: &AskForm, errors: &mut FieldErrors) -> Option<(Question, f64)> {
    let q = match f.question.as_str() {
        "members" => Some(Question::Count {
            scope: Scope::Own,
            category: None,
            area: None,
        }),
        "categories" => Some(Question::Histogram {
            scope: Scope::Own,
            by: By::Category,
        }),
        "areas" => Some(Question::Histogram {
            scope: Scope::Own,
            by: By::Area,
        }),
        _ => {
            errors.add("question", "Choose a question.");
            None
        }
    };
    let e = f
        .epsilon
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|e| e.is_finite() && *e > 0.0 && *e <= 10.0);
    if e.is_none() {
        errors.add(
            "epsilon",
            "Enter the privacy cost ε as a number above 0 and at most 10, e.g. 0.5.",
        );
    }
    Some((q?, e?))
}

fn answered(figure: &Figure, epsilon: f64) -> Answered {
    let (title, bars, scale) = match figure {
        Figure::Count(a) => (
            "Your members",
            vec![Bar {
                label: "Members".into(),
                value: a.value,
                margin: margin95(a.noise_scale),
            }],
            a.noise_scale,
        ),
        Figure::Histogram(h) => (
            "Members per group",
            h.bins
                .iter()
                .map(|b| Bar {
                    label: b.category.clone(),
                    value: b.value,
                    margin: margin95(h.noise_scale),
                })
                .collect(),
            h.noise_scale,
        ),
        Figure::Sum(sm) => (
            "Members who spent",
            vec![Bar {
                label: "Members".into(),
                value: sm.count.value,
                margin: margin95(sm.count.noise_scale),
            }],
            sm.count.noise_scale,
        ),
    };
    Answered {
        title: title.into(),
        chart: bar_chart(&bars, "answer-title"),
        bars,
        epsilon: format!("{epsilon}"),
        margin: format!("{:.0}", margin95(scale)),
    }
}

async fn ask(
    State(s): State<WebState>,
    c: WebCoop,
    Form(f): Form<AskForm>,
) -> Result<Response, WebError> {
    need(&c, Role::Insights)?;
    let mut errors = FieldErrors::default();
    if let Some((question, epsilon)) = question(&f, &mut errors) {
        let a = Ask {
            question,
            epsilon,
            purpose: None,
        };
        match s.node.trust.ask(c.principal.org.id, &a).await {
            Ok(i) => {
                let answer = answered(&i.figure, i.charged.epsilon);
                return render(&view(&s, &c, f, errors, Some(answer)).await?);
            }
            Err(TrustError::Dp(e)) if matches!(e.code(), "over_budget" | "no_budget") => {
                errors.add(
                    "epsilon",
                    "The privacy budget left this period does not cover this cost: ask with a smaller ε, or wait for the next period.",
                );
            }
            Err(TrustError::BelowThreshold { .. }) => errors.add(
                "question",
                "Too few members for this question: nothing is released, and nothing was charged.",
            ),
            Err(e) => return Err(e.into()),
        }
    }
    render_invalid(&view(&s, &c, f, errors, None).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_named_in_words() {
        let own = me2b_domain::ids::OrgId::from_slice(&[1u8; 16]).unwrap();
        assert_eq!(
            pool_words(&format!("trust:coop:{own}"), own),
            "the receipts the data trust holds from your co-op"
        );
        assert!(pool_words("trust:research", own).contains("across all co-ops"));
        assert_eq!(pool_words("not-a-pool", own), "not-a-pool");
    }

    #[test]
    fn error_bars_are_the_95_percent_laplace_interval() {
        // P(|X| > t) = exp(-t/b) = 0.05 at t = b ln 20.
        let m = margin95(2.0);
        assert!(((-m / 2.0).exp() - 0.05).abs() < 1e-12);
    }

    #[test]
    fn the_chart_escapes_labels_and_marks_withheld_bars() {
        let svg = bar_chart(
            &[
                Bar {
                    label: "<b>".into(),
                    value: Some(40),
                    margin: 6.0,
                },
                Bar {
                    label: "rare".into(),
                    value: None,
                    margin: 6.0,
                },
            ],
            "t",
        );
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains("40 ± 6"));
        assert!(svg.contains(">withheld<"));
        assert!(!svg.contains(" style=") && !svg.contains("<script"));
        assert_eq!(svg.matches("<rect").count(), 1);
    }
}
