//! Logins under attack (issue 14): brute force is throttled per account and
//! per client address with `429` and `Retry-After`; a flood never runs more
//! Argon2 computations at once than the bound; failed logins grow the audit
//! log by at most one entry per account per minute.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, start_custom, Srv};
use me2b_crypto::PassphraseParams;
use me2b_server::{ServerOptions, ThrottleSettings};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const RIGHT: &str = "correct horse battery";

async fn log_in(s: &Srv, email: &str, pass: &str) -> (StatusCode, Value, Option<u64>) {
    let resp = s
        .http
        .post(format!("{}/v1/sessions", s.base))
        .json(&json!({"email": email, "passphrase": pass}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (status, resp.json().await.unwrap(), retry)
}

async fn audit_len(s: &Srv) -> u64 {
    s.node.store.audit_head().await.unwrap().map_or(0, |h| h.0)
}

/// Wide limits per address, so a test from 127.0.0.1 reaches what it tests.
fn wide_ip() -> ThrottleSettings {
    ThrottleSettings {
        ip_burst: 100_000,
        ..ThrottleSettings::default()
    }
}

#[tokio::test]
async fn brute_force_is_throttled_and_the_right_passphrase_works_after_the_lockout() {
    for db in Db::ALL {
        let opts = ServerOptions {
            throttle: wide_ip(),
            ..ServerOptions::default()
        };
        let Some(s) = start_custom(db, opts, |_| {}).await else {
            continue;
        };
        s.member("victim@example.org").await;
        // The default burst: 5 attempts, wrong ones answered 401.
        for i in 0..5 {
            let (st, v, _) = log_in(&s, "victim@example.org", &format!("guess number {i}")).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        }
        // Then 429 with Retry-After, for a wrong passphrase and the right one.
        let (st, v, retry) = log_in(&s, "victim@example.org", "guess number 6").await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
        assert_eq!(v["error"]["code"], "too_many_requests");
        let retry = retry.expect("Retry-After");
        assert!((1..=60).contains(&retry), "{retry}");
        let (st, _, _) = log_in(&s, "victim@example.org", RIGHT).await;
        assert_eq!(
            st,
            StatusCode::TOO_MANY_REQUESTS,
            "right passphrase during the lockout"
        );
        // An address without an account is throttled the same way (nothing
        // tells whether an account exists).
        for i in 0..5 {
            let (st, _, _) = log_in(&s, "nobody@example.org", &format!("guess number {i}")).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED);
        }
        let (st, _, retry2) = log_in(&s, "nobody@example.org", "guess number 6").await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry2, Some(retry));
        // After the wait, the right passphrase works.
        s.clock.advance_seconds(retry as i64);
        let (st, v, _) = log_in(&s, "victim@example.org", RIGHT).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
}

#[tokio::test]
async fn one_address_is_throttled_across_accounts() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    // The default per-address burst (30), each attempt on another account.
    for i in 0..30 {
        let (st, _, _) = log_in(&s, &format!("user{i}@example.org"), "a wrong passphrase").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, v, retry) = log_in(&s, "user99@example.org", "a wrong passphrase").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(retry.is_some());
    assert!(v["error"]["message"].as_str().unwrap().contains("address"));
}

/// 300 concurrent wrong logins: never more Argon2 computations at once than
/// the bound (the counters are the hasher's own).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logins_runs_at_most_the_bound_of_argon2_at_once() {
    let opts = ServerOptions {
        throttle: ThrottleSettings {
            account_burst: 100_000,
            ip_burst: 100_000,
            ..ThrottleSettings::default()
        },
        ..ServerOptions::default()
    };
    let Some(s) = start_custom(Db::Sqlite, opts, |c| {
        // Enough work per computation that they overlap.
        c.passphrase = PassphraseParams {
            memory_kib: 1024,
            iterations: 2,
            parallelism: 1,
        };
        c.passphrase_max_concurrent = 2;
    })
    .await
    else {
        return;
    };
    s.member("victim@example.org").await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let c = client.clone();
        let url = format!("{}/v1/sessions", s.base);
        tasks.push(tokio::spawn(async move {
            let email = if i % 2 == 0 {
                "victim@example.org".to_owned()
            } else {
                format!("nobody{i}@example.org")
            };
            c.post(url)
                .json(&json!({"email": email, "passphrase": "a wrong passphrase"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let stats = s.node.vault.passphrase_hasher().stats();
    assert_eq!(stats.max_concurrent, 2);
    assert!(stats.peak <= 2, "{stats:?}");
    assert!(stats.peak >= 1, "{stats:?}");
    assert_eq!(stats.running, 0);
}

/// A flood of failed logins on one account (and on addresses without one)
/// adds at most one audit entry per account per minute, with the count; the
/// member sees theirs.
#[tokio::test]
async fn failed_logins_add_one_audit_entry_per_account_per_minute() {
    for db in Db::ALL {
        let opts = ServerOptions {
            throttle: ThrottleSettings {
                account_burst: 100_000,
                ip_burst: 100_000,
                ..ThrottleSettings::default()
            },
            ..ServerOptions::default()
        };
        let Some(s) = start_custom(db, opts, |_| {}).await else {
            continue;
        };
        let token = s.member("victim@example.org").await;
        let before = audit_len(&s).await;
        // Minute one: 40 wrong on the account, 40 on an unknown address.
        for i in 0..40 {
            let (st, _, _) = log_in(&s, "victim@example.org", &format!("guess number {i}")).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED);
            let (st, _, _) = log_in(&s, "ghost@example.org", &format!("guess number {i}")).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(
            audit_len(&s).await - before,
            2,
            "one entry per account so far"
        );
        // The minute is over: the 39 held back on each are one entry each
        // (written by the background task, or here, whichever comes first).
        s.clock.advance_seconds(60);
        s.node.vault.flush_failed_logins(false).await.unwrap();
        assert_eq!(audit_len(&s).await - before, 4);
        // Minute two (its entries are those two): 10 more on the account.
        for i in 0..10 {
            log_in(&s, "victim@example.org", &format!("again number {i}")).await;
        }
        assert_eq!(audit_len(&s).await - before, 4);
        // Minute three: the first failure carries the 10.
        s.clock.advance_seconds(60);
        log_in(&s, "victim@example.org", "and once more").await;
        assert_eq!(audit_len(&s).await - before, 5);
        // What is still held back is written at shutdown.
        s.node.vault.flush_failed_logins(true).await.unwrap();
        // The member sees their entries and counts: 1 + 39 + 10 + 1 = 51.
        let (st, page) = s.req(Method::GET, "/v1/me/audit", Some(&token), None).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        let failed: Vec<&Value> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "member.login.failed")
            .collect();
        assert!((3..=4).contains(&failed.len()), "{page}");
        let total: u64 = failed.iter().map(|e| e["count"].as_u64().unwrap()).sum();
        assert_eq!(total, 51, "{page}");
        // The unknown address's entries name no member.
        let entries = s.node.store.audit_entries(0, 10_000).await.unwrap();
        let anonymous = entries
            .iter()
            .filter_map(|e| e.event().ok())
            .filter(|e| {
                e.action == me2b_domain::audit::Action::MemberLoginFailed && e.subject.is_none()
            })
            .map(|e| e.count.unwrap())
            .collect::<Vec<_>>();
        assert_eq!(anonymous, vec![1, 39]);
    }
}

/// Issue 13: a session carries the member's data key wrapped for its token,
/// in the database, so a member logged in on node A is served on node B of
/// the same PostgreSQL; once they log out on A, neither reads anything of
/// them (B once its short memory of the session has passed).
#[tokio::test]
async fn a_session_serves_on_two_nodes_of_one_postgresql_until_logout() {
    let Some(a) = start(Db::Postgres).await else {
        return;
    };
    let b = a.second_node().await;
    let token = a
        .member_with(
            "two-nodes@example.org",
            &[json!({"kind": "note", "text": "read on the other node"})],
        )
        .await;
    let (st, v) = b
        .req(Method::GET, "/v1/vault/records", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("read on the other node"), "{v}");
    // A second login on B, served on A too.
    let (st, v2, _) = log_in(&b, "two-nodes@example.org", RIGHT).await;
    assert_eq!(st, StatusCode::CREATED, "{v2}");
    let token_b = v2["token"].as_str().unwrap().to_owned();
    let (st, v) = a
        .req(Method::GET, "/v1/vault/records", Some(&token_b), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (st, _) = a
        .req(Method::DELETE, "/v1/sessions/current", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // At once on A; on B once its memory of the session is older than
    // SESSION_CACHE_SECONDS (what a node trusts without the database).
    a.clock.advance_seconds(me2b_vault::SESSION_CACHE_SECONDS);
    for node in [&a, &b] {
        let (st, v) = node
            .req(Method::GET, "/v1/vault/records", Some(&token), None)
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert!(!v.to_string().contains("read on the other node"), "{v}");
    }
    b.node.shutdown().await;
}

async fn sign_up(s: &Srv, email: &str) -> (StatusCode, Value, Option<u64>) {
    let resp = s
        .http
        .post(format!("{}/v1/members", s.base))
        .json(&json!({"email": email, "passphrase": RIGHT}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (status, resp.json().await.unwrap(), retry)
}

/// The messages in the node's outbox, to anyone.
fn outbox_len(s: &Srv) -> usize {
    std::fs::read_dir(s.t.data_dir.path().join("outbox"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Sign-ups are throttled per client address (adv8 signed up nine fake
/// members in a row, to make a member's rare claim values look common):
/// the default burst, then `429` with `Retry-After`. A throttled sign-up
/// runs no Argon2 and sends no message, and is answered alike whether or
/// not the address has an account; after the wait, one more goes through.
#[tokio::test]
async fn sign_ups_from_one_address_are_throttled_before_any_work() {
    for db in Db::ALL {
        let Some(s) = start_custom(db, ServerOptions::default(), |_| {}).await else {
            continue;
        };
        let burst = ThrottleSettings::default().signup_burst;
        assert_eq!(burst, 5);
        s.member("taken@example.org").await;
        for i in 1..burst {
            let (st, v, _) = sign_up(&s, &format!("new{i}@example.org")).await;
            assert_eq!(st, StatusCode::ACCEPTED, "{db:?}: {v}");
        }
        let argon = s.node.vault.passphrase_hasher().stats().started;
        let messages = outbox_len(&s);
        let (st, v, retry) = sign_up(&s, "one.more@example.org").await;
        assert_eq!(
            st,
            StatusCode::TOO_MANY_REQUESTS,
            "{db:?}: sign-up {} from one address: {v}",
            burst + 1
        );
        assert_eq!(v["error"]["code"], "too_many_requests", "{db:?}: {v}");
        assert_eq!(retry, Some(600), "{db:?}");
        // A registered address: the same answer.
        let (st2, v2, retry2) = sign_up(&s, "taken@example.org").await;
        assert_eq!((st2, &v2, retry2), (st, &v, retry), "{db:?}");
        assert_eq!(
            s.node.vault.passphrase_hasher().stats().started,
            argon,
            "{db:?}: a throttled sign-up ran Argon2"
        );
        assert_eq!(
            outbox_len(&s),
            messages,
            "{db:?}: a throttled sign-up sent a message"
        );
        // Logins from the address are not affected; after the wait, one
        // more sign-up goes through (and does the work).
        let (st, _, _) = log_in(&s, "taken@example.org", RIGHT).await;
        assert_eq!(st, StatusCode::CREATED, "{db:?}");
        s.clock.advance_seconds(600);
        let argon = s.node.vault.passphrase_hasher().stats().started;
        let (st, v, _) = sign_up(&s, "one.more@example.org").await;
        assert_eq!(st, StatusCode::ACCEPTED, "{db:?}: {v}");
        assert!(s.node.vault.passphrase_hasher().stats().started > argon);
        assert_eq!(s.outbox_to("one.more@example.org").len(), 1, "{db:?}");
    }
}
