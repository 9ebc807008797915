//! Offer routes. Organisations publish and read aggregate counts; members get
//! their offers matched inside their vault, with the reasons, and answer them.
//! The taxonomy, the rule context and the catalogue are public: the same for
//! everyone, so fetching them reveals nothing about who matched.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Member, Org};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use me2b_domain::org::Role;
use me2b_domain::OfferId;
use me2b_offers::derive::Suggestion;
use me2b_offers::matching::{Match, Why};
use me2b_offers::rule::{Field, FIELDS, FUNCTIONS, MAX_COST, MAX_NODES, MAX_RULE_BYTES};
use me2b_offers::service::{Accepted, Answer, OfferView};
use me2b_offers::stats::OfferStats;
use me2b_offers::taxonomy::Topic;
use me2b_offers::{OfferInput, PublishedOffer};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn need_offers_role(o: &Org) -> Result<(), ApiError> {
    if o.0.roles.contains(Role::Offers) {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::ErrorCode::RoleRequired,
            "this API key lacks the `offers` role",
        ))
    }
}

/// A topic that is not among the member's suggestions is not found.
fn not_a_suggestion(e: me2b_offers::OfferError) -> ApiError {
    match e {
        me2b_offers::OfferError::Invalid { field: "topic", .. } => ApiError::new(
            crate::error::ErrorCode::NotFound,
            "not one of your current suggestions",
        ),
        e => e.into(),
    }
}

fn offer_id(raw: &str) -> Result<OfferId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// The fair-economy taxonomy.
#[derive(Serialize, ToSchema)]
pub struct TaxonomyOut {
    pub name: &'static str,
    pub source: &'static str,
    pub topics: Vec<Topic>,
}

/// The shipped interest taxonomy; `sensitive` names the GDPR Art. 9 category a topic touches.
#[utoipa::path(get, path = "/v1/taxonomy", tag = "meta", responses((status = 200, body = TaxonomyOut)))]
pub async fn taxonomy(State(s): State<AppState>) -> Json<TaxonomyOut> {
    Json(TaxonomyOut {
        name: "me2b fair-economy interest taxonomy v1",
        source: "Topics taxonomy v2 (Apache-2.0) plus co-operative and ethical-consumer topics",
        topics: s.node.offers.taxonomy().topics().to_vec(),
    })
}

/// What a targeting rule can read and call.
#[derive(Serialize, ToSchema)]
pub struct RuleContextOut {
    pub language: &'static str,
    pub fields: Vec<Field>,
    pub functions: Vec<&'static str>,
    pub max_bytes: usize,
    pub max_nodes: usize,
    pub max_cost: u64,
    pub notes: Vec<&'static str>,
}

/// The documented context of targeting rules.
#[utoipa::path(get, path = "/v1/offers/context", tag = "meta", responses((status = 200, body = RuleContextOut)))]
pub async fn rule_context() -> Json<RuleContextOut> {
    Json(RuleContextOut {
        language: "CEL (Common Expression Language), evaluated inside each member's vault",
        fields: FIELDS.to_vec(),
        functions: FUNCTIONS
            .iter()
            .copied()
            .filter(|f| !f.starts_with('@'))
            .collect(),
        max_bytes: MAX_RULE_BYTES,
        max_nodes: MAX_NODES,
        max_cost: MAX_COST,
        notes: vec![
            "Macros (all, exists, exists_one, map, filter) cannot be nested.",
            "A rule naming a sensitive topic is refused unless the offer is flagged explicit_consent and lists that topic.",
            "A rule that fails for one member only drops the offer for that member.",
        ],
    })
}

/// The published catalogue, the same for every vault and every caller.
#[utoipa::path(get, path = "/v1/offers/catalogue", tag = "meta", responses((status = 200, body = Vec<PublishedOffer>)))]
pub async fn catalogue(State(s): State<AppState>) -> Result<Json<Vec<PublishedOffer>>, ApiError> {
    Ok(Json(s.node.offers.published().await?))
}

// --- organisations ---------------------------------------------------------------

/// Publishes an offer. Rules are checked now; errors carry `position`.
#[utoipa::path(post, path = "/v1/org/offers", tag = "organisation", security(("bearer" = [])),
    request_body = OfferInput,
    responses((status = 201, body = OfferView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn publish(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<OfferInput>,
) -> Result<(StatusCode, Json<OfferView>), ApiError> {
    need_offers_role(&o)?;
    let v = s.node.offers.publish(o.0.org.id, input).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Offers this organisation published and bundles it is a partner in.
#[utoipa::path(get, path = "/v1/org/offers", operation_id = "list_offers", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = Vec<OfferView>), (status = 403, body = ErrorBody)))]
pub async fn list(State(s): State<AppState>, o: Org) -> Result<Json<Vec<OfferView>>, ApiError> {
    need_offers_role(&o)?;
    Ok(Json(s.node.offers.list_for_org(o.0.org.id).await?))
}

/// A coalition partner endorses its part; the bundle goes live when all have.
#[utoipa::path(post, path = "/v1/org/offers/{id}/endorse", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OfferView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn endorse(
    State(s): State<AppState>,
    o: Org,
    Path(id): Path<String>,
) -> Result<Json<OfferView>, ApiError> {
    need_offers_role(&o)?;
    Ok(Json(
        s.node.offers.endorse(o.0.org.id, offer_id(&id)?).await?,
    ))
}

/// The publisher withdraws an offer.
#[utoipa::path(post, path = "/v1/org/offers/{id}/withdraw", operation_id = "withdraw_offer", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OfferView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn withdraw(
    State(s): State<AppState>,
    o: Org,
    Path(id): Path<String>,
) -> Result<Json<OfferView>, ApiError> {
    need_offers_role(&o)?;
    Ok(Json(
        s.node.offers.withdraw(o.0.org.id, offer_id(&id)?).await?,
    ))
}

/// Members reached and members who accepted: noisy, null below the minimum cohort.
#[utoipa::path(get, path = "/v1/org/offers/{id}/stats", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OfferStats), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stats(
    State(s): State<AppState>,
    o: Org,
    Path(id): Path<String>,
) -> Result<Json<OfferStats>, ApiError> {
    need_offers_role(&o)?;
    Ok(Json(s.node.offers.stats(o.0.org.id, offer_id(&id)?).await?))
}

// --- members ---------------------------------------------------------------------

/// A partner's part of a bundle, as a member sees it.
#[derive(Serialize, ToSchema)]
pub struct PartnerOut {
    pub org_name: String,
    pub title: String,
    pub text: String,
}

/// An offer matched for the member, with the reasons.
#[derive(Serialize, ToSchema)]
pub struct MatchOut {
    pub offer_id: OfferId,
    pub org_name: String,
    pub title: String,
    pub text: String,
    pub topics: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bundle: Vec<PartnerOut>,
    #[schema(format = DateTime)]
    pub valid_until: String,
    /// Accepting can share contact details through a consent you grant.
    pub can_share_contact: bool,
    pub why: Why,
}

impl From<Match> for MatchOut {
    fn from(m: Match) -> Self {
        let o = m.offer;
        Self {
            offer_id: o.id,
            org_name: o.org_name.clone(),
            title: o.title.clone(),
            text: o.text.clone(),
            topics: o.topics.clone(),
            bundle: o
                .coalition
                .iter()
                .map(|p| PartnerOut {
                    org_name: p.org_name.clone(),
                    title: p.title.clone(),
                    text: p.text.clone(),
                })
                .collect(),
            valid_until: o.valid_until.to_rfc3339(),
            can_share_contact: o.contact_request.is_some(),
            why: m.why,
        }
    }
}

/// Your offers, matched inside your vault. Organisations never learn who matched.
#[utoipa::path(get, path = "/v1/me/offers", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = Vec<MatchOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn my_offers(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<Vec<MatchOut>>, ApiError> {
    let matches = s.node.offers.feed(&m.session).await?;
    Ok(Json(matches.into_iter().map(MatchOut::from).collect()))
}

/// How to answer an offer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    pub answer: Answer,
    /// With `accept`: grant the offer's contact request (a consent you can withdraw).
    #[serde(default)]
    pub share_contact: bool,
}

/// Accept, dismiss, or mark not relevant (suppresses offers on the same topics).
#[utoipa::path(post, path = "/v1/me/offers/{id}/answer", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = AnswerInput,
    responses((status = 200, body = Accepted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn answer(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AnswerInput>,
) -> Result<Json<Accepted>, ApiError> {
    let id = offer_id(&id)?;
    Ok(Json(
        s.node
            .offers
            .answer(&m.session, id, input.answer, input.share_contact)
            .await?,
    ))
}

/// Interests suggested from your own receipts, inside your vault. Sensitive topics are never suggested.
#[utoipa::path(get, path = "/v1/me/interest-suggestions", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = Vec<Suggestion>), (status = 401, body = ErrorBody)))]
pub async fn suggestions(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<Vec<Suggestion>>, ApiError> {
    Ok(Json(s.node.offers.suggestions(&m.session).await?))
}

/// Adds a suggested interest to your vault.
#[utoipa::path(post, path = "/v1/me/interest-suggestions/{topic}/accept", tag = "member", security(("bearer" = [])),
    params(("topic" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn accept_suggestion(
    State(s): State<AppState>,
    m: Member,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.node
        .offers
        .answer_suggestion(&m.session, &topic, true)
        .await
        .map_err(not_a_suggestion)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rejects a suggestion: it is never suggested again.
#[utoipa::path(post, path = "/v1/me/interest-suggestions/{topic}/reject", tag = "member", security(("bearer" = [])),
    params(("topic" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reject_suggestion(
    State(s): State<AppState>,
    m: Member,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.node
        .offers
        .answer_suggestion(&m.session, &topic, false)
        .await
        .map_err(not_a_suggestion)?;
    Ok(StatusCode::NO_CONTENT)
}
