//! An erased member's intents (adv4, finding 2): a member published an
//! intent, erased their account before the intents batch was released, and
//! at the next batch the intent reached organisations' feeds, open and
//! answerable, its text still in the `intents` table. Erasure now finds the
//! member's intents (`intent_owners`: their locator and each intent id
//! sealed) on every path (`DELETE /v1/me`, and an erasure cut short and
//! finished at the next start): an intent not yet released is deleted at
//! once; a published one closes, seen closed from the next whole hour as
//! any closed intent, and goes with its answers at the erasure's release.
//! On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start_ttl, Srv};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::{Clock, MemberId};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;
const PASSPHRASE: &str = "correct horse battery";
const BATCH_OF_ONE: &str = "[intents]\nmin_batch = 1\n";

fn bike(text: &str) -> Value {
    json!({"topic": "bicycles-and-accessories", "text": text,
           "budget": {"min_cents": 100_000, "max_cents": 300_000, "currency": "EUR"},
           "region": "NL-UT", "deadline_days": 7, "audience": {"kind": "any"},
           "acknowledge_free_text_warning": true})
}

fn proposal(s: &Srv) -> Value {
    let valid = s.clock.now().unix_millis() + 10 * 86_400_000;
    json!({"price": {"amount_cents": 249_900, "currency": "EUR"},
           "terms": "Cargo bike, two-year warranty, delivery included.",
           "valid_until": valid, "asks": []})
}

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

async fn coop(s: &Srv) -> String {
    let (_, key) = s
        .node
        .orgs
        .create(
            Label::try_from("Fietscoop Utrecht").unwrap(),
            OrgKind::Coop,
            Roles::try_from(vec![Role::Offers, Role::Consent]).unwrap(),
        )
        .await
        .unwrap();
    let key = key.secret.expose().to_owned();
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/org/intents/subscription",
            Some(&key),
            Some(json!({"topics": ["bicycles-and-accessories"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    key
}

async fn publish(s: &Srv, member: &str, text: &str) -> String {
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/me/intents",
            Some(member),
            Some(bike(text)),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn feed_ids(s: &Srv, key: &str) -> Vec<String> {
    let (st, v) = s.req(Method::GET, "/v1/org/intents", Some(key), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn view(s: &Srv, key: &str, id: &str) -> (StatusCode, Value) {
    s.req(
        Method::GET,
        &format!("/v1/org/intents/{id}"),
        Some(key),
        None,
    )
    .await
}

async fn answer(s: &Srv, key: &str, id: &str) -> (StatusCode, Value) {
    let body = proposal(s);
    s.req(
        Method::POST,
        &format!("/v1/org/intents/{id}/answers"),
        Some(key),
        Some(body),
    )
    .await
}

/// Rows of the intent tables: `intents` and `intent_answers` rows of the
/// intent `id` (hex), and every `intent_owners` row.
async fn rows(s: &Srv, id: &str) -> (i64, i64, i64) {
    let id = hex::decode(id).unwrap();
    macro_rules! count {
        ($pool:expr) => {{
            let pool = $pool;
            let mut n = Vec::new();
            for sql in [
                "SELECT COUNT(*) FROM intents WHERE intent_id = $1",
                "SELECT COUNT(*) FROM intent_answers WHERE intent_id = $1",
            ] {
                let c: i64 = sqlx::query_scalar(sql)
                    .bind(id.clone())
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                n.push(c);
            }
            let c: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM intent_owners")
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            (n[0], n[1], c)
        }};
    }
    match s.db {
        Db::Sqlite => count!(sqlx::SqlitePool::connect(&s.t.url).await.unwrap()),
        Db::Postgres => count!(sqlx::PgPool::connect(&s.t.url).await.unwrap()),
    }
}

async fn member_id(s: &Srv, token: &str) -> MemberId {
    let (_, v) = s.req(Method::GET, "/v1/me", Some(token), None).await;
    v["member_id"].as_str().unwrap().parse().unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Path {
    /// `DELETE /v1/me` (the web page and the CLI call the same erasure).
    Api,
    /// The first write of an erasure, then the process dies; the next
    /// start finishes it.
    Restart,
}

async fn erase(s: &mut Srv, member: &str, path: Path) {
    match path {
        Path::Api => {
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
        Path::Restart => {
            let id = member_id(s, member).await;
            assert!(s.node.store.shred_member(id).await.unwrap());
            s.reopen(Some(BATCH_OF_ONE)).await;
        }
    }
}

/// Moves the clock past the erasure's release and lets an organisation read
/// (which releases what is due).
async fn past_the_erasure_release(s: &Srv, key: &str) {
    s.clock
        .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
    let (st, v) = s
        .req(Method::GET, "/v1/org/erasure-requests", Some(key), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn an_intent_erased_before_its_batch_is_never_published() {
    for db in Db::ALL {
        for path in [Path::Api, Path::Restart] {
            let Some(mut s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
                continue;
            };
            let key = coop(&s).await;
            let gone = s.member("gone@example.org").await;
            let stays = s.member("stays@example.org").await;
            let now = s.clock.now().unix_millis();
            s.clock
                .advance_seconds((HOUR - now.rem_euclid(HOUR)) / 1000 + 300);
            let id = publish(&s, &gone, "unique intent WOMBAT").await;
            let kept = publish(&s, &stays, "A cargo bike for two children.").await;
            assert_eq!(rows(&s, &id).await, (1, 0, 2));
            erase(&mut s, &gone, path).await;
            // Not yet released: gone at once.
            assert_eq!(rows(&s, &id).await.0, 0, "{db:?} {path:?}");

            // The batch is released: the other member's intent is there,
            // the erased member's is nowhere.
            s.clock.advance_seconds(2 * 3600);
            let feed = feed_ids(&s, &key).await;
            assert!(feed.contains(&kept), "{db:?} {path:?}: {feed:?}");
            assert!(!feed.contains(&id), "{db:?} {path:?}: {feed:?}");
            let (st, v) = view(&s, &key, &id).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::NOT_FOUND, "intent_not_found"),
                "{v}"
            );
            let (st, v) = answer(&s, &key, &id).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::NOT_FOUND, "intent_not_found"),
                "{v}"
            );
            assert_eq!(rows(&s, &id).await, (0, 0, 2), "{db:?} {path:?}");

            // At the erasure's release the link goes too; the other
            // member's stays.
            past_the_erasure_release(&s, &key).await;
            assert_eq!(rows(&s, &id).await, (0, 0, 1), "{db:?} {path:?}");
            assert_eq!(rows(&s, &kept).await, (1, 0, 1), "{db:?} {path:?}");
        }
    }
}

#[tokio::test]
async fn a_published_intent_of_an_erased_member_closes_then_goes_with_its_answers() {
    for db in Db::ALL {
        for path in [Path::Api, Path::Restart] {
            let Some(mut s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
                continue;
            };
            let key = coop(&s).await;
            let gone = s.member("gone@example.org").await;
            let now = s.clock.now().unix_millis();
            s.clock
                .advance_seconds((HOUR - now.rem_euclid(HOUR)) / 1000 + 300);
            let id = publish(&s, &gone, "unique intent WOMBAT").await;
            s.clock.advance_seconds(3600);
            assert!(feed_ids(&s, &key).await.contains(&id));
            let (st, v) = answer(&s, &key, &id).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            assert_eq!(rows(&s, &id).await, (1, 1, 1));

            erase(&mut s, &gone, path).await;
            // Closed from the next whole hour, as any closed intent.
            s.clock.advance_seconds(3600);
            let (st, v) = view(&s, &key, &id).await;
            assert_eq!(st, StatusCode::OK, "{db:?} {path:?}: {v}");
            assert_eq!(v["status"], "closed", "{db:?} {path:?}: {v}");
            assert!(!feed_ids(&s, &key).await.contains(&id));

            // At the erasure's release: no intent, no answer, no link.
            past_the_erasure_release(&s, &key).await;
            let (st, v) = view(&s, &key, &id).await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::NOT_FOUND, "intent_not_found"),
                "{v}"
            );
            assert_eq!(rows(&s, &id).await, (0, 0, 0), "{db:?} {path:?}");
        }
    }
}
