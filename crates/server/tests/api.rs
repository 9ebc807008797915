//! The HTTP API, end to end: the real router served on 127.0.0.1:0 over a fresh
//! database, on SQLite and on PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

mod common;

use common::{start, Srv, TTL};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
fn note(text: &str) -> Value {
    json!({"kind": "note", "text": text})
}

fn receipt() -> Value {
    json!({"kind": "receipt", "merchant": "Corner Co-op", "items": [{"name": "Oat milk", "category": "food.dairy-alternatives",
        "quantity": 2, "unit_price": {"minor": 189, "currency": "EUR"}}], "total": {"minor": 378, "currency": "EUR"},
        "purchased_at": "2026-11-20T17:03:00Z"})
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn member_flow_crud_and_audit() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (st, health) = s.req(Method::GET, "/healthz", None, None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            health["backend"],
            if db == Db::Sqlite {
                "sqlite"
            } else {
                "postgres"
            }
        );

        let token = s.member("Alice@Example.org").await;
        // A second sign-up of the address answers as any sign-up does; the
        // message to the address says it has an account, with no token.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/members",
                None,
                Some(json!({"email": "alice@example.org", "passphrase": "another passphrase"})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["status"], "confirmation_sent");
        let mails = s.outbox_to("alice@example.org");
        assert_eq!(mails.len(), 2);
        assert!(mails[1].contains("You already have a me2b account"));
        assert!(!mails[1].contains(me2b_vault::CONFIRM_PREFIX));

        let (st, me) = s.req(Method::GET, "/v1/me", Some(&token), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(me["email"], "alice@example.org");
        assert_eq!(me["records"], 0);

        let (st, created) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&token),
                Some(receipt()),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{created}");
        assert_eq!(created["content"], receipt());
        assert_eq!(created["revision"], 1);
        let id = created["id"].as_str().unwrap().to_owned();

        let (st, read) = s
            .req(
                Method::GET,
                &format!("/v1/vault/records/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(read["content"], receipt());

        let (st, upd) = s
            .req(
                Method::PUT,
                &format!("/v1/vault/records/{id}?if_revision=1"),
                Some(&token),
                Some(note("changed my mind")),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{upd}");
        assert_eq!(upd["revision"], 2);
        let (st, v) = s
            .req(
                Method::PUT,
                &format!("/v1/vault/records/{id}?if_revision=1"),
                Some(&token),
                Some(note("stale")),
            )
            .await;
        assert_error(st, &v, StatusCode::CONFLICT, "revision_conflict");

        for i in 0..3 {
            s.clock.advance_seconds(1);
            s.req(
                Method::POST,
                "/v1/vault/records",
                Some(&token),
                Some(note(&format!("n{i}"))),
            )
            .await;
        }
        let (st, page) = s
            .req(
                Method::GET,
                "/v1/vault/records?limit=2&offset=1",
                Some(&token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(page["records"].as_array().unwrap().len(), 2);
        assert_eq!(page["records"][0]["content"]["text"], "n0");

        let (st, _) = s
            .req(
                Method::DELETE,
                &format!("/v1/vault/records/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, v) = s
            .req(
                Method::GET,
                &format!("/v1/vault/records/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_error(st, &v, StatusCode::NOT_FOUND, "not_found");

        // The member reads what happened to their data, without personal values.
        let (st, audit) = s.req(Method::GET, "/v1/me/audit", Some(&token), None).await;
        assert_eq!(st, StatusCode::OK);
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in [
            "member.signup",
            "key.data.create",
            "member.read",
            "vault.record.create",
            "vault.record.read",
            "vault.record.update",
            "vault.record.delete",
            "vault.record.list",
        ] {
            assert!(actions.contains(&a), "{a} missing from {actions:?}");
        }
        let text = audit.to_string();
        assert!(
            !text.contains("alice")
                && !text.contains("Corner")
                && !text.contains("changed my mind"),
            "{text}"
        );

        // Log in again, log out, and the old token is dead.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"email": "alice@example.org", "passphrase": "wrong passphrase!"})),
            )
            .await;
        assert_error(st, &v, StatusCode::UNAUTHORIZED, "invalid_credentials");
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"email": "nobody@example.org", "passphrase": "wrong passphrase!"})),
            )
            .await;
        assert_error(st, &v, StatusCode::UNAUTHORIZED, "invalid_credentials");
        let (st, login) = s
            .req(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"email": "alice@example.org", "passphrase": "correct horse battery"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let t2 = login["token"].as_str().unwrap();
        let (st, _) = s
            .req(Method::DELETE, "/v1/sessions/current", Some(t2), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, v) = s.req(Method::GET, "/v1/me", Some(t2), None).await;
        assert_error(st, &v, StatusCode::UNAUTHORIZED, "invalid_token");
        // The failed attempt on Alice's account is in her log.
        let (_, audit) = s
            .req(Method::GET, "/v1/me/audit?limit=1000", Some(&token), None)
            .await;
        assert!(audit.to_string().contains("member.login.failed"), "{audit}");
    }
}

#[tokio::test]
async fn an_interest_names_a_topic_of_the_taxonomy() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let token = s.member("dana@example.org").await;
        let t = Some(token.as_str());
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                t,
                Some(json!({"kind": "interest", "topic": "cycling"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let unknown = json!({"kind": "interest", "topic": "no-such-topic-xyz"});
        let (st, v) = s
            .req(Method::POST, "/v1/vault/records", t, Some(unknown.clone()))
            .await;
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        assert!(!v.to_string().contains("no-such-topic-xyz"), "{v}");
        let (st, v) = s
            .req(
                Method::PUT,
                &format!("/v1/vault/records/{id}"),
                t,
                Some(unknown),
            )
            .await;
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        let (st, v) = s.req(Method::GET, "/v1/vault/records", t, None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v.to_string().matches("\"interest\"").count(), 1, "{v}");
    }
}

#[tokio::test]
async fn sessions_expire() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let token = s.member("bob@example.org").await;
    let (st, _) = s.req(Method::GET, "/v1/me", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK);
    s.clock.advance_seconds(TTL + 1);
    let (st, v) = s.req(Method::GET, "/v1/me", Some(&token), None).await;
    assert_error(st, &v, StatusCode::UNAUTHORIZED, "session_expired");
    let (st, v) = s.req(Method::GET, "/v1/me", Some(&token), None).await;
    assert_error(st, &v, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn bad_input_is_4xx_json_never_500() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let token = s.member("carol@example.org").await;
    let t = Some(token.as_str());
    let json_ct = Some("application/json");
    let cases: Vec<(
        Method,
        &str,
        Option<&str>,
        Option<&str>,
        Vec<u8>,
        StatusCode,
        &str,
    )> = vec![
        (
            Method::POST,
            "/v1/vault/records",
            t,
            json_ct,
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            "/v1/vault/records",
            t,
            json_ct,
            b"{\"kind\":\"note\",\"text\":\"a\"} trailing".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            "/v1/vault/records",
            t,
            json_ct,
            b"{\"kind\":\"note\",\"text\":\"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            "/v1/vault/records",
            t,
            json_ct,
            b"{\"kind\":\"note\",\"text\":5}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Method::POST,
            "/v1/vault/records",
            t,
            json_ct,
            b"{\"kind\":\"note\",\"text\":\"x\",\"secret_field\":1}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Method::POST,
            "/v1/vault/records",
            t,
            json_ct,
            b"{\"kind\":\"tattoo\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Method::POST,
            "/v1/vault/records",
            t,
            Some("text/plain"),
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/v1/vault/records",
            t,
            None,
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/v1/vault/records",
            t,
            json_ct,
            [
                b"{\"kind\":\"note\",\"text\":\"".to_vec(),
                vec![b'a'; 300_000],
                b"\"}".to_vec(),
            ]
            .concat(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::POST,
            "/v1/members",
            None,
            json_ct,
            b"{\"email\":\"x\",\"passphrase\":\"correct horse battery\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Method::POST,
            "/v1/members",
            None,
            json_ct,
            b"{\"email\":\"dave@example.org\",\"passphrase\":\"short\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Method::GET,
            "/v1/vault/records",
            None,
            None,
            vec![],
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            Method::GET,
            "/v1/vault/records",
            Some("me2b_s_forgedforgedforgedforgedforgedforgedforg"),
            None,
            vec![],
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            Method::GET,
            "/v1/vault/records",
            Some("garbage"),
            None,
            vec![],
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            Method::GET,
            "/v1/vault/records",
            Some("me2b_k_forgedforgedforgedforgedforgedforgedforg"),
            None,
            vec![],
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            Method::GET,
            "/v1/vault/records?limit=lots",
            t,
            None,
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            Method::GET,
            "/v1/vault/records?sort=name",
            t,
            None,
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            Method::GET,
            "/v1/vault/records/not-a-uuid",
            t,
            None,
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/v1/nothing-here",
            None,
            None,
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::PATCH,
            "/v1/me",
            t,
            None,
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/v1/org",
            t,
            None,
            vec![],
            StatusCode::FORBIDDEN,
            "organisation_only",
        ),
    ];
    for (m, path, tok, ct, body, status, code) in cases {
        let (st, v) = s.raw(m.clone(), path, tok, ct, body).await;
        assert_error(st, &v, status, code);
        assert!(
            !v.to_string().contains("\\u00ff") && !v.to_string().contains("secret_field\":1"),
            "{v}"
        );
    }
    // A malformed header value (not visible ASCII) is a 401, not a 500.
    let bad = reqwest::header::HeaderValue::from_bytes(b"Bearer \xffx").unwrap();
    let r = s
        .http
        .get(format!("{}/v1/me", s.base))
        .header("authorization", bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Error messages never echo submitted values.
    let (_, v) = s.raw(Method::POST, "/v1/vault/records", t, json_ct, br#"{"kind":"receipt","merchant":"Corner","items":"SECRET-VALUE","total":{"minor":1,"currency":"EUR"},"purchased_at":"2026-01-01T00:00:00Z"}"#.to_vec()).await;
    assert!(!v.to_string().contains("SECRET-VALUE"), "{v}");
}

/// Every member route in the OpenAPI document, as (method, path with `{id}`).
async fn member_routes(s: &Srv) -> Vec<(Method, String)> {
    let (_, doc) = s.req(Method::GET, "/openapi.json", None, None).await;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let tags = op["tags"].as_array().cloned().unwrap_or_default();
            if tags.iter().any(|t| t == "member") && op.get("security").is_some() {
                out.push((
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    path.clone(),
                ));
            }
        }
    }
    assert!(out.len() >= 9, "too few member routes found: {out:?}");
    out
}

fn body_for(m: &Method, path: &str) -> Option<Value> {
    if path.ends_with("/grant") {
        return Some(json!({}));
    }
    if path.ends_with("/answer") {
        return Some(json!({"answer": "accept", "share_contact": true}));
    }
    if path.starts_with("/v1/me/intents/") && path.ends_with("/accept") {
        return Some(json!({"answer_id": "00".repeat(16)}));
    }
    if path.starts_with("/v1/me/intents/") && path.ends_with("/report") {
        return Some(json!({"reason": "intruder"}));
    }
    if path.ends_with("/present") || path.ends_with("/preview") {
        return Some(
            json!({"challenge": {"nonce": "ab".repeat(32), "verifier_id": "intruder",
            "accepted_keys": [], "issuers": [], "required_values": {}, "required_claims": [], "status_check": false}}),
        );
    }
    if path == "/v1/me/credentials" && m == Method::POST {
        return Some(json!({"code": "0000-0000-0000-0000-0000-0000"}));
    }
    match (m.as_str(), path) {
        ("POST", _) | ("PUT", _) => Some(note("intruder")),
        ("DELETE", "/v1/me") => Some(json!({"passphrase": "correct horse battery"})),
        _ => None,
    }
}

#[tokio::test]
async fn organisations_are_refused_on_every_member_route() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let alice = s.member("alice@example.org").await;
        let (_, rec) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&alice),
                Some(receipt()),
            )
            .await;
        let id = rec["id"].as_str().unwrap().to_owned();
        let (org_id, key) = s.org("Corner Co-op").await;
        let (st, who) = s.req(Method::GET, "/v1/org", Some(&key), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(who["roles"], json!(["admin", "consent"]));
        for (m, path) in member_routes(&s).await {
            let p = path.replace("{id}", &id);
            let (st, v) = s.req(m.clone(), &p, Some(&key), body_for(&m, &path)).await;
            assert_error(st, &v, StatusCode::FORBIDDEN, "organisation_forbidden");
            let text = v.to_string();
            assert!(
                !text.contains("Corner Co-op") && !text.contains("alice") && !text.contains(&id),
                "{db:?} {m} {p}: {text}"
            );
        }
        // Nothing changed for Alice.
        let (st, read) = s
            .req(
                Method::GET,
                &format!("/v1/vault/records/{id}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(read["content"], receipt());
        // A deleted organisation's key is refused, and so is every later replay.
        s.node.orgs.delete(org_id).await.unwrap();
        for _ in 0..2 {
            let (st, v) = s
                .req(Method::GET, "/v1/vault/records", Some(&key), None)
                .await;
            assert_error(st, &v, StatusCode::UNAUTHORIZED, "api_key_revoked");
        }
    }
}

#[tokio::test]
async fn members_cannot_reach_each_others_records_on_any_route() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let alice = s.member("alice@example.org").await;
        let mallory = s.member("mallory@example.org").await;
        let (_, rec) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&alice),
                Some(receipt()),
            )
            .await;
        let id = rec["id"].as_str().unwrap().to_owned();
        for (m, path) in member_routes(&s).await {
            if (path == "/v1/me" && m == Method::DELETE) || path == "/v1/sessions/current" {
                continue; // end Mallory's own account or session: checked below
            }
            let p = path.replace("{id}", &id);
            let (st, v) = s
                .req(m.clone(), &p, Some(&mallory), body_for(&m, &path))
                .await;
            let text = v.to_string();
            assert!(
                !text.contains("Corner Co-op") && !text.contains("alice"),
                "{db:?} {m} {p} leaked: {text}"
            );
            if path.starts_with("/v1/me/intents/") {
                // An intent's id is no record id: unknown, like any other.
                assert_error(st, &v, StatusCode::NOT_FOUND, "intent_not_found");
            } else if path.contains("{id}") {
                assert_error(st, &v, StatusCode::NOT_FOUND, "not_found");
            }
        }
        let (_, list) = s
            .req(Method::GET, "/v1/vault/records", Some(&mallory), None)
            .await;
        assert!(
            list["records"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["content"]["text"] == "intruder"),
            "{list}"
        );
        let (_, audit) = s
            .req(Method::GET, "/v1/me/audit", Some(&mallory), None)
            .await;
        assert!(
            !audit.to_string().contains(&id),
            "Mallory's log must not show Alice's record: {audit}"
        );
        // Mallory erasing herself leaves Alice untouched.
        let (st, _) = s
            .req(
                Method::DELETE,
                "/v1/me",
                Some(&mallory),
                Some(json!({"passphrase": "correct horse battery"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, read) = s
            .req(
                Method::GET,
                &format!("/v1/vault/records/{id}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(read["content"], receipt());
        // Untouched through the whole walk.
        assert_eq!(read["revision"], 1);
    }
}

#[tokio::test]
async fn erasure_shreds_then_deletes() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let token = s.member("erin@example.org").await;
        let (_, rec) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&token),
                Some(receipt()),
            )
            .await;
        let id: me2b_domain::RecordId = rec["id"].as_str().unwrap().parse().unwrap();
        let (_, me) = s.req(Method::GET, "/v1/me", Some(&token), None).await;
        let member: me2b_domain::MemberId = me["member_id"].as_str().unwrap().parse().unwrap();
        let (st, v) = s
            .req(
                Method::DELETE,
                "/v1/me",
                Some(&token),
                Some(json!({"passphrase": "not my passphrase"})),
            )
            .await;
        assert_error(st, &v, StatusCode::UNAUTHORIZED, "invalid_credentials");
        let (st, _) = s
            .req(
                Method::DELETE,
                "/v1/me",
                Some(&token),
                Some(json!({"passphrase": "correct horse battery"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        // Every secret is gone at once; the account row (and any consent)
        // stays, empty, until the erasure is released with its batch.
        let row = s.node.store.member(member).await.unwrap().unwrap();
        assert!(row.erasing && row.passphrase_wrap.is_none() && row.recovery_wrap.is_none());
        assert!(s.node.store.record(member, id).await.unwrap().is_none());
        let (st, v) = s.req(Method::GET, "/v1/me", Some(&token), None).await;
        assert_error(st, &v, StatusCode::UNAUTHORIZED, "invalid_token");
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"email": "erin@example.org", "passphrase": "correct horse battery"})),
            )
            .await;
        assert_error(st, &v, StatusCode::UNAUTHORIZED, "invalid_credentials");
        // The same address can sign up again: a new member, with nothing of the old.
        let t2 = s.member("erin@example.org").await;
        let (_, list) = s
            .req(Method::GET, "/v1/vault/records", Some(&t2), None)
            .await;
        assert_eq!(list["records"], json!([]));
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        let (st, _) = s.req(Method::GET, "/healthz", None, None).await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            s.node.store.member(member).await.unwrap().is_none(),
            "{:?}: released",
            s.db
        );
    }
}

#[tokio::test]
async fn a_corrupted_ciphertext_is_an_integrity_error_never_garbage() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let token = s.member("frank@example.org").await;
    let (_, rec) = s
        .req(
            Method::POST,
            "/v1/vault/records",
            Some(&token),
            Some(note("intact")),
        )
        .await;
    let id = rec["id"].as_str().unwrap().to_owned();
    let pool = sqlx_pool(&s.t.url).await;
    flip_last_byte(&pool).await;
    let (st, v) = s
        .req(
            Method::GET,
            &format!("/v1/vault/records/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_error(st, &v, StatusCode::INTERNAL_SERVER_ERROR, "integrity_error");
    assert!(!v.to_string().contains("intact"));
}

async fn sqlx_pool(url: &str) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(url).await.unwrap()
}

async fn flip_last_byte(pool: &sqlx::SqlitePool) {
    let ct: Vec<u8> = sqlx::query_scalar("SELECT ciphertext FROM vault_records")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut bad = ct.clone();
    *bad.last_mut().unwrap() ^= 1;
    sqlx::query("UPDATE vault_records SET ciphertext = $1")
        .bind(bad)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn openapi_and_node_keys_are_published() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (st, doc) = s.req(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/v1/members",
        "/v1/sessions",
        "/v1/me",
        "/v1/me/audit",
        "/v1/vault/records",
        "/v1/vault/records/{id}",
        "/v1/org",
        "/healthz",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"].get("RecordContent").is_some());
    // Every reference resolves: a dangling one leaves its parameter or body
    // unchecked by clients and by schemathesis (it skipped `?format` of the
    // export until the schema was inlined).
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
    let (st, keys) = s
        .req(Method::GET, "/.well-known/me2b/node-keys", None, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(keys["keys"][0]["kid"], s.node.keys.verifying_key().key_id());
    // No response is cacheable.
    let r = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // The bench route is off unless asked for.
    let (st, _) = s.req(Method::GET, "/bench/constant", None, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Every `$ref` in an OpenAPI document.
fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", serde_json::Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

mod fuzzish {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// Arbitrary bodies to the record route never produce a 5xx.
        #[test]
        fn arbitrary_record_bodies_are_never_5xx(body in proptest::collection::vec(any::<u8>(), 0..300), json_like in "\\{\"kind\":\"(note|receipt|interest|profile_attribute)\"[ -~]{0,80}\\}") {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let s = start(Db::Sqlite).await.unwrap();
                let token = s.member("prop@example.org").await;
                for b in [body.clone(), json_like.clone().into_bytes()] {
                    let (st, v) = s.raw(Method::POST, "/v1/vault/records", Some(&token), Some("application/json"), b).await;
                    assert!(st.is_client_error() || st == StatusCode::CREATED, "{st} {v}");
                }
            });
        }
    }
}

/// Inserts a member as an older node made them: the data key wrapped under
/// the master key, the passphrase as an Argon2id PHC string.
async fn legacy_member(s: &Srv, db: Db, email: &str, passphrase: &str) -> me2b_domain::MemberId {
    use me2b_crypto::{Aad, DataKey, PassphraseHasher, PassphraseParams, SeededRandom};
    let rng = SeededRandom::new(email.len() as u64);
    let id = me2b_domain::MemberId::generate(&rng);
    let dek = DataKey::generate(&rng);
    let addr = me2b_domain::member::Email::parse(email).unwrap();
    let hasher = PassphraseHasher::new(PassphraseParams::INSECURE_FAST_FOR_TESTS, &rng).unwrap();
    let sql = "INSERT INTO members (member_id, email_index, email_ct, passphrase_hash, wrapped_dek, state, created_at) \
               VALUES ($1, $2, $3, $4, $5, 'active', $6)";
    let phc = hasher
        .hash(
            me2b_domain::member::Passphrase::parse(passphrase.to_owned()).unwrap(),
            std::sync::Arc::new(SeededRandom::new(7)),
        )
        .await
        .unwrap();
    let (index, ct, phc, wrap, at) = (
        s.node.keys.email_index(&addr).to_vec(),
        dek.seal(&rng, &Aad::email(id), email.as_bytes()),
        phc,
        s.node.keys.legacy_wrap(id, &dek, &rng),
        me2b_domain::Clock::now(s.clock.as_ref()).unix_millis(),
    );
    macro_rules! insert {
        ($pool:expr) => {{
            let pool = $pool;
            sqlx::query(sql)
                .bind(id.as_bytes().to_vec())
                .bind(index)
                .bind(ct)
                .bind(phc)
                .bind(wrap)
                .bind(at)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }};
    }
    match db {
        Db::Sqlite => insert!(sqlx::SqlitePool::connect(&s.t.url).await.unwrap()),
        Db::Postgres => insert!(sqlx::PgPool::connect(&s.t.url).await.unwrap()),
    }
    id
}

#[tokio::test]
async fn members_on_the_master_key_move_at_login_and_those_who_stay_away_are_warned_then_erased() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let stays = "stays@example.org";
        legacy_member(&s, db, "returns@example.org", "old node passphrase").await;
        let away = legacy_member(&s, db, stays, "never used again").await;
        assert_eq!(s.node.vault.legacy_member_count().await.unwrap(), 2);

        // The one who comes back: the login moves the key and shows a new
        // recovery code once; the address (encrypted under the key) reads.
        let login = json!({"email": "returns@example.org", "passphrase": "old node passphrase"});
        let (st, v) = s
            .req(Method::POST, "/v1/sessions", None, Some(login.clone()))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert!(v["recovery_code"].is_string(), "{v}");
        let token = v["token"].as_str().unwrap().to_owned();
        let (st, me) = s.req(Method::GET, "/v1/me", Some(&token), None).await;
        assert_eq!(
            (st, me["email"].as_str()),
            (StatusCode::OK, Some("returns@example.org")),
            "{me}"
        );
        assert_eq!(s.node.vault.legacy_member_count().await.unwrap(), 1);
        let (st, v) = s.req(Method::POST, "/v1/sessions", None, Some(login)).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert!(v["recovery_code"].is_null(), "shown once: {v}");

        // The one who stays away: warned after the inactivity limit, erased
        // after the grace period, with the master-key wrap.
        let day = 86_400;
        let r = s
            .node
            .vault
            .retire_legacy_wraps(30 * day, 7 * day)
            .await
            .unwrap();
        assert_eq!(
            (r.legacy, r.warned, r.erased),
            (1, 0, 0),
            "{r:?}: still active"
        );
        s.clock.advance_seconds(31 * day);
        let r = s
            .node
            .vault
            .retire_legacy_wraps(30 * day, 7 * day)
            .await
            .unwrap();
        assert_eq!((r.warned, r.erased), (1, 0), "{r:?}");
        assert!(
            s.outbox_to(stays)
                .last()
                .is_some_and(|m| m.contains("log in")),
            "{:?}",
            s.outbox_to(stays)
        );
        let r = s
            .node
            .vault
            .retire_legacy_wraps(30 * day, 7 * day)
            .await
            .unwrap();
        assert_eq!((r.warned, r.erased, r.waiting), (0, 0, 1), "{r:?}: once");
        s.clock.advance_seconds(7 * day);
        let r = s
            .node
            .vault
            .retire_legacy_wraps(30 * day, 7 * day)
            .await
            .unwrap();
        assert_eq!(r.erased, 1, "{r:?}");
        assert_eq!(s.node.vault.legacy_member_count().await.unwrap(), 0);
        let row = s.node.store.member(away).await.unwrap();
        assert!(
            row.is_none_or(|m| m.wrapped_dek.is_none()),
            "{db:?}: the wrap is gone"
        );
    }
}
