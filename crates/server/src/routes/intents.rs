//! Intent routes: members publish anonymous requests for proposal and
//! accept answers; organisations follow topics and areas, read open
//! intents (no member, times to the hour), answer once, and read the weekly
//! counts the privacy accountant charged. Errors name no member and echo no
//! value.

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, Member, Org};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use me2b_domain::org::Role;
use me2b_intents::{
    AcceptInput, AcceptedAnswer, AnswerId, AnswerInput, IntentCounts, IntentError, IntentId,
    IntentInput, MemberIntentView, OrgAnswerView, OrgIntentView, ReportInput, Subscription,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Every intent error reaches a client through this mapping to the registry.
impl From<IntentError> for ApiError {
    fn from(e: IntentError) -> Self {
        use ErrorCode as C;
        use IntentError as E;
        let code = match e {
            E::Invalid(_) => C::InvalidIntent,
            E::Empty => C::EmptyIntent,
            E::TooLong { .. } => C::TooLong,
            E::UnknownTopic => C::UnknownTopic,
            E::SensitiveTopic => C::SensitiveTopic,
            E::UnknownRegion => C::UnknownArea,
            E::WarningNotAcknowledged(_) => C::FreeTextWarning,
            E::NotAsked => C::NotAsked,
            E::IntentRateLimited { .. } => C::IntentRateLimited,
            E::AnswerRateLimited { .. } => C::AnswerRateLimited,
            E::IntentNotFound => C::IntentNotFound,
            E::AnswerNotFound => C::AnswerNotFound,
            E::IntentClosed => C::IntentClosed,
            E::AlreadyAnswered => C::AlreadyAnswered,
            E::AlreadyReported => C::AlreadyReported,
            E::Conflict => C::RevisionConflict,
            E::AnswerExpired => C::AnswerExpired,
            E::NotAllowed => C::NotAllowedToAnswer,
            E::UnknownClaim => C::UnknownClaim,
            E::SensitiveClaim => C::SensitiveClaim,
            E::Corrupt(_) => {
                tracing::error!(error = %e, "corrupt intent data");
                return Self::internal();
            }
            E::Storage(inner) => return me2b_vault::VaultError::Storage(inner).into(),
            E::Vault(inner) => return inner.into(),
            E::Audit(inner) => return inner.into(),
            E::Consent(inner) => return inner.into(),
            E::Dp(inner) => return inner.into(),
        };
        // Every message is fixed text of the crate (limits and field names
        // only): nothing sent is echoed, nothing about a member is told.
        Self::new(code, e.to_string())
    }
}

pub(crate) fn need_offers_role(o: &Org) -> Result<(), ApiError> {
    if o.0.roles.contains(Role::Offers) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::RoleRequired,
            "this API key lacks the `offers` role",
        ))
    }
}

/// A malformed id is answered like an unknown one.
fn intent_id(raw: &str) -> Result<IntentId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::from(IntentError::IntentNotFound))
}

fn answer_id(raw: &str) -> Result<AnswerId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::from(IntentError::AnswerNotFound))
}

/// What a member reads before publishing.
#[derive(Serialize, ToSchema)]
pub struct NoticeOut {
    /// Free text can identify you: this is shown before publishing.
    pub warning: &'static str,
    pub max_text_chars: usize,
    pub max_deadline_days: u32,
    pub intents_per_week: u64,
    /// What an organisation may ask to receive if you accept its answer.
    pub contact_categories: Vec<&'static str>,
}

/// The warning shown before publishing an intent, and the limits.
#[utoipa::path(get, path = "/v1/intents/notice", operation_id = "intent_notice", tag = "meta", responses((status = 200, body = NoticeOut)))]
pub async fn notice(State(s): State<AppState>) -> Json<NoticeOut> {
    Json(NoticeOut {
        warning: me2b_intents::FREE_TEXT_WARNING,
        max_text_chars: me2b_intents::MAX_TEXT_CHARS,
        max_deadline_days: me2b_intents::MAX_DEADLINE_DAYS,
        intents_per_week: s.node.intents.limits().intents_per_week,
        contact_categories: me2b_intents::CONTACT_CATEGORIES.to_vec(),
    })
}

/// Publishes an intent under a fresh one-time pseudonym. Refused until
/// `acknowledge_free_text_warning` is true (code `free_text_warning`, with the
/// warning); sensitive topics are refused.
#[utoipa::path(post, path = "/v1/me/intents", operation_id = "publish_intent", tag = "member", security(("bearer" = [])),
    request_body = IntentInput,
    responses((status = 201, body = MemberIntentView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn publish(
    State(s): State<AppState>,
    m: Member,
    ApiJson(input): ApiJson<IntentInput>,
) -> Result<(StatusCode, Json<MemberIntentView>), ApiError> {
    let v = s.node.intents.publish(&m.session, input).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Your intents with their answers, newest first.
#[utoipa::path(get, path = "/v1/me/intents", operation_id = "my_intents", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = Vec<MemberIntentView>), (status = 401, body = ErrorBody)))]
pub async fn mine(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<Vec<MemberIntentView>>, ApiError> {
    Ok(Json(s.node.intents.my_intents(&m.session).await?))
}

/// Closes an open intent without accepting (organisations see "closed").
#[utoipa::path(post, path = "/v1/me/intents/{id}/withdraw", operation_id = "withdraw_intent", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn withdraw(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.node.intents.withdraw(&m.session, intent_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts one answer: that organisation alone receives what you choose to
/// disclose (a consent made for this contact, under a pseudonym of its own)
/// and, if given, a credential presentation. The others see only "closed".
#[utoipa::path(post, path = "/v1/me/intents/{id}/accept", operation_id = "accept_intent_answer", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = AcceptInput,
    responses((status = 200, body = AcceptedAnswer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn accept(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AcceptInput>,
) -> Result<Json<AcceptedAnswer>, ApiError> {
    Ok(Json(
        s.node
            .intents
            .accept(&m.session, intent_id(&id)?, input)
            .await?,
    ))
}

/// Reports an answer to the operator (the organisation and its answer; not
/// you, not your intent).
#[utoipa::path(post, path = "/v1/me/intents/{id}/answers/{answer}/report", operation_id = "report_intent_answer", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path), ("answer" = String, Path)), request_body = ReportInput,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn report(
    State(s): State<AppState>,
    m: Member,
    Path((id, answer)): Path<(String, String)>,
    ApiJson(input): ApiJson<ReportInput>,
) -> Result<StatusCode, ApiError> {
    s.node
        .intents
        .report(&m.session, intent_id(&id)?, answer_id(&answer)?, input)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the topics and areas your organisation follows.
#[utoipa::path(put, path = "/v1/org/intents/subscription", operation_id = "subscribe_to_intents", tag = "organisation", security(("bearer" = [])),
    request_body = Subscription,
    responses((status = 200, body = Subscription), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn subscribe(
    State(s): State<AppState>,
    o: Org,
    ApiJson(sub): ApiJson<Subscription>,
) -> Result<Json<Subscription>, ApiError> {
    need_offers_role(&o)?;
    Ok(Json(s.node.intents.subscribe(o.0.org.id, sub).await?))
}

/// The topics and areas your organisation follows.
#[utoipa::path(get, path = "/v1/org/intents/subscription", operation_id = "intent_subscription", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = Subscription), (status = 404, body = ErrorBody)))]
pub async fn subscription(
    State(s): State<AppState>,
    o: Org,
) -> Result<Json<Subscription>, ApiError> {
    need_offers_role(&o)?;
    s.node
        .intents
        .subscription(o.0.org.id)
        .await?
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    #[serde(default)]
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub offset: u64,
    /// Default 200; more than 200 is 200.
    #[serde(default = "default_limit")]
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub limit: u64,
}

fn default_limit() -> u64 {
    200
}

/// Open intents on the topics and areas you follow: no member, times to the
/// hour, the latest hour first.
#[utoipa::path(get, path = "/v1/org/intents", operation_id = "intent_feed", tag = "organisation", security(("bearer" = [])), params(FeedQuery),
    responses((status = 200, body = Vec<OrgIntentView>), (status = 403, body = ErrorBody)))]
pub async fn feed(
    State(s): State<AppState>,
    o: Org,
    q: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<OrgIntentView>>, ApiError> {
    need_offers_role(&o)?;
    let Query(q) = q.map_err(crate::routes::vault::bad_query)?;
    crate::routes::vault::within_i64("offset", q.offset)?;
    crate::routes::vault::within_i64("limit", q.limit)?;
    Ok(Json(
        s.node
            .intents
            .feed(&o.0.org, &o.0.roles, q.offset, q.limit)
            .await?,
    ))
}

/// One intent (open or closed) until its deadline.
#[utoipa::path(get, path = "/v1/org/intents/{id}", operation_id = "org_intent", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OrgIntentView), (status = 404, body = ErrorBody)))]
pub async fn one(
    State(s): State<AppState>,
    o: Org,
    Path(id): Path<String>,
) -> Result<Json<OrgIntentView>, ApiError> {
    need_offers_role(&o)?;
    Ok(Json(
        s.node
            .intents
            .intent_for_org(&o.0.org, &o.0.roles, intent_id(&id)?)
            .await?,
    ))
}

/// Answers an open intent with a proposal, once per organisation.
#[utoipa::path(post, path = "/v1/org/intents/{id}/answers", operation_id = "answer_intent", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = AnswerInput,
    responses((status = 201, body = OrgAnswerView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn answer(
    State(s): State<AppState>,
    o: Org,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AnswerInput>,
) -> Result<(StatusCode, Json<OrgAnswerView>), ApiError> {
    need_offers_role(&o)?;
    let v = s
        .node
        .intents
        .answer(&o.0.org, &o.0.roles, intent_id(&id)?, input)
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Your organisation's answers: open, closed, or accepted with the contact
/// the member chose.
#[utoipa::path(get, path = "/v1/org/intent-answers", operation_id = "my_intent_answers", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = Vec<OrgAnswerView>), (status = 403, body = ErrorBody)))]
pub async fn answers(
    State(s): State<AppState>,
    o: Org,
) -> Result<Json<Vec<OrgAnswerView>>, ApiError> {
    need_offers_role(&o)?;
    Ok(Json(s.node.intents.answers_of_org(o.0.org.id).await?))
}

/// Noisy counts of intents published last week per topic, released through
/// the privacy accountant (the first asker of a week is charged).
#[utoipa::path(get, path = "/v1/org/intents/counts", operation_id = "intent_counts", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = IntentCounts), (status = 403, body = ErrorBody)))]
pub async fn counts(State(s): State<AppState>, o: Org) -> Result<Json<IntentCounts>, ApiError> {
    need_offers_role(&o)?;
    Ok(Json(s.node.intents.counts(o.0.org.id).await?))
}
