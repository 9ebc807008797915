//! Intents over the HTTP API, on SQLite and PostgreSQL, written as the
//! adversary first: an organisation (or several) trying to link two intents
//! of one member, or an intent to the member, through every field it sees,
//! the order of the feed, times, error messages and counts; then every bad
//! input and fault; then the accept flow, which discloses exactly what the
//! member chose, and deletion at the deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start_ttl, Srv};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::{Clock, MemberId, OrgId};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const HOUR: i64 = 3_600_000;

/// These tests release every batch, however small, at the next whole hour
/// (the default waits for ten intents or a day: tests/intents_batches.rs).
const BATCH_OF_ONE: &str = "[intents]\nmin_batch = 1\n";

/// To the next whole hour, where what was published reaches organisations.
fn release(s: &Srv) {
    let now = s.clock.now().unix_millis();
    s.clock
        .advance_seconds((HOUR - now.rem_euclid(HOUR)) / 1000);
}

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn intent(text: &str, topic: &str, audience: Value) -> Value {
    json!({"topic": topic, "text": text,
           "budget": {"min_cents": 100_000, "max_cents": 300_000, "currency": "EUR"},
           "region": "NL-UT", "deadline_days": 7, "audience": audience,
           "acknowledge_free_text_warning": true})
}

fn bike(text: &str) -> Value {
    intent(text, "bicycles-and-accessories", json!({"kind": "any"}))
}

fn proposal(s: &Srv, asks: &[&str]) -> Value {
    let valid = s.clock.now().unix_millis() + 10 * 86_400_000;
    json!({"price": {"amount_cents": 249_900, "currency": "EUR"},
           "terms": "Cargo bike, two-year warranty, delivery included.",
           "valid_until": valid, "asks": asks})
}

async fn org_of(s: &Srv, name: &str, kind: OrgKind) -> (OrgId, String) {
    let (org, key) = s
        .node
        .orgs
        .create(
            Label::try_from(name).unwrap(),
            kind,
            Roles::try_from(vec![Role::Offers, Role::Consent]).unwrap(),
        )
        .await
        .unwrap();
    (org.id, key.secret.expose().to_owned())
}

async fn follow(s: &Srv, key: &str) {
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/org/intents/subscription",
            Some(key),
            Some(json!({"topics": ["bicycles-and-accessories"], "regions": []})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

async fn publish(s: &Srv, member: &str, body: Value) -> String {
    let (st, v) = s
        .req(Method::POST, "/v1/me/intents", Some(member), Some(body))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn feed(s: &Srv, key: &str) -> Vec<Value> {
    let (st, v) = s.req(Method::GET, "/v1/org/intents", Some(key), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

async fn answer(s: &Srv, key: &str, id: &str, body: Value) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        &format!("/v1/org/intents/{id}/answers"),
        Some(key),
        Some(body),
    )
    .await
}

async fn member_id(s: &Srv, token: &str) -> MemberId {
    let (_, v) = s.req(Method::GET, "/v1/me", Some(token), None).await;
    v["member_id"].as_str().unwrap().parse().unwrap()
}

/// Every scalar in `v`, as text, with the key path it sits under.
fn scalars(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| scalars(x, &format!("{path}.{k}"), out)),
        Value::Array(a) => a.iter().for_each(|x| scalars(x, &format!("{path}[]"), out)),
        Value::String(s) => out.push((path.to_owned(), s.clone())),
        other => out.push((path.to_owned(), other.to_string())),
    }
}

/// What an organisation sees of an intent beyond what the member wrote in
/// it (topic, text, budget, area, deadline in days, audience).
fn not_chosen(v: &Value) -> BTreeSet<(String, String)> {
    let mut all = Vec::new();
    scalars(v, "", &mut all);
    all.into_iter()
        .filter(|(k, _)| {
            ![".topic", ".text", ".region", ".audience.kind"].contains(&k.as_str())
                && !k.starts_with(".budget")
        })
        .collect()
}

#[tokio::test]
async fn an_organisation_cannot_link_two_intents_of_a_member_or_an_intent_to_the_member() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
            continue;
        };
        let (coop, key) = org_of(&s, "Fietscoop Utrecht", OrgKind::Coop).await;
        let (coop2, key2) = org_of(&s, "Bakfiets Coop", OrgKind::Coop).await;
        follow(&s, &key).await;
        follow(&s, &key2).await;
        let ana = s.member("ana@example.org").await;
        let bob = s.member("bob@example.org").await;
        let ana_id = member_id(&s, &ana).await;
        // The pseudonyms the co-ops know Ana by elsewhere: under consent and
        // as a card of the trust.
        let known = [
            s.node.keys.subject_pseudonym(&coop, &ana_id),
            s.node.keys.subject_pseudonym(&coop2, &ana_id),
            s.pseudonym_at(&ana, coop).await,
            ana_id.to_string(),
        ];

        // Ana publishes twice, Bob once in between, minutes apart in one
        // hour; the same words, so only what the node adds could link them.
        let a1 = publish(&s, &ana, bike("A cargo bike for two children.")).await;
        s.clock.advance_seconds(7 * 60);
        let b1 = publish(&s, &bob, bike("A cargo bike for two children.")).await;
        s.clock.advance_seconds(7 * 60);
        let a2 = publish(&s, &ana, bike("A cargo bike for two children.")).await;
        s.clock.advance_seconds(60);
        // Before the batch, no organisation sees any of them.
        assert!(feed(&s, &key).await.is_empty());
        let (st, _) = s
            .req(
                Method::GET,
                &format!("/v1/org/intents/{a1}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        release(&s);

        let seen = feed(&s, &key).await;
        assert_eq!(seen.len(), 3);
        let by_id = |id: &str| seen.iter().find(|v| v["id"] == id).unwrap().clone();
        let (va1, vb1, va2) = (by_id(&a1), by_id(&b1), by_id(&a2));
        let text = serde_json::to_string(&seen).unwrap();
        for k in &known {
            assert!(
                !text.contains(k.as_str()),
                "a known pseudonym leaked: {text}"
            );
        }
        assert!(!text.contains("ana@") && !text.contains("bob@"));
        for v in &seen {
            // No key naming a member, no time finer than the hour.
            for (k, x) in not_chosen(v) {
                assert!(
                    !["member", "subject", "owner", "secret", "email"]
                        .iter()
                        .any(|w| k.contains(w)),
                    "field {k} in {v}"
                );
                if k == ".published_at" || k == ".deadline" {
                    assert_eq!(x.parse::<i64>().unwrap() % HOUR, 0, "{k} = {x}");
                }
            }
            let id = v["id"].as_str().unwrap();
            assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        // Ana's two intents share exactly what Ana's and Bob's share: no
        // identifier, no time, nothing the node added.
        let shared = |x: &Value, y: &Value| -> BTreeSet<(String, String)> {
            not_chosen(x)
                .intersection(&not_chosen(y))
                .cloned()
                .collect()
        };
        assert_eq!(shared(&va1, &va2), shared(&va1, &vb1), "{va1} {va2} {vb1}");
        assert!(!shared(&va1, &va2).iter().any(|(k, _)| k == ".id"));
        // Nor does any part of an id: no eight hex digits of one intent's id
        // are in another's, or in anything the co-ops know Ana by.
        let windows = |id: &str| -> BTreeSet<String> {
            (0..=id.len() - 8)
                .map(|i| id[i..i + 8].to_owned())
                .collect()
        };
        for (x, y) in [(&a1, &a2), (&a1, &b1), (&a2, &b1)] {
            let common: Vec<_> = windows(x).intersection(&windows(y)).cloned().collect();
            assert!(common.is_empty(), "ids {x} and {y} share {common:?}");
        }
        for id in [&a1, &a2] {
            for k in &known {
                let k = k.to_lowercase();
                assert!(
                    windows(id).iter().all(|w| !k.contains(w.as_str())),
                    "{id} shares digits with {k}"
                );
            }
        }
        // Nor does the order: within an hour the feed is in the order of
        // the random ids, not of publishing.
        let ids: Vec<&str> = seen.iter().map(|v| v["id"].as_str().unwrap()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
        // The same intent reads the same through its own route.
        let (st, one) = s
            .req(
                Method::GET,
                &format!("/v1/org/intents/{a1}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!((st, &one), (StatusCode::OK, &va1));

        // Both co-ops answer Ana's first intent; Ana accepts the second's.
        let (st, mine) = answer(&s, &key, &a1, proposal(&s, &["email-address"])).await;
        assert_eq!(st, StatusCode::CREATED, "{mine}");
        assert_eq!(mine["created_at"].as_i64().unwrap() % HOUR, 0);
        let (st, theirs) = answer(&s, &key2, &a1, proposal(&s, &["email-address"])).await;
        assert_eq!(st, StatusCode::CREATED, "{theirs}");
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{a1}/accept"),
                Some(&ana),
                Some(json!({"answer_id": theirs["answer_id"], "disclose": []})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        // The moment of acceptance is not shown: open until the next whole
        // hour, for reading and for answering alike.
        let open_view = by_id(&a1);
        let (_, v) = s
            .req(
                Method::GET,
                &format!("/v1/org/intents/{a1}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(v["status"], "open");
        assert_eq!(
            not_chosen(&v),
            not_chosen(&open_view.clone())
                .into_iter()
                .map(|(k, x)| if k == ".answered" {
                    (k, "true".into())
                } else {
                    (k, x)
                })
                .collect()
        );
        let (_, v) = s
            .req(Method::GET, "/v1/org/intent-answers", Some(&key), None)
            .await;
        assert_eq!(v[0]["status"], "open", "{v}");
        let (st, v) = answer(&s, &key, &a2, proposal(&s, &[])).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        s.clock.advance_seconds(3600);
        let (_, v) = s
            .req(
                Method::GET,
                &format!("/v1/org/intents/{a1}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(v["status"], "closed");
        // The losing co-op learns "closed" and nothing more: not who won,
        // not when, no contact.
        let (_, v) = s
            .req(Method::GET, "/v1/org/intent-answers", Some(&key), None)
            .await;
        let lost = v
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["intent_id"] == a1.as_str())
            .unwrap();
        assert_eq!(lost["status"], "closed", "{v}");
        assert!(lost.get("contact").is_none());
        let t = v.to_string();
        assert!(
            !t.contains(&coop2.to_string()) && !t.contains("Bakfiets"),
            "{t}"
        );

        // Errors: an unknown id, a malformed one and an expired intent read
        // the same, and echo nothing.
        let unknown = "00112233445566778899aabbccddeeff";
        let (st1, e1) = answer(&s, &key, unknown, proposal(&s, &[])).await;
        let (st2, e2) = answer(&s, &key, "not-an-id", proposal(&s, &[])).await;
        assert_eq!((st1, err(&e1)), (StatusCode::NOT_FOUND, "intent_not_found"));
        assert_eq!((st1, &e1), (st2, &e2));
        s.clock.advance_seconds(8 * 86_400);
        let (st3, e3) = answer(&s, &key2, &b1, proposal(&s, &[])).await;
        assert_eq!((st1, &e1), (st3, &e3));
        for e in [&e1, &e3] {
            let t = e.to_string();
            assert!(
                !t.contains(&b1) && !t.contains(unknown) && !t.contains("cargo"),
                "{t}"
            );
        }

        // Counts go through the privacy accountant: the week's release is
        // charged once, to the first asker, and is the same for everyone.
        let spent = |s: &Srv| {
            let a = s.node.accountant.clone();
            async move { a.pool_use(&me2b_dp::Pool::Intents).await.unwrap().spent }
        };
        assert_eq!(spent(&s).await, 0.0);
        let (st, c1) = s
            .req(Method::GET, "/v1/org/intents/counts", Some(&key), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{c1}");
        assert_eq!(c1["pool"], "intents:open");
        assert!((spent(&s).await - 0.2).abs() < 1e-9);
        let (_, c2) = s
            .req(Method::GET, "/v1/org/intents/counts", Some(&key2), None)
            .await;
        assert_eq!(c1, c2);
        assert!((spent(&s).await - 0.2).abs() < 1e-9);
        // Three intents are far below the minimum cohort: nothing shown.
        assert_eq!(c1["bins"], json!([]), "{c1}");
    }
}

#[tokio::test]
async fn bad_input_and_faults_get_clear_codes_that_leak_nothing() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
            continue;
        };
        let (_, coop) = org_of(&s, "Fietscoop", OrgKind::Coop).await;
        let (_, brand) = org_of(&s, "Bakfiets BV", OrgKind::Brand).await;
        let ana = s.member("ana@example.org").await;
        let post = |body: Value| {
            let ana = ana.clone();
            let s = &s;
            async move {
                s.req(Method::POST, "/v1/me/intents", Some(&ana), Some(body))
                    .await
            }
        };
        let secret_words = "Ana Jansen at Oudegracht 12";
        let mut cases: Vec<(Value, StatusCode, &str)> = vec![
            (
                bike("   "),
                StatusCode::UNPROCESSABLE_ENTITY,
                "empty_intent",
            ),
            (
                bike(&format!("{secret_words} {}", "x".repeat(600))),
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_long",
            ),
            (
                intent(
                    secret_words,
                    "feminine-hygiene-products",
                    json!({"kind": "any"}),
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
                "sensitive_topic",
            ),
            (
                intent(secret_words, "no-such-topic", json!({"kind": "any"})),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_topic",
            ),
        ];
        let mut fine_region = bike(secret_words);
        fine_region["region"] = json!("3511 AB Utrecht");
        cases.push((
            fine_region,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_area",
        ));
        let mut unwarned = bike(secret_words);
        unwarned["acknowledge_free_text_warning"] = json!(false);
        cases.push((
            unwarned,
            StatusCode::UNPROCESSABLE_ENTITY,
            "free_text_warning",
        ));
        let mut far = bike(secret_words);
        far["deadline_days"] = json!(31);
        cases.push((far, StatusCode::UNPROCESSABLE_ENTITY, "invalid_intent"));
        let mut upside_down = bike(secret_words);
        upside_down["budget"]["min_cents"] = json!(900_000);
        cases.push((
            upside_down,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_intent",
        ));
        let mut huge = bike(secret_words);
        huge["text"] = json!("y".repeat(300 * 1024));
        cases.push((huge, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
        for (body, status, code) in cases {
            let (st, v) = post(body).await;
            assert_eq!((st, err(&v)), (status, code), "{v}");
            let t = v.to_string();
            assert!(!t.contains("Jansen") && !t.contains("3511"), "{t}");
        }
        let (_, v) = post({
            let mut b = bike("x");
            b["acknowledge_free_text_warning"] = json!(false);
            b
        })
        .await;
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("can tell them who you are"));

        // Who may answer.
        let coops_only = publish(
            &s,
            &ana,
            intent(
                "A cargo bike.",
                "bicycles-and-accessories",
                json!({"kind": "coops"}),
            ),
        )
        .await;
        release(&s);
        let (st, v) = answer(&s, &brand, &coops_only, proposal(&s, &[])).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::FORBIDDEN, "not_allowed_to_answer")
        );
        let issuers_only = publish(
            &s,
            &ana,
            intent(
                "A cargo bike.",
                "bicycles-and-accessories",
                json!({"kind": "role", "role": "credentials"}),
            ),
        )
        .await;
        release(&s);
        let (st, v) = answer(&s, &coop, &issuers_only, proposal(&s, &[])).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::FORBIDDEN, "not_allowed_to_answer")
        );
        // Once per organisation.
        let (st, _) = answer(&s, &coop, &coops_only, proposal(&s, &[])).await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, v) = answer(&s, &coop, &coops_only, proposal(&s, &[])).await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "already_answered"));
        // Bad answers.
        let any = publish(&s, &ana, bike("A cargo bike.")).await;
        release(&s);
        let mut long = proposal(&s, &[]);
        long["terms"] = json!("t".repeat(2_001));
        let mut sensitive_ask = proposal(&s, &[]);
        sensitive_ask["asks"] = json!(["health"]);
        let mut past = proposal(&s, &[]);
        past["valid_until"] = json!(s.clock.now().unix_millis() - 1);
        for (body, code) in [
            (long, "too_long"),
            (sensitive_ask, "invalid_intent"),
            (past, "invalid_intent"),
        ] {
            let (st, v) = answer(&s, &brand, &any, body).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{v}"
            );
        }
        // Keys and tokens on the wrong side.
        let (_, nokey) = s.org_with("No Offers", vec![Role::Consent]).await;
        let (st, v) = s
            .req(Method::GET, "/v1/org/intents", Some(&nokey), None)
            .await;
        assert_eq!((st, err(&v)), (StatusCode::FORBIDDEN, "role_required"));
        let (st, v) = s
            .req(Method::GET, "/v1/org/intents", Some(&ana), None)
            .await;
        assert_eq!((st, err(&v)), (StatusCode::FORBIDDEN, "organisation_only"));
        let (st, v) = s
            .req(Method::GET, "/v1/me/intents", Some(&coop), None)
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::FORBIDDEN, "organisation_forbidden")
        );
        // Another member cannot act on Ana's intent, even knowing its id
        // (what an organisation sees), nor tell it from an unknown one.
        let bob = s.member("bob@example.org").await;
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{any}/withdraw"),
                Some(&bob),
                None,
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::NOT_FOUND, "intent_not_found"));
        // Nor by writing an intent record naming it into his own vault: the
        // secret is not in it.
        let forged = json!({"v": 1, "id": any, "secret": "00", "topic": "bicycles-and-accessories",
            "region": "NL-UT", "text": "x", "budget": {"min_cents": 0, "max_cents": 1, "currency": "EUR"},
            "audience": {"kind": "any"}, "published_at": 0, "deadline": 0});
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&bob),
                Some(json!({"kind": "intent", "intent": forged.to_string()})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{any}/withdraw"),
                Some(&bob),
                None,
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::NOT_FOUND, "intent_not_found"));
        // Closed: withdrawing twice; answering after the visible hour.
        let (st, _) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{any}/withdraw"),
                Some(&ana),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{any}/withdraw"),
                Some(&ana),
                None,
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "intent_closed"));
        s.clock.advance_seconds(3600);
        let (st, v) = answer(&s, &brand, &any, proposal(&s, &[])).await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "intent_closed"));
        // The weekly quota: Ana published 3; two more, then refused.
        publish(&s, &ana, bike("One more.")).await;
        publish(&s, &ana, bike("And another.")).await;
        let (st, v) = post(bike("Too many.")).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "intent_rate_limited")
        );
        // Bob's quota is his own.
        publish(&s, &bob, bike("Bob's.")).await;
    }
}

#[tokio::test]
async fn accepting_discloses_exactly_what_the_member_chose_and_the_deadline_deletes() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
            continue;
        };
        let (coop, key) = org_of(&s, "Fietscoop", OrgKind::Coop).await;
        let (_, key2) = org_of(&s, "Bakfiets BV", OrgKind::Brand).await;
        follow(&s, &key).await;
        follow(&s, &key2).await;
        let ana = s
            .member_with(
                "ana@example.org",
                &[
                    json!({"kind": "profile_attribute", "name": "email", "value": "ana@example.org"}),
                    json!({"kind": "profile_attribute", "name": "name", "value": "Ana Jansen"}),
                    json!({"kind": "profile_attribute", "name": "phone", "value": "+31 6 1234 5678"}),
                ],
            )
            .await;
        let bob = s.member("bob@example.org").await;
        let ana_id = member_id(&s, &ana).await;
        let id = publish(&s, &ana, bike("A cargo bike for two children.")).await;
        let other = publish(&s, &ana, bike("A child seat.")).await;
        release(&s);
        let asks = ["email-address", "name", "telephone-number"];
        let (_, won) = answer(&s, &key, &id, proposal(&s, &asks)).await;
        let (_, lost) = answer(&s, &key2, &id, proposal(&s, &asks)).await;
        let (st, _) = answer(&s, &key2, &other, proposal(&s, &asks)).await;
        assert_eq!(st, StatusCode::CREATED);

        // Ana compares the answers in her vault.
        let (_, mine) = s.req(Method::GET, "/v1/me/intents", Some(&ana), None).await;
        let it = mine
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.as_str())
            .unwrap();
        assert_eq!(it["answers"].as_array().unwrap().len(), 2, "{it}");
        // Disclosing what was not asked is refused.
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{id}/accept"),
                Some(&ana),
                Some(json!({"answer_id": won["answer_id"], "disclose": ["physical-address"]})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "not_asked")
        );
        let (st, acc) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{id}/accept"),
                Some(&ana),
                Some(
                    json!({"answer_id": won["answer_id"], "disclose": ["email-address"],
                            "presentation": "a-presentation"}),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{acc}");
        // A second accept (of the other answer) is refused.
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{id}/accept"),
                Some(&ana),
                Some(json!({"answer_id": lost["answer_id"]})),
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "intent_closed"));

        // The winner reads exactly the e-mail address, under a pseudonym of
        // this contact alone.
        let (_, answers) = s
            .req(Method::GET, "/v1/org/intent-answers", Some(&key), None)
            .await;
        let a = &answers[0];
        assert_eq!(a["status"], "accepted", "{answers}");
        assert_eq!(a["contact"]["presentation"], "a-presentation");
        let subject = a["contact"]["subject"].as_str().unwrap();
        assert_ne!(subject, s.node.keys.subject_pseudonym(&coop, &ana_id));
        // The contact's consent was released at the accept (nothing waits);
        // data access answers in the window after the next boundary.
        assert_eq!(s.release_and_open_window().await, 0, "{db:?}");
        let (st, got) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(&key),
                Some(json!({"request_id": a["contact"]["consent_request_id"],
                            "purpose": "service-provision", "processing": "use"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{got}");
        let ds = got["disclosures"].as_array().unwrap();
        assert_eq!(ds.len(), 1, "{got}");
        assert_eq!(ds[0]["subject"], subject);
        // The envelope the member sealed names the contact's pseudonym too.
        let parsed: me2b_consent::service::Disclosure =
            serde_json::from_value(ds[0].clone()).unwrap();
        let env = me2b_consent::envelope::open(
            &key,
            parsed.consent_id,
            "email-address",
            &parsed.envelopes["email-address"],
        )
        .unwrap();
        assert_eq!(env.subject, subject);
        let opened = common::opened(&key, &got);
        let data = opened["disclosures"][0]["envelopes"].as_object().unwrap();
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            vec!["email-address"],
            "{opened}"
        );
        let t = opened.to_string();
        assert!(
            t.contains("ana@example.org") && !t.contains("Jansen") && !t.contains("1234"),
            "{t}"
        );
        // The contact's request is offered to no one else.
        let (_, pending) = s
            .req(Method::GET, "/v1/me/consent-requests", Some(&bob), None)
            .await;
        assert_eq!(pending, json!([]), "{pending}");

        // Ana reports the other answer; the operator sees the organisation
        // and its answer, nothing of Ana or her intent.
        let path = format!(
            "/v1/me/intents/{id}/answers/{}/report",
            lost["answer_id"].as_str().unwrap()
        );
        let (st, v) = s
            .req(
                Method::POST,
                &path,
                Some(&ana),
                Some(json!({"reason": "pushy sales call"})),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
        let (st, v) = s
            .req(
                Method::POST,
                &path,
                Some(&ana),
                Some(json!({"reason": "again"})),
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "already_reported"));
        let reports = s.node.intents.reports().await.unwrap();
        assert_eq!(reports.len(), 1);
        let t = format!("{reports:?}");
        assert!(!t.contains(&id) && !t.contains(&ana_id.to_string()));

        // At the deadline the intents and the unaccepted answers go; the
        // accepted answer stays until its validity ends, and Ana's vault
        // keeps what she agreed to.
        s.clock.advance_seconds(7 * 86_400 + 3600);
        assert!(s.node.intents.purge().await.unwrap() >= 4);
        for k in [&key, &key2] {
            assert!(feed(&s, k).await.is_empty());
            let (st, _) = s
                .req(Method::GET, &format!("/v1/org/intents/{id}"), Some(k), None)
                .await;
            assert_eq!(st, StatusCode::NOT_FOUND);
        }
        let (_, v) = s
            .req(Method::GET, "/v1/org/intent-answers", Some(&key2), None)
            .await;
        assert_eq!(v, json!([]));
        let (_, v) = s
            .req(Method::GET, "/v1/org/intent-answers", Some(&key), None)
            .await;
        assert_eq!(v[0]["status"], "accepted");
        let (_, mine) = s.req(Method::GET, "/v1/me/intents", Some(&ana), None).await;
        let mine = mine.as_array().unwrap();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["status"], "accepted");
        assert_eq!(mine[0]["accepted"]["disclosed"], json!(["email-address"]));
    }
}

/// Data access to an accepted intent's contact request.
async fn contact_access(s: &Srv, key: &str, rid: &Value) -> Value {
    let body = json!({"request_id": rid, "purpose": "service-provision", "processing": "use"});
    let (st, v) = s
        .req(Method::POST, "/v1/org/data-access", Some(key), Some(body))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

/// adv4 finding 1 for the contact: a vault write re-sealed an accepted
/// intent's contact envelope at once, together with the member's ordinary
/// envelopes, tying the contact's pseudonym to the member's. The contact's
/// first envelope is served at once (the organisation asked for it); a later
/// change waits for the next release of consent changes, like the member's
/// others, and shows with them.
#[tokio::test]
async fn a_contact_envelope_changes_only_at_the_next_consent_release() {
    const GOV: &str = "[intents]\nmin_batch = 1\n[consent_release]\nrelease_period_hours = 24\n\
        min_batch = 3\nmax_delay_hours = 24\naccess_window_minutes = 15\n";
    for db in Db::ALL {
        let Some(s) = start_ttl(db, Some(GOV), 30 * 86_400).await else {
            continue;
        };
        let to_midnight = |s: &Srv| {
            let now = s.clock.now().unix_millis();
            (86_400_000 - now.rem_euclid(86_400_000)) / 1000 + 60
        };
        let (_, key) = org_of(&s, "Fietscoop", OrgKind::Coop).await;
        follow(&s, &key).await;
        let ana = s
            .member_with(
                "ana@example.org",
                &[json!({"kind": "profile_attribute", "name": "email", "value": "ana@example.org"})],
            )
            .await;
        let id = publish(&s, &ana, bike("A cargo bike for two children.")).await;
        release(&s);
        let (st, won) = answer(&s, &key, &id, proposal(&s, &["email-address"])).await;
        assert_eq!(st, StatusCode::CREATED, "{won}");
        let (st, acc) = s
            .req(
                Method::POST,
                &format!("/v1/me/intents/{id}/accept"),
                Some(&ana),
                Some(json!({"answer_id": won["answer_id"], "disclose": ["email-address"]})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{acc}");
        let (_, answers) = s
            .req(Method::GET, "/v1/org/intent-answers", Some(&key), None)
            .await;
        let rid = answers[0]["contact"]["consent_request_id"].clone();
        // In the next data-access window the contact is served.
        s.clock.advance_seconds(to_midnight(&s));
        let before = contact_access(&s, &key, &rid).await;
        assert_eq!(before["disclosures"].as_array().unwrap().len(), 1, "{db:?}");
        // Ana adds an address: the contact's envelope is re-sealed, pending.
        s.clock.advance_seconds(60);
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&ana),
                Some(json!({"kind": "profile_attribute", "name": "email",
                    "value": "ana@new.example.org"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(
            contact_access(&s, &key, &rid).await,
            before,
            "{db:?}: the contact's envelope changed at once"
        );
        // At the next release (alone: after the maximum delay) it shows.
        s.clock.advance_seconds(to_midnight(&s));
        let after = contact_access(&s, &key, &rid).await;
        assert_ne!(after, before, "{db:?}");
        let opened = common::opened(&key, &after).to_string();
        assert!(opened.contains("ana@new.example.org"), "{db:?}: {opened}");
    }
}
