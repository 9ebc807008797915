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
            // These tests' co-ops have a handful of members: every answer
            // is rare, and the member accepts (credentials_rare.rs tests
            // the warning).
            Some(json!({"challenge": challenge, "accept_rare": true})),
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
            "region": "NL-NH", "member_since": 2020, "interests": ["sports"]});
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
                Some(json!({"tier": " padded", "region": "R", "member_since": 2020})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::BAD_REQUEST, "invalid_claim"),
            "{v}"
        );
        // The federation is the node's: a code cannot name another.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/credentials/codes",
                Some(&coop_key),
                Some(
                    json!({"federation": "Fair Economy Federation 2", "tier": "member",
                    "region": "R", "member_since": 2020}),
                ),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::BAD_REQUEST, "invalid_parameter"),
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

        // The federation's key and status list are public, with the co-ops
        // that issue under it.
        let (st, doc) = s
            .req(Method::GET, "/.well-known/me2b/issuers", None, None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let key_id = issued["issuer_key_id"].as_str().unwrap();
        assert_eq!(doc["issuers"][0]["key_id"], key_id);
        assert_eq!(doc["issuers"][0]["federation"], "Fair Economy Federation");
        assert_eq!(doc["coops"][0]["name"], "Corner Co-op");
        assert_eq!(doc["coops"][0]["organisation"], coop.to_string());
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
        // A challenge rewritten in the shop's name to ask for more, or with
        // a nonce the shop never issued: the member's vault does not answer.
        let mut more = c1.clone();
        more["required_claims"] = json!(["region", "tier", "member_since"]);
        let mut unissued = c1.clone();
        unissued["nonce"] = json!("ab".repeat(32));
        for forged in [more, unissued] {
            let (st, v) = s
                .req(
                    Method::POST,
                    &format!("/v1/me/credentials/{id}/present"),
                    Some(&member),
                    Some(json!({"challenge": forged})),
                )
                .await;
            assert_eq!(err(&v), "unknown_challenge", "{db:?}: {st} {v}");
        }
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
        assert_eq!(v1["issuer"], Value::Null, "the co-op stays hidden");
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

        // Expiry: a fresh credential (valid to the end of the next four-week
        // period) fails nine weeks later.
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
        s.clock.advance_seconds(9 * 7 * 24 * 3600);
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
            "NL-NH",
            "sports",
        ] {
            assert!(!log.contains(secret), "the audit log holds {secret:?}");
        }
    }
}

// --- issue 12: nothing links a member across co-ops --------------------------------

const WEEK: i64 = 7 * 24 * 3600;
/// The federation's validity period (the node's default): four weeks,
/// aligned to week 0 of the Unix epoch.
const PERIOD_WEEKS: i64 = 4;
const FED: &str = "Fair Economy Federation";

async fn login(s: &Srv, email: &str) -> String {
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/sessions",
            None,
            Some(json!({"email": email, "passphrase": "correct horse battery"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

/// Moves the test clock to the first second of the next validity period.
fn to_next_period(s: &Srv) {
    let now = s.node.clock.now().unix_millis() / 1000;
    let period = PERIOD_WEEKS * WEEK;
    let next = (now / period + 1) * period;
    s.clock.advance_seconds(next - now);
}

async fn make_code(s: &Srv, key: &str, body: &Value) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/org/credentials/codes",
        Some(key),
        Some(body.clone()),
    )
    .await
}

async fn redeem(s: &Srv, token: &str, code: &Value) -> Value {
    let (st, held) = s
        .req(
            Method::POST,
            "/v1/me/credentials",
            Some(token),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{held}");
    held
}

/// (a) An issuer tries to tag one member by the validity epoch: it makes codes
/// at different times of one period, with every knob the code API offers,
/// and its members redeem them at different times of that period. Every
/// presentation must disclose the same epoch.
#[tokio::test]
async fn an_issuer_cannot_tag_a_member_by_the_validity_epoch() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, coop_key) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
        let (_, shop_key) = s.org_with("Fair Market", vec![Role::Credentials]).await;
        to_next_period(&s);
        let base = json!({"federation": FED, "tier": "member", "region": "NL-NH",
            "member_since": 2020, "interests": ["sports"]});
        let mut knobs = vec![base.clone()];
        for (field, value) in [
            ("valid_weeks", json!(1)),
            ("valid_weeks", json!(2)),
            ("valid_weeks", json!(26)),
            ("valid_weeks", json!(0)),
            ("valid_weeks", json!(4_000_000_000u32)),
            ("valid_weeks", json!(null)),
            ("tier", json!("founding")),
            ("region", json!("NL-UT")),
            ("member_since", json!(2015)),
            ("interests", json!([])),
            ("interests", json!(["fair-economy", "sports"])),
            ("validity_epoch", json!(1)),
            ("expires", json!("2030-01-01")),
        ] {
            let mut b = base.clone();
            b[field] = value;
            knobs.push(b);
        }
        // Codes made on different days of the period.
        let mut codes = Vec::new();
        for (i, body) in knobs.iter().enumerate() {
            let (st, v) = make_code(&s, &coop_key, body).await;
            if st == StatusCode::CREATED {
                codes.push(v["code"].clone());
            } else {
                assert!(st.is_client_error(), "{st} {v}");
            }
            if i % 3 == 2 {
                s.clock.advance_seconds(2 * 24 * 3600 + 3600);
            }
        }
        assert!(
            codes.len() >= 6,
            "too few codes to compare: {}",
            codes.len()
        );
        // The per-code validity is gone, with a clear refusal.
        let mut b = base.clone();
        b["valid_weeks"] = json!(4);
        let (st, v) = make_code(&s, &coop_key, &b).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        );
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field; expected"));
        // Redeemed on other days, still within the period.
        let mut held = Vec::new();
        for (i, code) in codes.iter().enumerate() {
            let email = format!("m{i}@example.org");
            let token = s.member(&email).await;
            held.push((email, redeem(&s, &token, code).await["id"].clone()));
            if i % 2 == 1 {
                s.clock.advance_seconds(24 * 3600 + 77);
            }
        }
        let elapsed = s.node.clock.now().unix_millis() / 1000 % (PERIOD_WEEKS * WEEK);
        assert!(
            elapsed < PERIOD_WEEKS * WEEK - 3600,
            "the test left the period"
        );
        let mut epochs = std::collections::BTreeSet::new();
        let mut learned = std::collections::BTreeSet::new();
        for (email, id) in &held {
            let token = login(&s, email).await;
            let c = challenge(&s, &shop_key, json!({"federation": FED})).await;
            let p = present(&s, &token, id.as_str().unwrap(), &c).await;
            epochs.insert(p["discloses"]["validity_epoch"].to_string());
            let (st, v) = verify(&s, &shop_key, &p["presentation"]).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            learned.insert(v.to_string());
        }
        assert_eq!(
            epochs.len(),
            1,
            "{db:?}: members issued in one period disclosed different epochs: {epochs:?}"
        );
        assert_eq!(
            learned.len(),
            1,
            "the verifier told members apart: {learned:?}"
        );
    }
}

/// Everything of a presentation's JSON but its random parts (the proof and
/// the verifier's nonce), and the proof's length.
fn shape(p: &Value) -> (Value, usize) {
    let mut v = p.clone();
    let proof = v["proof"].as_str().unwrap().len();
    let o = v.as_object_mut().unwrap();
    o.remove("proof");
    o.remove("nonce");
    (v, proof)
}

/// (b) A verifier that asks only for federation membership tries to learn
/// the issuing co-op from a presentation of co-op A's member and one of co-op
/// B's; a verifier that names co-ops learns it, and only when named; each
/// co-op revokes only what it issued.
#[tokio::test]
async fn a_federation_verifier_cannot_tell_which_coop_issued() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (coop_a, key_a) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
        let (_, key_b) = s.org_with("Bike Co-op", vec![Role::Credentials]).await;
        let (_, shop_key) = s.org_with("Fair Market", vec![Role::Credentials]).await;
        let claims = json!({"federation": FED, "tier": "member", "region": "NL-NH",
            "member_since": 2020, "interests": ["sports"]});
        let (st, code_a) = make_code(&s, &key_a, &claims).await;
        assert_eq!(st, StatusCode::CREATED, "{code_a}");
        let (st, code_b) = make_code(&s, &key_b, &claims).await;
        assert_eq!(st, StatusCode::CREATED, "{code_b}");
        assert_eq!(
            code_a["issuer_key_id"], code_b["issuer_key_id"],
            "the key id names the co-op"
        );
        let a = s.member("a@example.org").await;
        let b = s.member("b@example.org").await;
        let id_a = redeem(&s, &a, &code_a["code"]).await["id"].clone();
        let id_b = redeem(&s, &b, &code_b["code"]).await["id"].clone();
        let (id_a, id_b) = (id_a.as_str().unwrap(), id_b.as_str().unwrap());

        // Federation only: nothing tells the two apart.
        for extra in [
            json!({}),
            json!({"claims": ["tier"]}),
            json!({"status_check": true}),
        ] {
            let mut ask = json!({"federation": FED});
            for (k, v) in extra.as_object().unwrap() {
                ask[k] = v.clone();
            }
            let c1 = challenge(&s, &shop_key, ask.clone()).await;
            let c2 = challenge(&s, &shop_key, ask.clone()).await;
            let pa = present(&s, &a, id_a, &c1).await;
            let pb = present(&s, &b, id_b, &c2).await;
            assert!(pa["discloses"].get("issuer").is_none(), "{pa}");
            let (shape_a, len_a) = shape(&pa["presentation"]);
            let (shape_b, len_b) = shape(&pb["presentation"]);
            if extra.get("status_check").is_some() {
                // The status entry is the credential's own (a handle, see
                // LINKABILITY.md), drawn from one federation-wide list.
                let (mut sa, mut sb) = (shape_a.clone(), shape_b.clone());
                sa["disclosed"]
                    .as_object_mut()
                    .unwrap()
                    .remove("status_index");
                sb["disclosed"]
                    .as_object_mut()
                    .unwrap()
                    .remove("status_index");
                assert_eq!(sa, sb, "{db:?}");
            } else {
                assert_eq!(shape_a, shape_b, "{db:?}: the presentations differ");
            }
            assert_eq!(len_a, len_b, "the proofs differ in length");
            let (st, va) = verify(&s, &shop_key, &pa["presentation"]).await;
            assert_eq!(st, StatusCode::OK, "{va}");
            let (st, vb) = verify(&s, &shop_key, &pb["presentation"]).await;
            assert_eq!(st, StatusCode::OK, "{vb}");
            let text = va.to_string();
            assert!(
                !text.contains("Corner") && !text.contains(&coop_a.to_string()),
                "{va}"
            );
            if extra.get("status_check").is_none() {
                assert_eq!(va, vb, "the verifier's answers differ");
            }
        }
        // The published keys do not map a key to a co-op either.
        let (_, doc) = s
            .req(Method::GET, "/.well-known/me2b/issuers", None, None)
            .await;
        let keys: Vec<&Value> = doc["issuers"].as_array().unwrap().iter().collect();
        assert_eq!(keys.len(), 1, "{doc}");

        // A verifier that names co-op A: the member discloses the issuer.
        let named = json!({"federation": FED, "issuers": [coop_a.to_string()]});
        let c = challenge(&s, &shop_key, named.clone()).await;
        let pa = present(&s, &a, id_a, &c).await;
        assert_eq!(pa["discloses"]["issuer"], coop_a.to_string());
        let (st, va) = verify(&s, &shop_key, &pa["presentation"]).await;
        assert_eq!(st, StatusCode::OK, "{va}");
        assert_eq!(va["issuer"], "Corner Co-op");
        let c = challenge(&s, &shop_key, named.clone()).await;
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/credentials/{id_b}/present"),
                Some(&b),
                Some(json!({"challenge": c})),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

        // Revocation: B cannot revoke A's entry; A can; only A's member is refused.
        let index_a = code_a["status_index"].as_u64().unwrap();
        let index_b = code_b["status_index"].as_u64().unwrap();
        assert_ne!(index_a, index_b);
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/credentials/revoke",
                Some(&key_b),
                Some(json!({"status_index": index_a})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "B revoked A's credential");
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/credentials/revoke",
                Some(&key_a),
                Some(json!({"status_index": index_a})),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let check = json!({"federation": FED, "status_check": true});
        let c = challenge(&s, &shop_key, check.clone()).await;
        let p = present(&s, &a, id_a, &c).await;
        let (st, v) = verify(&s, &shop_key, &p["presentation"]).await;
        assert_eq!((st, err(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "revoked"));
        let c = challenge(&s, &shop_key, check.clone()).await;
        let p = present(&s, &b, id_b, &c).await;
        let (st, v) = verify(&s, &shop_key, &p["presentation"]).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
}

/// (c) Special-category interests (GDPR Art. 9) and topics outside the
/// taxonomy are never credential claims; the refusal does not echo them.
#[tokio::test]
async fn special_category_and_unknown_interests_are_refused() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
        for (interest, code) in [
            ("pregnancy-and-maternity", "sensitive_topic"),
            ("diabetes", "sensitive_topic"),
            ("health", "sensitive_topic"),
            ("mental-health", "sensitive_topic"),
            ("halal-food", "sensitive_topic"),
            ("babies-and-toddlers", "sensitive_topic"),
            ("trade-unions", "sensitive_topic"),
            ("not-a-topic-xyz", "unknown_topic"),
            ("Pregnancy & Maternity", "unknown_topic"),
            ("Cycling", "unknown_topic"),
        ] {
            let body = json!({"federation": FED, "tier": "member", "region": "NL-NH",
                "member_since": 2020, "interests": ["sports", interest]});
            let (st, v) = make_code(&s, &key, &body).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{db:?}: {interest}: {v}"
            );
            let text = v.to_string().to_lowercase();
            assert!(!text.contains(&interest.to_lowercase()), "echoed: {v}");
        }
        let (st, v) = make_code(
            &s,
            &key,
            &json!({"federation": FED, "tier": "member", "region": "NL-NH",
                "member_since": 2020, "interests": ["sports", "fair-economy"]}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
}

/// Finding 6 of adv4: an issuer wrote a tag in a credential's interests (4
/// of 482 topics in order, ~5×10^10 values) that a verifier asking for
/// `interest_1`…`interest_4` read back. Only top-level topics, at most two,
/// as a sorted set: what a verifier reads is one of a few hundred values.
#[tokio::test]
async fn an_issuer_cannot_write_a_tag_in_the_interests() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
        let body = |interests: serde_json::Value| {
            json!({"federation": FED, "tier": "member", "region": "NL-NH",
                "member_since": 2020, "interests": interests})
        };
        for refused in [
            json!(["cycling"]),
            json!(["sports", "organic"]),
            json!(["sports", "fair-economy", "travel-and-transportation"]),
            json!(["news", "games", "sports", "finance"]),
        ] {
            let (st, v) = make_code(&s, &key, &body(refused.clone())).await;
            assert!(st.is_client_error(), "{db:?}: {refused}: {st}");
            assert_eq!(err(&v), "invalid_parameter", "{db:?}: {refused}: {v}");
        }
        for taken in [
            json!(["sports", "fair-economy"]),
            json!(["fair-economy", "sports", "sports"]),
            json!(["news"]),
            json!([]),
        ] {
            let (st, v) = make_code(&s, &key, &body(taken.clone())).await;
            assert_eq!(st, StatusCode::CREATED, "{db:?}: {taken}: {v}");
        }
    }
}
