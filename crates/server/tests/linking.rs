//! Issue 12's remaining links, as two colluding co-ops would try them (the
//! adversarial review's scripts in test form), on SQLite and PostgreSQL:
//!
//! * consent times: members grant at co-op A and co-op B seconds apart; the
//!   co-ops pair their pseudonyms by every time they can see (consent
//!   lists, receipts, data-access answers and the envelopes in them) and by
//!   the order of the lists;
//! * whole-balance redemption: A credits distinct amounts, the members
//!   redeem all they can at B, and B matches the amount;
//! * credential tags: an issuer writes a tag into `tier` or `region`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{opened, start, Srv};
use me2b_domain::{Clock, OrgId, Timestamp};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A small deterministic generator for the members' timings (xorshift).
struct Dice(u64);
impl Dice {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Every time an organisation can read in `v`, by where it is: RFC 3339
/// strings anywhere, also inside a compact JWS's payload (a receipt).
fn times(v: &Value, path: &str, out: &mut Vec<(String, i64)>) {
    match v {
        Value::String(s) => {
            if let Some(t) = Timestamp::parse_rfc3339(s) {
                out.push((path.to_owned(), t.unix_millis()));
            } else if let Some(payload) = jws_payload(s) {
                times(&payload, &format!("{path}.jws"), out);
            }
        }
        Value::Array(a) => {
            for x in a {
                times(x, &format!("{path}[]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                times(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn jws_payload(s: &str) -> Option<Value> {
    let mut parts = s.split('.');
    let (_, p, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
}

/// What one co-op sees of its members: per pseudonym, every time it can
/// read (by path), and the pseudonyms in the order its lists give them.
struct OrgView {
    times: BTreeMap<String, Vec<(String, i64)>>,
    orders: Vec<Vec<String>>,
}

async fn org_view(s: &Srv, key: &str, request: &str) -> OrgView {
    let mut view = OrgView {
        times: BTreeMap::new(),
        orders: Vec::new(),
    };
    let (st, list) = s
        .req(
            Method::GET,
            &format!("/v1/org/consent-requests/{request}/consents"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let mut order = Vec::new();
    for c in list.as_array().unwrap() {
        let sub = c["subject"].as_str().unwrap().to_owned();
        order.push(sub.clone());
        let mut t = Vec::new();
        times(c, "consent", &mut t);
        let (st, r) = s
            .req(
                Method::GET,
                &format!(
                    "/v1/org/consents/{}/receipts",
                    c["consent_id"].as_str().unwrap()
                ),
                Some(key),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        times(&r, "receipts", &mut t);
        view.times.entry(sub).or_default().extend(t);
    }
    view.orders.push(order);
    let (st, access) = s
        .req(
            Method::POST,
            "/v1/org/data-access",
            Some(key),
            Some(
                json!({"request_id": request, "purpose": "direct-marketing", "processing": "use"}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{access}");
    let access = opened(key, &access);
    let mut order = Vec::new();
    for d in access["disclosures"].as_array().unwrap() {
        let sub = d["subject"].as_str().unwrap().to_owned();
        order.push(sub.clone());
        let mut t = Vec::new();
        times(d, "disclosure", &mut t);
        view.times.entry(sub).or_default().extend(t);
    }
    view.orders.push(order);
    view
}

/// The colluding co-ops' best pairing of A's pseudonyms with B's: greedy
/// on the summed time differences of the fields both see, ties broken by
/// the lists' order (position in A's list against position in B's).
fn best_pairing(a: &OrgView, b: &OrgView) -> Vec<(String, String)> {
    let pos = |v: &OrgView, s: &str| v.orders[0].iter().position(|x| x == s).unwrap_or(0);
    let mut cands = Vec::new();
    for (sa, ta) in &a.times {
        for (sb, tb) in &b.times {
            let d: i64 = ta
                .iter()
                .filter_map(|(p, x)| tb.iter().find(|(q, _)| q == p).map(|(_, y)| (x - y).abs()))
                .sum();
            let order = (pos(a, sa) as i64 - pos(b, sb) as i64).abs();
            cands.push((d, order, sa.clone(), sb.clone()));
        }
    }
    cands.sort();
    let (mut used_a, mut used_b, mut out) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for (_, _, sa, sb) in cands {
        if used_a.contains(&sa) || used_b.contains(&sb) {
            continue;
        }
        used_a.insert(sa.clone());
        used_b.insert(sb.clone());
        out.push((sa, sb));
    }
    out
}

const MEMBERS: usize = 8;

#[tokio::test]
async fn consent_times_and_order_do_not_link_members_across_co_ops() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        // The node's clock starts 800 s into an hour: every grant below
        // falls within that hour.
        let (a, ka) = s.org("Co-op A").await;
        let (b, kb) = s.org("Co-op B").await;
        let ask = json!({"purposes": ["direct-marketing"], "categories": ["interest"],
            "processing": ["use"], "legal_basis": "consent", "retention_days": 30,
            "recipients": [], "notice": "Offers that fit you.", "notice_version": "1"});
        let mut rid = BTreeMap::new();
        for (org, key) in [(a, &ka), (b, &kb)] {
            let (st, r) = s
                .req(
                    Method::POST,
                    "/v1/org/consent-requests",
                    Some(key),
                    Some(ask.clone()),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{r}");
            rid.insert(org, r["id"].as_str().unwrap().to_owned());
        }
        let mut members = Vec::new();
        for i in 0..MEMBERS {
            members.push(
                s.member_with(
                    &format!("m{i}@example.org"),
                    &[json!({"kind": "interest", "topic": "cycling"})],
                )
                .await,
            );
        }
        // Members arrive one after another, a few seconds apart, and answer
        // both requests within seconds, in either order.
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
        let mut arrival: Vec<usize> = (0..MEMBERS).collect();
        for i in (1..MEMBERS).rev() {
            arrival.swap(i, dice.next(i as u64 + 1) as usize);
        }
        for &i in &arrival {
            s.clock.advance_seconds(2 + dice.next(5) as i64);
            let order: [OrgId; 2] = if dice.next(2) == 0 { [a, b] } else { [b, a] };
            for org in order {
                let (st, v) = s
                    .req(
                        Method::POST,
                        &format!("/v1/me/consent-requests/{}/grant", rid[&org]),
                        Some(&members[i]),
                        Some(json!({})),
                    )
                    .await;
                assert_eq!(st, StatusCode::CREATED, "{v}");
                s.clock.advance_seconds(1 + dice.next(3) as i64);
            }
        }
        // Scoring only: each member's pseudonym at each co-op, from their
        // own view of their consents' receipts.
        let mut truth: BTreeMap<String, usize> = BTreeMap::new();
        for (i, m) in members.iter().enumerate() {
            let (_, mine) = s.req(Method::GET, "/v1/me/consents", Some(m), None).await;
            for c in mine.as_array().unwrap() {
                let r = c["receipts"][0].as_str().unwrap();
                let claims = jws_payload(r).unwrap();
                truth.insert(claims["subject"].as_str().unwrap().to_owned(), i);
            }
        }
        // The co-ops look after the release, in the data-access window.
        assert_eq!(
            s.release_and_open_window().await,
            2 * MEMBERS as u64,
            "{db:?}"
        );
        let va = org_view(&s, &ka, &rid[&a]).await;
        let vb = org_view(&s, &kb, &rid[&b]).await;
        assert_eq!(va.times.len(), MEMBERS);
        assert_eq!(vb.times.len(), MEMBERS);
        let pairs = best_pairing(&va, &vb);
        let right = pairs.iter().filter(|(x, y)| truth[x] == truth[y]).count();
        eprintln!("{db:?}: paired {right} of {MEMBERS} correctly");
        assert!(
            right <= 3,
            "{db:?}: the co-ops paired {right} of {MEMBERS} members by time or order"
        );
        // Every time a co-op sees is the same for all members who answered
        // within one hour, and every list is in pseudonym order: nothing
        // but chance (one in eight expected) pairs them.
        for view in [&va, &vb] {
            let first = view.times.values().next().unwrap();
            for t in view.times.values() {
                assert_eq!(t, first, "{db:?}: times differ between members");
            }
            for order in &view.orders {
                let mut sorted = order.clone();
                sorted.sort();
                assert_eq!(order, &sorted, "{db:?}: a list is not in pseudonym order");
            }
        }
    }
}

/// An issuer tries to tag one member through `tier` or `region`: a tag in
/// the text, a value of its own, homoglyphs, zero-width characters. Only
/// the federation's tiers and the trust's areas are issued; every refusal
/// has a clear code and echoes nothing.
#[tokio::test]
async fn an_issuer_cannot_tag_a_member_through_tier_or_region() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s
            .org_with("Corner Co-op", vec![me2b_domain::org::Role::Credentials])
            .await;
        let code = |tier: &str, region: &str| json!({"tier": tier, "region": region, "member_since": 2020});
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/credentials/codes",
                Some(&key),
                Some(code("member", "NL-NH")),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let tags = [
            ("gold-TAG-0001", "NL-NH", "invalid_claim"),
            ("gold", "NL-NH", "unknown_tier"),
            ("tag0001", "NL-NH", "unknown_tier"),
            ("memb\u{043e}r", "NL-NH", "invalid_claim"),
            ("member\u{200b}", "NL-NH", "invalid_claim"),
            ("member", "TAG-0002", "unknown_region"),
            ("member", "NL-NH\u{200d}", "invalid_claim"),
            ("member", "NL-N\u{041d}", "invalid_claim"),
            ("member", "Noord-Holland", "invalid_claim"),
            ("member", "nl-nh", "unknown_region"),
            ("member", &"X".repeat(64), "invalid_claim"),
        ];
        for (tier, region, want) in tags {
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/org/credentials/codes",
                    Some(&key),
                    Some(code(tier, region)),
                )
                .await;
            assert!(st.is_client_error(), "{db:?} {tier:?} {region:?}: {st} {v}");
            assert_eq!(err(&v), want, "{db:?} {tier:?} {region:?}: {v}");
            let text = v.to_string();
            for marker in ["TAG", "gold", "tag0001", "Noord", "XXXX"] {
                assert!(
                    !text.contains(marker),
                    "{db:?}: the refusal echoes {marker}: {v}"
                );
            }
        }
        // The lists are public, so a verifier knows every value there is.
        let (_, doc) = s
            .req(Method::GET, "/.well-known/me2b/issuers", None, None)
            .await;
        assert_eq!(
            doc["tiers"],
            json!(["founding", "member", "supporting"]),
            "{doc}"
        );
        assert!(
            doc["regions"].as_array().unwrap().contains(&json!("NL-NH")),
            "{doc}"
        );
    }
}

/// An issuer tries to tag members through `member_since` (attack4d: the
/// years 1801, 4242, 9876 and 9999 were issued and read back by a verifier,
/// 4 of 4): only the federation's coarse list up to this year is issued,
/// and the refusal echoes nothing.
#[tokio::test]
async fn an_issuer_cannot_tag_a_member_through_member_since() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s
            .org_with("Corner Co-op", vec![me2b_domain::org::Role::Credentials])
            .await;
        let code = |year: u64| json!({"tier": "member", "region": "NL-NH", "member_since": year});
        for year in [2000, 2015, 2020, 2025] {
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/org/credentials/codes",
                    Some(&key),
                    Some(code(year)),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{db:?} {year}: {v}");
        }
        // The test clock is in 2026: 2030 is in the future.
        for tag in [1801, 1999, 2019, 2021, 2030, 4242, 9876, 9999] {
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/org/credentials/codes",
                    Some(&key),
                    Some(code(tag)),
                )
                .await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::UNPROCESSABLE_ENTITY, "unknown_member_since"),
                "{db:?} {tag}: {v}"
            );
            assert!(
                !v.to_string().contains(&tag.to_string()),
                "{db:?}: echoes {tag}: {v}"
            );
        }
        let (_, doc) = s
            .req(Method::GET, "/.well-known/me2b/issuers", None, None)
            .await;
        assert_eq!(
            doc["member_since"],
            json!([2000, 2005, 2010, 2015, 2020, 2025]),
            "{doc}"
        );
    }
}

/// Co-op A credits each of its cards a distinct amount; each member then
/// redeems everything they can at co-op B (first trying the whole balance,
/// the natural "use all my points"), showing B's card at its till. A and B
/// match B's redeemed amounts against A's credits (attack1c: 8 of 8 before).
/// Tokens are for multiples of the federation's step, so amounts within one
/// step redeem alike and nothing but chance pairs the cards.
#[tokio::test]
async fn whole_balance_redemption_does_not_link_cards() {
    use me2b_domain::org::Role;
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (a, ka) = s.org_with("Co-op A", vec![Role::Insights]).await;
        let (b, kb) = s.org_with("Co-op B", vec![Role::Insights]).await;
        let mut dice = Dice(0x2545_f491_4f6c_dd1d);
        let mut credited: BTreeMap<String, i64> = BTreeMap::new();
        let mut members = Vec::new();
        let mut used = BTreeSet::new();
        for i in 0..MEMBERS {
            let m = s.member(&format!("r{i}@example.org")).await;
            let pa = s.pseudonym_at(&m, a).await;
            // Distinct amounts between one step (100) and two.
            let pts = loop {
                let p = 101 + dice.next(99) as i64;
                if used.insert(p) {
                    break p;
                }
            };
            let body = s.sealed(a, json!({"card": pa, "points": pts})).await;
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/org/trust/loyalty/earn",
                    Some(&ka),
                    Some(body),
                )
                .await;
            assert_eq!(st, StatusCode::ACCEPTED, "{v}");
            credited.insert(pa.clone(), pts);
            members.push((m, pa));
        }
        let mut seen_at_b: BTreeMap<String, i64> = BTreeMap::new();
        for (m, _) in &members {
            let pb = s.pseudonym_at(m, b).await;
            let (_, mine) = s.req(Method::GET, "/v1/me/trust", Some(m), None).await;
            let balance = mine["loyalty_points"].as_i64().unwrap();
            let mut tried = vec![balance];
            tried.extend(mine["redeemable_points"].as_i64());
            let mut redeemed = None;
            for points in tried {
                let (st, t) = s
                    .req(
                        Method::POST,
                        "/v1/me/trust/loyalty/tokens",
                        Some(m),
                        Some(json!({"org": b, "points": points})),
                    )
                    .await;
                if st != StatusCode::CREATED {
                    assert_eq!(err(&t), "redemption_step", "{t}");
                    assert!(!t.to_string().contains(&balance.to_string()), "{t}");
                    continue;
                }
                let (st, v) = s
                    .req(
                        Method::POST,
                        "/v1/org/trust/loyalty/redeem",
                        Some(&kb),
                        Some(json!({"token": t["token"], "points": points})),
                    )
                    .await;
                assert_eq!(st, StatusCode::OK, "{v}");
                redeemed = v["points"].as_i64();
                break;
            }
            seen_at_b.insert(pb, redeemed.unwrap());
        }
        // Scoring: the co-ops know the rule, so a B card's candidates are
        // A's cards whose credit redeems as what B saw (all of it, or its
        // largest multiple of the step); linked when the one candidate is
        // right.
        let mut linked = 0;
        for (m, pa) in &members {
            let pb = s.pseudonym_at(m, b).await;
            let amount = seen_at_b[&pb];
            let cands: Vec<&String> = credited
                .iter()
                .filter(|(_, c)| **c == amount || **c / 100 * 100 == amount)
                .map(|(p, _)| p)
                .collect();
            if cands == vec![pa] {
                linked += 1;
            }
        }
        eprintln!("{db:?}: {linked} of {MEMBERS} B cards linked by amount");
        let distinct: BTreeSet<i64> = seen_at_b.values().copied().collect();
        assert_eq!(linked, 0, "{db:?}: {linked} of {MEMBERS} linked");
        assert_eq!(distinct.len(), 1, "{db:?}: B saw {distinct:?}");

        // A token that takes the whole balance warns the member.
        let m = s.member("whole@example.org").await;
        let pa = s.pseudonym_at(&m, a).await;
        let body = s.sealed(a, json!({"card": pa, "points": 200})).await;
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/trust/loyalty/earn",
                Some(&ka),
                Some(body),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let mut warned = Vec::new();
        for _ in 0..2 {
            let (st, t) = s
                .req(
                    Method::POST,
                    "/v1/me/trust/loyalty/tokens",
                    Some(&m),
                    Some(json!({"org": b, "points": 100})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{t}");
            warned.push(t.get("warning").is_some());
        }
        assert_eq!(warned, [false, true], "{db:?}");
    }
}

/// attack5d: error answers carry no submitted value (a marker with a name
/// in it) and no route answers 500 to bad input; an address mail cannot go
/// to is a 4xx at sign-up, the same whether it is registered or not.
#[tokio::test]
async fn error_answers_echo_nothing_and_bad_addresses_are_refused() {
    use me2b_domain::org::Role;
    const MK: &str = "ECHOMARKER.jan.jansen@evil.example";
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, ka) = s
            .org_with(
                "Co-op A",
                vec![
                    Role::Admin,
                    Role::Consent,
                    Role::Insights,
                    Role::Credentials,
                ],
            )
            .await;
        let t = s.member("ana@example.org").await;
        let long = MK.repeat(3000);
        let routes: Vec<(Method, String, Option<Value>, Option<&str>)> = vec![
            (
                Method::POST,
                "/v1/members".into(),
                Some(json!({"email": MK, "passphrase": "x"})),
                None,
            ),
            (
                Method::POST,
                "/v1/members".into(),
                Some(json!({"email": format!("{MK}!!"), "passphrase": MK})),
                None,
            ),
            (
                Method::POST,
                "/v1/members".into(),
                Some(json!({"email": "ana@example.org!!", "passphrase": MK})),
                None,
            ),
            (
                Method::POST,
                "/v1/sessions".into(),
                Some(json!({"email": MK, "passphrase": MK})),
                None,
            ),
            (
                Method::POST,
                "/v1/members/confirm".into(),
                Some(json!({"token": MK})),
                None,
            ),
            (
                Method::POST,
                "/v1/vault/records".into(),
                Some(json!({"kind": MK, "text": MK})),
                Some(&t),
            ),
            (
                Method::POST,
                "/v1/vault/records".into(),
                Some(json!({"kind": "note", "text": long})),
                Some(&t),
            ),
            (
                Method::POST,
                "/v1/vault/records".into(),
                Some(json!({"kind": "interest", "topic": MK})),
                Some(&t),
            ),
            (
                Method::POST,
                "/v1/me/trust/loyalty/tokens".into(),
                Some(json!({"org": MK, "points": 100})),
                Some(&t),
            ),
            (
                Method::POST,
                "/v1/me/trust/sharing".into(),
                Some(json!({"from": MK, "to": MK, "purpose": MK})),
                Some(&t),
            ),
            (
                Method::POST,
                "/v1/me/credentials".into(),
                Some(json!({"code": MK})),
                Some(&t),
            ),
            (
                Method::GET,
                format!("/v1/me/trust/cards/{MK}"),
                None,
                Some(&t),
            ),
            (
                Method::POST,
                "/v1/org/trust/loyalty/earn".into(),
                Some(json!({"card": MK, "points": 1})),
                Some(&ka),
            ),
            (
                Method::POST,
                "/v1/org/trust/loyalty/redeem".into(),
                Some(json!({"token": MK, "points": 1})),
                Some(&ka),
            ),
            (
                Method::POST,
                "/v1/org/credentials/codes".into(),
                Some(json!({"tier": MK, "region": MK, "member_since": 2000, "interests": [MK]})),
                Some(&ka),
            ),
            (
                Method::POST,
                "/v1/org/consent-requests".into(),
                Some(
                    json!({"purposes": [MK], "categories": ["interest"], "processing": ["use"], "legal_basis": "consent", "retention_days": 1, "notice": "n", "notice_version": "1", "recipients": []}),
                ),
                Some(&ka),
            ),
            (
                Method::POST,
                "/v1/org/consent-requests".into(),
                Some(
                    json!({"purposes": ["direct-marketing"], "categories": [MK], "processing": [MK], "legal_basis": MK, "retention_days": 1, "notice": "n", "notice_version": "1", "recipients": [MK]}),
                ),
                Some(&ka),
            ),
            (Method::GET, "/v1/me".into(), None, Some(MK)),
        ];
        let mut answers = Vec::new();
        for (m, path, body, tok) in routes {
            let (st, v) = s.req(m.clone(), &path, tok, body).await;
            let text = v.to_string();
            assert!(
                st.is_client_error(),
                "{db:?} {m} {path}: {st} {}",
                text.chars().take(300).collect::<String>()
            );
            assert!(
                !text.contains("ECHOMARKER") && !text.contains("jansen"),
                "{db:?} {m} {path}: echoes: {}",
                text.chars().take(300).collect::<String>()
            );
            answers.push((path, st, err(&v).to_owned()));
        }
        // An unusable address answers alike whether or not an account has
        // the address it resembles.
        let signups: Vec<_> = answers.iter().filter(|a| a.0 == "/v1/members").collect();
        assert_eq!(
            (signups[1].1, &signups[1].2),
            (signups[2].1, &signups[2].2),
            "{db:?}"
        );
    }
}

/// After a GPC signal, the member's own views of a sharing (cross-selling)
/// consent say that it no longer shares: their consents, their trust view
/// and their transparency view (attack3b: all three still said it did).
#[tokio::test]
async fn gpc_shows_on_the_members_view_of_a_sharing_consent() {
    use me2b_domain::org::Role;
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (a, _) = s.org_with("Corner Co-op", vec![Role::Insights]).await;
        let (b, _) = s.org_with("Green Wheels", vec![Role::Insights]).await;
        let m = s.member("g@example.org").await;
        s.pseudonym_at(&m, a).await;
        s.pseudonym_at(&m, b).await;
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/trust/sharing",
                Some(&m),
                Some(json!({"from": a, "to": b, "purpose": "cross-sell", "days": 30})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let mine = |v: &Value| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|c| c["consent_id"] == id.as_str())
                .cloned()
                .unwrap()
        };
        let (_, v) = s.req(Method::GET, "/v1/me/consents", Some(&m), None).await;
        assert_eq!(mine(&v)["in_force"], true, "{v}");
        s.clock.advance_seconds(60);
        let (st, _) = s
            .req_h(Method::GET, "/v1/me", Some(&m), None, &[("Sec-GPC", "1")])
            .await;
        assert_eq!(st, StatusCode::OK);
        let (_, v) = s.req(Method::GET, "/v1/me/consents", Some(&m), None).await;
        let c = mine(&v);
        assert_eq!(
            (&c["in_force"], &c["gpc_opt_out"]),
            (&json!(false), &json!(true)),
            "{db:?} {c}"
        );
        assert!(
            c["summary"]
                .as_str()
                .unwrap()
                .contains("Global Privacy Control"),
            "{c}"
        );
        let (_, v) = s.req(Method::GET, "/v1/me/trust", Some(&m), None).await;
        assert_eq!(v["sharing"][0]["gpc_opt_out"], true, "{db:?} {v}");
        let (_, v) = s
            .req(Method::GET, "/v1/me/transparency", Some(&m), None)
            .await;
        let e = v["receipt_sharing"][0]["explanation"].as_str().unwrap();
        assert!(e.contains("Global Privacy Control"), "{db:?} {e}");
    }
}

/// `[consent_release]` as the polling test runs it: daily releases of at
/// least three members, 15-minute data-access windows.
const BATCHED: &str = "[consent_release]\nrelease_period_hours = 24\nmin_batch = 3\n\
     max_delay_hours = 72\naccess_window_minutes = 15\n";

/// What one co-op notes while it polls: per pseudonym, the clock (ms) at
/// which it first appeared and first changed (a list saying `withdrawn`, a
/// new receipt, leaving data access), and the pseudonyms in the order they
/// first appeared.
#[derive(Default)]
struct Poller {
    first_seen: BTreeMap<String, i64>,
    first_changed: BTreeMap<String, i64>,
    arrival: Vec<String>,
    receipts: BTreeMap<String, usize>,
    in_access: BTreeSet<String>,
    answered: usize,
    refused: usize,
}

impl Poller {
    async fn poll(&mut self, s: &Srv, key: &str, request: &str) {
        let now = s.clock.now().unix_millis();
        let (st, list) = s
            .req(
                Method::GET,
                &format!("/v1/org/consent-requests/{request}/consents"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{list}");
        for c in list.as_array().unwrap() {
            let sub = c["subject"].as_str().unwrap().to_owned();
            if !self.first_seen.contains_key(&sub) {
                self.first_seen.insert(sub.clone(), now);
                self.arrival.push(sub.clone());
            }
            let (st, r) = s
                .req(
                    Method::GET,
                    &format!(
                        "/v1/org/consents/{}/receipts",
                        c["consent_id"].as_str().unwrap()
                    ),
                    Some(key),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{r}");
            let n = r["receipts"].as_array().map_or(0, Vec::len);
            let more = self.receipts.insert(sub.clone(), n).is_some_and(|m| m < n);
            if c["status"] != "given" || more {
                self.first_changed.entry(sub).or_insert(now);
            }
        }
        let (st, access) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(key),
                Some(json!({"request_id": request, "purpose": "direct-marketing",
                    "processing": "use"})),
            )
            .await;
        if st == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(err(&access), "data_access_window", "{access}");
            self.refused += 1;
            return;
        }
        assert_eq!(st, StatusCode::OK, "{access}");
        self.answered += 1;
        let access = opened(key, &access);
        let now_in: BTreeSet<String> = access["disclosures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["subject"].as_str().unwrap().to_owned())
            .collect();
        for sub in &now_in {
            if !self.first_seen.contains_key(sub) {
                self.first_seen.insert(sub.clone(), now);
                self.arrival.push(sub.clone());
            }
        }
        for gone in self.in_access.difference(&now_in) {
            self.first_changed.entry(gone.clone()).or_insert(now);
        }
        self.in_access = now_in;
    }
}

/// The colluding co-ops' pairing of `a`'s pseudonyms with `b`'s by the
/// moments in `ta`/`tb`, ties broken by arrival order; how many are right.
fn pair_by_moment(
    ta: &BTreeMap<String, i64>,
    tb: &BTreeMap<String, i64>,
    rank_a: &[String],
    rank_b: &[String],
    truth: &BTreeMap<String, usize>,
) -> (usize, usize) {
    let rank = |r: &[String], x: &str| r.iter().position(|y| y == x).unwrap_or(0) as i64;
    let mut cands = Vec::new();
    for (sa, xa) in ta {
        for (sb, xb) in tb {
            cands.push((
                (xa - xb).abs(),
                (rank(rank_a, sa) - rank(rank_b, sb)).abs(),
                sa,
                sb,
            ));
        }
    }
    cands.sort();
    let (mut ua, mut ub, mut right) = (BTreeSet::new(), BTreeSet::new(), 0);
    for (_, _, sa, sb) in cands {
        if ua.contains(sa) || ub.contains(sb) {
            continue;
        }
        ua.insert(sa);
        ub.insert(sb);
        right += usize::from(truth[sa] == truth[sb]);
    }
    (right, ua.len())
}

/// Two co-ops poll everything they can see of their consents (lists,
/// receipts, data access) after every move a member makes, and pair their
/// pseudonyms by the moment each first appears (grants), by the moment each
/// first changes (withdrawals, one-click opt-outs) and by arrival order.
/// Before issue 12's consent releases they linked every member; now every
/// grant shows at one release and every withdrawal at the next, and data
/// access answers in windows a day apart.
#[tokio::test]
async fn polling_consent_views_does_not_link_grants_withdrawals_or_opt_outs() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, Some(BATCHED), 30 * 86_400).await else {
            continue;
        };
        // Start a minute into a day (UTC): a release is due at every midnight.
        let day = 86_400_000;
        let now = s.clock.now().unix_millis();
        s.clock
            .advance_seconds((day - now.rem_euclid(day)) / 1000 + 60);
        let (a, ka) = s.org("Co-op A").await;
        let (b, kb) = s.org("Co-op B").await;
        let ask = json!({"purposes": ["direct-marketing"], "categories": ["interest"],
            "processing": ["use"], "legal_basis": "consent", "retention_days": 30,
            "recipients": [], "notice": "Offers that fit you.", "notice_version": "1"});
        let mut rid = BTreeMap::new();
        for (org, key) in [(a, &ka), (b, &kb)] {
            let (st, r) = s
                .req(
                    Method::POST,
                    "/v1/org/consent-requests",
                    Some(key),
                    Some(ask.clone()),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{r}");
            rid.insert(org, r["id"].as_str().unwrap().to_owned());
        }
        const N: usize = 6;
        let mut members = Vec::new();
        for i in 0..N {
            members.push(
                s.member_with(
                    &format!("p{i}@example.org"),
                    &[json!({"kind": "interest", "topic": "cycling"})],
                )
                .await,
            );
        }
        let (mut pa, mut pb) = (Poller::default(), Poller::default());
        let mut dice = Dice(0x2545_f491_4f6c_dd1d);
        // Grants: one member after another, 20 to 90 minutes apart, each at
        // A and then B a few minutes later; the co-ops poll after each.
        for m in &members {
            s.clock.advance_seconds(1200 + 60 * dice.next(70) as i64);
            for org in [a, b] {
                let (st, v) = s
                    .req(
                        Method::POST,
                        &format!("/v1/me/consent-requests/{}/grant", rid[&org]),
                        Some(m),
                        Some(json!({})),
                    )
                    .await;
                assert_eq!(st, StatusCode::CREATED, "{v}");
                pa.poll(&s, &ka, &rid[&a]).await;
                pb.poll(&s, &kb, &rid[&b]).await;
                s.clock.advance_seconds(60 + 60 * dice.next(4) as i64);
            }
        }
        // Past midnight, both poll again.
        let next_day = |s: &Srv| {
            let now = s.clock.now().unix_millis();
            (day - now.rem_euclid(day)) / 1000 + 120
        };
        s.clock.advance_seconds(next_day(&s));
        pa.poll(&s, &ka, &rid[&a]).await;
        pb.poll(&s, &kb, &rid[&b]).await;
        assert_eq!((pa.first_seen.len(), pb.first_seen.len()), (N, N), "{db:?}");

        let mut truth: BTreeMap<String, usize> = BTreeMap::new();
        for (i, m) in members.iter().enumerate() {
            let (_, mine) = s.req(Method::GET, "/v1/me/consents", Some(m), None).await;
            for c in mine.as_array().unwrap() {
                let claims = jws_payload(c["receipts"][0].as_str().unwrap()).unwrap();
                truth.insert(claims["subject"].as_str().unwrap().to_owned(), i);
            }
        }
        let (grants, of) = pair_by_moment(
            &pa.first_seen,
            &pb.first_seen,
            &pa.arrival,
            &pb.arrival,
            &truth,
        );
        eprintln!("{db:?}: grants paired {grants} of {of} by first appearance");

        // Withdrawals: two members withdraw at A, then at B minutes later;
        // two opt out of marketing in one click. 30 to 90 minutes apart.
        for (k, m) in members.iter().take(4).enumerate() {
            s.clock.advance_seconds(1800 + 60 * dice.next(60) as i64);
            if k % 2 == 0 {
                let (_, mine) = s.req(Method::GET, "/v1/me/consents", Some(m), None).await;
                for c in mine.as_array().unwrap() {
                    let id = c["consent_id"].as_str().unwrap();
                    let (st, v) = s
                        .req(
                            Method::POST,
                            &format!("/v1/me/consents/{id}/withdraw"),
                            Some(m),
                            None,
                        )
                        .await;
                    assert_eq!(st, StatusCode::OK, "{v}");
                    pa.poll(&s, &ka, &rid[&a]).await;
                    pb.poll(&s, &kb, &rid[&b]).await;
                    s.clock.advance_seconds(60 + 60 * dice.next(4) as i64);
                }
            } else {
                let (st, v) = s
                    .req(
                        Method::POST,
                        "/v1/me/marketing-opt-out",
                        Some(m),
                        Some(json!({})),
                    )
                    .await;
                assert_eq!(st, StatusCode::OK, "{v}");
            }
            pa.poll(&s, &ka, &rid[&a]).await;
            pb.poll(&s, &kb, &rid[&b]).await;
        }
        s.clock.advance_seconds(next_day(&s));
        pa.poll(&s, &ka, &rid[&a]).await;
        pb.poll(&s, &kb, &rid[&b]).await;
        assert_eq!(
            (pa.first_changed.len(), pb.first_changed.len()),
            (4, 4),
            "{db:?}: every withdrawal shows"
        );
        let (changes, of_changes) = pair_by_moment(
            &pa.first_changed,
            &pb.first_changed,
            &pa.arrival,
            &pb.arrival,
            &truth,
        );
        eprintln!(
            "{db:?}: withdrawals and opt-outs paired {changes} of {of_changes} by first change; \
             data access answered {} and refused {} polls",
            pa.answered + pb.answered,
            pa.refused + pb.refused
        );
        // Every grant first showed at one moment, and every change at one
        // moment: only the lists' pseudonym order is left, which is chance.
        for p in [&pa, &pb] {
            let seen: BTreeSet<i64> = p.first_seen.values().copied().collect();
            let changed: BTreeSet<i64> = p.first_changed.values().copied().collect();
            assert_eq!(
                (seen.len(), changed.len()),
                (1, 1),
                "{db:?}: moments differ"
            );
        }
        assert!(grants <= 3, "{db:?}: {grants} of {N} grants linked");
        assert!(changes <= 2, "{db:?}: {changes} of 4 withdrawals linked");
    }
}

async fn list_of(s: &Srv, key: &str, rid: &str) -> Value {
    let path = format!("/v1/org/consent-requests/{rid}/consents");
    s.req(Method::GET, &path, Some(key), None).await.1
}

async fn access_of(s: &Srv, key: &str, rid: &str) -> (StatusCode, Value) {
    let body = json!({"request_id": rid, "purpose": "direct-marketing", "processing": "use"});
    s.req(Method::POST, "/v1/org/data-access", Some(key), Some(body))
        .await
}

/// A withdrawal stops data at once (GDPR Art. 7(3)) even though the
/// organisation's list shows it only at the next release; data access
/// answers in windows, with `429 data_access_window` and `Retry-After`
/// between them.
#[tokio::test]
async fn a_withdrawal_stops_data_at_once_and_data_access_answers_in_windows() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, Some(BATCHED), 30 * 86_400).await else {
            continue;
        };
        let (_, ka) = s.org("Co-op A").await;
        let ask = json!({"purposes": ["direct-marketing"], "categories": ["interest"],
            "processing": ["use"], "legal_basis": "consent", "retention_days": 30,
            "recipients": [], "notice": "Offers that fit you.", "notice_version": "1"});
        let (_, r) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&ka),
                Some(ask),
            )
            .await;
        let rid = r["id"].as_str().unwrap().to_owned();
        let m = s
            .member_with(
                "w@example.org",
                &[json!({"kind": "interest", "topic": "cycling"})],
            )
            .await;
        let (st, c) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{rid}/grant"),
                Some(&m),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        assert_eq!(
            list_of(&s, &ka, &rid).await,
            json!([]),
            "{db:?}: not released yet"
        );
        // Outside the window after midnight (UTC), data access waits.
        let (st, v) = access_of(&s, &ka, &rid).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "data_access_window"),
            "{v}"
        );
        // One member alone waits for the maximum delay (72 h), then shows at
        // the next midnight; data access answers in the quarter hour after.
        let to_midnight = |s: &Srv| {
            let now = s.clock.now().unix_millis();
            (86_400_000 - now.rem_euclid(86_400_000)) / 1000 + 60
        };
        s.clock.advance_seconds(3 * 86_400);
        s.clock.advance_seconds(to_midnight(&s));
        assert_eq!(list_of(&s, &ka, &rid).await[0]["status"], "given", "{db:?}");
        let (st, v) = access_of(&s, &ka, &rid).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(opened(&ka, &v)["disclosures"].as_array().unwrap().len(), 1);
        // Inside the window the member withdraws: no more data at once,
        // though the list shows the consent as given until the release.
        s.clock.advance_seconds(60);
        let id = c["consent_id"].as_str().unwrap();
        let (st, _) = s
            .req(
                Method::POST,
                &format!("/v1/me/consents/{id}/withdraw"),
                Some(&m),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, v) = access_of(&s, &ka, &rid).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(opened(&ka, &v)["disclosures"], json!([]), "{db:?}");
        assert_eq!(list_of(&s, &ka, &rid).await[0]["status"], "given", "{db:?}");
        s.clock.advance_seconds(15 * 60);
        let (st, v) = access_of(&s, &ka, &rid).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "data_access_window"),
            "{v}"
        );
        s.clock.advance_seconds(3 * 86_400);
        s.clock.advance_seconds(to_midnight(&s));
        let (st, _) = access_of(&s, &ka, &rid).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            list_of(&s, &ka, &rid).await[0]["status"],
            "withdrawn",
            "{db:?}"
        );
    }
}

/// Each co-op's envelopes as data access serves them: consent id → category → envelope.
async fn envelopes_of(s: &Srv, key: &str, rid: &str) -> BTreeMap<String, Value> {
    let (st, v) = access_of(s, key, rid).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["consent_id"].as_str().unwrap().to_owned(),
                d["envelopes"].clone(),
            )
        })
        .collect()
}

/// A login (or anything else that leaves what a consent allows unchanged)
/// re-seals nothing: the envelope bytes A and B are served stay as they
/// were, so two co-ops polling data access cannot see one member's envelopes
/// change at both at once (adv4 finding 1), and no seal is audited. A
/// change of content still re-seals, shown at the next release.
#[tokio::test]
async fn a_login_leaves_the_envelopes_served_to_co_ops_as_they_were() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, Some(BATCHED), 30 * 86_400).await else {
            continue;
        };
        let to_midnight = |s: &Srv| {
            let now = s.clock.now().unix_millis();
            (86_400_000 - now.rem_euclid(86_400_000)) / 1000 + 60
        };
        let (_, ka) = s.org("Co-op A").await;
        let (_, kb) = s.org("Co-op B").await;
        let ask = json!({"purposes": ["direct-marketing"], "categories": ["interest"],
            "processing": ["use"], "legal_basis": "consent", "retention_days": 30,
            "recipients": [], "notice": "Offers that fit you.", "notice_version": "1"});
        let mut rids = Vec::new();
        for key in [&ka, &kb] {
            let (st, r) = s
                .req(
                    Method::POST,
                    "/v1/org/consent-requests",
                    Some(key),
                    Some(ask.clone()),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{r}");
            rids.push(r["id"].as_str().unwrap().to_owned());
        }
        let m = s
            .member_with(
                "l@example.org",
                &[json!({"kind": "interest", "topic": "cycling"})],
            )
            .await;
        for rid in &rids {
            let (st, v) = s
                .req(
                    Method::POST,
                    &format!("/v1/me/consent-requests/{rid}/grant"),
                    Some(&m),
                    Some(json!({})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
        }
        // One member alone: released when the change waited the maximum
        // delay; the co-ops read in the window that opens there.
        assert_eq!(s.release_and_open_window().await, 2, "{db:?}");
        let before_a = envelopes_of(&s, &ka, &rids[0]).await;
        let before_b = envelopes_of(&s, &kb, &rids[1]).await;
        assert_eq!((before_a.len(), before_b.len()), (1, 1), "{db:?}");
        let seals = audited(&s, &m, "consent.envelope.seal").await;
        assert_eq!(seals, 2, "{db:?}: one at each grant");
        // The member logs in, twice; nothing in the vault changed.
        s.clock.advance_seconds(60);
        let mut m = m;
        for _ in 0..2 {
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/sessions",
                    None,
                    Some(json!({"email": "l@example.org", "passphrase": "correct horse battery"})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            m = v["token"].as_str().unwrap().to_owned();
        }
        // The co-ops read again in the next window.
        assert_eq!(s.release_and_open_window().await, 0, "{db:?}");
        assert_eq!(envelopes_of(&s, &ka, &rids[0]).await, before_a, "{db:?}: A");
        assert_eq!(envelopes_of(&s, &kb, &rids[1]).await, before_b, "{db:?}: B");
        // Nor is a seal audited that changed nothing.
        assert_eq!(
            audited(&s, &m, "consent.envelope.seal").await,
            seals,
            "{db:?}: a login audited a seal"
        );
        // A write of a category no consent covers re-seals nothing either.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&m),
                Some(json!({"kind": "note", "text": "private"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(envelopes_of(&s, &ka, &rids[0]).await, before_a, "{db:?}: A");
        // A new interest is a change of content: it is sealed.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&m),
                Some(json!({"kind": "interest", "topic": "bicycles-and-accessories"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(
            audited(&s, &m, "consent.envelope.seal").await,
            seals + 2,
            "{db:?}"
        );
        // It waits for the next release (alone: the maximum delay).
        assert_eq!(envelopes_of(&s, &ka, &rids[0]).await, before_a, "{db:?}");
        s.clock.advance_seconds(3 * 86_400);
        s.clock.advance_seconds(to_midnight(&s));
        let after_a = envelopes_of(&s, &ka, &rids[0]).await;
        assert_ne!(after_a, before_a, "{db:?}");
        let opened_a = opened(&ka, &access_of(&s, &ka, &rids[0]).await.1);
        assert!(
            opened_a.to_string().contains("bicycles-and-accessories"),
            "{db:?}: {opened_a}"
        );
    }
}

/// How many envelopes (consent, category) differ between two answers.
fn changed(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> usize {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .count()
}

/// The member's entries of `action` in their audit view.
async fn audited(s: &Srv, token: &str, action: &str) -> usize {
    let (st, page) = s
        .req(Method::GET, "/v1/me/audit?limit=500", Some(token), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .count()
}

/// The member adds an interest: a change of what an `interest` consent allows.
async fn add_interest(s: &Srv, token: &str) {
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/vault/records",
            Some(token),
            Some(json!({"kind": "interest", "topic": "bicycles-and-accessories"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// adv4 finding 1, second half: a real change of content (a record written)
/// re-sealed the member's envelopes at every co-op at once, so two co-ops
/// polling data access in one window saw one subject's envelope bytes
/// change at both right after the edit, alone, and linked their pseudonyms.
/// Now the new envelopes wait as pending and are swapped in at the next
/// release of consent changes, with the other members' changes of the
/// period (a lone one waits for `min_batch` or `max_delay` like a grant).
#[tokio::test]
async fn a_record_edit_shows_at_co_ops_only_at_the_next_release_with_others() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, Some(BATCHED), 30 * 86_400).await else {
            continue;
        };
        let to_midnight = |s: &Srv| {
            let now = s.clock.now().unix_millis();
            (86_400_000 - now.rem_euclid(86_400_000)) / 1000 + 60
        };
        let (_, ka) = s.org("Co-op A").await;
        let (_, kb) = s.org("Co-op B").await;
        let ask = json!({"purposes": ["direct-marketing"], "categories": ["interest"],
            "processing": ["use"], "legal_basis": "consent", "retention_days": 30,
            "recipients": [], "notice": "Offers that fit you.", "notice_version": "1"});
        let mut rids = Vec::new();
        for key in [&ka, &kb] {
            let (st, r) = s
                .req(
                    Method::POST,
                    "/v1/org/consent-requests",
                    Some(key),
                    Some(ask.clone()),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{r}");
            rids.push(r["id"].as_str().unwrap().to_owned());
        }
        let mut members = Vec::new();
        for i in 0..3 {
            let m = s
                .member_with(
                    &format!("e{i}@example.org"),
                    &[json!({"kind": "interest", "topic": "cycling"})],
                )
                .await;
            for rid in &rids {
                let (st, v) = s
                    .req(
                        Method::POST,
                        &format!("/v1/me/consent-requests/{rid}/grant"),
                        Some(&m),
                        Some(json!({})),
                    )
                    .await;
                assert_eq!(st, StatusCode::CREATED, "{v}");
            }
            members.push(m);
        }
        // The three grants are released at midnight; A and B poll.
        s.clock.advance_seconds(to_midnight(&s));
        let before_a = envelopes_of(&s, &ka, &rids[0]).await;
        let before_b = envelopes_of(&s, &kb, &rids[1]).await;
        assert_eq!((before_a.len(), before_b.len()), (3, 3), "{db:?}");
        let seals = audited(&s, &members[0], "consent.envelope.seal").await;
        // Inside the window one member adds an interest (a change of what
        // both consents allow); A and B poll right after.
        s.clock.advance_seconds(60);
        add_interest(&s, &members[0]).await;
        let seen = (
            changed(&before_a, &envelopes_of(&s, &ka, &rids[0]).await),
            changed(&before_b, &envelopes_of(&s, &kb, &rids[1]).await),
        );
        assert_eq!(
            seen,
            (0, 0),
            "{db:?}: one member's edit showed at A and B in the same window, alone: linked"
        );
        // The edit was sealed (once per consent), pending.
        assert_eq!(
            audited(&s, &members[0], "consent.envelope.seal").await,
            seals + 2,
            "{db:?}"
        );
        // Alone, it is not released at the next midnight (min_batch 3).
        s.clock.advance_seconds(to_midnight(&s));
        assert_eq!(envelopes_of(&s, &ka, &rids[0]).await, before_a, "{db:?}");
        assert_eq!(envelopes_of(&s, &kb, &rids[1]).await, before_b, "{db:?}");
        // Two other members change during the day; at the next midnight
        // all three show at both co-ops together.
        s.clock.advance_seconds(3600);
        add_interest(&s, &members[1]).await;
        s.clock.advance_seconds(2 * 3600);
        add_interest(&s, &members[2]).await;
        s.clock.advance_seconds(to_midnight(&s));
        let after_a = envelopes_of(&s, &ka, &rids[0]).await;
        let after_b = envelopes_of(&s, &kb, &rids[1]).await;
        assert_eq!(
            (changed(&before_a, &after_a), changed(&before_b, &after_b)),
            (3, 3),
            "{db:?}: the period's changes show together"
        );
        let opened_a = opened(&ka, &access_of(&s, &ka, &rids[0]).await.1);
        for d in opened_a["disclosures"].as_array().unwrap() {
            assert!(
                d.to_string().contains("bicycles-and-accessories"),
                "{db:?}: {d}"
            );
        }
    }
}
