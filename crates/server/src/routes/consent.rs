//! Consent routes: organisations ask and read under a permit; members answer,
//! withdraw and see what happened. Every answer is in plain language.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Member, Org};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use me2b_consent::model::{
    ConsentRecord, ConsentRequest, ConsentRequestInput, ConsentStatus, GrantInput, Method,
};
use me2b_consent::service::{Disclosure, OrgConsentView};
use me2b_consent::vocabulary::{Section, Vocabulary};
use me2b_consent::Term;
use me2b_domain::audit::{Action, Actor};
use me2b_domain::org::Role;
use me2b_domain::{ConsentId, ConsentRequestId, OrgId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn need_role(o: &Org, role: Role) -> Result<(), ApiError> {
    if o.0.roles.contains(role) {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::ErrorCode::RoleRequired,
            format!("this API key lacks the `{}` role", role.as_str()),
        ))
    }
}

fn id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// The vocabulary: purposes, categories, processing and legal bases, with plain-language explanations.
#[utoipa::path(get, path = "/v1/vocabulary", tag = "meta", responses((status = 200, body = Vocabulary)))]
pub async fn vocabulary(State(s): State<AppState>) -> Json<Vocabulary> {
    Json(s.node.consents.vocabulary().clone())
}

// --- organisations ---------------------------------------------------------------

#[utoipa::path(post, path = "/v1/org/consent-requests", tag = "organisation", security(("bearer" = [])),
    request_body = ConsentRequestInput,
    responses((status = 201, body = ConsentRequest), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_request(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<ConsentRequestInput>,
) -> Result<(StatusCode, Json<ConsentRequest>), ApiError> {
    need_role(&o, Role::Consent)?;
    let r = s.node.consents.create_request(&o.0.org, input).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(get, path = "/v1/org/consent-requests", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = Vec<ConsentRequest>), (status = 403, body = ErrorBody)))]
pub async fn list_requests(
    State(s): State<AppState>,
    o: Org,
) -> Result<Json<Vec<ConsentRequest>>, ApiError> {
    need_role(&o, Role::Consent)?;
    Ok(Json(s.node.consents.requests_of(o.0.org.id).await?))
}

/// Consents given in answer to the request (members by pseudonym). Refusals and
/// members who did not answer are invisible.
#[utoipa::path(get, path = "/v1/org/consent-requests/{id}/consents", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<OrgConsentView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn request_consents(
    State(s): State<AppState>,
    o: Org,
    Path(rid): Path<String>,
) -> Result<Json<Vec<OrgConsentView>>, ApiError> {
    need_role(&o, Role::Consent)?;
    Ok(Json(
        s.node.consents.consents_for(o.0.org.id, id(&rid)?).await?,
    ))
}

/// What to read under a consent request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessInput {
    pub request_id: ConsentRequestId,
    /// The DPV purpose of this access.
    pub purpose: String,
    /// The DPV processing operation, e.g. `use`.
    pub processing: String,
}

#[derive(Serialize, ToSchema)]
pub struct AccessOutput {
    /// One entry per member with a permit; everyone else is absent.
    pub disclosures: Vec<Disclosure>,
}

/// The data-access API: for members who consented, exactly the permitted
/// categories, each as an envelope that only this API key opens (sealed in
/// the member's session; `me2b_consent::envelope::open`). Answered in the
/// window after each release (`429 data_access_window` outside it),
/// and only for consents released to the organisation (README, "Consent
/// releases").
#[utoipa::path(post, path = "/v1/org/data-access", tag = "organisation", security(("bearer" = [])),
    request_body = AccessInput,
    responses((status = 200, body = AccessOutput), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn data_access(
    State(s): State<AppState>,
    o: Org,
    ApiJson(input): ApiJson<AccessInput>,
) -> Result<Json<AccessOutput>, ApiError> {
    need_role(&o, Role::Consent)?;
    let disclosures = s
        .node
        .consents
        .access(
            o.0.org.id,
            o.0.key,
            input.request_id,
            &input.purpose,
            &input.processing,
        )
        .await?;
    Ok(Json(AccessOutput { disclosures }))
}

#[derive(Serialize, ToSchema)]
pub struct Receipts {
    /// Compact JWS (EdDSA), one per event, oldest first. Verify offline with
    /// `me2b consent verify-receipt` and the node key at /.well-known/me2b/node-keys.
    pub receipts: Vec<String>,
}

#[utoipa::path(get, path = "/v1/org/consents/{id}/receipts", tag = "organisation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Receipts), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn org_receipts(
    State(s): State<AppState>,
    o: Org,
    Path(cid): Path<String>,
) -> Result<Json<Receipts>, ApiError> {
    need_role(&o, Role::Consent)?;
    Ok(Json(Receipts {
        receipts: s
            .node
            .consents
            .receipts_for_org(o.0.org.id, id(&cid)?)
            .await?,
    }))
}

// --- members ---------------------------------------------------------------------

/// A term in plain language.
#[derive(Serialize, ToSchema)]
pub struct Plain {
    pub id: String,
    pub label: String,
    pub explanation: String,
    /// A special category (GDPR Art. 9): health, beliefs, biometrics…
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub special: bool,
}

fn plain(v: &Vocabulary, section: Section, ids: &[String]) -> Vec<Plain> {
    ids.iter()
        .map(|i| match v.term(section, i) {
            Some(Term {
                label,
                explanation,
                special,
                ..
            }) => Plain {
                id: i.clone(),
                label: label.clone(),
                explanation: explanation.clone(),
                special: *special || (section == Section::Category && v.is_special(i)),
            },
            None => Plain {
                id: i.clone(),
                label: i.clone(),
                explanation: String::new(),
                special: false,
            },
        })
        .collect()
}

/// A consent request as a member reads it.
#[derive(Serialize, ToSchema)]
pub struct PendingRequest {
    pub request_id: ConsentRequestId,
    pub organisation: String,
    pub summary: String,
    pub purposes: Vec<Plain>,
    pub categories: Vec<Plain>,
    pub processing: Vec<Plain>,
    pub legal_basis: Plain,
    pub retention_days: u32,
    pub recipients: Vec<String>,
    pub notice: String,
    pub notice_version: String,
}

/// Lower-case labels of `ids`, comma-separated, for plain-language sentences.
fn labels(v: &Vocabulary, section: Section, ids: &[String]) -> String {
    ids.iter()
        .map(|i| {
            v.term(section, i)
                .map_or(i.clone(), |t| t.label.to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(
    org: &str,
    v: &Vocabulary,
    purposes: &[String],
    categories: &[String],
    days: u32,
) -> String {
    let labels = |sec, ids: &[String]| labels(v, sec, ids);
    format!(
        "{org} asks to use your {} for {}, for {days} days. You can say no, say yes to part of it, or withdraw at any time.",
        labels(Section::Category, categories),
        labels(Section::Purpose, purposes)
    )
}

#[utoipa::path(get, path = "/v1/me/consent-requests", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = Vec<PendingRequest>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn pending(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<Vec<PendingRequest>>, ApiError> {
    let v = s.node.consents.vocabulary();
    let out = s
        .node
        .consents
        .pending(m.session.member)
        .await?
        .into_iter()
        .map(|(r, org)| PendingRequest {
            request_id: r.id,
            summary: summary(&org.name, v, &r.purposes, &r.categories, r.retention_days),
            organisation: org.name,
            purposes: plain(v, Section::Purpose, &r.purposes),
            categories: plain(v, Section::Category, &r.categories),
            processing: plain(v, Section::Processing, &r.processing),
            legal_basis: plain(v, Section::LegalBasis, std::slice::from_ref(&r.legal_basis))
                .remove(0),
            retention_days: r.retention_days,
            recipients: r.recipients,
            notice: r.notice,
            notice_version: r.notice_version,
        })
        .collect();
    Ok(Json(out))
}

/// A member's consent, in plain language.
#[derive(Serialize, ToSchema)]
pub struct MyConsent {
    pub consent_id: ConsentId,
    pub request_id: ConsentRequestId,
    pub organisation: String,
    pub status: ConsentStatus,
    pub in_force: bool,
    pub summary: String,
    pub purposes: Vec<Plain>,
    pub categories: Vec<Plain>,
    pub processing: Vec<Plain>,
    pub given_at: String,
    pub expires_at: String,
    pub withdrawn_at: Option<String>,
    pub receipts: Vec<String>,
    /// A cross-selling consent (given with `POST /v1/me/trust/sharing`): the
    /// co-op whose receipts about you go to `organisation`.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_sell_from: Option<OrgId>,
    /// Your Global Privacy Control signal (see `gpc_opt_out_since` in
    /// `GET /v1/me/transparency`) came after this consent and stops the
    /// sale or sharing it allowed: a cross-selling consent shares nothing
    /// more (give it again to share again).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gpc_opt_out: bool,
}

async fn my_consent(
    s: &AppState,
    r: ConsentRecord,
    org: String,
    gpc: Option<me2b_domain::Timestamp>,
) -> MyConsent {
    let v = s.node.consents.vocabulary();
    let now = s.node.clock.now();
    let gpc_opt_out = r.stopped_by_gpc(gpc);
    // A cross-selling consent is all sharing: the signal stops all of it.
    let in_force = r.in_force(now) && !(gpc_opt_out && r.cross_sell_from.is_some());
    let from = match r.cross_sell_from {
        Some(f) => Some(org_name(s, f).await),
        None => None,
    };
    let state = match r.status {
        ConsentStatus::Given if in_force => format!("You allow {org} to"),
        ConsentStatus::Given if gpc_opt_out => {
            format!("Stopped by your Global Privacy Control signal: {org} may no longer")
        }
        ConsentStatus::Given => format!("Expired: {org} may no longer"),
        ConsentStatus::Withdrawn => format!("Withdrawn: {org} may no longer"),
        ConsentStatus::Refused => format!("You refused: {org} may not"),
    };
    let labels = |sec, ids: &[String]| labels(v, sec, ids);
    let mut summary = match &from {
        Some(from) => {
            format!("{state} receive the receipts {from} holds about you, for cross-selling.")
        }
        None => format!(
            "{state} use your {} for {}.",
            if r.categories.is_empty() {
                "data".into()
            } else {
                labels(Section::Category, &r.categories)
            },
            if r.purposes.is_empty() {
                "what it asked".into()
            } else {
                labels(Section::Purpose, &r.purposes)
            }
        ),
    };
    if gpc_opt_out && from.is_none() {
        summary.push_str(
            " Your Global Privacy Control signal stops any sale or sharing of your data under it.",
        );
    }
    MyConsent {
        gpc_opt_out,
        consent_id: r.id,
        request_id: r.request,
        summary,
        cross_sell_from: r.cross_sell_from,
        organisation: org,
        status: r.status,
        in_force,
        purposes: plain(v, Section::Purpose, &r.purposes),
        categories: plain(v, Section::Category, &r.categories),
        processing: plain(v, Section::Processing, &r.processing),
        given_at: r.given_at.to_rfc3339(),
        expires_at: r.expires_at.to_rfc3339(),
        withdrawn_at: r.withdrawn_at.map(|t| t.to_rfc3339()),
        receipts: r.receipts,
    }
}

async fn answer(
    s: &AppState,
    m: &Member,
    rid: &str,
    grant: Option<GrantInput>,
) -> Result<MyConsent, ApiError> {
    let rid = id(rid)?;
    let r = match grant {
        Some(g) => {
            s.node
                .consents
                .grant(&m.session, rid, g, Method::Api)
                .await?
        }
        None => {
            s.node
                .consents
                .refuse(m.session.member, rid, Method::Api)
                .await?
        }
    };
    let org = org_name(s, r.controller).await;
    let gpc = s.node.consents.gpc_since(m.session.member).await?;
    Ok(my_consent(s, r, org, gpc).await)
}

/// Grants all of a request (`{}`), or part of it (a subset of purposes and categories).
#[utoipa::path(post, path = "/v1/me/consent-requests/{id}/grant", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = GrantInput,
    responses((status = 201, body = MyConsent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn grant(
    State(s): State<AppState>,
    m: Member,
    Path(rid): Path<String>,
    ApiJson(g): ApiJson<GrantInput>,
) -> Result<(StatusCode, Json<MyConsent>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(answer(&s, &m, &rid, Some(g)).await?),
    ))
}

#[utoipa::path(post, path = "/v1/me/consent-requests/{id}/refuse", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 201, body = MyConsent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn refuse(
    State(s): State<AppState>,
    m: Member,
    Path(rid): Path<String>,
) -> Result<(StatusCode, Json<MyConsent>), ApiError> {
    Ok((StatusCode::CREATED, Json(answer(&s, &m, &rid, None).await?)))
}

#[utoipa::path(get, path = "/v1/me/consents", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = Vec<MyConsent>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn my_consents(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<Vec<MyConsent>>, ApiError> {
    let list = s.node.consents.consents_of(m.session.member).await?;
    let gpc = s.node.consents.gpc_since(m.session.member).await?;
    let mut out = Vec::with_capacity(list.len());
    for (r, org) in list {
        out.push(my_consent(&s, r, org, gpc).await);
    }
    Ok(Json(out))
}

/// Withdraws a consent: effective immediately, durable before this answers.
#[utoipa::path(post, path = "/v1/me/consents/{id}/withdraw", tag = "member", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = MyConsent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn withdraw(
    State(s): State<AppState>,
    m: Member,
    Path(cid): Path<String>,
) -> Result<Json<MyConsent>, ApiError> {
    let r = s
        .node
        .consents
        .withdraw(m.session.member, id(&cid)?, Method::Api)
        .await?;
    let org = org_name(&s, r.controller).await;
    let gpc = s.node.consents.gpc_since(m.session.member).await?;
    Ok(Json(my_consent(&s, r, org, gpc).await))
}

/// One access decision about the member, from the audit log.
#[derive(Serialize, ToSchema)]
pub struct AccessSeen {
    pub at: String,
    pub purpose: Option<String>,
    pub category: Option<String>,
    pub processing: Option<String>,
    /// `permitted` (under `consent_id`) or `denied` (with `reason`).
    pub outcome: String,
    pub consent_id: Option<String>,
    pub reason: Option<String>,
    pub explanation: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrgTransparency {
    pub organisation: String,
    pub consents: Vec<MyConsent>,
    pub accesses: Vec<AccessSeen>,
}

#[derive(Serialize, ToSchema)]
pub struct Transparency {
    /// Since when a Global Privacy Control signal opts you out of sale, sharing and third-party advertising.
    pub gpc_opt_out_since: Option<String>,
    /// Since when you are opted out of all direct marketing, if you are.
    pub marketing_opt_out_since: Option<String>,
    /// The charter this node runs: what no organisation may ask you for.
    pub charter: Vec<String>,
    pub organisations: Vec<OrgTransparency>,
    /// Your consents to one co-op sharing its receipts about you with another
    /// through the data trust, and every time a partner received them.
    pub receipt_sharing: Vec<SharingTransparency>,
    /// The privacy budgets of the pools of people you are in: how much of
    /// each was spent this period, and by whom.
    pub privacy_budget: me2b_dp::transparency::BudgetView,
    /// Your loyalty points, per co-op and day: who added or took how many.
    /// Co-ops never see your balance.
    pub loyalty: Vec<String>,
}

async fn org_name(s: &AppState, id: me2b_domain::OrgId) -> String {
    s.node
        .store
        .org(id)
        .await
        .ok()
        .flatten()
        .map_or_else(|| "a deleted organisation".to_owned(), |o| o.name)
}

/// One sharing consent, in plain language, with each delivery under it.
#[derive(Serialize, ToSchema)]
pub struct SharingTransparency {
    pub id: String,
    pub explanation: String,
    pub withdrawn: bool,
    /// When the partner received your receipts, and how many.
    pub deliveries: Vec<String>,
}

/// Per organisation: the state of each consent, and every access decision about
/// the member (what, when, for which purpose, under which consent).
#[utoipa::path(get, path = "/v1/me/transparency", tag = "member", security(("bearer" = [])),
    responses((status = 200, body = Transparency), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn transparency(
    State(s): State<AppState>,
    m: Member,
) -> Result<Json<Transparency>, ApiError> {
    let member = m.session.member;
    let gpc = s.node.consents.gpc_since(member).await?;
    let mut by_org: std::collections::BTreeMap<String, OrgTransparency> =
        std::collections::BTreeMap::new();
    for (r, org) in s.node.consents.consents_of(member).await? {
        let key = r.controller.to_string();
        let entry = by_org.entry(key).or_insert_with(|| OrgTransparency {
            organisation: org.clone(),
            consents: vec![],
            accesses: vec![],
        });
        entry.consents.push(my_consent(&s, r, org, gpc).await);
    }
    let v = s.node.consents.vocabulary();
    let mut deliveries: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    let mut after = 0;
    loop {
        let page = s
            .node
            .store
            .audit_entries_for(member, after, 1000)
            .await
            .map_err(me2b_vault::VaultError::from)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            let Ok(ev) = e.event() else { continue };
            if ev.action == Action::TrustCrossSell {
                if let Some((n, id)) = ev
                    .object
                    .as_deref()
                    .and_then(me2b_trust::service::delivery_of)
                {
                    deliveries.entry(id.to_owned()).or_default().push(format!(
                        "{}: {n} {}",
                        e.at.to_rfc3339(),
                        if n == 1 { "receipt" } else { "receipts" }
                    ));
                }
                continue;
            }
            let (Action::ConsentDecision, Actor::Organisation(org)) = (ev.action, &ev.actor) else {
                continue;
            };
            let key = org.to_string();
            if !by_org.contains_key(&key) {
                let name = s
                    .node
                    .store
                    .org(*org)
                    .await
                    .ok()
                    .flatten()
                    .map(|o| o.name)
                    .unwrap_or_default();
                by_org.insert(
                    key.clone(),
                    OrgTransparency {
                        organisation: name,
                        consents: vec![],
                        accesses: vec![],
                    },
                );
            }
            let permitted = ev.outcome == me2b_domain::audit::Outcome::Ok;
            let label = |sec, id: &Option<String>| {
                id.as_deref()
                    .and_then(|i| v.term(sec, i))
                    .map_or("?".to_owned(), |t| t.label.to_lowercase())
            };
            let explanation = format!(
                "{} {} your {} for {} ({}).",
                if permitted { "Read" } else { "Was refused" },
                if permitted { "" } else { "access to" },
                label(Section::Category, &ev.category),
                label(Section::Purpose, &ev.purpose),
                label(Section::Processing, &ev.processing),
            )
            .replace("  ", " ");
            if let Some(t) = by_org.get_mut(&key) {
                t.accesses.push(AccessSeen {
                    at: e.at.to_rfc3339(),
                    purpose: ev.purpose.clone(),
                    category: ev.category.clone(),
                    processing: ev.processing.clone(),
                    outcome: if permitted {
                        "permitted".into()
                    } else {
                        "denied".into()
                    },
                    consent_id: permitted.then(|| ev.object.clone()).flatten(),
                    reason: (!permitted).then(|| ev.object.clone()).flatten(),
                    explanation,
                });
            }
        }
        if page.len() < 1000 {
            break;
        }
    }
    let mut receipt_sharing = Vec::new();
    for sh in s.node.trust.sharing_of(member).await? {
        let (from, to) = (org_name(&s, sh.from).await, org_name(&s, sh.to).await);
        let explanation = if sh.withdrawn {
            format!(
                "You withdrew your consent for {from} to share its receipts about you with {to}."
            )
        } else if sh.gpc_opt_out {
            format!(
                "Your Global Privacy Control signal stopped {from} sharing its receipts about you with {to}. Give this consent again to share again."
            )
        } else {
            format!(
                "{from} may share its receipts about you with {to}, under {to}'s own pseudonym for you, for cross-selling, until {}.",
                sh.expires_at.to_rfc3339()
            )
        };
        receipt_sharing.push(SharingTransparency {
            id: sh.id.to_string(),
            explanation,
            withdrawn: sh.withdrawn,
            deliveries: deliveries.remove(&sh.id.to_string()).unwrap_or_default(),
        });
    }
    let privacy_budget = s.node.privacy_budget_view(member).await?;
    let mut loyalty = Vec::new();
    let enrolled = s
        .node
        .store
        .trust_enrolment(member)
        .await
        .map_err(me2b_vault::VaultError::from)?
        .is_some();
    let history = if enrolled {
        s.node.trust.member_view(member).await?.loyalty_history
    } else {
        Vec::new()
    };
    for d in history {
        let org = org_name(&s, d.org).await;
        if d.earned > 0 {
            loyalty.push(format!("{}: {org} added {} points.", d.day, d.earned));
        }
        if d.redeemed > 0 {
            loyalty.push(format!(
                "{}: {org} took {} points, with a redemption token you made.",
                d.day, d.redeemed
            ));
        }
    }
    Ok(Json(Transparency {
        gpc_opt_out_since: gpc.map(|t| t.to_rfc3339()),
        marketing_opt_out_since: s
            .node
            .consents
            .marketing_opted_out_since(member)
            .await?
            .map(|t| t.to_rfc3339()),
        charter: s.node.consents.charter().explain(),
        organisations: by_org.into_values().collect(),
        receipt_sharing,
        privacy_budget,
        loyalty,
    }))
}
