//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes::{consent, credentials, intents, members, meta, offers, orgs, trust, vault};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "me2b",
        description = "Me2B personal data stores for co-operatives: a member's encrypted vault, reached by organisations only through consent.\n\nEvery error is `{\"error\": {\"code\", \"message\"}}`; see `ErrorDetail` for the codes.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        meta::healthz, meta::openapi, meta::node_keys,
        members::sign_up, members::confirm, members::log_in, members::recover, members::change_passphrase, members::log_out, members::me, members::erase, members::audit,
        vault::list, vault::create, vault::read, vault::update, vault::delete,
        orgs::whoami,
        consent::vocabulary, consent::create_request, consent::list_requests, consent::request_consents,
        consent::data_access, consent::org_receipts, consent::pending, consent::grant, consent::refuse,
        consent::my_consents, consent::withdraw, consent::transparency,
        offers::taxonomy, offers::rule_context, offers::catalogue, offers::publish, offers::list,
        offers::endorse, offers::withdraw, offers::stats, offers::my_offers, offers::answer,
        offers::suggestions, offers::accept_suggestion, offers::reject_suggestion,
        trust::submit, trust::ask, trust::budget, trust::keys, trust::shared, trust::earn, trust::redeem,
        trust::mine, trust::card, trust::share, trust::withdraw, trust::forward,
        credentials::issuers, credentials::status_list, credentials::create_code,
        credentials::revoke, credentials::challenge, credentials::verify, credentials::redeem,
        credentials::mine, credentials::present,
        intents::notice, intents::publish, intents::mine, intents::withdraw, intents::accept,
        intents::report, intents::subscribe, intents::subscription, intents::feed, intents::one,
        intents::answer, intents::answers, intents::counts,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&Bearer),
    tags(
        (name = "member", description = "A member's account and vault. Member session tokens only."),
        (name = "organisation", description = "Co-ops, brands and verifiers, by API key."),
        (name = "meta", description = "Health, this document, public keys."),
    )
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "Members: a session token (`me2b_s_…`) from POST /v1/sessions. Organisations: an API key (`me2b_k_…`).",
                        ))
                        .build(),
                ),
            );
        }
    }
}

/// The document served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
