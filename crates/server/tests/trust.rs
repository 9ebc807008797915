//! The data trust over the HTTP API, on SQLite and PostgreSQL: cards per co-op,
//! receipts pseudonymised into the research domain, DP questions against
//! budgets and thresholds, cross-selling only with the member's consent, and
//! loyalty points earned at one co-op and redeemed at another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, Srv};
use me2b_domain::org::Role;
use me2b_domain::OrgId;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// The member's card at `org`, opened by the co-op: its pseudonym for them.
async fn card(s: &Srv, member: &str, org: OrgId) -> String {
    s.pseudonym_at(member, org).await
}

fn receipt(pseudonym: &str, area: &str, categories: &[&str]) -> Value {
    let items: Vec<Value> = categories
        .iter()
        .map(|c| json!({"category": c, "amount_cents": 1_250}))
        .collect();
    json!({"card": pseudonym, "at": "2026-11-20T17:42:13+01:00", "area": area, "items": items})
}

async fn ask(s: &Srv, key: &str, body: Value) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/org/trust/insights",
        Some(key),
        Some(body),
    )
    .await
}

fn err_message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("")
}

/// The test's governance: larger co-op pools than the defaults, and `research`
/// named as the one research requester.
fn governance(research: OrgId) -> String {
    format!(
        r#"
[privacy.pools.trust-coop]
epsilon_per_period = 3.0
lifetime = 30.0
allowance = 1.0
others_total = 3.0

[privacy.pools.trust-research]
epsilon_per_period = 2.0
lifetime = 20.0
allowances = {{ "{research}" = 2.0 }}
"#
    )
}

fn count_of(v: &Value) -> i64 {
    v["figure"]["value"].as_i64().unwrap()
}

#[tokio::test]
async fn cards_receipts_insights_budgets_cross_selling_and_loyalty() {
    for db in Db::ALL {
        let Some(mut s) = start(db).await else {
            continue;
        };
        let roles = || vec![Role::Insights];
        let (a, ka) = s.org_with("Corner Co-op", roles()).await;
        let (b, kb) = s.org_with("Green Wheels", roles()).await;
        let (c, kc) = s.org_with("Tiny Co-op", roles()).await;
        let (_, no_role) = s.org_with("No Insights", vec![Role::Offers]).await;
        // Governance names organisations by id: the operator creates them,
        // then names Green Wheels a research requester and restarts.
        s.reopen(Some(&governance(b))).await;

        // 40 members; 36 also shop at B, 3 at C. Counts sit far from the
        // threshold of 20 compared with the noise (scale 1), so no run is flaky.
        let mut members = Vec::new();
        for i in 0..40 {
            members.push(s.member(&format!("m{i}@example.org")).await);
        }
        let mut at_a = Vec::new();
        let mut at_b = Vec::new();
        for (i, m) in members.iter().enumerate() {
            at_a.push(card(&s, m, a).await);
            if i < 36 {
                at_b.push(card(&s, m, b).await);
            }
        }
        // Within a domain the same; across domains and members unlinkable.
        assert_eq!(card(&s, &members[0], a).await, at_a[0], "{db:?}");
        assert_ne!(at_a[0], at_b[0]);
        let distinct: std::collections::BTreeSet<&String> = at_a.iter().chain(&at_b).collect();
        assert_eq!(
            distinct.len(),
            76,
            "every (member, co-op) pseudonym differs"
        );

        // Bad receipts are refused, and nothing of the batch is stored.
        let bad = [
            (
                receipt("zz", "NL-NH", &["organic"]),
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
            ),
            (
                receipt(&at_a[0], "1012AB", &["organic"]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_area",
            ),
            (
                receipt(&at_a[0], "NL-NH", &["not-a-topic"]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_category",
            ),
            (
                receipt(&at_a[0], "NL-NH", &["pharmacy-and-medicines"]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "sensitive_category",
            ),
        ];
        for (r, status, code) in bad {
            let body = json!({"receipts": [receipt(&at_a[1], "NL-NH", &["organic"]), r]});
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/org/trust/receipts",
                    Some(&ka),
                    Some(s.sealed(a, body).await),
                )
                .await;
            assert_eq!((st, err(&v)), (status, code), "{db:?} {v}");
        }
        assert_eq!(
            s.node
                .store
                .trust_member_count(&a.to_string())
                .await
                .unwrap(),
            0,
            "all or nothing"
        );
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&no_role),
                Some(
                    s.sealed(
                        a,
                        json!({"receipts": [receipt(&at_a[0], "NL-NH", &["organic"])]}),
                    )
                    .await,
                ),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        let ra: Vec<Value> = at_a
            .iter()
            .map(|p| receipt(p, "NL-NH", &["organic", "fair-trade"]))
            .collect();
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&ka),
                Some(s.sealed(a, json!({"receipts": ra})).await),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(v["stored"], 40);
        let rb: Vec<Value> = at_b
            .iter()
            .map(|p| receipt(p, "NL-UT", &["cycling"]))
            .collect();
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&kb),
                Some(s.sealed(b, json!({"receipts": rb})).await),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let mut rc = Vec::new();
        for m in &members[..3] {
            rc.push(receipt(&card(&s, m, c).await, "NL-UT", &["organic"]));
        }
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&kc),
                Some(s.sealed(c, json!({"receipts": rc})).await),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        // Stored: day only (no time), area, a keyed tag; never the co-op's pseudonym.
        let stored = s
            .node
            .store
            .trust_member_count(&a.to_string())
            .await
            .unwrap();
        assert_eq!(stored, 40);

        assert_eq!(
            s.node
                .store
                .trust_overlap(&a.to_string(), &b.to_string())
                .await
                .unwrap(),
            36,
            "{db:?}"
        );
        // Overlap A ∩ B = 36, with noise of scale 1 at ε = 1.
        let (st, v) = ask(
            &s,
            &ka,
            json!({"question": {"kind": "overlap", "b": b}, "epsilon": 1.0}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert!((count_of(&v) - 36).abs() <= 15, "{v}");
        assert_eq!(v["figure"]["noise_scale"], 1.0);
        assert_eq!(v["figure"]["min_cohort"], 20);
        // An overlap reads both co-ops' pools and is charged to both.
        assert_eq!(v["charged"]["epsilon"], 1.0);
        let pools = v["charged"]["pools"].as_array().unwrap();
        assert_eq!(pools.len(), 2, "{v}");
        for p in pools {
            assert_eq!(p["spent"], 1.0, "{v}");
            assert_eq!(p["remaining"], 2.0, "{v}");
        }

        // Refusals that cost nothing.
        let refusals = [
            (
                json!({"question": {"kind": "sum", "scope": "own"}, "epsilon": 0.5}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unbounded_sum",
            ),
            (
                json!({"question": {"kind": "count", "scope": "own", "category": "no-such"}, "epsilon": 0.5}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_category",
            ),
            (
                json!({"question": {"kind": "count", "scope": "all"}, "epsilon": 0.5}),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                json!({"question": {"kind": "overlap", "a": c, "b": b}, "epsilon": 0.5}),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                json!({"question": {"kind": "count", "scope": "own"}, "epsilon": 0.5, "purpose": "marketing"}),
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
            ),
            (
                json!({"question": {"kind": "count", "scope": "all"}, "epsilon": 0.5, "purpose": "social-purpose"}),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                json!({"question": {"kind": "count", "scope": "own"}, "epsilon": 0.0}),
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
            ),
        ];
        for (q, status, code) in refusals {
            let (st, v) = ask(&s, &ka, q).await;
            assert_eq!((st, err(&v)), (status, code), "{db:?} {v}");
        }
        let (_, v) = s
            .req(Method::GET, "/v1/org/trust/budget", Some(&ka), None)
            .await;
        assert_eq!(v["pools"][0]["spent"], 1.0, "refusals spent nothing: {v}");
        assert_eq!(
            v["pools"].as_array().unwrap().len(),
            1,
            "not a research requester"
        );
        assert!(v["guarantee"].as_str().unwrap().contains("ε"), "{v}");

        // A bounded sum and mean, and a histogram by category.
        let (st, v) = ask(&s, &ka, json!({"question": {"kind": "sum", "scope": "own", "upper_cents": 5_000}, "epsilon": 1.0})).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["figure"]["sum"]["noise_scale"], 10_000.0);
        let (st, v) = ask(&s, &ka, json!({"question": {"kind": "histogram", "scope": "own", "by": "category"}, "epsilon": 1.0})).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let bins = v["figure"]["bins"].as_array().unwrap();
        assert!(bins.len() > 400, "every non-sensitive topic is a bin");
        let organic = bins.iter().find(|b| b["category"] == "organic").unwrap();
        // Scale 5: the bin is near 40, or withheld if the noise pushed it under 20.
        if let Some(n) = organic["value"].as_i64() {
            assert!((n - 40).abs() <= 100, "{organic}");
        }
        assert_eq!(
            v["figure"]["noise_scale"], 5.0,
            "sensitivity 5 (the cap) / ε 1"
        );
        // The pool of A's customers (3.0 this period) is now spent: the next
        // question is refused, and so is B's overlap with A, although B has
        // asked nothing: budgets belong to the people, not to the askers.
        let (st, v) = ask(
            &s,
            &ka,
            json!({"question": {"kind": "count", "scope": "own"}, "epsilon": 0.5}),
        )
        .await;
        assert_eq!((st, err(&v)), (StatusCode::FORBIDDEN, "over_budget"), "{v}");
        let (st, v) = ask(
            &s,
            &kb,
            json!({"question": {"kind": "overlap", "b": a}, "epsilon": 0.1}),
        )
        .await;
        assert_eq!((st, err(&v)), (StatusCode::FORBIDDEN, "over_budget"), "{v}");
        assert!(err_message(&v).contains(&format!("trust:coop:{a}")), "{v}");
        // A research purpose has its own budget and may ask about all co-ops.
        let (st, v) = ask(&s, &kb, json!({"question": {"kind": "count", "scope": "all"}, "epsilon": 1.0, "purpose": "social-purpose"})).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert!((count_of(&v) - 40).abs() <= 15);
        // A member sees the pools they are in, what was spent and by whom.
        let (st, v) = s
            .req(Method::GET, "/v1/me/transparency", Some(&members[0]), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let pb = &v["privacy_budget"];
        let pools: Vec<&str> = pb["pools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pool"].as_str().unwrap())
            .collect();
        let (pa, pbb) = (format!("trust:coop:{a}"), format!("trust:coop:{b}"));
        assert!(pools.contains(&"offers:audience"), "{pb}");
        assert!(
            pools.contains(&pa.as_str()) && pools.contains(&pbb.as_str()),
            "{pb}"
        );
        assert!(pools.contains(&"trust:research"), "{pb}");
        assert!(
            pools.contains(&format!("trust:coop:{c}").as_str()),
            "member 0 shops at C too: {pb}"
        );
        assert_eq!(pools.len(), 5, "{pb}");
        let of_a = pb["pools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pool"] == pa.as_str())
            .unwrap();
        assert_eq!(of_a["spent"], 3.0, "{of_a}");
        assert_eq!(
            of_a["spent_by"][0]["organisation"], "Corner Co-op",
            "{of_a}"
        );
        assert!(
            of_a["in_words"].as_str().unwrap().contains("Corner Co-op"),
            "{of_a}"
        );
        assert!(
            pb["guarantee"].as_str().unwrap().contains("e^ε/(1+e^ε)"),
            "{pb}"
        );
        let (_, v) = s
            .req(Method::GET, "/v1/me/transparency", Some(&members[39]), None)
            .await;
        let n = v["privacy_budget"]["pools"].as_array().unwrap().len();
        assert_eq!(
            n, 3,
            "member 39 shops only at A: audience, A, research: {v}"
        );

        // Below the threshold: C has 3 members.
        let (st, v) = ask(
            &s,
            &kc,
            json!({"question": {"kind": "count", "scope": "own"}, "epsilon": 1.0}),
        )
        .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "below_threshold"),
            "{v}"
        );

        // Cross-selling: nothing without consent; the transcryptors refuse.
        let path = format!("/v1/org/trust/shared/{a}");
        let (st, v) = s.req(Method::GET, &path, Some(&kb), None).await;
        assert_eq!((st, v.as_array().unwrap().len()), (StatusCode::OK, 0));
        let refused = s
            .node
            .trust
            .transcrypt_without_consent(a, b)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, me2b_trust::TrustError::TranscryptionRefused { .. }),
            "{refused}"
        );
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/trust/sharing",
                Some(&members[0]),
                Some(json!({"from": a, "to": b, "purpose": "cross-sell", "days": 30})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let sharing = v["id"].as_str().unwrap().to_owned();
        // A signed consent receipt, like every other consent's, checked with
        // the node's public key alone.
        let node_key = s.node.keys.verifying_key();
        let given =
            me2b_consent::receipt::verify(v["receipt"].as_str().unwrap(), &node_key).unwrap();
        assert_eq!(given.event, me2b_consent::ConsentStatus::Given);
        assert_eq!(given.consent_id, sharing);
        assert_eq!(given.controller.id, b.to_string());
        assert_eq!(given.purposes[0].id, "marketing");
        assert_eq!(given.processing[0].id, "share");
        assert!(
            given.purposes[0].iri.starts_with("https://w3id.org/dpv"),
            "{:?}",
            given.purposes
        );
        let (_, v) = s.req(Method::GET, &path, Some(&kb), None).await;
        let shared = v.as_array().unwrap();
        assert_eq!(shared.len(), 1, "{v}");
        let kb_keys = s.coop_keys(b).await;
        assert_eq!(
            kb_keys
                .open_card(shared[0]["card"].as_str().unwrap())
                .unwrap(),
            at_b[0],
            "B opens the member's card to its own pseudonym for them"
        );
        assert!(
            s.coop_keys(a)
                .await
                .open_card(shared[0]["card"].as_str().unwrap())
                .unwrap()
                != at_a[0],
            "and only B: A's keys do not open it to A's pseudonym"
        );
        assert_eq!(
            shared[0]["receipts"][0]["day"], "2026-11-20",
            "coarsened to the day"
        );
        assert_eq!(shared[0]["receipts"][0]["items"][0]["category"], "organic");
        // C was not named: nothing for C.
        let (_, v) = s.req(Method::GET, &path, Some(&kc), None).await;
        assert_eq!(v.as_array().unwrap().len(), 0);
        let (st, _) = s
            .req(
                Method::DELETE,
                &format!("/v1/me/trust/sharing/{sharing}"),
                Some(&members[0]),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (_, v) = s.req(Method::GET, &path, Some(&kb), None).await;
        assert_eq!(v.as_array().unwrap().len(), 0, "withdrawn: nothing more");
        let (_, mine) = s
            .req(Method::GET, "/v1/me/trust", Some(&members[0]), None)
            .await;
        let withdrawn = me2b_consent::receipt::verify(
            mine["sharing"][0]["receipt"].as_str().unwrap(),
            &node_key,
        )
        .unwrap();
        assert_eq!(withdrawn.event, me2b_consent::ConsentStatus::Withdrawn);
        assert_eq!(withdrawn.consent_version, 2);
        assert!(withdrawn.withdrawn_at.is_some());
        // The member sees the consent and the one delivery in plain language.
        let (_, t) = s
            .req(Method::GET, "/v1/me/transparency", Some(&members[0]), None)
            .await;
        let sharing = &t["receipt_sharing"][0];
        assert_eq!(sharing["withdrawn"], true, "{t}");
        assert!(
            sharing["explanation"]
                .as_str()
                .unwrap()
                .contains("Corner Co-op"),
            "{t}"
        );
        let deliveries = sharing["deliveries"].as_array().unwrap();
        assert_eq!(deliveries.len(), 1, "{t}");
        assert!(
            deliveries[0].as_str().unwrap().ends_with(": 1 receipt"),
            "{t}"
        );
        let (_, t) = s
            .req(Method::GET, "/v1/me/transparency", Some(&members[1]), None)
            .await;
        assert_eq!(t["receipt_sharing"].as_array().unwrap().len(), 0, "{t}");
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/trust/sharing",
                Some(&members[0]),
                Some(json!({"from": a, "to": b, "purpose": "profiling"})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::BAD_REQUEST, "invalid_parameter")
        );

        // Loyalty: earn at A (the answer is only "accepted"), see it in the
        // vault, redeem at B with a token the member made for B.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/loyalty/earn",
                Some(&ka),
                Some(s.sealed(a, json!({"card": at_a[0], "points": 100})).await),
            )
            .await;
        assert_eq!(
            (st, &v),
            (StatusCode::ACCEPTED, &json!({"status": "accepted"}))
        );
        let (_, v) = s
            .req(Method::GET, "/v1/me/trust", Some(&members[0]), None)
            .await;
        assert_eq!(v["loyalty_points"], 100, "{v}");
        let (_, v) = s
            .req(Method::GET, "/v1/me/trust", Some(&members[1]), None)
            .await;
        assert_eq!(v["loyalty_points"], 0);
        let (st, t) = s
            .req(
                Method::POST,
                "/v1/me/trust/loyalty/tokens",
                Some(&members[0]),
                Some(json!({"org": b, "points": 100})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/loyalty/redeem",
                Some(&kb),
                Some(json!({"token": t["token"], "points": 100})),
            )
            .await;
        assert_eq!(
            (st, &v),
            (
                StatusCode::OK,
                &json!({"status": "redeemed", "points": 100})
            )
        );
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/trust/loyalty/tokens",
                Some(&members[0]),
                Some(json!({"org": b, "points": 100})),
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "insufficient_points"));
        let (_, v) = s
            .req(Method::GET, "/v1/me/trust", Some(&members[0]), None)
            .await;
        assert_eq!(v["loyalty_points"], 0);

        // The audit log has every query with its ε, the refusals, and every
        // transcryptor's requests, including the refused one.
        let entries = s.node.store.audit_entries(0, 100_000).await.unwrap();
        let events: Vec<Value> = entries
            .iter()
            .map(|e| serde_json::from_slice(&e.event_json).unwrap())
            .collect();
        let queries: Vec<&Value> = events
            .iter()
            .filter(|e| e["action"] == "trust.query")
            .collect();
        assert_eq!(
            queries.len(),
            14,
            "{db:?}: every question, answered or refused"
        );
        // Every release is audited with its pools, ε and mechanism.
        let releases: Vec<&str> = events
            .iter()
            .filter(|e| e["action"] == "privacy.release")
            .map(|e| e["object"].as_str().unwrap())
            .collect();
        assert_eq!(releases.len(), 5, "{db:?}: {releases:?}");
        assert!(
            releases
                .iter()
                .any(|r| r.contains("trust overlap: ε 1 from")
                    && r.contains(&format!("trust:coop:{a}"))
                    && r.contains(&format!("trust:coop:{b}"))
                    && r.contains("discrete Laplace")),
            "{releases:?}"
        );
        assert!(queries.iter().any(|q| q["object"]
            .as_str()
            .unwrap()
            .contains("refused: over_budget")));
        let denied = events
            .iter()
            .filter(|e| e["action"] == "trust.transcrypt" && e["outcome"] == "denied")
            .count();
        assert!(denied >= 1, "the refused transcription is audited");
        // No audit entry carries a pseudonym.
        let log =
            String::from_utf8(entries.iter().flat_map(|e| e.event_json.clone()).collect()).unwrap();
        for p in at_a.iter().chain(&at_b) {
            assert!(!log.contains(p.as_str()));
        }
    }
}

/// The stored `source_ct` values equal to `ct` (the thief's lookup).
async fn stored_as_sent(s: &Srv, ct: &[u8]) -> i64 {
    let sql = "SELECT COUNT(*) FROM trust_receipts WHERE source_ct = $1";
    match s.db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&s.t.url).await.unwrap();
            let n = sqlx::query_scalar(sql)
                .bind(ct)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            n
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&s.t.url).await.unwrap();
            let n = sqlx::query_scalar(sql)
                .bind(ct)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            n
        }
    }
}

/// adv8 (issue 13): `trust_receipts.source_ct` was the card exactly as the
/// co-op sent it. The co-op keeps the bytes it sent; with a copy of the
/// file it found its receipts by equality and read what the trust stores
/// beside them (the research tag, the research ciphertext): the bridge from
/// its card to the research domain. The trust now re-randomises the card on
/// ingest (libpep: same pseudonym, fresh ciphertext); a cross-sell still
/// moves it to the partner.
#[tokio::test]
async fn a_coop_finds_none_of_the_cards_it_sent_in_the_file() {
    use me2b_trust::pseudonym::{ElGamalEncrypted, EncryptedPseudonym};
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (a, ka) = s.org_with("Corner Co-op", vec![Role::Insights]).await;
        let mut sent = Vec::new();
        let mut receipts = Vec::new();
        for i in 0..4 {
            let m = s.member(&format!("m{i}@example.org")).await;
            receipts.push(receipt(&card(&s, &m, a).await, "NL-NH", &["organic"]));
        }
        let body = s.sealed(a, json!({"receipts": receipts})).await;
        for r in body["receipts"].as_array().unwrap() {
            let ct: EncryptedPseudonym =
                EncryptedPseudonym::from_base64(r["card"].as_str().unwrap()).unwrap();
            sent.push(ct.to_bytes().to_vec());
        }
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&ka),
                Some(body),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{db:?} {v}");
        let mut found = 0;
        for ct in &sent {
            found += stored_as_sent(&s, ct).await;
        }
        assert_eq!(
            found, 0,
            "{db:?}: {found} of 4 cards stored as the co-op sent them"
        );
    }
}

fn vault_receipt(items: &[(&str, i64)], at: &str) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(c, p)| json!({"name": "Item", "category": c, "quantity": 2, "unit_price": {"minor": p, "currency": "EUR"}}))
        .collect();
    json!({"kind": "receipt", "merchant": "Corner Co-op", "items": items,
           "total": {"minor": 999, "currency": "EUR"}, "purchased_at": at})
}

#[tokio::test]
async fn members_forward_their_own_receipts_once_and_never_special_categories() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (a, ka) = s.org_with("Corner Co-op", vec![Role::Insights]).await;
        let m = s
            .member_with(
                "ana@example.org",
                &[
                    vault_receipt(
                        &[("food.organic", 250), ("food.diabetic", 400)],
                        "2026-11-02T09:15:00Z",
                    ),
                    vault_receipt(
                        &[("bike.repair", 1_500), ("no.such.category", 100)],
                        "2026-11-03T18:00:00Z",
                    ),
                    vault_receipt(&[("food.diabetic", 400)], "2026-11-04T18:00:00Z"),
                ],
            )
            .await;
        let body = json!({"org": a, "area": "NL-NH"});
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/trust/forward",
                Some(&m),
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{db:?} {v}");
        // The diabetes items (health) and the unknown category stay in the
        // vault; the receipt holding only a health item is not forwarded at all.
        assert_eq!(
            (
                v["forwarded"].as_u64(),
                v["already"].as_u64(),
                v["items_left_out"].as_u64()
            ),
            (Some(2), Some(0), Some(3)),
            "{v}"
        );
        let (_, v) = s
            .req(Method::POST, "/v1/me/trust/forward", Some(&m), Some(body))
            .await;
        assert_eq!(
            (v["forwarded"].as_u64(), v["already"].as_u64()),
            (Some(0), Some(2)),
            "stored once: {v}"
        );
        let scope = a.to_string();
        assert_eq!(s.node.store.trust_member_count(&scope).await.unwrap(), 1);
        let cats = s
            .node
            .store
            .trust_bin_counts(&scope, me2b_storage::TrustDim::Category)
            .await
            .unwrap();
        let health = s.node.offers.taxonomy().by_slug("diabetes").unwrap();
        let health_id = i64::from(s.node.offers.taxonomy().get(health).unwrap().id);
        assert!(cats.iter().all(|(c, _)| *c != health_id), "{cats:?}");
        assert_eq!(cats.len(), 2, "organic and repair: {cats:?}");
        // What the co-op's own submission under the member's card adds joins
        // the same member: still one member in the co-op's pool.
        let card = self::card(&s, &m, a).await;
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&ka),
                Some(
                    s.sealed(
                        a,
                        json!({"receipts": [receipt(&card, "NL-NH", &["organic"])]}),
                    )
                    .await,
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        assert_eq!(
            s.node.store.trust_member_count(&scope).await.unwrap(),
            1,
            "{db:?}"
        );
        // Refused: an unknown co-op, an area finer than the trust's.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/trust/forward",
                Some(&m),
                Some(json!({"org": a, "area": "1012AB"})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_area")
        );
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/me/trust/forward",
                Some(&m),
                Some(json!({"org": "00000000-0000-4000-8000-000000000000", "area": "NL-NH"})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        // The member's audit trail shows the forwarding.
        let (_, audit) = s.req(Method::GET, "/v1/me/audit", Some(&m), None).await;
        assert!(
            audit.to_string().contains("trust.receipts.submit"),
            "{audit}"
        );

        // Erasure reaches the trust: the pooled receipts, what they added to
        // the aggregates, and the points go; another member's stay.
        let other = s.member("bo@example.org").await;
        let other_card = self::card(&s, &other, a).await;
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&ka),
                Some(
                    s.sealed(
                        a,
                        json!({"receipts": [receipt(&other_card, "NL-NH", &["organic"])]}),
                    )
                    .await,
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        for p in [&card, &other_card] {
            let (st, _) = s
                .req(
                    Method::POST,
                    "/v1/org/trust/loyalty/earn",
                    Some(&ka),
                    Some(s.sealed(a, json!({"card": p, "points": 10})).await),
                )
                .await;
            assert_eq!(st, StatusCode::ACCEPTED);
        }
        assert_eq!(s.node.store.trust_member_count(&scope).await.unwrap(), 2);
        let (st, _) = s
            .req(
                Method::DELETE,
                "/v1/me",
                Some(&m),
                Some(json!({"passphrase": "correct horse battery"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{db:?}");
        assert_eq!(
            s.node.store.trust_member_count(&scope).await.unwrap(),
            1,
            "{db:?}"
        );
        let organic = s.node.offers.taxonomy().by_slug("organic").unwrap();
        let organic_id = i64::from(s.node.offers.taxonomy().get(organic).unwrap().id);
        let cats = s
            .node
            .store
            .trust_bin_counts(&scope, me2b_storage::TrustDim::Category)
            .await
            .unwrap();
        assert!(
            cats.contains(&(organic_id, 1)),
            "only the other member: {cats:?}"
        );
        let (_, v) = s.req(Method::GET, "/v1/me/trust", Some(&other), None).await;
        assert_eq!(
            v["loyalty_points"], 10,
            "the other member keeps their points"
        );
        // The co-op still holds its card for the erased member. Until the
        // erasure is released (a batch at a period boundary: one erasure
        // alone waits for the maximum delay) the card answers as before and
        // brings nothing back.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/loyalty/earn",
                Some(&ka),
                Some(s.sealed(a, json!({"card": card, "points": 1})).await),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{db:?}: {v}");
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&ka),
                Some(
                    s.sealed(
                        a,
                        json!({"receipts": [receipt(&card, "NL-NH", &["organic"])]}),
                    )
                    .await,
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!((v["stored"].as_u64(), &v["erased"]), (Some(1), &json!([])));
        // Until the release a held card's receipt is stored like a live
        // card's (the same writes, so timing names no card), and the release
        // deletes it (`erasure_held.rs` counts the rows).
        assert_eq!(
            s.node.store.trust_member_count(&scope).await.unwrap(),
            2,
            "{db:?}: a held card's receipt is stored until the release"
        );
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        // Released: it earns nothing, and the receipts it brings are dropped
        // (and named, so the co-op can delete the card) instead of starting
        // a new profile of the member; the rest of the batch is stored.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/loyalty/earn",
                Some(&ka),
                Some(s.sealed(a, json!({"card": card, "points": 1})).await),
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::GONE, "member_erased"));
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&ka),
                Some(
                    s.sealed(
                        a,
                        json!({"receipts": [
                            receipt(&other_card, "NL-UT", &["organic"]),
                            receipt(&card, "NL-NH", &["organic"]),
                            receipt(&card, "NL-UT", &["organic"]),
                        ]}),
                    )
                    .await,
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(
            (v["stored"].as_u64(), &v["erased"]),
            (Some(1), &json!([1, 2]))
        );
        assert_eq!(
            s.node.store.trust_member_count(&scope).await.unwrap(),
            1,
            "{db:?}: no new profile of the erased member"
        );
        let entries = s.node.store.audit_entries(0, 100_000).await.unwrap();
        assert!(entries
            .iter()
            .any(|e| String::from_utf8_lossy(&e.event_json).contains("trust.erase")));
        assert!(s
            .node
            .store
            .members_pending_erasure()
            .await
            .unwrap()
            .is_empty());
    }
}
