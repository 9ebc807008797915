//! Credential routes: the promo-code flow. A co-op (role `credentials`) makes a
//! one-time code for a member, the member redeems it into their vault, a
//! verifier (role `credentials`) makes a challenge, the member answers it with
//! an unlinkable presentation, and the verifier checks it here or offline with
//! the federation's key at `/.well-known/me2b/issuers`. One key, the
//! federation's, signs every co-op's credentials: a verifier that does not name
//! co-ops never learns which one issued.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{require_json, ApiJson, Member, Org};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use me2b_credentials::service::{
    AudienceChallengeRequest, ChallengeRequest, CodeIssued, CodeRequest, Disclosure,
    HeldCredential, HeldOrgCredential, IssuerDocument, OrgCredentialRequest, Presented, Preview,
    ProvenAudience, Verified,
};
use me2b_domain::org::Role;
use me2b_domain::RecordId;
use serde::Deserialize;
use utoipa::ToSchema;

fn need_credentials_role(o: &Org) -> Result<(), ApiError> {
    if o.0.roles.contains(Role::Credentials) {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::ErrorCode::RoleRequired,
            "this API key lacks the `credentials` role",
        ))
    }
}

/// A certification is the word of an organisation the operator named a
/// certifier (a role only `me2b org create` gives), not of any co-op that
/// issues membership credentials (adversary 5, 1a).
fn need_certifier_role(o: &Org) -> Result<(), ApiError> {
    if o.0.roles.contains(Role::Certifier) {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::ErrorCode::RoleRequired,
            "this API key lacks the `certifier` role",
        ))
    }
}

// --- public ------------------------------------------------------------------------

/// The federation's BBS public key and the co-ops that issue under it:
/// everything a verifier needs to check presentations offline (`me2b
/// credential verify`).
#[utoipa::path(get, path = "/.well-known/me2b/issuers", tag = "meta",
    responses((status = 200, body = IssuerDocument)))]
pub async fn issuers(State(s): State<AppState>) -> Result<Json<IssuerDocument>, ApiError> {
    Ok(Json(s.node.credentials.published().await?))
}

/// The federation's revocation list, every co-op's entries in one W3C
/// Bitstring Status List of 1,048,576 entries.
#[utoipa::path(get, path = "/.well-known/me2b/status/{key_id}", tag = "meta",
    params(("key_id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn status_list(
    State(s): State<AppState>,
    Path(key_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = s.node.credentials.status_list(&key_id).await?;
    serde_json::to_value(list)
        .map(Json)
        .map_err(|_| ApiError::internal())
}

// --- issuers and verifiers ----------------------------------------------------------

/// Makes a one-time code for one of the co-op's members, vouching for these
/// claims. The code is shown once; keep the status index to revoke. Interests
/// are ordinary topics of the interest taxonomy (`unknown_topic`,
/// `sensitive_topic` otherwise); the validity is the federation's period, the
/// same for everyone issued in it (a code cannot choose it).
#[utoipa::path(post, path = "/v1/org/credentials/codes", tag = "organisation", security(("bearer" = [])),
    request_body = CodeRequest,
    responses((status = 201, body = CodeIssued), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_code(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<CodeRequest>,
) -> Result<(StatusCode, Json<CodeIssued>), ApiError> {
    need_credentials_role(&o)?;
    let out = s.node.credentials.create_code(o.0.org.id, &input).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// A status index to revoke.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeIn {
    /// An index of the federation's status list (0 to 1,048,575).
    #[schema(maximum = 1_048_575)]
    pub status_index: u32,
}

/// Revokes a credential (or a code not yet redeemed) by its status index;
/// only the co-op that made the code can.
#[utoipa::path(post, path = "/v1/org/credentials/revoke", tag = "organisation", security(("bearer" = [])),
    request_body = RevokeIn,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<RevokeIn>,
) -> Result<StatusCode, ApiError> {
    need_credentials_role(&o)?;
    s.node
        .credentials
        .revoke(o.0.org.id, input.status_index)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a challenge for a member to answer: "a valid co-op membership in
/// federation F" (from any co-op, which stays hidden, or from one of the
/// co-ops in `issuers`, which the member then discloses). Its nonce can be
/// used once, within ten minutes.
#[utoipa::path(post, path = "/v1/org/credentials/challenges", tag = "organisation", security(("bearer" = [])),
    request_body = ChallengeRequest,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn challenge(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<ChallengeRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    need_credentials_role(&o)?;
    let c = s.node.credentials.challenge(o.0.org.id, &input).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Checks a member's presentation (the body, as the member's wallet gave it)
/// against this verifier's challenge, which it uses up.
#[utoipa::path(post, path = "/v1/org/credentials/verify", tag = "organisation", security(("bearer" = [])),
    request_body = Object,
    responses((status = 200, body = Verified), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn verify(
    State(s): State<AppState>,
    o: Org,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Verified>, ApiError> {
    need_credentials_role(&o)?;
    // The presentation's own strict parser reads the exact bytes (duplicate
    // keys and unknown fields refused, 16 KiB at most).
    require_json(&headers)?;
    Ok(Json(s.node.credentials.verify(o.0.org.id, &body).await?))
}

// --- members -----------------------------------------------------------------------

/// A code a co-op gave the member.
#[derive(Deserialize, ToSchema)]
#[schema(as = CredentialCodeIn)]
#[serde(deny_unknown_fields)]
pub struct RedeemIn {
    pub code: String,
}

/// Redeems a co-op's one-time code: its credential goes into the vault. The
/// co-op is not told which member redeemed it.
#[utoipa::path(post, path = "/v1/me/credentials", tag = "member", security(("bearer" = [])),
    request_body = RedeemIn,
    responses((status = 201, body = HeldCredential), (status = 422, body = ErrorBody)))]
pub async fn redeem(
    State(s): State<AppState>,
    m: Member,
    ApiJson(input): ApiJson<RedeemIn>,
) -> Result<(StatusCode, Json<HeldCredential>), ApiError> {
    let out = s.node.credentials.redeem(&m.session, &input.code).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The member's credentials, with their claims and status.
#[utoipa::path(get, path = "/v1/me/credentials", operation_id = "my_credentials", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = Vec<HeldCredential>), (status = 401, body = ErrorBody)))]
pub async fn mine(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<Vec<HeldCredential>>, ApiError> {
    Ok(Json(s.node.credentials.held_by(&m.session).await?))
}

/// A verifier's challenge to answer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresentIn {
    /// The challenge as the verifier gave it.
    #[schema(value_type = Object)]
    pub challenge: serde_json::Value,
    /// Claims to disclose beyond what the challenge needs (default none).
    #[serde(default)]
    pub disclose: Vec<String>,
    /// Claims the challenge asks for that you leave out (`tier`, `region`,
    /// `member_since`, `interest_1`, `interest_2`, `issuer`,
    /// `status_index`): the verifier may then refuse the presentation.
    #[serde(default)]
    pub withhold: Vec<String>,
    /// Present even if what it discloses is shared by fewer credentials of
    /// the issuer than the federation's threshold (see the preview);
    /// without it such a presentation is refused with `rare_disclosure`.
    #[serde(default)]
    pub accept_rare: bool,
}

/// A challenge to preview an answer to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// The challenge as the verifier gave it.
    #[schema(value_type = Object)]
    pub challenge: serde_json::Value,
    /// Claims to disclose beyond what the challenge needs (default none).
    #[serde(default)]
    pub disclose: Vec<String>,
    /// Claims the challenge asks for that you would leave out.
    #[serde(default)]
    pub withhold: Vec<String>,
}

/// What answering a challenge with the credential in this vault record
/// would disclose, and how many credentials of its issuer (redeemed by
/// members, in the same validity epoch) share those values: a rare set lets
/// the issuer and a colluding verifier recognise you. Nothing is presented
/// and the challenge stays open.
#[utoipa::path(post, path = "/v1/me/credentials/{id}/preview", operation_id = "preview_presentation", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = PreviewIn,
    responses((status = 200, body = Preview), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PreviewIn>,
) -> Result<Json<Preview>, ApiError> {
    let id: RecordId = id.parse().map_err(|_| ApiError::not_found())?;
    let challenge = serde_json::to_vec(&input.challenge).map_err(|_| ApiError::internal())?;
    let choice = Disclosure {
        extra: input.disclose,
        withhold: input.withhold,
        accept_rare: false,
    };
    Ok(Json(
        s.node
            .credentials
            .preview(&m.session, id, &challenge, &choice)
            .await?,
    ))
}

/// Answers a challenge with the credential in this vault record: an
/// unlinkable proof that discloses only what the challenge needs. If what
/// it discloses is shared by fewer credentials of the issuer than the
/// federation's threshold, it is refused with `rare_disclosure` (409)
/// unless `accept_rare` is set: preview first.
#[utoipa::path(post, path = "/v1/me/credentials/{id}/present", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = PresentIn,
    responses((status = 200, body = Presented), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn present(
    State(s): State<AppState>,
    m: Member,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PresentIn>,
) -> Result<Json<Presented>, ApiError> {
    let id: RecordId = id.parse().map_err(|_| ApiError::not_found())?;
    let challenge = serde_json::to_vec(&input.challenge).map_err(|_| ApiError::internal())?;
    let choice = Disclosure {
        extra: input.disclose,
        withhold: input.withhold,
        accept_rare: input.accept_rare,
    };
    Ok(Json(
        s.node
            .credentials
            .present(&m.session, id, &challenge, &choice)
            .await?,
    ))
}

// --- organisations' credentials and intent audiences -----------------------------

/// Vouches for another organisation of this node: a certification of the
/// federation's list (role `certifier`, which only the operator gives) and/or
/// membership of the federation (role `credentials`). The node signs it
/// with the federation's key (credential schema 2) for the federation's
/// period and keeps it for that organisation (`GET /v1/org/attestations`).
#[utoipa::path(post, path = "/v1/org/attestations", operation_id = "issue_attestation", tag = "organisation", security(("bearer" = [])),
    request_body = OrgCredentialRequest,
    responses((status = 201, body = HeldOrgCredential), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn issue_attestation(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<OrgCredentialRequest>,
) -> Result<(StatusCode, Json<HeldOrgCredential>), ApiError> {
    if input.certification.is_some() {
        need_certifier_role(&o)?;
    }
    if input.federation_member || input.certification.is_none() {
        need_credentials_role(&o)?;
    }
    let out = s
        .node
        .credentials
        .issue_org_credential(o.0.org.id, &input)
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The credentials other organisations vouched for about yours, each with
/// the credential itself (present it here or offline).
#[utoipa::path(get, path = "/v1/org/attestations", operation_id = "my_attestations", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = Vec<HeldOrgCredential>)))]
pub async fn attestations(
    State(s): State<AppState>,
    o: Org,
) -> Result<Json<Vec<HeldOrgCredential>>, ApiError> {
    Ok(Json(s.node.credentials.org_credentials(o.0.org.id).await?))
}

/// A challenge to answer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgPresentIn {
    /// The challenge, from `POST /v1/org/intent-audience/challenges`.
    #[schema(value_type = Object)]
    pub challenge: serde_json::Value,
}

/// Answers a challenge with your credential kept by the node: a BBS proof
/// disclosing only what the challenge needs.
#[utoipa::path(post, path = "/v1/org/attestations/{id}/present", operation_id = "present_attestation", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = OrgPresentIn,
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn present_attestation(
    State(s): State<AppState>,
    o: Org,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<OrgPresentIn>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let challenge = serde_json::to_vec(&input.challenge).map_err(|_| ApiError::internal())?;
    Ok(Json(
        s.node
            .credentials
            .present_org(o.0.org.id, &id, &challenge)
            .await?,
    ))
}

/// A challenge to prove a credential audience's claim (single use, ten
/// minutes, for your organisation alone).
#[utoipa::path(post, path = "/v1/org/intent-audience/challenges", operation_id = "intent_audience_challenge", tag = "organisation", security(("bearer" = [])),
    request_body = AudienceChallengeRequest,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audience_challenge(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<AudienceChallengeRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    crate::routes::intents::need_offers_role(&o)?;
    let c = s
        .node
        .credentials
        .audience_challenge(o.0.org.id, &input)
        .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Proves a credential audience with a presentation of your audience
/// challenge (the body, as made): the node keeps what it proved, not the
/// presentation, and shows you that audience's intents for 24 hours at most,
/// never past the credential's validity epoch.
#[utoipa::path(post, path = "/v1/org/intent-audience/proofs", operation_id = "prove_intent_audience", tag = "organisation", security(("bearer" = [])),
    request_body = Object,
    responses((status = 201, body = ProvenAudience), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn prove_audience(
    State(s): State<AppState>,
    o: Org,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ProvenAudience>), ApiError> {
    crate::routes::intents::need_offers_role(&o)?;
    require_json(&headers)?;
    let p = s.node.credentials.prove_audience(o.0.org.id, &body).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// The credential audiences your organisation proved and may still use.
#[utoipa::path(get, path = "/v1/org/intent-audience/proofs", operation_id = "intent_audience_proofs", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = Vec<ProvenAudience>), (status = 403, body = ErrorBody)))]
pub async fn audience_proofs(
    State(s): State<AppState>,
    o: Org,
) -> Result<Json<Vec<ProvenAudience>>, ApiError> {
    crate::routes::intents::need_offers_role(&o)?;
    Ok(Json(s.node.credentials.audience_proofs(o.0.org.id).await?))
}
