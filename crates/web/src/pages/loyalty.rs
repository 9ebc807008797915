//! Loyalty: the member's balance and history (co-ops never see a balance),
//! and a one-time redemption token for the till, as text and as a QR code.

use super::{render, render_invalid, Layout};
use crate::error::WebError;
use crate::form::FieldErrors;
use crate::session::WebMember;
use crate::WebState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use me2b_domain::OrgId;
use me2b_trust::TrustError;
use serde::Deserialize;
use std::collections::HashMap;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/loyalty", get(page))
        .route("/loyalty/token", post(token))
}

/// One day at one co-op.
#[derive(Debug)]
pub struct Day {
    pub day: String,
    pub org: String,
    pub earned: i64,
    pub redeemed: i64,
}

/// A co-op points can be redeemed at.
#[derive(Debug)]
pub struct CoopOption {
    pub id: String,
    pub name: String,
}

/// What the redemption form holds, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub org: String,
    #[serde(default)]
    pub points: String,
}

#[derive(Template)]
#[template(path = "loyalty.html")]
struct LoyaltyPage {
    l: Layout,
    balance: i64,
    reserved: i64,
    days: Vec<Day>,
    coops: Vec<CoopOption>,
    f: TokenForm,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "loyalty_token.html")]
struct TokenPage {
    l: Layout,
    token: String,
    qr: String,
    org: String,
    points: i64,
    expires: String,
}

async fn names(s: &WebState) -> Result<HashMap<OrgId, String>, WebError> {
    Ok(s.node
        .orgs
        .list()
        .await?
        .into_iter()
        .filter(|o| o.deleted_at.is_none())
        .map(|o| (o.id, o.name))
        .collect())
}

async fn loyalty_page(
    s: &WebState,
    m: &WebMember,
    f: TokenForm,
    errors: FieldErrors,
) -> Result<LoyaltyPage, WebError> {
    let view = s.node.trust.member_view(m.session.member).await?;
    let names = names(s).await?;
    let name = |id: &OrgId| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| "a co-op that left".into())
    };
    let mut coops: Vec<CoopOption> = names
        .iter()
        .map(|(id, n)| CoopOption {
            id: id.to_string(),
            name: n.clone(),
        })
        .collect();
    coops.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(LoyaltyPage {
        l: Layout::member("Your loyalty points", "loyalty", &m.csrf),
        balance: view.loyalty_points,
        reserved: view.loyalty_reserved,
        days: view
            .loyalty_history
            .iter()
            .rev()
            .map(|d| Day {
                day: d.day.clone(),
                org: name(&d.org),
                earned: d.earned,
                redeemed: d.redeemed,
            })
            .collect(),
        coops,
        f,
        errors,
    })
}

async fn page(State(s): State<WebState>, m: WebMember) -> Result<Response, WebError> {
    render(&loyalty_page(&s, &m, TokenForm::default(), FieldErrors::default()).await?)
}

async fn token(
    State(s): State<WebState>,
    m: WebMember,
    Form(f): Form<TokenForm>,
) -> Result<Response, WebError> {
    let mut errors = FieldErrors::default();
    let org: Option<OrgId> = f.org.parse().ok();
    if org.is_none() {
        errors.add("org", "Choose the co-op where you want to use your points.");
    }
    let points = f
        .points
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|p| (1..=1_000_000).contains(p));
    if points.is_none() {
        errors.add(
            "points",
            "Enter a whole number of points, from 1 to 1,000,000.",
        );
    }
    if let (Some(org), Some(points)) = (org, points) {
        match s
            .node
            .trust
            .redemption_token(m.session.member, org, points)
            .await
        {
            Ok(t) => {
                let qr = crate::qr_svg(t.token.expose()).ok_or(WebError::Internal)?;
                let org = names(&s).await?.remove(&t.org).unwrap_or_default();
                return render(&TokenPage {
                    l: Layout::member("Redeem at the till", "loyalty", &m.csrf),
                    token: t.token.expose().to_owned(),
                    qr,
                    org,
                    points: t.points,
                    expires: super::when(t.expires_at),
                });
            }
            Err(TrustError::InsufficientPoints) => {
                errors.add(
                    "points",
                    "You do not have that many points: enter at most your balance.",
                );
            }
            Err(TrustError::NotFound(_)) => {
                errors.add("org", "Choose the co-op where you want to use your points.");
            }
            Err(e) => return Err(e.into()),
        }
    }
    render_invalid(&loyalty_page(&s, &m, f, errors).await?)
}
