//! Cross-selling consents are consent records, on SQLite and PostgreSQL:
//! listed and withdrawn with every other consent, with versions and signed
//! receipts, decided at each delivery by the one decision point (GPC
//! included), and never usable by the receiving co-op as an ordinary consent.
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

/// The members whose receipts A's partner B receives now.
async fn delivered(s: &Srv, kb: &str, a: OrgId) -> usize {
    let (st, v) = s
        .req(
            Method::GET,
            &format!("/v1/org/trust/shared/{a}"),
            Some(kb),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().unwrap().len()
}

async fn share(s: &Srv, member: &str, a: OrgId, b: OrgId) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/me/trust/sharing",
        Some(member),
        Some(json!({"from": a, "to": b, "purpose": "cross-sell", "days": 30})),
    )
    .await
}

/// The member's consent record with this id, from their list of consents.
async fn consent_of(s: &Srv, member: &str, id: &str) -> Value {
    let (st, v) = s
        .req(Method::GET, "/v1/me/consents", Some(member), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let all = v.as_array().cloned().unwrap_or_default();
    all.into_iter()
        .find(|c| c["consent_id"] == id)
        .unwrap_or_else(|| panic!("consent {id} not among the member's consents: {v}"))
}

#[tokio::test]
async fn cross_selling_consents_are_consent_records() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (a, ka) = s.org_with("Corner Co-op", vec![Role::Insights]).await;
        let (b, kb) = s
            .org_with("Green Wheels", vec![Role::Insights, Role::Consent])
            .await;
        let members = [
            s.member("x1@example.org").await,
            s.member("x2@example.org").await,
        ];
        // Each member shops at A (and holds a card at B).
        let mut receipts = Vec::new();
        for m in &members {
            let card = s.pseudonym_at(m, a).await;
            s.pseudonym_at(m, b).await;
            receipts.push(json!({"card": card, "at": "2026-11-20T17:42:13+01:00",
                "area": "NL-NH", "items": [{"category": "organic", "amount_cents": 1_250}]}));
        }
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/trust/receipts",
                Some(&ka),
                Some(s.sealed(a, json!({ "receipts": receipts })).await),
            )
            .await;
        assert!(st.is_success(), "{db:?} {v}");
        assert_eq!(delivered(&s, &kb, a).await, 0, "nothing without consent");

        // Given through the trust, kept as a consent record with the same id.
        let (st, v) = share(&s, &members[0], a, b).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let node_key = s.node.keys.verifying_key();
        let given =
            me2b_consent::receipt::verify(v["receipt"].as_str().unwrap(), &node_key).unwrap();
        assert_eq!(
            (given.consent_id.as_str(), given.consent_version),
            (id.as_str(), 1)
        );
        assert_eq!(given.processing[0].id, "share");
        let rec = consent_of(&s, &members[0], &id).await;
        assert_eq!(rec["cross_sell_from"], a.to_string(), "{rec}");
        assert_eq!(rec["organisation"], "Green Wheels", "{rec}");
        assert!(
            rec["summary"]
                .as_str()
                .unwrap()
                .contains("receipts Corner Co-op holds about you"),
            "{rec}"
        );
        assert_eq!(delivered(&s, &kb, a).await, 1);
        // One in force per pair.
        let (st, v) = share(&s, &members[0], a, b).await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "already_answered"));

        // B cannot use the node's request as its own: not listed, and every
        // organisation route that takes a request or consent id says 404.
        let request = rec["request_id"].as_str().unwrap().to_owned();
        let (_, v) = s
            .req(Method::GET, "/v1/org/consent-requests", Some(&kb), None)
            .await;
        assert!(!v.to_string().contains(&request), "{v}");
        for (m, path, body) in [
            (
                Method::GET,
                format!("/v1/org/consent-requests/{request}/consents"),
                None,
            ),
            (Method::GET, format!("/v1/org/consents/{id}/receipts"), None),
            (
                Method::POST,
                "/v1/org/data-access".to_owned(),
                Some(json!({"request_id": request, "purpose": "marketing", "processing": "share"})),
            ),
        ] {
            let (st, v) = s.req(m, &path, Some(&kb), body).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {v}");
        }
        // Nor can a member answer it outside the trust's sharing.
        let (_, pending) = s
            .req(
                Method::GET,
                "/v1/me/consent-requests",
                Some(&members[1]),
                None,
            )
            .await;
        assert!(!pending.to_string().contains(&request), "{pending}");
        let (st, _) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{request}/grant"),
                Some(&members[1]),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // Withdrawn among the member's consents (not the trust's route): a
        // second version with its receipt, and no delivery from then on.
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/consents/{id}/withdraw"),
                Some(&members[0]),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(delivered(&s, &kb, a).await, 0, "{db:?}");
        let (_, mine) = s
            .req(Method::GET, "/v1/me/trust", Some(&members[0]), None)
            .await;
        let sharing = &mine["sharing"][0];
        assert_eq!(sharing["withdrawn"], true, "{mine}");
        let withdrawn =
            me2b_consent::receipt::verify(sharing["receipt"].as_str().unwrap(), &node_key).unwrap();
        assert_eq!(withdrawn.event, me2b_consent::ConsentStatus::Withdrawn);
        assert_eq!(withdrawn.consent_version, 2);

        // GPC covers sharing: a signal after the consent stops its deliveries;
        // a consent given after the signal is the member's later word.
        s.clock.advance_seconds(60);
        let (st, _) = share(&s, &members[1], a, b).await;
        assert_eq!(st, StatusCode::CREATED);
        s.clock.advance_seconds(60);
        assert_eq!(delivered(&s, &kb, a).await, 1);
        let (st, _) = s
            .req_h(
                Method::GET,
                "/v1/me",
                Some(&members[1]),
                None,
                &[("sec-gpc", "1")],
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(delivered(&s, &kb, a).await, 0, "{db:?}: GPC applies");
        s.clock.advance_seconds(60);
        let (st, v) = share(&s, &members[1], a, b).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(delivered(&s, &kb, a).await, 1);
    }
}
