//! Intents, what is kept and what the member is told (issue 17), on SQLite
//! and PostgreSQL: no exact publishing time is shown to anyone or stored at
//! rest (every time in the intent tables, and of the member's intent entries
//! in the audit log, is a whole hour or a week), and the
//! intents' privacy pool appears in the transparency view of a member who
//! published, beside the other pools, and in no one else's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start_ttl, Srv};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::Clock;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;

fn bike() -> Value {
    json!({"topic": "bicycles-and-accessories", "text": "A cargo bike for two children.",
           "budget": {"min_cents": 100_000, "max_cents": 300_000, "currency": "EUR"},
           "region": "NL-UT", "deadline_days": 7, "audience": {"kind": "any"},
           "acknowledge_free_text_warning": true})
}

async fn coop(s: &Srv, name: &str) -> String {
    let (_, key) = s
        .node
        .orgs
        .create(
            Label::try_from(name).unwrap(),
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

async fn ok(s: &Srv, m: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (st, v) = s.req(m, path, Some(token), body).await;
    assert!(st.is_success(), "{path}: {st} {v}");
    v
}

/// Every number in `v` with the key it sits under.
fn numbers(v: &Value, key: &str, out: &mut Vec<(String, i64)>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| numbers(x, k, out)),
        Value::Array(a) => a.iter().for_each(|x| numbers(x, key, out)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push((key.to_owned(), i));
            }
        }
        _ => {}
    }
}

/// A value that could be a time, in milliseconds or seconds since the epoch
/// around the test's clock, must be a whole hour.
fn check_time(what: &str, x: i64) {
    let ms = (1_600_000_000_000..2_100_000_000_000).contains(&x);
    let secs = (1_600_000_000..2_100_000_000).contains(&x);
    if ms {
        assert_eq!(x % HOUR, 0, "{what}: {x} is a time finer than the hour");
    }
    if secs {
        assert_eq!(x % 3600, 0, "{what}: {x} is a time finer than the hour");
    }
}

/// Every value of every column of the intent tables, as text (blobs as hex).
macro_rules! intent_tables {
    ($pool:expr, $tables:literal, $columns:literal, $hex:literal, $text:literal) => {{
        let pool = $pool;
        let tables: Vec<String> = sqlx::query_scalar($tables).fetch_all(&pool).await.unwrap();
        let mut out: Vec<(String, String)> = Vec::new();
        for t in tables {
            let cols: Vec<(String, String)> = sqlx::query_as($columns)
                .bind(&t)
                .fetch_all(&pool)
                .await
                .unwrap();
            assert!(!cols.is_empty(), "{t}");
            for (c, ty) in cols {
                let ty = ty.to_lowercase();
                let expr = if ty.contains("blob") || ty.contains("bytea") {
                    format!($hex, c = c)
                } else {
                    format!($text, c = c)
                };
                let vals: Vec<Option<String>> =
                    sqlx::query_scalar(&format!("SELECT {expr} FROM {t}"))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                for v in vals.into_iter().flatten() {
                    out.push((format!("{t}.{c}"), v));
                }
            }
        }
        out
    }};
}

async fn stored(s: &Srv) -> Vec<(String, String)> {
    match s.db {
        Db::Sqlite => intent_tables!(
            sqlx::SqlitePool::connect(&s.t.url).await.unwrap(),
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'intent%'",
            "SELECT name, type FROM pragma_table_info($1)",
            "hex({c})",
            "CAST({c} AS TEXT)"
        ),
        Db::Postgres => intent_tables!(
            sqlx::PgPool::connect(&s.t.url).await.unwrap(),
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name LIKE 'intent%'",
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            "upper(encode({c}, 'hex'))",
            "{c}::text"
        ),
    }
}

#[tokio::test]
async fn no_exact_publishing_time_is_shown_or_stored() {
    for db in Db::ALL {
        // Batches of any size, released at the next whole hour.
        let Some(s) = start_ttl(db, Some("[intents]\nmin_batch = 1\n"), 30 * 86_400).await else {
            continue;
        };
        let key = coop(&s, "Fietscoop Utrecht").await;
        let ana = s.member("ana@example.org").await;
        // The clock is at minute 13 of an hour; publish at 50:31.
        s.clock.advance_seconds(37 * 60 + 11);
        let exact = s.clock.now().unix_millis();
        assert_ne!(exact % HOUR, 0);
        let id = ok(&s, Method::POST, "/v1/me/intents", &ana, Some(bike())).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // An answer (once the intent's batch reached organisations, at the
        // next hour), an acceptance, a report and a release, each at another
        // odd moment, so that every table holds a row.
        s.clock.advance_seconds(14 * 60 + 7);
        let valid = s.clock.now().unix_millis() + 5 * 86_400_000 + 123_456;
        let body = json!({"price": {"amount_cents": 249_900, "currency": "EUR"},
                          "terms": "Two-year warranty.", "valid_until": valid,
                          "asks": ["email-address"]});
        let answered = ok(
            &s,
            Method::POST,
            &format!("/v1/org/intents/{id}/answers"),
            &key,
            Some(body),
        )
        .await;
        let answer = answered["answer_id"].as_str().unwrap().to_owned();
        s.clock.advance_seconds(3 * 60 + 1);
        ok(
            &s,
            Method::POST,
            &format!("/v1/me/intents/{id}/answers/{answer}/report"),
            &ana,
            Some(json!({"reason": "Pushy terms."})),
        )
        .await;
        ok(
            &s,
            Method::POST,
            &format!("/v1/me/intents/{id}/accept"),
            &ana,
            Some(json!({"answer_id": answer, "disclose": []})),
        )
        .await;
        ok(&s, Method::GET, "/v1/org/intents/counts", &key, None).await;

        // Shown: everything an organisation or the member reads.
        let mut shown = Vec::new();
        for (path, token) in [
            ("/v1/org/intents".to_owned(), &key),
            (format!("/v1/org/intents/{id}"), &key),
            ("/v1/org/intent-answers".to_owned(), &key),
            ("/v1/me/intents".to_owned(), &ana),
        ] {
            let v = ok(&s, Method::GET, &path, token, None).await;
            numbers(&v, &path, &mut shown);
        }
        assert!(shown.iter().any(|(k, _)| k == "published_at"), "{shown:?}");
        for (k, x) in &shown {
            check_time(k, *x);
        }

        // Stored: every column of every intent table, and every number in
        // the JSON bodies kept there.
        let rows = stored(&s).await;
        for table in [
            "intents",
            "intent_answers",
            "intent_reports",
            "intent_quota",
            "intent_releases",
        ] {
            assert!(
                rows.iter()
                    .any(|(c, _)| c.starts_with(&format!("{table}."))),
                "{db:?}: no row in {table}"
            );
        }
        let exact_texts = [exact.to_string(), (exact / 1000).to_string()];
        for (column, value) in &rows {
            // The subscription is the organisation's own act, dated exactly.
            if column == "intent_subscriptions.updated_at" {
                continue;
            }
            if let Ok(x) = value.parse::<i64>() {
                check_time(column, x);
                continue;
            }
            let text = hex::decode(value)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_else(|| value.clone());
            for e in &exact_texts {
                assert!(!text.contains(e.as_str()), "{db:?} {column}: {text}");
            }
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let mut inner = Vec::new();
                numbers(&v, column, &mut inner);
                for (k, x) in inner {
                    check_time(&format!("{column} {k}"), x);
                }
            }
        }

        // The audit log: the member's intent entries (under her audit
        // subject) are dated to the hour, like the rest.
        let mut dated = Vec::new();
        for e in s.node.store.audit_entries(0, 100_000).await.unwrap() {
            let ev = e.event().unwrap();
            let action = serde_json::to_value(ev.action).unwrap();
            if action.as_str().unwrap().starts_with("intent.") && ev.subject.is_some() {
                check_time(&format!("audit_log.at of {action}"), e.at.unix_millis());
                dated.push(action);
            }
        }
        for a in ["intent.publish", "intent.report", "intent.accept"] {
            assert!(dated.iter().any(|d| d == a), "{db:?}: no {a} in {dated:?}");
        }
    }
}

fn pools(v: &Value) -> Vec<String> {
    v["privacy_budget"]["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pool"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_member_who_published_sees_the_intents_pool_beside_the_others() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, None, 90 * 86_400).await else {
            continue;
        };
        let key = coop(&s, "Fietscoop Utrecht").await;
        let ana = s.member("ana@example.org").await;
        let bob = s.member("bob@example.org").await;
        ok(&s, Method::POST, "/v1/me/intents", &ana, Some(bike())).await;
        // A week later the counts of that week are released (charged once).
        s.clock.advance_seconds(7 * 86_400);
        ok(&s, Method::GET, "/v1/org/intents/counts", &key, None).await;

        let v = ok(&s, Method::GET, "/v1/me/transparency", &ana, None).await;
        let mine = pools(&v);
        assert!(mine.contains(&"offers:audience".to_owned()), "{v}");
        assert!(mine.contains(&"intents:open".to_owned()), "{v}");
        let pool = v["privacy_budget"]["pools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pool"] == "intents:open")
            .unwrap();
        assert!(
            (pool["spent"].as_f64().unwrap() - 0.2).abs() < 1e-9,
            "{pool}"
        );
        assert_eq!(
            pool["spent_by"][0]["organisation"], "Fietscoop Utrecht",
            "{pool}"
        );
        assert!(
            pool["description"].as_str().unwrap().contains("intents"),
            "{pool}"
        );

        // Bob published nothing: not in the pool, not told he is.
        let v = ok(&s, Method::GET, "/v1/me/transparency", &bob, None).await;
        assert!(!pools(&v).contains(&"intents:open".to_owned()), "{v}");
        assert!(pools(&v).contains(&"offers:audience".to_owned()), "{v}");

        // Weeks after the last of Ana's quota rows is gone, neither is she.
        s.clock.advance_seconds(8 * 7 * 86_400);
        s.node.intents.purge().await.unwrap();
        let v = ok(&s, Method::GET, "/v1/me/transparency", &ana, None).await;
        assert!(!pools(&v).contains(&"intents:open".to_owned()), "{v}");
    }
}
