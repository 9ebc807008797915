//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes::{consent, credentials, members, meta, offers, orgs, trust, vault};
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
        members::sign_up, members::log_in, members::log_out, members::me, members::erase, members::audit,
        vault::list, vault::create, vault::read, vault::update, vault::delete,
        orgs::whoami,
        consent::vocabulary, consent::create_request, consent::list_requests, consent::request_consents,
        consent::data_access, consent::org_receipts, consent::pending, consent::grant, consent::refuse,
        consent::my_consents, consent::withdraw, consent::transparency,
        offers::taxonomy, offers::rule_context, offers::catalogue, offers::publish, offers::list,
        offers::endorse, offers::withdraw, offers::stats, offers::my_offers, offers::answer,
        offers::suggestions, offers::accept_suggestion, offers::reject_suggestion,
        trust::submit, trust::ask, trust::budget, trust::shared, trust::earn, trust::redeem,
        trust::mine, trust::card, trust::share, trust::withdraw, trust::forward,
        credentials::issuers, credentials::status_list, credentials::create_code,
        credentials::revoke, credentials::challenge, credentials::verify, credentials::redeem,
        credentials::mine, credentials::present,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, crate::error::ErrorCode)),
    modifiers(&Bearer, &CommonErrors),
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

/// Adds to every operation the error answers any route of its shape can
/// give, each with the registry's `ErrorBody`: a server error or a storage
/// outage (500, 503) anywhere; 401 and 403 where a token is needed; 400,
/// 413, 415 and 422 where a body is read; 400 and 404 where the path has an
/// id; 400 where there are query parameters. Answers a route documents
/// itself are kept.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = |what: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(format!("{what}: an `ErrorBody` (see `ErrorCode`)"))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let params = op.parameters.as_deref().unwrap_or_default();
                let has_path = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let has_query = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let body = op.request_body.is_some();
                let mut add: Vec<(&str, &str)> = vec![
                    ("500", "Internal error"),
                    (
                        "503",
                        "Storage or the audit log is unavailable, or the request timed out",
                    ),
                ];
                if secured {
                    add.push(("401", "No, or an invalid, token"));
                    add.push(("403", "This token may not use this route"));
                }
                if body {
                    add.push(("400", "The body is not JSON"));
                    add.push(("413", "The body is too large"));
                    add.push(("415", "The body is not application/json"));
                    add.push(("422", "The body does not match the schema"));
                }
                if has_path {
                    add.push(("400", "A path parameter is not valid"));
                    add.push(("404", "No such resource"));
                }
                if has_query {
                    add.push((
                        "400",
                        "A query parameter is unknown, malformed or out of range",
                    ));
                }
                for (status, what) in add {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(what));
                }
            }
        }
    }
}

/// The document served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
