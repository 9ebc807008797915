//! Loyalty with the member present (issue 12), attacked over the HTTP API on
//! SQLite and PostgreSQL. Each test plays a co-op trying to win with what it
//! can observe (status codes, error codes and messages, answer bodies):
//! linking its cards to another co-op's by their balances, probing a
//! member's balance through earnings and failed redemptions, using a card
//! that is no member's (sealed for another co-op's domain, made up, or
//! replayed from another co-op), replaying, altering or borrowing a token,
//! racing one token. Cards are as main makes them: the member shows a
//! ciphertext only the co-op opens, and the co-op seals its pseudonym afresh
//! for every submission. And the member sees their balance, history, audit
//! trail and transparency view.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::Srv;
use me2b_coop::CoopKeys;
use me2b_crypto::SeededRandom;
use me2b_domain::org::Role;
use me2b_domain::OrgId;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A co-op as an attacker holds it: its id, API key, and its own domain keys
/// (which open its cards and seal its pseudonyms, nothing else).
struct Coop {
    id: OrgId,
    key: String,
    keys: CoopKeys,
    random: SeededRandom,
}

impl Coop {
    /// Its pseudonym sealed afresh: a new ciphertext every time.
    fn seal(&self, pseudonym: &str) -> String {
        self.keys.seal(pseudonym, &self.random).unwrap()
    }
}

/// Creates the co-op; its keys are fetched once a member has a card there.
async fn coop(s: &Srv, name: &str, seed: u64) -> (OrgId, String, u64) {
    let (id, key) = s.org_with(name, vec![Role::Insights]).await;
    (id, key, seed)
}

/// A co-op that only redeems (it never needs its keys): its id and API key.
fn coop_without_cards((id, key, _): (OrgId, String, u64)) -> (OrgId, String) {
    (id, key)
}

async fn keyed(s: &Srv, (id, key, seed): (OrgId, String, u64)) -> Coop {
    Coop {
        id,
        key,
        keys: s.coop_keys(id).await,
        random: SeededRandom::new(seed),
    }
}

/// The card the member shows at `org`: a ciphertext, new each time.
async fn shown(s: &Srv, member: &str, org: OrgId) -> String {
    let (st, v) = s
        .req(
            Method::GET,
            &format!("/v1/me/trust/cards/{org}"),
            Some(member),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["card"].as_str().unwrap().to_owned()
}

/// Earning as the co-op does it: its pseudonym, sealed afresh.
async fn earn(s: &Srv, c: &Coop, pseudonym: &str, points: i64) -> (StatusCode, Value) {
    earn_card(s, c, &c.seal(pseudonym), points).await
}

/// Earning with whatever ciphertext the co-op chooses to send.
async fn earn_card(s: &Srv, c: &Coop, card: &str, points: i64) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/org/trust/loyalty/earn",
        Some(&c.key),
        Some(json!({"card": card, "points": points})),
    )
    .await
}

async fn token(s: &Srv, member: &str, org: OrgId, points: i64) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/me/trust/loyalty/tokens",
        Some(member),
        Some(json!({"org": org, "points": points})),
    )
    .await
}

async fn redeem(s: &Srv, key: &str, body: Value) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/org/trust/loyalty/redeem",
        Some(key),
        Some(body),
    )
    .await
}

async fn points(s: &Srv, member: &str) -> i64 {
    let (st, v) = s.req(Method::GET, "/v1/me/trust", Some(member), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["loyalty_points"].as_i64().unwrap()
}

/// Every integer anywhere in a JSON value.
fn numbers(v: &Value, out: &mut Vec<i64>) {
    match v {
        Value::Number(n) => out.extend(n.as_i64()),
        Value::String(t) => out.extend(
            t.split(|c: char| !c.is_ascii_digit())
                .filter_map(|d| d.parse::<i64>().ok()),
        ),
        Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        Value::Object(o) => o.values().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

/// Everything a co-op can try on one of its members without them: earn,
/// and every shape of redemption it can form from its card (sealed, as a
/// token, cut to a token's length), with amounts around `around`.
async fn probe(s: &Srv, c: &Coop, pseudonym: &str, around: i64) -> Vec<(u16, Value)> {
    let mut seen = Vec::new();
    let (st, v) = earn(s, c, pseudonym, 1).await;
    seen.push((st.as_u16(), v));
    for k in [1, around - 1, around, around + 1, 1_000_000] {
        for body in [
            json!({"card": c.seal(pseudonym), "points": k}),
            json!({"token": c.seal(pseudonym), "points": k}),
            json!({"token": pseudonym, "points": k}),
            json!({"token": &pseudonym[..20], "points": k}),
        ] {
            let (st, v) = redeem(s, &c.key, body).await;
            seen.push((st.as_u16(), v));
        }
    }
    seen
}

#[tokio::test]
async fn the_linking_attack_links_no_card() {
    for db in Db::ALL {
        let Some(s) = common::start(db).await else {
            continue;
        };
        let (a, b) = (coop(&s, "Co-op A", 1).await, coop(&s, "Co-op B", 2).await);
        let mut members = Vec::new();
        for i in 0..6 {
            members.push(s.member(&format!("m{i}@example.org")).await);
        }
        let mut cards = Vec::new();
        for m in &members {
            cards.push((s.pseudonym_at(m, a.0).await, s.pseudonym_at(m, b.0).await));
        }
        let (a, b) = (keyed(&s, a).await, keyed(&s, b).await);
        // B looks at its cards before A does anything.
        let mut before = Vec::new();
        for (_, pb) in &cards {
            before.push(probe(&s, &b, pb, 50).await);
        }
        // A credits distinct amounts to its cards.
        let credits: Vec<i64> = (0..6).map(|i| 100 + 37 * i).collect();
        for ((pa, _), c) in cards.iter().zip(&credits) {
            let (st, v) = earn(&s, &a, pa, *c).await;
            assert!(st.is_success(), "{st} {v}");
        }
        // B looks again, and matches any number in the answer to its first
        // try (earning 1 point, which it took back before) against A's
        // credits.
        let mut links = 0;
        let mut after = Vec::new();
        for (i, (_, pb)) in cards.iter().enumerate() {
            let seen = probe(&s, &b, pb, 50).await;
            let mut found = Vec::new();
            numbers(&seen[0].1, &mut found);
            let guesses: BTreeSet<usize> = found
                .iter()
                .flat_map(|n| {
                    credits
                        .iter()
                        .enumerate()
                        .filter(move |(_, c)| (*n - **c).abs() <= 4)
                        .map(|(j, _)| j)
                })
                .collect();
            if guesses.len() == 1 && guesses.contains(&i) {
                links += 1;
            }
            after.push(seen);
        }
        assert_eq!(links, 0, "{db:?}: B linked {links} of 6 cards");
        // Nothing B observes differs between its cards, or moved when A
        // credited them.
        for seen in before.iter().chain(&after) {
            assert_eq!(seen, &before[0], "{db:?}: B's observations differ");
        }
    }
}

#[tokio::test]
async fn a_coop_cannot_probe_a_balance() {
    for db in Db::ALL {
        let Some(s) = common::start(db).await else {
            continue;
        };
        let (a, b) = (coop(&s, "Co-op A", 1).await, coop(&s, "Co-op B", 2).await);
        let rich = s.member("rich@example.org").await;
        let poor = s.member("poor@example.org").await;
        let rich_a = s.pseudonym_at(&rich, a.0).await;
        let (rich_b, poor_b) = (
            s.pseudonym_at(&rich, b.0).await,
            s.pseudonym_at(&poor, b.0).await,
        );
        let (a, b) = (keyed(&s, a).await, keyed(&s, b).await);
        let (st, _) = earn(&s, &a, &rich_a, 50).await;
        assert!(st.is_success());
        // Every try on the rich member's card (balance 50) looks exactly like
        // every try on the poor one's (balance 0), and the answer to an
        // amount below the balance is the answer to one above it.
        let rich_seen = probe(&s, &b, &rich_b, 50).await;
        let poor_seen = probe(&s, &b, &poor_b, 50).await;
        assert_eq!(rich_seen, poor_seen, "{db:?}");
        let refusals: BTreeSet<String> = rich_seen
            .iter()
            .skip(1)
            .map(|(st, v)| format!("{st} {v}"))
            .collect();
        assert!(refusals.len() <= 2, "{db:?}: {refusals:?}");
        // With a token of the rich member's out for B, B's tries around the
        // balance look like tries with a token that does not exist.
        let (st, t) = token(&s, &rich, b.id, 20).await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        let tok = t["token"].as_str().unwrap().to_owned();
        for k in [1, 19, 21, 30, 31, 51, 1_000_000] {
            let (st, v) = redeem(&s, &b.key, json!({"token": tok, "points": k})).await;
            let (st2, v2) = redeem(
                &s,
                &b.key,
                json!({"token": "0000-0000-0000-0000-0000", "points": k}),
            )
            .await;
            assert_eq!((st, &v), (st2, &v2), "{db:?}: {k}");
            assert_eq!(err(&v), "redemption_refused");
        }
        // The token still works for what the member made it for.
        let (st, v) = redeem(&s, &b.key, json!({"token": tok, "points": 20})).await;
        assert_eq!(
            (st, &v),
            (StatusCode::OK, &json!({"status": "redeemed", "points": 20}))
        );
        assert_eq!(
            points(&s, &rich).await,
            31,
            "{db:?}: 50 + 1 earned, less 20"
        );
    }
}

/// A well-formed ciphertext nobody made: each component a valid group
/// element (multiples of the Ristretto base point, RFC 9496's vectors),
/// shaped like `like`.
fn made_up(like: &str, shift: usize) -> String {
    const POINTS: [&str; 4] = [
        "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
        "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
        "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
        "da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
    ];
    let b64 = base64::engine::general_purpose::URL_SAFE;
    let n = b64.decode(like).unwrap().len() / 32;
    let bytes: Vec<u8> = (0..n)
        .flat_map(|i| hex::decode(POINTS[(i + shift) % POINTS.len()]).unwrap())
        .collect();
    b64.encode(bytes)
}

#[tokio::test]
async fn a_card_of_no_member_is_refused_and_the_refusal_tells_nothing_else() {
    for db in Db::ALL {
        let Some(s) = common::start(db).await else {
            continue;
        };
        let (a, b) = (coop(&s, "Co-op A", 1).await, coop(&s, "Co-op B", 2).await);
        let m = s.member("m@example.org").await;
        let shown_at_a = shown(&s, &m, a.0).await;
        let shown_at_b = shown(&s, &m, b.0).await;
        let (a, b) = (keyed(&s, a).await, keyed(&s, b).await);
        let pa = a.keys.open_card(&shown_at_a).unwrap();
        let sealed_by_a = a.seal(&pa);
        let (st, _) = earn_card(&s, &a, &sealed_by_a, 500).await;
        assert!(st.is_success());
        // B sends what it can get hold of that is not its own card, hoping
        // to open a ledger that follows A's member, or to learn anything:
        let mut answers = BTreeSet::new();
        for (what, card) in [
            // the card the member showed at A, replayed at B;
            ("shown at A", shown_at_a.clone()),
            // A's sealed submission, replayed at B;
            ("sealed by A", sealed_by_a.clone()),
            // A's pseudonym (A colluding), sealed with B's keys;
            ("A's pseudonym, sealed by B", b.seal(&pa)),
            // B's own pseudonym for a member, made up: a valid group element;
            ("made-up pseudonym", b.seal(&made_up_point())),
            // ciphertexts nobody made.
            ("made-up ciphertext", made_up(&shown_at_b, 0)),
            ("another made-up ciphertext", made_up(&shown_at_b, 1)),
        ] {
            let (st, v) = earn_card(&s, &b, &card, 7).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::NOT_FOUND, "unknown_card"),
                "{db:?}: {what}: {v}"
            );
            answers.insert(v.to_string());
        }
        assert_eq!(answers.len(), 1, "{db:?}: the refusals differ: {answers:?}");
        let msg = answers.into_iter().next().unwrap();
        assert!(!msg.contains("500") && !msg.contains("507"), "{msg}");
        // Nothing was recorded: the member has what A gave, and B's refusals
        // did not start a ledger that A's card now moves to.
        assert_eq!(points(&s, &m).await, 500, "{db:?}");
        let (st, _) = earn_card(&s, &b, &a.seal(&pa), 7).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{db:?}");
        // B's own card is accepted however it arrives: sealed afresh, the
        // ciphertext the member showed, or one of B's earlier ones again
        // (all open to B's pseudonym for this member, which B has anyway).
        let pb = b.keys.open_card(&shown_at_b).unwrap();
        let once = b.seal(&pb);
        for card in [b.seal(&pb), shown_at_b.clone(), once.clone(), once] {
            let (st, v) = earn_card(&s, &b, &card, 1).await;
            assert_eq!(
                (st, &v),
                (StatusCode::ACCEPTED, &json!({"status": "accepted"})),
                "{db:?}"
            );
        }
        assert_eq!(points(&s, &m).await, 504, "{db:?}");
        // What is no ciphertext at all is a format error, the same for
        // everyone.
        for c in ["not a card".to_owned(), pb.clone(), "QUFB".repeat(40)] {
            let (st, v) = earn_card(&s, &b, &c, 7).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::BAD_REQUEST, "invalid_parameter"),
                "{db:?}"
            );
        }
    }
}

/// A valid Ristretto encoding that is no member's pseudonym (5 × the base
/// point, RFC 9496).
fn made_up_point() -> String {
    "e882b131016b52c1d3337080187cf768423efccbb517bb495ab812c4160ff44e".to_owned()
}

/// The token with its `i`-th character (not a dash) changed to another
/// symbol of the alphabet.
fn altered(token: &str, i: usize) -> String {
    token
        .chars()
        .enumerate()
        .map(|(j, c)| match (j == i, c) {
            (true, '0') => '1',
            (true, _) => '0',
            (false, c) => c,
        })
        .collect()
}

#[tokio::test]
async fn a_token_works_once_at_its_coop_for_its_amount_before_it_expires() {
    for db in Db::ALL {
        let Some(s) = common::start(db).await else {
            continue;
        };
        let (a, b) = (coop(&s, "Co-op A", 1).await, coop(&s, "Co-op B", 2).await);
        let m = s.member("m@example.org").await;
        let pa = s.pseudonym_at(&m, a.0).await;
        let (a, b) = (keyed(&s, a).await, coop_without_cards(b));
        let (ka, kb) = (a.key.clone(), b.1.clone());
        let b = b.0;
        let (st, _) = earn(&s, &a, &pa, 100).await;
        assert!(st.is_success());
        let (st, t) = token(&s, &m, b, 40).await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        assert_eq!(
            (t["points"].as_i64(), t["org"].as_str()),
            (Some(40), Some(b.to_string().as_str()))
        );
        assert_eq!(points(&s, &m).await, 60, "set aside when made");
        let tok = t["token"].as_str().unwrap();
        let mut refusals = BTreeSet::new();
        let mut tries = vec![
            // another co-op (A saw the member's screen at B);
            (&ka, json!({"token": tok, "points": 40})),
            // another amount;
            (&kb, json!({"token": tok, "points": 41})),
            (&kb, json!({"token": tok, "points": 39})),
            // made up, or empty;
            (
                &kb,
                json!({"token": "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ", "points": 40}),
            ),
            (&kb, json!({"token": "", "points": 40})),
        ];
        // altered: one symbol changed, anywhere;
        for i in [0, 7, 23] {
            tries.push((&kb, json!({"token": altered(tok, i), "points": 40})));
        }
        for (key, body) in tries {
            let (st, v) = redeem(&s, key, body).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::CONFLICT, "redemption_refused"),
                "{db:?}"
            );
            refusals.insert(v.to_string());
        }
        let (st, v) = redeem(
            &s,
            &kb,
            json!({"token": tok.to_lowercase().replace('-', " "), "points": 40}),
        )
        .await;
        assert_eq!(
            (st, &v),
            (StatusCode::OK, &json!({"status": "redeemed", "points": 40})),
            "{db:?}"
        );
        // Replayed: refused, with the same answer as every other refusal.
        let (st, v) = redeem(&s, &kb, json!({"token": tok, "points": 40})).await;
        assert_eq!(st, StatusCode::CONFLICT);
        refusals.insert(v.to_string());
        assert_eq!(refusals.len(), 1, "{db:?}: {refusals:?}");
        assert_eq!(points(&s, &m).await, 60);
        // Expired: refused, and its points come back to the member.
        let (_, t) = token(&s, &m, b, 25).await;
        assert_eq!(points(&s, &m).await, 35);
        s.clock.advance_seconds(5 * 60);
        let (st, v) = redeem(&s, &kb, json!({"token": t["token"], "points": 25})).await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "redemption_refused"));
        assert_eq!(points(&s, &m).await, 60, "{db:?}");
        // More than the balance: the member is told, no co-op is.
        let (st, v) = token(&s, &m, b, 61).await;
        assert_eq!((st, err(&v)), (StatusCode::CONFLICT, "insufficient_points"));
    }
}

#[tokio::test]
async fn one_token_submitted_at_once_many_times_redeems_once() {
    for db in Db::ALL {
        let Some(s) = common::start(db).await else {
            continue;
        };
        let a = coop(&s, "Co-op A", 1).await;
        let m = s.member("m@example.org").await;
        let pa = s.pseudonym_at(&m, a.0).await;
        let a = keyed(&s, a).await;
        let ka = a.key.clone();
        let (st, _) = earn(&s, &a, &pa, 10).await;
        assert!(st.is_success());
        let (_, t) = token(&s, &m, a.id, 10).await;
        let tok = t["token"].as_str().unwrap().to_owned();
        let s = std::sync::Arc::new(s);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (s, ka, tok) = (s.clone(), ka.clone(), tok.clone());
            set.spawn(async move { redeem(&s, &ka, json!({"token": tok, "points": 10})).await.0 });
        }
        let mut ok = 0;
        while let Some(st) = set.join_next().await {
            ok += usize::from(st.unwrap() == StatusCode::OK);
        }
        assert_eq!(ok, 1, "{db:?}");
        assert_eq!(points(&s, &m).await, 0);
    }
}

/// Reads the QR code in our SVG (one `M{x} {y}h1v1h-1z` square per dark
/// module) back with a QR decoder.
fn decode_qr(svg: &str) -> String {
    let view = svg.split("viewBox=\"0 0 ").nth(1).unwrap();
    let size: usize = view.split(' ').next().unwrap().parse().unwrap();
    let d = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut dark = vec![false; size * size];
    for sq in d.split('M').filter(|x| !x.is_empty()) {
        let xy = sq.strip_suffix("h1v1h-1z").unwrap();
        let (x, y) = xy.split_once(' ').unwrap();
        dark[y.parse::<usize>().unwrap() * size + x.parse::<usize>().unwrap()] = true;
    }
    let scale = 4;
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(size * scale, size * scale, |x, y| {
            if dark[(y / scale) * size + x / scale] {
                0
            } else {
                255
            }
        });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn the_member_sees_balance_history_audit_and_a_token_as_text_and_qr() {
    for db in Db::ALL {
        let Some(s) = common::start(db).await else {
            continue;
        };
        let (a, b) = (coop(&s, "Co-op A", 1).await, coop(&s, "Co-op B", 2).await);
        let v = s.sign_up("m@example.org", "correct horse battery").await;
        let m = v["token"].as_str().unwrap().to_owned();
        let member_id = v["member_id"].as_str().unwrap().to_owned();
        let pa = s.pseudonym_at(&m, a.0).await;
        let a = keyed(&s, a).await;
        let (b, kb) = (b.0, b.1);
        let (st, _) = earn(&s, &a, &pa, 120).await;
        assert!(st.is_success());
        let a = a.id;
        let (st, t) = token(&s, &m, b, 100).await;
        assert_eq!(st, StatusCode::CREATED);
        let text = t["token"].as_str().unwrap();
        assert_eq!(decode_qr(t["qr_svg"].as_str().unwrap()), text, "{db:?}");
        let (st, _) = redeem(&s, &kb, json!({"token": text, "points": 100})).await;
        assert_eq!(st, StatusCode::OK);
        let (_, v) = s.req(Method::GET, "/v1/me/trust", Some(&m), None).await;
        assert_eq!(
            (v["loyalty_points"].as_i64(), v["loyalty_reserved"].as_i64()),
            (Some(20), Some(0))
        );
        let h = v["loyalty_history"].as_array().unwrap();
        assert_eq!(h.len(), 2, "{v}");
        assert!(h
            .iter()
            .any(|d| d["org"] == json!(a) && d["earned"] == 120 && d["redeemed"] == 0));
        assert!(h
            .iter()
            .any(|d| d["org"] == json!(b) && d["earned"] == 0 && d["redeemed"] == 100));
        assert!(
            h.iter().all(|d| d["day"].as_str().unwrap().len() == 10),
            "days, no finer"
        );
        // The audit trail.
        let (_, v) = s
            .req(Method::GET, "/v1/me/audit?limit=1000", Some(&m), None)
            .await;
        let objects: Vec<String> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "trust.loyalty")
            .map(|e| e["object"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            objects,
            vec![
                "earn 120".to_owned(),
                format!("redemption token: 100 at {b}"),
                "redeem 100".to_owned()
            ],
            "{db:?}"
        );
        // The transparency view.
        let (_, v) = s
            .req(Method::GET, "/v1/me/transparency", Some(&m), None)
            .await;
        let lines = v["loyalty"].to_string();
        assert!(lines.contains("Co-op A added 120 points"), "{lines}");
        assert!(lines.contains("Co-op B took 100 points"), "{lines}");
        // No audit entry names both the member and the subject their loyalty
        // entries are under.
        let entries = s.node.store.audit_entries(0, 100_000).await.unwrap();
        let mut loyalty_subjects = BTreeSet::new();
        for e in &entries {
            let ev: Value = serde_json::from_slice(&e.event_json).unwrap();
            if ev["action"] == "trust.loyalty" {
                if let Some(sub) = ev["subject"].as_str() {
                    assert_ne!(sub, member_id);
                    assert!(!ev.to_string().contains(&member_id), "{ev}");
                    loyalty_subjects.insert(sub.to_owned());
                }
            }
        }
        assert_eq!(loyalty_subjects.len(), 1, "{db:?}");
        let ls = loyalty_subjects.into_iter().next().unwrap();
        for e in &entries {
            let t = String::from_utf8_lossy(&e.event_json);
            assert!(!(t.contains(&ls) && t.contains(&member_id)), "{t}");
        }
    }
}
