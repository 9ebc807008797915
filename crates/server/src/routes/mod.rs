use crate::AppState;
use axum::routing::{get, post};
use axum::Router;

pub mod consent;
pub mod credentials;
pub mod erasure;
pub mod intents;
pub mod members;
pub mod meta;
pub mod offers;
pub mod optout;
pub mod orgs;
pub mod portability;
pub mod rectification;
pub mod trust;
pub mod vault;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/openapi.json", get(meta::openapi))
        .route("/.well-known/me2b/node-keys", get(meta::node_keys))
        .route("/.well-known/me2b/issuers", get(credentials::issuers))
        .route(
            "/.well-known/me2b/status/{key_id}",
            get(credentials::status_list),
        )
        .route("/v1/org/credentials/codes", post(credentials::create_code))
        .route("/v1/org/credentials/revoke", post(credentials::revoke))
        .route(
            "/v1/org/credentials/challenges",
            post(credentials::challenge),
        )
        .route("/v1/org/credentials/verify", post(credentials::verify))
        .route(
            "/v1/me/credentials",
            get(credentials::mine).post(credentials::redeem),
        )
        .route(
            "/v1/me/credentials/{id}/present",
            post(credentials::present),
        )
        .route(
            "/v1/me/credentials/{id}/preview",
            post(credentials::preview),
        )
        .route("/v1/members", post(members::sign_up))
        .route("/v1/members/confirm", post(members::confirm))
        .route("/v1/sessions", post(members::log_in))
        .route("/v1/sessions/recovery", post(members::recover))
        .route("/v1/me/passphrase", post(members::change_passphrase))
        .route(
            "/v1/sessions/current",
            axum::routing::delete(members::log_out),
        )
        .route("/v1/me", get(members::me).delete(members::erase))
        .route("/v1/me/audit", get(members::audit))
        .route("/v1/erasure-receipts/status", post(erasure::status))
        .route("/v1/org/erasure-requests", get(erasure::list))
        .route(
            "/v1/org/webhook",
            get(erasure::get_webhook)
                .put(erasure::set_webhook)
                .delete(erasure::delete_webhook),
        )
        .route(
            "/v1/org/erasure-requests/{id}/confirm",
            post(erasure::confirm),
        )
        .route("/v1/org/rectification-notices", get(rectification::list))
        .route(
            "/v1/org/rectification-notices/{id}/confirm",
            post(rectification::confirm),
        )
        .route("/v1/me/rectifications", get(rectification::mine))
        .route("/v1/vault/records", get(vault::list).post(vault::create))
        .route(
            "/v1/vault/records/{id}",
            get(vault::read).put(vault::update).delete(vault::delete),
        )
        .route("/v1/org", get(orgs::whoami))
        .route("/v1/vocabulary", get(consent::vocabulary))
        .route(
            "/v1/org/consent-requests",
            get(consent::list_requests).post(consent::create_request),
        )
        .route(
            "/v1/org/consent-requests/{id}/consents",
            get(consent::request_consents),
        )
        .route("/v1/org/data-access", post(consent::data_access))
        .route("/v1/org/consents/{id}/receipts", get(consent::org_receipts))
        .route("/v1/me/consent-requests", get(consent::pending))
        .route("/v1/me/consent-requests/{id}/grant", post(consent::grant))
        .route("/v1/me/consent-requests/{id}/refuse", post(consent::refuse))
        .route("/v1/me/consents", get(consent::my_consents))
        .route("/v1/me/consents/{id}/withdraw", post(consent::withdraw))
        .route("/v1/me/transparency", get(consent::transparency))
        .route("/v1/taxonomy", get(offers::taxonomy))
        .route("/v1/offers/context", get(offers::rule_context))
        .route("/v1/offers/catalogue", get(offers::catalogue))
        .route("/v1/org/offers", get(offers::list).post(offers::publish))
        .route("/v1/org/offers/{id}/endorse", post(offers::endorse))
        .route("/v1/org/offers/{id}/withdraw", post(offers::withdraw))
        .route("/v1/org/offers/{id}/stats", get(offers::stats))
        .route("/v1/me/offers", get(offers::my_offers))
        .route("/v1/me/offers/{id}/answer", post(offers::answer))
        .route("/v1/me/interest-suggestions", get(offers::suggestions))
        .route(
            "/v1/me/interest-suggestions/{topic}/accept",
            post(offers::accept_suggestion),
        )
        .route(
            "/v1/me/interest-suggestions/{topic}/reject",
            post(offers::reject_suggestion),
        )
        .route("/v1/intents/notice", get(intents::notice))
        .route("/v1/me/intents", get(intents::mine).post(intents::publish))
        .route("/v1/me/intents/{id}/withdraw", post(intents::withdraw))
        .route("/v1/me/intents/{id}/accept", post(intents::accept))
        .route(
            "/v1/me/intents/{id}/answers/{answer}/report",
            post(intents::report),
        )
        .route(
            "/v1/org/intents/subscription",
            get(intents::subscription).put(intents::subscribe),
        )
        .route("/v1/org/intents", get(intents::feed))
        .route("/v1/org/intents/counts", get(intents::counts))
        .route("/v1/org/intents/{id}", get(intents::one))
        .route("/v1/org/intents/{id}/answers", post(intents::answer))
        .route("/v1/org/intent-answers", get(intents::answers))
        .route(
            "/v1/org/attestations",
            get(credentials::attestations).post(credentials::issue_attestation),
        )
        .route(
            "/v1/org/attestations/{id}/present",
            post(credentials::present_attestation),
        )
        .route(
            "/v1/org/intent-audience/challenges",
            post(credentials::audience_challenge),
        )
        .route(
            "/v1/org/intent-audience/proofs",
            get(credentials::audience_proofs).post(credentials::prove_audience),
        )
        .route("/v1/org/trust/receipts", post(trust::submit))
        .route("/v1/org/trust/insights", post(trust::ask))
        .route("/v1/org/trust/budget", get(trust::budget))
        .route("/v1/org/trust/keys", post(trust::keys))
        .route("/v1/org/trust/shared/{from}", get(trust::shared))
        .route("/v1/org/trust/loyalty/earn", post(trust::earn))
        .route("/v1/org/trust/loyalty/redeem", post(trust::redeem))
        .route("/v1/me/trust", get(trust::mine))
        .route("/v1/me/trust/cards/{org}", get(trust::card))
        .route("/v1/me/trust/loyalty/tokens", post(trust::token))
        .route("/v1/me/trust/sharing", post(trust::share))
        .route("/v1/me/trust/forward", post(trust::forward))
        .route(
            "/v1/me/trust/sharing/{id}",
            axum::routing::delete(trust::withdraw),
        )
        .merge(optout::router())
        .merge(portability::router())
}
