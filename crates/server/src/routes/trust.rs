//! Data trust routes. Co-ops submit pseudonymised receipts, ask questions
//! answered with differential privacy against their ε budget, read receipts
//! members chose to share with them, earn loyalty points (answered only
//! "accepted") and redeem members' one-time tokens; all under the `insights`
//! role. Members see their card per co-op (only that co-op can open it, to its
//! pseudonym for them), their points and history, make redemption tokens, and manage their
//! sharing consents.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Member, Org};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use me2b_domain::org::Role;
use me2b_domain::record::RecordContent;
use me2b_domain::{OrgId, SharingId};
use me2b_trust::service::{
    Ask, CoopKeyMaterial, Forwarded, Insight, MemberTrust, ReceiptIn, SharedMember, SharingView,
    Submitted, TrustBudgets,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn need_insights_role(o: &Org) -> Result<(), ApiError> {
    if o.0.roles.contains(Role::Insights) {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::ErrorCode::RoleRequired,
            "this API key lacks the `insights` role",
        ))
    }
}

fn org_id(raw: &str) -> Result<OrgId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// Receipts to pseudonymise and store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsIn {
    #[schema(min_items = 1, max_items = 1000)]
    pub receipts: Vec<ReceiptIn>,
}

/// Submits receipts under the co-op's pseudonyms for its members: all or none.
/// Times are coarsened to the day, locations must be one of the trust's areas.
#[utoipa::path(post, path = "/v1/org/trust/receipts", tag = "organisation", security(("bearer" = [])),
    request_body = ReceiptsIn,
    responses((status = 201, body = Submitted), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn submit(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<ReceiptsIn>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    need_insights_role(&o)?;
    let out = s.node.trust.submit(o.0.org.id, &input.receipts).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Asks the trust a question. Charged, before noise is drawn, to the budget
/// of every data pool it reads (shared by everyone who asks about it);
/// refused when a pool's budget or this co-op's allowance would be exceeded.
#[utoipa::path(post, path = "/v1/org/trust/insights", tag = "organisation", security(("bearer" = [])),
    request_body = Ask,
    responses((status = 200, body = Insight), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "No such co-op"), (status = 422, body = ErrorBody)))]
pub async fn ask(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<Ask>,
) -> Result<Json<Insight>, ApiError> {
    need_insights_role(&o)?;
    Ok(Json(s.node.trust.ask(o.0.org.id, &input).await?))
}

/// The privacy budgets this co-op asks against this period: its own
/// customers' pool (shared with every other asker) and the research pool if
/// governance names it, with what they guarantee a member.
#[utoipa::path(get, path = "/v1/org/trust/budget", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = TrustBudgets), (status = 403, body = ErrorBody)))]
pub async fn budget(State(s): State<AppState>, o: Org) -> Result<Json<TrustBudgets>, ApiError> {
    need_insights_role(&o)?;
    Ok(Json(s.node.trust.budgets(o.0.org.id).await?))
}

/// Receipts another co-op holds about members who consented to share them
/// with this one, each member under this co-op's own pseudonym.
#[utoipa::path(get, path = "/v1/org/trust/shared/{from}", tag = "organisation", security(("bearer" = [])),
    params(("from" = String, Path, description = "The co-op whose receipts are shared")),
    responses((status = 200, body = Vec<SharedMember>), (status = 403, body = ErrorBody)))]
pub async fn shared(
    State(s): State<AppState>,
    o: Org,
    Path(from): Path<String>,
) -> Result<Json<Vec<SharedMember>>, ApiError> {
    need_insights_role(&o)?;
    Ok(Json(
        s.node.trust.shared_with(o.0.org.id, org_id(&from)?).await?,
    ))
}

/// In the embedded (single-party) trust, the co-op's key material for its
/// own domain: with it the co-op opens its members' cards and seals them for
/// submissions (the me2b-coop library, `me2b coop keys`). A distributed trust
/// answers `409 ask_transcryptors`: each transcryptor gives a co-op its share
/// itself, with the co-op's own token there.
#[utoipa::path(post, path = "/v1/org/trust/keys", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = CoopKeyMaterial), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn keys(State(s): State<AppState>, o: Org) -> Result<Json<CoopKeyMaterial>, ApiError> {
    need_insights_role(&o)?;
    Ok(Json(s.node.trust.coop_key_material(o.0.org.id).await?))
}

/// Points for the member behind one of the co-op's cards.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsIn {
    /// The member's card, sealed afresh by the co-op from its pseudonym for
    /// them (`me2b coop seal`).
    #[schema(min_length = 1, max_length = 200)]
    pub card: String,
    /// 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub points: i64,
}

/// The only answer to earning: nothing about the balance.
#[derive(Serialize, ToSchema)]
#[schema(as = EarnAccepted)]
pub struct Accepted {
    /// `accepted`.
    pub status: &'static str,
}

/// Earns loyalty points at this co-op on its card for a member. The answer
/// is `accepted`, whatever the member's balance; a card that belongs to no
/// enrolled member is refused (`404 unknown_card`), an erased member's with
/// `410 member_erased`: both say only that this co-op's card is not (or no
/// longer) a member's.
#[utoipa::path(post, path = "/v1/org/trust/loyalty/earn", tag = "organisation", security(("bearer" = [])),
    request_body = PointsIn,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`unknown_card`"), (status = 410, body = ErrorBody)))]
pub async fn earn(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<PointsIn>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    need_insights_role(&o)?;
    s.node
        .trust
        .earn(o.0.org.id, &input.card, input.points)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "accepted" })))
}

/// A redemption at the till: the token the member made for this co-op and
/// this amount (read from their screen as text or QR code).
#[derive(Deserialize, ToSchema)]
#[schema(as = LoyaltyRedeemIn)]
#[serde(deny_unknown_fields)]
pub struct RedeemIn {
    /// The member's one-time token, e.g. `7KQ2-M9XH-C3DF-0RTV-A8BE` (case,
    /// spaces and dashes do not matter).
    pub token: String,
    /// The amount the token was made for.
    pub points: i64,
}

/// The only answer to a redemption: what was redeemed.
#[derive(Serialize, ToSchema)]
pub struct Redeemed {
    /// `redeemed`.
    pub status: &'static str,
    pub points: i64,
}

/// Redeems a member's one-time token at this co-op. A token works once, for
/// the co-op and the amount the member chose, for five minutes; anything
/// else is `409 redemption_refused`, one answer that says nothing about the
/// member's balance.
#[utoipa::path(post, path = "/v1/org/trust/loyalty/redeem", operation_id = "redeem_points", tag = "organisation", security(("bearer" = [])),
    request_body = RedeemIn,
    responses((status = 200, body = Redeemed), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`redemption_refused`")))]
pub async fn redeem(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<RedeemIn>,
) -> Result<Json<Redeemed>, ApiError> {
    need_insights_role(&o)?;
    let points = s
        .node
        .trust
        .redeem(o.0.org.id, &input.token, input.points)
        .await?;
    Ok(Json(Redeemed {
        status: "redeemed",
        points,
    }))
}

// --- members ---------------------------------------------------------------------

/// The member's loyalty points (available and set aside for tokens), their
/// history per co-op and day, and their sharing consents.
#[utoipa::path(get, path = "/v1/me/trust", operation_id = "my_trust", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = MemberTrust), (status = 401, body = ErrorBody)))]
pub async fn mine(State(s): State<AppState>, m: Member) -> Result<Json<MemberTrust>, ApiError> {
    Ok(Json(s.node.trust.member_view(m.session.member).await?))
}

/// A redemption token to make: points at one co-op.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    pub org: OrgId,
    /// 1 to 1,000,000, at most your balance, a multiple of the federation's
    /// `redemption_step` (GET /v1/me/trust).
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub points: i64,
}

/// A one-time redemption token, to show at the co-op's till.
#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    /// Show it as text, or as the QR code below; it is shown once.
    pub token: String,
    pub org: OrgId,
    pub points: i64,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The token as a QR code (SVG): it reads back as `token`.
    pub qr_svg: String,
    /// Set when the token takes all your available points: read it before
    /// showing the token (unused, its points come back in five minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The warning on a token that takes the whole balance.
pub const WHOLE_BALANCE_WARNING: &str = "This token uses all your points. A co-op that gave you an unusual number of points could recognise you when all of them are redeemed at another co-op. To stay unrecognisable, redeem less, or wait until you have earned elsewhere too.";

/// Makes a one-time token for redeeming `points` at one co-op: the points
/// are set aside now and come back if the token is not used within five
/// minutes. Only you see your balance; the co-op learns only "redeemed N".
#[utoipa::path(post, path = "/v1/me/trust/loyalty/tokens", tag = "member", security(("bearer" = [])),
    request_body = TokenIn,
    responses((status = 201, body = TokenOut), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`insufficient_points`"),
        (status = 422, body = ErrorBody, description = "`redemption_step`: not a multiple of the federation's step")))]
pub async fn token(
    State(s): State<AppState>,
    m: Member,
    ApiJson(input): ApiJson<TokenIn>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let t = s
        .node
        .trust
        .redemption_token(m.session.member, input.org, input.points)
        .await?;
    let qr_svg = qr_svg(t.token.expose()).ok_or_else(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(TokenOut {
            token: t.token.expose().to_owned(),
            org: t.org,
            points: t.points,
            expires_at: t.expires_at.to_rfc3339(),
            qr_svg,
            warning: t.whole_balance.then(|| WHOLE_BALANCE_WARNING.to_owned()),
        }),
    ))
}

/// `text` as a QR code (error correction M), as SVG (drawn by me2b-web,
/// which shows it on the loyalty page too).
pub fn qr_svg(text: &str) -> Option<String> {
    me2b_web::qr_svg(text)
}

/// A member's card at one co-op.
#[derive(Serialize, ToSchema)]
pub struct CardOut {
    pub org: OrgId,
    /// Your card for this co-op: give it to the co-op (like a loyalty card
    /// number). Only that co-op can open it, to its own pseudonym for you,
    /// the same every time; the card itself looks different every time, and
    /// other co-ops' pseudonyms for you are unlinkable to it. Not even this
    /// node can open it.
    pub card: String,
}

/// The member's card at one co-op.
#[utoipa::path(get, path = "/v1/me/trust/cards/{org}", tag = "member", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = CardOut), (status = 404, body = ErrorBody)))]
pub async fn card(
    State(s): State<AppState>,
    m: Member,
    Path(org): Path<String>,
) -> Result<Json<CardOut>, ApiError> {
    let org = org_id(&org)?;
    let card = s.node.trust.card(m.session.member, org).await?;
    Ok(Json(CardOut { org, card }))
}

/// Consent to share one co-op's receipts about you with another, for cross-selling.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingIn {
    pub from: OrgId,
    pub to: OrgId,
    /// `cross-sell`.
    #[schema(pattern = "^cross-sell$")]
    pub purpose: String,
    /// 1 to 365 (default 90; the governance file can lower the maximum).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 365)]
    pub days: Option<i64>,
}

/// Gives a sharing consent.
#[utoipa::path(post, path = "/v1/me/trust/sharing", tag = "member", security(("bearer" = [])),
    request_body = SharingIn,
    responses((status = 201, body = SharingView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn share(
    State(s): State<AppState>,
    m: Member,
    ApiJson(input): ApiJson<SharingIn>,
) -> Result<(StatusCode, Json<SharingView>), ApiError> {
    let v = s
        .node
        .trust
        .share(
            m.session.member,
            input.from,
            input.to,
            &input.purpose,
            input.days.unwrap_or(90),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Withdraws a sharing consent; the partner receives nothing more.
#[utoipa::path(delete, path = "/v1/me/trust/sharing/{id}", operation_id = "withdraw_sharing", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn withdraw(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: SharingId = id.parse().map_err(|_| ApiError::not_found())?;
    s.node.trust.withdraw_sharing(m.session.member, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forward your own receipts from one co-op to the trust.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardIn {
    /// The co-op the receipts are from: they join its pool, under its domain.
    pub org: OrgId,
    /// Where you shop there, as one of the trust's area codes (e.g. `NL-NH`).
    #[schema(min_length = 1, max_length = 64)]
    pub area: String,
}

/// Your vault forwards your receipts to the data trust, as that co-op's:
/// pseudonymised, kept to the day and the area, each receipt once. Items in
/// special categories or outside the taxonomy stay in your vault.
#[utoipa::path(post, path = "/v1/me/trust/forward", tag = "member", security(("bearer" = [])),
    request_body = ForwardIn,
    responses((status = 200, body = Forwarded), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn forward(
    State(s): State<AppState>,
    m: Member,
    ApiJson(input): ApiJson<ForwardIn>,
) -> Result<Json<Forwarded>, ApiError> {
    let records = s.node.vault.all_records(&m.session).await?;
    let receipts: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.content {
            RecordContent::Receipt(receipt) => Some((r.id, receipt)),
            _ => None,
        })
        .collect();
    let taxonomy = s.node.offers.taxonomy();
    let topic_of = move |category: &str| {
        taxonomy
            .topic_for_category(category)
            .map(|t| taxonomy.slug(t).to_owned())
    };
    Ok(Json(
        s.node
            .trust
            .forward(
                m.session.member,
                input.org,
                &input.area,
                &receipts,
                &topic_of,
            )
            .await?,
    ))
}
