//! Erasure as colluding co-ops watch it (issue 12, finding A), over the HTTP
//! API on SQLite and PostgreSQL. Two co-ops each hold a card and a consent of
//! every member. Between the members' erasures they pool everything they can
//! observe through the API about each of their own cards (the consent list,
//! data access, the receipts answer, earning points) and link a card at A to
//! one at B when exactly one card of each changed at the same observations.
//! The node must release what organisations can observe of erasures in
//! batches at period boundaries, so members erased in one period change at
//! the same instant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Srv;
use me2b_consent::service::ErasureStatus;
use me2b_domain::org::Role;
use me2b_domain::{Clock as _, OrgId};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const PASSPHRASE: &str = "correct horse battery";
const MEMBERS: usize = 6;

/// A co-op as the attacker holds it: id, API key, the consent request its
/// members granted, and its pseudonym (card) and consent subject of each
/// member, in the order it met them.
struct Coop {
    id: OrgId,
    key: String,
    request: String,
    cards: Vec<String>,
    subjects: Vec<String>,
}

async fn coop(s: &Srv, name: &str) -> Coop {
    let (id, key) = s.org_with(name, vec![Role::Consent, Role::Insights]).await;
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/consent-requests",
            Some(&key),
            Some(json!({
                "purposes": ["marketing"],
                "categories": ["purchases-and-spending-habit"],
                "processing": ["use"],
                "legal_basis": "consent",
                "retention_days": 30,
                "notice": "We send you offers.",
                "notice_version": "1",
                "recipients": []
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    Coop {
        id,
        key,
        request: v["id"].as_str().unwrap().to_owned(),
        cards: Vec::new(),
        subjects: Vec::new(),
    }
}

/// Everything the co-op sees about each of its cards now, one JSON value per
/// card: its member's consent (as listed), whether data access names them
/// (null for every card outside the data-access window, which is the same
/// for every organisation), whether a receipt on the card is named as erased, what earning a point
/// on it answers, and whether an erasure request names its member.
async fn observe(s: &Srv, c: &Coop) -> Vec<Value> {
    let (st, consents) = s
        .req(
            Method::GET,
            &format!("/v1/org/consent-requests/{}/consents", c.request),
            Some(&c.key),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{consents}");
    let by_subject: BTreeMap<String, Value> = consents
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["subject"].as_str().unwrap().to_owned(), v.clone()))
        .collect();
    let (st, access) = s
        .req(
            Method::POST,
            "/v1/org/data-access",
            Some(&c.key),
            Some(json!({"request_id": c.request, "purpose": "marketing", "processing": "use"})),
        )
        .await;
    let disclosed: Option<Vec<String>> = if st == StatusCode::TOO_MANY_REQUESTS {
        assert_eq!(access["error"]["code"], "data_access_window", "{access}");
        None
    } else {
        assert_eq!(st, StatusCode::OK, "{access}");
        Some(
            access["disclosures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["subject"].as_str().unwrap().to_owned())
                .collect(),
        )
    };
    let receipts: Vec<Value> = c
        .cards
        .iter()
        .map(|p| {
            json!({"card": p, "day": "2026-12-01", "area": "NL-NH",
                   "items": [{"category": "organic", "amount_cents": 100}]})
        })
        .collect();
    let (st, submitted) = s
        .req(
            Method::POST,
            "/v1/org/trust/receipts",
            Some(&c.key),
            Some(s.sealed(c.id, json!({ "receipts": receipts })).await),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{submitted}");
    let erased: Vec<u64> = submitted["erased"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let (st, requests) = s
        .req(Method::GET, "/v1/org/erasure-requests", Some(&c.key), None)
        .await;
    let asked: Vec<String> = if st == StatusCode::OK {
        requests["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["subject"].as_str().unwrap().to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let mut seen = Vec::new();
    for (i, card) in c.cards.iter().enumerate() {
        let (st, earned) = s
            .req(
                Method::POST,
                "/v1/org/trust/loyalty/earn",
                Some(&c.key),
                Some(s.sealed(c.id, json!({"card": card, "points": 1})).await),
            )
            .await;
        let subject = &c.subjects[i];
        seen.push(json!({
            "consent": by_subject.get(subject),
            "disclosed": disclosed.as_ref().map(|d| d.contains(subject)),
            "receipt_erased": erased.contains(&(i as u64)),
            "earn": [st.as_u16(), earned["error"]["code"].clone()],
            "erasure_request": asked.contains(subject),
        }));
    }
    seen
}

/// The co-ops' linking: for each card, the observations at which what the
/// co-op sees of it changed. A card of A whose change pattern no other card
/// of A shares, matched with the one card of B with the same pattern, is a
/// link. Returns (links claimed, links right).
fn link(a: &[Vec<Value>], b: &[Vec<Value>]) -> (usize, usize) {
    let pattern = |obs: &[Vec<Value>], card: usize| -> Vec<bool> {
        obs.windows(2).map(|w| w[0][card] != w[1][card]).collect()
    };
    let cards = a[0].len();
    let pa: Vec<Vec<bool>> = (0..cards).map(|i| pattern(a, i)).collect();
    let pb: Vec<Vec<bool>> = (0..cards).map(|i| pattern(b, i)).collect();
    let (mut claimed, mut right) = (0, 0);
    for (i, p) in pa.iter().enumerate() {
        if !p.iter().any(|c| *c) {
            continue;
        }
        let at_a = pa.iter().filter(|q| *q == p).count();
        let at_b: Vec<usize> = (0..cards).filter(|j| pb[*j] == *p).collect();
        if at_a == 1 && at_b.len() == 1 {
            claimed += 1;
            // Cards are listed in member order at both co-ops.
            right += usize::from(at_b[0] == i);
        }
    }
    (claimed, right)
}

async fn erase(s: &Srv, member: &str) {
    let (st, v) = s
        .req(
            Method::DELETE,
            "/v1/me",
            Some(member),
            Some(json!({ "passphrase": PASSPHRASE })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// Sets up two co-ops and `MEMBERS` members with a card and a consent at
/// each; returns the co-ops and the members' session tokens.
async fn federation(s: &Srv) -> (Coop, Coop, Vec<String>) {
    let (mut a, mut b) = (coop(s, "Co-op A").await, coop(s, "Co-op B").await);
    let mut members = Vec::new();
    let mut consent_ids: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for i in 0..MEMBERS {
        let m = s.member(&format!("m{i}@example.org")).await;
        for (k, c) in [&mut a, &mut b].into_iter().enumerate() {
            let (st, v) = s
                .req(
                    Method::POST,
                    &format!("/v1/me/consent-requests/{}/grant", c.request),
                    Some(&m),
                    Some(json!({})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            consent_ids[k].push(v["consent_id"].as_str().unwrap().to_owned());
            c.cards.push(s.pseudonym_at(&m, c.id).await);
        }
        members.push(m);
    }
    // The co-ops see the consents at the next release of consent changes.
    assert_eq!(s.release_and_open_window().await, 2 * MEMBERS as u64);
    // The consent subjects, in member order (each co-op's list names its
    // own pseudonyms).
    for (k, c) in [&mut a, &mut b].into_iter().enumerate() {
        let (_, list) = s
            .req(
                Method::GET,
                &format!("/v1/org/consent-requests/{}/consents", c.request),
                Some(&c.key),
                None,
            )
            .await;
        let by_consent: BTreeMap<String, String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["consent_id"].as_str().unwrap().to_owned(),
                    v["subject"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for id in &consent_ids[k] {
            c.subjects.push(by_consent[id].clone());
        }
    }
    (a, b, members)
}

#[tokio::test]
async fn colluding_coops_cannot_link_cards_by_an_erasure() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, None, 90 * 24 * 3600).await else {
            continue;
        };
        let (a, b, members) = federation(&s).await;
        let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
        at_a.push(observe(&s, &a).await);
        at_b.push(observe(&s, &b).await);
        // Two members erase at different moments of one period; the co-ops
        // look after each erasure, then every few hours for ten days.
        for m in [&members[1], &members[4]] {
            s.clock.advance_seconds(3600);
            erase(&s, m).await;
            at_a.push(observe(&s, &a).await);
            at_b.push(observe(&s, &b).await);
        }
        // They look at 00:01, 06:01, 12:01 and 18:01 UTC: one look in four
        // is inside the data-access window (the hour after midnight).
        for _ in 0..(10 * 24 / 6) {
            let now = s.clock.now().unix_millis() / 1000;
            s.clock
                .advance_seconds(6 * 3600 - now.rem_euclid(6 * 3600) + 60);
            at_a.push(observe(&s, &a).await);
            at_b.push(observe(&s, &b).await);
        }
        let (claimed, right) = link(&at_a, &at_b);
        assert_eq!(
            (claimed, right),
            (0, 0),
            "{db:?}: the co-ops linked {right} of {claimed} claimed cards"
        );
        // The erasure did become visible, to both, at one instant.
        let last = at_a.len() - 1;
        for (i, obs) in [&at_a, &at_b].iter().enumerate() {
            for card in [1, 4] {
                assert_eq!(
                    obs[last][card]["earn"],
                    json!([410, "member_erased"]),
                    "{db:?}: co-op {i}"
                );
                assert_eq!(obs[last][card]["consent"], Value::Null);
                assert_eq!(obs[last][card]["erasure_request"], true);
                assert_eq!(obs[last][card]["disclosed"], false, "{db:?}: co-op {i}");
            }
            // The last look is inside the window: data access answered.
            assert!(obs[last][0]["disclosed"].is_boolean(), "{db:?}: co-op {i}");
        }
    }
}

async fn erase_with_receipt(s: &Srv, member: &str) -> String {
    let (st, v) = s
        .req(
            Method::DELETE,
            "/v1/me",
            Some(member),
            Some(json!({ "passphrase": PASSPHRASE })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["erasure_receipt"].as_str().unwrap().to_owned()
}

async fn requests_of(s: &Srv, key: &str) -> Vec<Value> {
    let (st, v) = s
        .req(Method::GET, "/v1/org/erasure-requests", Some(key), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["requests"].as_array().unwrap().clone()
}

async fn status(s: &Srv, receipt: &str) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/erasure-receipts/status",
        None,
        Some(json!({ "receipt": receipt })),
    )
    .await
}

/// recipient name → status, from the receipt's status answer.
fn by_recipient(v: &Value) -> BTreeMap<String, String> {
    v["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recipient"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn confirm(s: &Srv, key: &str, id: &str) -> (StatusCode, Value) {
    let path = format!("/v1/org/erasure-requests/{id}/confirm");
    s.req(Method::POST, &path, Some(key), None).await
}

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Checks a signed erasure request against the node's key; returns its claims.
fn verified(s: &Srv, jws: &str) -> Value {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["typ"], "me2b-erasure-request+jws");
    let sig = b64.decode(parts[2]).unwrap();
    s.node
        .keys
        .verifying_key()
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap();
    serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap()
}

#[tokio::test]
async fn erasure_reaches_every_recipient_and_the_receipt_follows_it() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, None, 90 * 24 * 3600).await else {
            continue;
        };
        let (a, b, members) = federation(&s).await;
        // C asked too, and was refused: it received nothing.
        let mut c = coop(&s, "Co-op C").await;
        let (st, _) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{}/refuse", c.request),
                Some(&members[0]),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        c.cards.clear();
        let receipt = erase_with_receipt(&s, &members[0]).await;
        assert!(receipt.starts_with("me2b_e_"));
        // Nothing is sent before the batch is released; the member sees it
        // waiting, and the trust done.
        for k in [&a.key, &b.key] {
            assert!(requests_of(&s, k).await.is_empty(), "{db:?}");
        }
        let (st, v) = status(&s, &receipt).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let want: BTreeMap<String, String> = [
            ("Co-op A", "waiting"),
            ("Co-op B", "waiting"),
            ("the data trust", "confirmed"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(by_recipient(&v), want, "{db:?}: C received nothing");
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        // Each recipient gets one signed request naming the member by its own
        // pseudonym (the one in its consent list), never another's.
        let (ra, rb) = (requests_of(&s, &a.key).await, requests_of(&s, &b.key).await);
        assert_eq!((ra.len(), rb.len()), (1, 1), "{db:?}");
        assert!(requests_of(&s, &c.key).await.is_empty());
        assert_eq!(ra[0]["subject"], json!(a.subjects[0]));
        assert_eq!(rb[0]["subject"], json!(b.subjects[0]));
        let claims = verified(&s, ra[0]["signed"].as_str().unwrap());
        assert_eq!(claims["subject"], json!(a.subjects[0]));
        assert_eq!(claims["recipient"], json!(a.id));
        assert_eq!(claims["request_id"], ra[0]["id"]);
        let text = format!("{ra:?}");
        assert!(!text.contains(&b.subjects[0]) && !text.contains(&b.id.to_string()));
        // A confirms; a replay, another organisation's confirmation, a made-up
        // or malformed id are refused and change nothing.
        let ida = ra[0]["id"].as_str().unwrap();
        let (st, v) = confirm(&s, &a.key, ida).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, v) = confirm(&s, &a.key, ida).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::CONFLICT, "erasure_already_confirmed")
        );
        for (key, id) in [
            (&b.key, ida),
            (&a.key, "0123456789abcdef0123456789abcdef"),
            (&a.key, "not-an-id"),
        ] {
            let (st, v) = confirm(&s, key, id).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::NOT_FOUND, "erasure_request_not_found"),
                "{db:?} {id}"
            );
            assert!(!v.to_string().contains(id) || id == ida);
        }
        assert!(requests_of(&s, &a.key).await.is_empty());
        // The member follows it with the receipt, without an account.
        let (_, v) = status(&s, &receipt).await;
        let mut want = want.clone();
        want.insert("Co-op A".into(), "confirmed".into());
        want.insert("Co-op B".into(), "pending".into());
        assert_eq!(by_recipient(&v), want, "{db:?}");
        // B never answers: overdue after the deadline, for the member and
        // the operator.
        s.clock.advance_seconds(31 * 24 * 3600);
        let (_, v) = status(&s, &receipt).await;
        want.insert("Co-op B".into(), "overdue".into());
        assert_eq!(by_recipient(&v), want, "{db:?}");
        assert_eq!(requests_of(&s, &b.key).await[0]["overdue"], true);
        let overview = s.node.consents.erasure_overview().await.unwrap();
        let mut seen: Vec<(String, ErasureStatus)> = overview
            .iter()
            .map(|r| (r.organisation.clone(), r.status))
            .collect();
        seen.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            seen,
            vec![
                ("Co-op A".to_owned(), ErasureStatus::Confirmed),
                ("Co-op B".to_owned(), ErasureStatus::Overdue)
            ]
        );
        // A wrong, altered or made-up receipt shows nothing.
        let mut altered = receipt.clone();
        altered.pop();
        altered.push(if receipt.ends_with('A') { 'B' } else { 'A' });
        for bad in [altered.as_str(), "me2b_e_nothing", "something else"] {
            let (st, v) = status(&s, bad).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::NOT_FOUND, "erasure_receipt_not_found"),
                "{db:?}"
            );
            assert!(!v.to_string().contains(bad));
        }
    }
}

#[tokio::test]
async fn an_erasure_cut_short_finishes_at_restart_and_its_requests_follow() {
    for db in Db::ALL {
        let Some(mut s) = common::start_ttl(db, None, 90 * 24 * 3600).await else {
            continue;
        };
        let (a, _b, members) = federation(&s).await;
        let (_, me) = s.req(Method::GET, "/v1/me", Some(&members[2]), None).await;
        let member: me2b_domain::MemberId = me["member_id"].as_str().unwrap().parse().unwrap();
        // The first write of an erasure, then the process dies.
        assert!(s.node.store.shred_member(member).await.unwrap());
        s.reopen(None).await;
        // Nothing readable, nothing usable: no session, no record, no key.
        let (st, _) = s.req(Method::GET, "/v1/me", Some(&members[2]), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let row = s.node.store.member(member).await.unwrap().unwrap();
        assert!(row.passphrase_wrap.is_none() && row.recovery_wrap.is_none());
        assert_eq!(s.node.store.count_records(member).await.unwrap(), 0);
        assert!(s
            .node
            .store
            .members_pending_erasure()
            .await
            .unwrap()
            .is_empty());
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        let ra = requests_of(&s, &a.key).await;
        assert_eq!(ra.len(), 1, "{db:?}");
        assert_eq!(ra[0]["subject"], json!(a.subjects[2]));
        assert!(s.node.store.member(member).await.unwrap().is_none());
    }
}
