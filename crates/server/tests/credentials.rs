//! Co-op credentials over the HTTP API, on SQLite and PostgreSQL: a co-op's
//! one-time code redeemed into a member's vault, a marketplace's challenge
//! answered twice with unlinkable presentations, replay and tampering refused,
//! revocation and expiry, and nothing personal in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, Srv};
use me2b_domain::org::Role;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

async fn challenge(s: &Srv, key: &str, body: Value) -> Value {
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/credentials/challenges",
            Some(key),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn present(s: &Srv, member: &str, id: &str, challenge: &Value) -> Value {
    let (st, v) = s
        .req(
            Method::POST,
            &format!("/v1/me/credentials/{id}/present"),
            Some(member),
            Some(json!({"challenge": challenge})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn verify(s: &Srv, key: &str, presentation: &Value) -> (StatusCode, Value) {
    s.raw(
        Method::POST,
        "/v1/org/credentials/verify",
        Some(key),
        Some("application/json"),
        serde_json::to_vec(presentation).unwrap(),
    )
    .await
}

/// Whether two hex strings share a run of 8 bytes (16 hex digits).
fn shares_8_bytes(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.windows(16).any(|w| b.windows(16).any(|x| x == w))
}

#[tokio::test]
async fn codes_presentations_replay_tampering_revocation_and_expiry() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (coop, coop_key) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
        let (_, shop_key) = s.org_with("Fair Market", vec![Role::Credentials]).await;
        let (_, no_role) = s.org_with("No Role", vec![Role::Consent]).await;
        let member = s.member("amara@example.org").await;
        let other = s.member("bo@example.org").await;

        // A code needs the role, and valid claims.
        let code_req = json!({"federation": "Fair Economy Federation", "tier": "founding",
            "region": "Noord-Holland", "member_since": 2019, "interests": ["cycling"]});
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/credentials/codes",
                Some(&no_role),
                Some(code_req.clone()),
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::FORBIDDEN, "role_required"));
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/credentials/codes",
                Some(&coop_key),
                Some(json!({"federation": "F", "tier": " padded", "region": "R", "member_since": 2019})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::BAD_REQUEST, "invalid_claim"),
            "{v}"
        );
        let (st, issued) = s
            .req(
                Method::POST,
                "/v1/org/credentials/codes",
                Some(&coop_key),
                Some(code_req.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{issued}");
        let code = issued["code"].as_str().unwrap().to_owned();
        assert_eq!(code.len(), 29, "{code}");

        // The member types it any old way; it works once.
        let typed = code.to_lowercase().replace('-', " ");
        let (st, held) = s
            .req(
                Method::POST,
                "/v1/me/credentials",
                Some(&member),
                Some(json!({"code": typed})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{db:?}: {held}");
        assert_eq!(held["claims"]["tier"], "founding");
        assert_eq!(held["claims"]["issuer"], coop.to_string());
        assert_eq!(held["status"], "valid");
        let id = held["id"].as_str().unwrap().to_owned();
        for who in [&member, &other] {
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/me/credentials",
                    Some(who),
                    Some(json!({"code": code})),
                )
                .await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::UNPROCESSABLE_ENTITY, "unknown_code")
            );
        }
        let (_, list) = s
            .req(Method::GET, "/v1/me/credentials", Some(&member), None)
            .await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        let (_, none) = s
            .req(Method::GET, "/v1/me/credentials", Some(&other), None)
            .await;
        assert_eq!(none, json!([]));

        // The issuer's key and status list are public.
        let (st, doc) = s
            .req(Method::GET, "/.well-known/me2b/issuers", None, None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let key_id = issued["issuer_key_id"].as_str().unwrap();
        assert_eq!(doc["issuers"][0]["key_id"], key_id);
        assert_eq!(doc["issuers"][0]["name"], "Corner Co-op");
        let (st, list) = s
            .req(
                Method::GET,
                &format!("/.well-known/me2b/status/{key_id}"),
                None,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(list["type"], "BitstringStatusList");

        // The marketplace asks twice; the member answers twice.
        let ask = json!({"federation": "Fair Economy Federation"});
        let c1 = challenge(&s, &shop_key, ask.clone()).await;
        let c2 = challenge(&s, &shop_key, ask.clone()).await;
        let p1 = present(&s, &member, &id, &c1).await;
        let p2 = present(&s, &member, &id, &c2).await;
        assert!(p1["discloses"].get("tier").is_none(), "{p1}");
        assert_eq!(
            p1["verifier"], "Fair Market",
            "the member sees whom they answer"
        );
        assert!(p1["discloses"].get("status_index").is_none(), "{p1}");
        let (st, v1) = verify(&s, &shop_key, &p1["presentation"]).await;
        assert_eq!(st, StatusCode::OK, "{db:?}: {v1}");
        let (st, v2) = verify(&s, &shop_key, &p2["presentation"]).await;
        assert_eq!(st, StatusCode::OK, "{v2}");
        assert_eq!(v1["issuer"], "Corner Co-op");
        assert_eq!(v1["disclosed"]["credential_type"], "coop-membership");
        assert_eq!(v1["disclosed"]["federation"], "Fair Economy Federation");
        assert!(v1["disclosed"].get("region").is_none());
        assert!(v1["disclosed"].get("member_since").is_none());
        assert_eq!(v1["disclosed"], v2["disclosed"]);
        // The two proofs share nothing the verifier could link them by.
        let (a, b) = (
            p1["presentation"]["proof"].as_str().unwrap(),
            p2["presentation"]["proof"].as_str().unwrap(),
        );
        assert!(!shares_8_bytes(a, b), "two presentations share a byte run");

        // A replay is refused, at the same verifier and at another.
        let (st, v) = verify(&s, &shop_key, &p1["presentation"]).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_challenge")
        );
        let (st, v) = verify(&s, &coop_key, &p2["presentation"]).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_challenge")
        );

        // Tampering: a later validity epoch breaks the proof.
        let c3 = challenge(&s, &shop_key, ask.clone()).await;
        let mut p3 = present(&s, &member, &id, &c3).await["presentation"].clone();
        let epoch: u64 = p3["disclosed"]["validity_epoch"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        p3["disclosed"]["validity_epoch"] = json!((epoch + 50).to_string());
        let (st, v) = verify(&s, &shop_key, &p3).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "proof_invalid"),
            "{v}"
        );
        // Malformed, oversized, wrong media type.
        let (st, v) = s
            .raw(
                Method::POST,
                "/v1/org/credentials/verify",
                Some(&shop_key),
                Some("application/json"),
                b"{\"nope\":1}".to_vec(),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "malformed_presentation")
        );
        let (st, v) = s
            .raw(
                Method::POST,
                "/v1/org/credentials/verify",
                Some(&shop_key),
                Some("application/json"),
                vec![b' '; 20_000],
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::PAYLOAD_TOO_LARGE, "oversized_input")
        );
        let (st, v) = s
            .raw(
                Method::POST,
                "/v1/org/credentials/verify",
                Some(&shop_key),
                Some("text/plain"),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(err(&v), "unsupported_media_type", "{st}");
        // A challenge the member's credential cannot meet.
        let c4 = challenge(&s, &shop_key, json!({"federation": "Other Federation"})).await;
        let p4 = present(&s, &member, &id, &c4).await;
        let (st, v) = verify(&s, &shop_key, &p4["presentation"]).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "claim_mismatch")
        );

        // Revocation, checked when the verifier asks for it.
        let index = issued["status_index"].as_u64().unwrap();
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/credentials/revoke",
                Some(&coop_key),
                Some(json!({"status_index": index})),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/credentials/revoke",
                Some(&shop_key),
                Some(json!({"status_index": index})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "only the issuer revokes its own");
        let c5 = challenge(
            &s,
            &shop_key,
            json!({"federation": "Fair Economy Federation", "status_check": true}),
        )
        .await;
        let p5 = present(&s, &member, &id, &c5).await;
        assert!(p5["discloses"].get("status_index").is_some());
        let (st, v) = verify(&s, &shop_key, &p5["presentation"]).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "revoked"),
            "{db:?}"
        );
        let (_, list) = s
            .req(Method::GET, "/v1/me/credentials", Some(&member), None)
            .await;
        assert_eq!(list[0]["status"], "revoked");

        // Expiry: a fresh credential (four weeks) fails five weeks later.
        let (_, issued2) = s
            .req(
                Method::POST,
                "/v1/org/credentials/codes",
                Some(&coop_key),
                Some(code_req.clone()),
            )
            .await;
        let (st, held2) = s
            .req(
                Method::POST,
                "/v1/me/credentials",
                Some(&other),
                Some(json!({"code": issued2["code"]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{held2}");
        let id2 = held2["id"].as_str().unwrap().to_owned();
        s.clock.advance_seconds(5 * 7 * 24 * 3600);
        // Sessions expired meanwhile: Bo logs in again.
        let c6 = challenge(&s, &shop_key, ask.clone()).await;
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"email": "bo@example.org", "passphrase": "correct horse battery"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let bo = v["token"].as_str().unwrap().to_owned();
        let p6 = present(&s, &bo, &id2, &c6).await;
        let (st, v) = verify(&s, &shop_key, &p6["presentation"]).await;
        assert_eq!((st, err(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "expired"));

        // The audit log holds the flow, but no code and no claim value.
        let entries = s.node.store.audit_entries(0, 100_000).await.unwrap();
        let log: String = entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.event_json).into_owned())
            .collect();
        for action in [
            "credential.code",
            "credential.issue",
            "credential.challenge",
            "credential.present",
            "credential.verify",
            "credential.revoke",
        ] {
            assert!(log.contains(action), "{action} not audited");
        }
        for secret in [
            code.as_str(),
            &code.replace('-', ""),
            "founding",
            "Noord-Holland",
            "cycling",
        ] {
            assert!(!log.contains(secret), "the audit log holds {secret:?}");
        }
    }
}
