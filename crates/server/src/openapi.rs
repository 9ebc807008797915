//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes::{
    consent, credentials, erasure, intents, members, meta, offers, optout, orgs, portability,
    rectification, trust, vault,
};
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
        trust::submit, trust::ask, trust::budget, trust::keys, trust::shared, trust::earn,
        trust::redeem, trust::mine, trust::card, trust::token, trust::share, trust::withdraw,
        trust::forward,
        credentials::issuers, credentials::status_list, credentials::create_code,
        credentials::revoke, credentials::challenge, credentials::verify, credentials::redeem,
        credentials::mine, credentials::present, credentials::preview, credentials::issue_attestation,
        credentials::attestations, credentials::present_attestation,
        credentials::audience_challenge, credentials::prove_audience, credentials::audience_proofs,
        erasure::list, erasure::confirm, erasure::status, erasure::set_webhook, erasure::get_webhook, erasure::delete_webhook,
        rectification::list, rectification::confirm, rectification::mine,
        optout::opt_out, optout::status, optout::opt_in, optout::new_code,
        optout::public_optout, optout::desk_optout,
        portability::export, portability::import,
        intents::notice, intents::publish, intents::mine, intents::withdraw, intents::accept,
        intents::report, intents::subscribe, intents::subscription, intents::feed, intents::one,
        intents::answer, intents::answers, intents::counts,
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

/// The document served at `/openapi.json`: utoipa's, with what utoipa
/// cannot say added (JSON Schema keywords its types do not carry).
pub fn document() -> serde_json::Value {
    let mut v = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    drop_unique_items(&mut v);
    bounds_of_newtypes(&mut v);
    inline_tagged_variants(&mut v);
    v
}

/// Sets in the API (a `BTreeSet`) take duplicates and keep one: their schema
/// says so (utoipa marks them `uniqueItems`, which the server does not refuse).
fn drop_unique_items(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove("uniqueItems");
            o.values_mut().for_each(drop_unique_items);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_unique_items),
        _ => {}
    }
}

/// What the domain's newtypes accept that utoipa cannot say on a newtype:
/// their lengths, ranges and sizes (each the type's own check).
fn bounds_of_newtypes(doc: &mut serde_json::Value) {
    use me2b_domain::text::{Label, LongText};
    let schemas = &mut doc["components"]["schemas"];
    let set = |s: &mut serde_json::Value, bounds: serde_json::Value| {
        if let (Some(o), Some(b)) = (s.as_object_mut(), bounds.as_object()) {
            for (k, v) in b {
                o.insert(k.clone(), v.clone());
            }
        }
    };
    set(
        &mut schemas["Label"],
        serde_json::json!({"minLength": 1, "maxLength": Label::MAX_CHARS}),
    );
    set(
        &mut schemas["LongText"],
        serde_json::json!({"minLength": 1, "maxLength": LongText::MAX_CHARS}),
    );
    set(
        &mut schemas["Quantity"],
        serde_json::json!({"minimum": 1, "maximum": 100_000}),
    );
    // Offer ids are the keys of what was shown, each with its days.
    set(
        &mut schemas["OfferHistory"]["properties"]["shown"],
        serde_json::json!({
            "propertyNames": {"pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"},
            "additionalProperties": {"type": "array", "items": {"type": "integer", "format": "int64"}},
        }),
    );
    set(
        &mut schemas["ReceiptItems"],
        serde_json::json!({"minItems": 1, "maxItems": me2b_domain::record::MAX_RECEIPT_ITEMS}),
    );
}

/// utoipa writes a variant of an internally tagged enum (`#[serde(tag =
/// "kind")]`) as `allOf: [$ref to the variant's struct, {kind}]`; with the
/// struct's `additionalProperties: false` (serde's `deny_unknown_fields`)
/// nothing satisfies that, so no client or fuzzer could build a body for,
/// say, a vault record. Each such variant becomes the struct's own schema
/// with the tag added.
fn inline_tagged_variants(doc: &mut serde_json::Value) {
    use serde_json::Value;
    let schemas = doc["components"]["schemas"].clone();
    fn walk(v: &mut Value, schemas: &Value) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Array(branches)) = o.get_mut("oneOf") {
                    for b in branches.iter_mut() {
                        if let Some(inlined) = inline(b, schemas) {
                            *b = inlined;
                        }
                    }
                }
                for child in o.values_mut() {
                    walk(child, schemas);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, schemas)),
            _ => {}
        }
    }
    fn inline(branch: &Value, schemas: &Value) -> Option<Value> {
        let parts = branch.get("allOf")?.as_array()?;
        let [first, tag] = parts.as_slice() else {
            return None;
        };
        let name = first.get("$ref")?.as_str()?.rsplit('/').next()?;
        let mut target = schemas.get(name)?.clone();
        let tag_props = tag.get("properties")?.as_object()?;
        let props = target.get_mut("properties")?.as_object_mut()?;
        for (k, v) in tag_props {
            props.insert(k.clone(), v.clone());
        }
        let required = target
            .as_object_mut()?
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let (Some(req), Some(tag_req)) = (required.as_array_mut(), tag.get("required")) {
            for r in tag_req.as_array()? {
                if !req.contains(r) {
                    req.push(r.clone());
                }
            }
        }
        Some(target)
    }
    walk(doc, &schemas);
}
