//! Consent over the HTTP API, on SQLite and PostgreSQL: the consent story end to
//! end, GPC, and a walk over every route as an organisation without consent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{opened, start};
use me2b_domain::org::Role;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn vault_of(region: &str, topic: &str, merchant: &str) -> Vec<Value> {
    vec![
        json!({"kind": "profile_attribute", "name": "region", "value": region}),
        json!({"kind": "interest", "topic": topic}),
        json!({"kind": "receipt", "merchant": merchant, "items": [{"name": "Bread", "category": "food.bakery", "quantity": 1,
            "unit_price": {"minor": 300, "currency": "EUR"}}], "total": {"minor": 300, "currency": "EUR"}, "purchased_at": "2026-11-01T10:00:00Z"}),
        json!({"kind": "note", "text": format!("private note about {merchant}")}),
    ]
}

fn ask() -> Value {
    json!({"purposes": ["service-personalisation", "direct-marketing"], "categories": ["region", "interest", "purchase"],
           "processing": ["use"], "legal_basis": "consent", "retention_days": 90,
           "recipients": [], "notice": "We use what you share to send offers that fit you.", "notice_version": "2026-11"})
}

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_consent_story() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
        let ana = s
            .member_with(
                "ana@example.org",
                &vault_of("Utrecht", "cycling", "Ana-Merchant"),
            )
            .await;
        let bo = s
            .member_with(
                "bo@example.org",
                &vault_of("Amsterdam", "repair", "Bo-Merchant"),
            )
            .await;
        let cy = s
            .member_with(
                "cy@example.org",
                &vault_of("Groningen", "organic", "Cy-Merchant"),
            )
            .await;

        // Bad requests are refused with clear codes.
        let mut bad = ask();
        bad["purposes"] = json!(["mind-control"]);
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&key),
                Some(bad),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_term"),
            "{v}"
        );
        let mut health = ask();
        health["categories"] = json!(["health"]);
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&key),
                Some(health),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "special_category_requires_explicit_consent"
            ),
            "{v}"
        );

        let (st, req) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&key),
                Some(ask()),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{req}");
        let rid = req["id"].as_str().unwrap().to_owned();

        // Members see it in plain language.
        let (_, pending) = s
            .req(Method::GET, "/v1/me/consent-requests", Some(&ana), None)
            .await;
        assert_eq!(pending.as_array().unwrap().len(), 1);
        assert!(
            pending[0]["summary"]
                .as_str()
                .unwrap()
                .contains("Corner Co-op asks"),
            "{pending}"
        );
        assert!(!pending[0]["purposes"][0]["explanation"]
            .as_str()
            .unwrap()
            .is_empty());

        // Ana grants part (interest + region, for personalisation only), Bo grants all, Cy refuses.
        let (st, a) = s.req(Method::POST, &format!("/v1/me/consent-requests/{rid}/grant"), Some(&ana),
            Some(json!({"purposes": ["service-personalisation"], "categories": ["region", "interest"]}))).await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        assert_eq!(a["receipts"].as_array().unwrap().len(), 1);
        let (st, b) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{rid}/grant"),
                Some(&bo),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, _) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{rid}/refuse"),
                Some(&cy),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{rid}/grant"),
                Some(&cy),
                Some(json!({})),
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "already_answered"));

        // The co-op sees the answers at the next release of consent
        // changes, and reads data in the window that opens there.
        assert_eq!(s.release_and_open_window().await, 2, "{db:?}");

        // The co-op sees exactly what each decision allows.
        let access =
            |purpose: &str| json!({"request_id": rid, "purpose": purpose, "processing": "use"});
        let (st, got) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(&key),
                Some(access("service-personalisation")),
            )
            .await;
        let got = opened(&key, &got);
        assert_eq!(st, StatusCode::OK, "{got}");
        let ds = got["disclosures"].as_array().unwrap();
        assert_eq!(ds.len(), 2, "{got}");
        let text = got.to_string();
        assert!(
            text.contains("Utrecht") && text.contains("cycling") && !text.contains("Ana-Merchant"),
            "Ana: region+interest only: {text}"
        );
        assert!(
            text.contains("Bo-Merchant") && text.contains("Amsterdam"),
            "Bo: everything asked: {text}"
        );
        assert!(
            !text.contains("Cy-Merchant") && !text.contains("Groningen"),
            "Cy refused: {text}"
        );
        assert!(
            !text.contains("private note"),
            "notes are never disclosed: {text}"
        );
        let (st, got) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(&key),
                Some(access("direct-marketing")),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{got}");
        let got = opened(&key, &got);
        let text = got.to_string();
        assert!(
            !text.contains("Utrecht") && text.contains("Amsterdam"),
            "Ana did not consent to marketing: {text}"
        );

        // The co-op's view of consents: pseudonyms only, never refusals.
        let (_, cs) = s
            .req(
                Method::GET,
                &format!("/v1/org/consent-requests/{rid}/consents"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(cs.as_array().unwrap().len(), 2, "{cs}");
        assert!(cs.to_string().contains("sub_") && !cs.to_string().contains("example.org"));

        // Bo withdraws: effective at once; a new receipt for both sides.
        let bo_consent = b["consent_id"].as_str().unwrap();
        let (st, w) = s
            .req(
                Method::POST,
                &format!("/v1/me/consents/{bo_consent}/withdraw"),
                Some(&bo),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{w}");
        assert_eq!(w["status"], "withdrawn");
        assert_eq!(w["receipts"].as_array().unwrap().len(), 2);
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/consents/{bo_consent}/withdraw"),
                Some(&bo),
                None,
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "not_in_force"));
        // Inside the window: the data stops at once.
        let (st, got) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(&key),
                Some(access("service-personalisation")),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{got}");
        let got = opened(&key, &got);
        assert!(got.to_string().contains("Utrecht"), "Ana's stands: {got}");
        assert!(!got.to_string().contains("Amsterdam"), "withdrawn: {got}");
        // The withdrawal's receipt reaches the co-op at the next release.
        let (st, rs) = s
            .req(
                Method::GET,
                &format!("/v1/org/consents/{bo_consent}/receipts"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{rs}");
        assert_eq!(rs["receipts"].as_array().unwrap().len(), 1, "{db:?}: {rs}");
        assert_eq!(s.release_and_open_window().await, 1, "{db:?}");
        let (_, rs) = s
            .req(
                Method::GET,
                &format!("/v1/org/consents/{bo_consent}/receipts"),
                Some(&key),
                None,
            )
            .await;
        let kid = s.node.keys.verifying_key();
        let last =
            me2b_consent::receipt::verify(rs["receipts"][1].as_str().unwrap(), &kid).unwrap();
        assert_eq!(last.event, me2b_consent::ConsentStatus::Withdrawn);

        // Another member cannot withdraw Ana's consent; another org cannot read it.
        let a_consent = a["consent_id"].as_str().unwrap();
        let (st, _) = s
            .req(
                Method::POST,
                &format!("/v1/me/consents/{a_consent}/withdraw"),
                Some(&cy),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, key2) = s.org_with("Other Co-op", vec![Role::Consent]).await;
        let (st, _) = s
            .req(
                Method::GET,
                &format!("/v1/org/consents/{a_consent}/receipts"),
                Some(&key2),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(&key2),
                Some(access("service-personalisation")),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // Expiry: after the retention period nothing is disclosed.
        s.clock.advance_seconds(91 * 86_400);
        s.release_and_open_window().await;
        let (st, got) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(&key),
                Some(access("service-personalisation")),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{got}");
        let got = opened(&key, &got);
        assert_eq!(got["disclosures"], json!([]), "expired: {got}");

        // Transparency: Ana sees what the co-op read, when, why and under which consent.
        let (_, login) = s
            .req(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"email": "ana@example.org", "passphrase": "correct horse battery"})),
            )
            .await;
        let ana = login["token"].as_str().unwrap();
        let (st, tr) = s
            .req(Method::GET, "/v1/me/transparency", Some(ana), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{tr}");
        let org = &tr["organisations"][0];
        assert_eq!(org["organisation"], "Corner Co-op");
        let accesses = org["accesses"].as_array().unwrap();
        assert!(
            accesses.iter().any(|a| a["outcome"] == "permitted"
                && a["consent_id"] == a_consent
                && a["category"] == "region"),
            "{tr}"
        );
        assert!(
            accesses
                .iter()
                .any(|a| a["outcome"] == "denied" && a["reason"] == "purpose_not_consented"),
            "{tr}"
        );
        assert!(accesses.iter().any(|a| a["reason"] == "expired"), "{tr}");
    }
}

#[tokio::test]
async fn gpc_end_to_end() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (_, key) = s.org_with("Ad Co-op", vec![Role::Consent]).await;
    let mut a = ask();
    a["purposes"] = json!(["targeted-advertising", "direct-marketing"]);
    let (_, req) = s
        .req(
            Method::POST,
            "/v1/org/consent-requests",
            Some(&key),
            Some(a),
        )
        .await;
    let rid = req["id"].as_str().unwrap();
    let ana = s
        .member_with("ana@example.org", &vault_of("Utrecht", "cycling", "M"))
        .await;
    let (st, _) = s
        .req(
            Method::POST,
            &format!("/v1/me/consent-requests/{rid}/grant"),
            Some(&ana),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(s.release_and_open_window().await, 1);
    let body = |p: &str| json!({"request_id": rid, "purpose": p, "processing": "use"});
    let (_, got) = s
        .req(
            Method::POST,
            "/v1/org/data-access",
            Some(&key),
            Some(body("targeted-advertising")),
        )
        .await;
    let got = opened(&key, &got);
    assert!(got.to_string().contains("Utrecht"));
    // Any member request with Sec-GPC: 1 records the opt-out.
    s.clock.advance_seconds(1);
    let (st, _) = s
        .req_h(Method::GET, "/v1/me", Some(&ana), None, &[("sec-gpc", "1")])
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, got) = s
        .req(
            Method::POST,
            "/v1/org/data-access",
            Some(&key),
            Some(body("targeted-advertising")),
        )
        .await;
    let got = opened(&key, &got);
    assert_eq!(
        got["disclosures"],
        json!([]),
        "GPC opts out of targeted advertising: {got}"
    );
    let (_, got) = s
        .req(
            Method::POST,
            "/v1/org/data-access",
            Some(&key),
            Some(body("direct-marketing")),
        )
        .await;
    let got = opened(&key, &got);
    assert!(
        got.to_string().contains("Utrecht"),
        "first-party marketing consent stands: {got}"
    );
    let (_, tr) = s
        .req(Method::GET, "/v1/me/transparency", Some(&ana), None)
        .await;
    assert!(tr["gpc_opt_out_since"].is_string(), "{tr}");
    assert!(tr.to_string().contains("gpc_opt_out"), "{tr}");
    let (_, audit) = s
        .req(Method::GET, "/v1/me/audit?limit=1000", Some(&ana), None)
        .await;
    assert!(audit.to_string().contains("consent.gpc"));
}

/// A topic of the taxonomy no response to an organisation should ever name
/// (an interest names a taxonomy topic; the vault refuses any other).
const SECRET_TOPIC: &str = "dj-resources-and-equipment";

/// Walks every route of the OpenAPI document as an organisation (with every role)
/// that has no consent, and finds no member data in any response.
#[tokio::test]
async fn no_route_returns_member_data_to_an_organisation_without_consent() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s.org_with("Nosy Co-op", Role::ALL.to_vec()).await;
        let (_, other_key) = s.org_with("Trusted Co-op", vec![Role::Consent]).await;
        let ana = s
            .member_with(
                "ana.secret@example.org",
                &vault_of("Secretville", SECRET_TOPIC, "Secret-Merchant"),
            )
            .await;
        let (_, me) = s.req(Method::GET, "/v1/me", Some(&ana), None).await;
        let member_id = me["member_id"].as_str().unwrap().to_owned();
        let (_, recs) = s
            .req(Method::GET, "/v1/vault/records", Some(&ana), None)
            .await;
        let record_id = recs["records"][0]["id"].as_str().unwrap().to_owned();
        // Ana consents to another co-op, and refuses the nosy one.
        let (_, r1) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&other_key),
                Some(ask()),
            )
            .await;
        let (_, granted) = s
            .req(
                Method::POST,
                &format!(
                    "/v1/me/consent-requests/{}/grant",
                    r1["id"].as_str().unwrap()
                ),
                Some(&ana),
                Some(json!({})),
            )
            .await;
        let consent_id = granted["consent_id"].as_str().unwrap().to_owned();
        let (_, r2) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&key),
                Some(ask()),
            )
            .await;
        let nosy_rid = r2["id"].as_str().unwrap().to_owned();
        s.req(
            Method::POST,
            &format!("/v1/me/consent-requests/{nosy_rid}/refuse"),
            Some(&ana),
            None,
        )
        .await;
        // The other co-op sees Ana's consent, and data access answers: the
        // walk below reads every route as it would in the window.
        assert_eq!(s.release_and_open_window().await, 1, "{db:?}");

        let secrets = [
            "ana.secret",
            "Secretville",
            SECRET_TOPIC,
            "Secret-Merchant",
            member_id.as_str(),
            consent_id.as_str(),
        ];
        let (_, doc) = s.req(Method::GET, "/openapi.json", None, None).await;
        let mut walked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, _) in item.as_object().unwrap() {
                for id in [
                    record_id.as_str(),
                    consent_id.as_str(),
                    nosy_rid.as_str(),
                    r1["id"].as_str().unwrap(),
                    member_id.as_str(),
                ] {
                    let p = path.replace("{id}", id);
                    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    let body = match m.as_str() {
                        "POST" | "PUT" | "DELETE" => Some(if path == "/v1/org/data-access" {
                            json!({"request_id": nosy_rid, "purpose": "direct-marketing", "processing": "use"})
                        } else if path == "/v1/org/consent-requests" {
                            ask()
                        } else {
                            json!({})
                        }),
                        _ => None,
                    };
                    let (st, v) = s.req(m.clone(), &p, Some(&key), body).await;
                    assert!(!st.is_server_error(), "{db:?} {m} {p}: {st} {v}");
                    let text = v.to_string();
                    for secret in secrets {
                        // The interest's topic is a taxonomy topic: the public
                        // taxonomy names it, for everyone alike.
                        if secret == SECRET_TOPIC && p == "/v1/taxonomy" {
                            continue;
                        }
                        assert!(
                            !text.contains(secret),
                            "{db:?} {m} {p} returned member data ({secret}): {text}"
                        );
                    }
                    walked += 1;
                    if !path.contains("{id}") {
                        break;
                    }
                }
            }
        }
        assert!(walked >= 30, "walked only {walked} requests");
        // And the data-access route under its own refused request gives nothing.
        let (st, got) = s.req(Method::POST, "/v1/org/data-access", Some(&key),
            Some(json!({"request_id": nosy_rid, "purpose": "direct-marketing", "processing": "use"}))).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(got["disclosures"], json!([]));
    }
}
