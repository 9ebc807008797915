//! Opt-out routes (issue 15, items 4 and 5): a member's one-click opt-out of
//! all direct marketing (and opting back in), their paper opt-out code and
//! card, and the code typed at the public page (no login) or at a shop's desk
//! (an API key with the `optout-desk` role). A code only withdraws marketing
//! consents: the answer is the same whoever's code it is, and nothing about
//! the member is read or shown.

use crate::card::{self, CardInput};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, Member, Org};
use crate::throttle::{OptOutThrottle, Peer};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use me2b_consent::model::Method;
use me2b_domain::audit::Actor;
use me2b_domain::org::Role;
use me2b_domain::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/me/marketing-opt-out",
            post(opt_out).get(status).delete(opt_in),
        )
        .route("/v1/me/optout-code", post(new_code))
        .route("/v1/optout", post(public_optout))
        .route("/v1/org/optout", post(desk_optout))
}

/// One consent the opt-out withdrew.
#[derive(Serialize, ToSchema)]
pub struct WithdrawnConsent {
    pub consent_id: String,
    pub organisation: String,
    /// The withdrawal's signed receipt (compact JWS, EdDSA).
    pub receipt: String,
}

/// What the one-click opt-out did.
#[derive(Serialize, ToSchema)]
pub struct OptedOut {
    /// Since when you are opted out of all direct marketing: no offer is
    /// matched for you until you opt back in.
    pub opted_out_since: String,
    /// The marketing consents withdrawn now, each with its receipt.
    pub withdrawn: Vec<WithdrawnConsent>,
}

/// Your opt-out, and your paper opt-out code.
#[derive(Serialize, ToSchema)]
pub struct MarketingStatus {
    /// Since when you are opted out of all direct marketing, if you are.
    pub opted_out_since: Option<String>,
    /// When your current paper opt-out code was made, if you have one.
    pub optout_code_since: Option<String>,
}

fn iso(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::to_rfc3339)
}

/// Opts out of all direct marketing, in one click: every marketing consent
/// is withdrawn (each with its receipt) and no offer is matched for you
/// until you opt back in.
#[utoipa::path(post, path = "/v1/me/marketing-opt-out", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = OptedOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn opt_out(State(s): State<AppState>, m: Member) -> Result<Json<OptedOut>, ApiError> {
    let member = m.session.member;
    let out = s
        .node
        .consents
        .opt_out_of_marketing(member, Method::Api, Actor::Member(member))
        .await?;
    let mut withdrawn = Vec::with_capacity(out.withdrawn.len());
    for r in out.withdrawn {
        let organisation = s
            .node
            .store
            .org(r.controller)
            .await
            .ok()
            .flatten()
            .map_or_else(|| "a deleted organisation".to_owned(), |o| o.name);
        withdrawn.push(WithdrawnConsent {
            consent_id: r.id.to_string(),
            organisation,
            receipt: r.receipts.last().cloned().unwrap_or_default(),
        });
    }
    Ok(Json(OptedOut {
        opted_out_since: out.since.to_rfc3339(),
        withdrawn,
    }))
}

/// Whether you are opted out, and since when your paper code exists.
#[utoipa::path(get, path = "/v1/me/marketing-opt-out", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = MarketingStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn status(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<MarketingStatus>, ApiError> {
    let member = m.session.member;
    Ok(Json(MarketingStatus {
        opted_out_since: iso(s.node.consents.marketing_opted_out_since(member).await?),
        optout_code_since: iso(s.node.consents.optout_code_since(member).await?),
    }))
}

/// Opts back in: offers are matched again. Withdrawn consents stay
/// withdrawn; grant anew the ones you want.
#[utoipa::path(delete, path = "/v1/me/marketing-opt-out", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = MarketingStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn opt_in(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<MarketingStatus>, ApiError> {
    let member = m.session.member;
    s.node.consents.opt_in_to_marketing(member).await?;
    Ok(Json(MarketingStatus {
        opted_out_since: None,
        optout_code_since: iso(s.node.consents.optout_code_since(member).await?),
    }))
}

/// A new paper opt-out code, shown this once (only its keyed hash is kept).
#[derive(Serialize, ToSchema)]
pub struct NewOptOutCode {
    /// The code as printed: five groups of four characters, the last one a
    /// check character (Damm over GF(32)).
    pub code: String,
    /// The code as a QR code (SVG).
    pub qr_svg: String,
    /// The printable card (SVG).
    pub card_svg: String,
    /// The printable card (PDF, base64).
    pub card_pdf: String,
}

/// Makes your paper opt-out code, replacing the one you had (which stops
/// working now). `me2b optout card` prints it with your recovery code.
#[utoipa::path(post, path = "/v1/me/optout-code", tag = "member", security(("bearer" = [])),
    responses((status = 201, body = NewOptOutCode), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn new_code(
    State(s): State<AppState>,
    m: Member,
) -> Result<(StatusCode, Json<NewOptOutCode>), ApiError> {
    let code = s.node.consents.issue_optout_code(m.session.member).await?;
    let shown = code.display();
    let input = CardInput {
        optout_code: &shown,
        recovery_code: None,
        optout_url: None,
    };
    let (Some(qr_svg), Some(card_svg), Some(pdf)) =
        (crate::qr_svg(&shown), card::svg(&input), card::pdf(&input))
    else {
        return Err(ApiError::internal());
    };
    Ok((
        StatusCode::CREATED,
        Json(NewOptOutCode {
            code: shown,
            qr_svg,
            card_svg,
            card_pdf: base64::engine::general_purpose::STANDARD.encode(pdf),
        }),
    ))
}

/// A paper opt-out code, as typed (case, spaces and dashes do not matter).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypedCode {
    #[schema(max_length = 64)]
    pub code: String,
}

/// The same answer for every member's code.
#[derive(Serialize, ToSchema)]
pub struct OptOutDone {
    /// `opted_out`: the code's member is opted out of all direct marketing.
    pub status: String,
}

fn done() -> Json<OptOutDone> {
    Json(OptOutDone {
        status: "opted_out".to_owned(),
    })
}

fn typed(c: &TypedCode) -> Result<&str, ApiError> {
    if c.code.chars().count() > 64 {
        return Err(ApiError::new(
            ErrorCode::OptOutCodeMistyped,
            "this is not an opt-out code: it is too long",
        ));
    }
    Ok(&c.code)
}

/// The public opt-out page's action: no login. The code's member is opted
/// out of all direct marketing; nothing about them is shown. Throttled per
/// client address.
#[utoipa::path(post, path = "/v1/optout", tag = "meta", request_body = TypedCode,
    responses((status = 200, body = OptOutDone), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many codes from this address",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn public_optout(
    State(s): State<AppState>,
    Extension(throttle): Extension<Arc<OptOutThrottle>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    ApiJson(c): ApiJson<TypedCode>,
) -> Result<Json<OptOutDone>, ApiError> {
    throttle.check_client(throttle.login.client(peer, &headers))?;
    s.node
        .consents
        .use_optout_code(typed(&c)?, Actor::Anonymous)
        .await?;
    Ok(done())
}

/// A shop's desk types a member's paper code (an API key with the
/// `optout-desk` role): the member is opted out of all direct marketing.
/// The desk learns nothing about the member. Throttled per API key.
#[utoipa::path(post, path = "/v1/org/optout", tag = "organisation", security(("bearer" = [])), request_body = TypedCode,
    responses((status = 200, body = OptOutDone), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many codes with this API key",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn desk_optout(
    State(s): State<AppState>,
    Extension(throttle): Extension<Arc<OptOutThrottle>>,
    o: Org,
    ApiJson(c): ApiJson<TypedCode>,
) -> Result<Json<OptOutDone>, ApiError> {
    if !o.0.roles.contains(Role::OptoutDesk) {
        return Err(ApiError::new(
            ErrorCode::RoleRequired,
            "this API key lacks the `optout-desk` role",
        ));
    }
    throttle.check_desk(o.0.key.as_bytes())?;
    s.node
        .consents
        .use_optout_code(typed(&c)?, Actor::Organisation(o.0.org.id))
        .await?;
    Ok(done())
}
