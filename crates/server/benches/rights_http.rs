//! Export and erasure of a member with many vault records (issue 15):
//!
//!     cargo bench -p me2b-server --bench rights_http
//!
//! A real node (SQLite in a temporary directory) serves the real router on
//! 127.0.0.1:0; the client is reqwest in the same process. One member writes
//! `ME2B_BENCH_RECORDS` receipts (10,000) through `POST /v1/vault/records`
//! from `ME2B_BENCH_CONCURRENCY` clients (16). Then, timed: `GET
//! /v1/me/export` three times (the signed JSON document) and once as
//! JSON-LD; `DELETE /v1/me` (the erasure: keys destroyed, the rows deleted
//! but what organisations observe until the batch); and the batch's release
//! (the clock moved to the latest release). Argon2 runs with the tests'
//! fast parameters, so the erasure's passphrase check does not dominate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_crypto::{OsRandom, PassphraseParams};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::{FixedClock, Timestamp};
use me2b_node::{Node, NodeConfig};
use me2b_server::{AppState, ServerOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const PASSPHRASE: &str = "a bench passphrase, not a real one";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn receipt(i: usize) -> serde_json::Value {
    serde_json::json!({
        "kind": "receipt",
        "merchant": "Corner Co-op",
        "items": [{"name": "Oat milk", "category": "food.dairy-alternatives", "quantity": 2,
                   "unit_price": {"minor": 189 + (i % 50) as i64, "currency": "EUR"}}],
        "total": {"minor": 378, "currency": "EUR"},
        "purchased_at": "2026-11-20T17:03:00Z"
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let records = env_usize("ME2B_BENCH_RECORDS", 10_000);
    let concurrency = env_usize("ME2B_BENCH_CONCURRENCY", 16);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = NodeConfig::new(dir.path().join("node"));
    cfg.passphrase = PassphraseParams::INSECURE_FAST_FOR_TESTS;
    cfg.session_ttl_seconds = 7 * 24 * 3600;
    let outbox = Arc::new(me2b_vault::MemoryOutbox::default());
    cfg.outbox = Some(outbox.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(now)));
    let node = Node::open(&cfg, clock.clone(), Arc::new(OsRandom))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(me2b_server::serve(
        listener,
        AppState {
            node: node.clone().into(),
        },
        ServerOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let session = outbox
        .sign_up(
            &node.vault,
            Email::parse("bench@example.org").unwrap(),
            Passphrase::parse(PASSPHRASE.to_owned()).unwrap(),
        )
        .await
        .unwrap()
        .session;
    let token = session.token.expose().to_owned();
    let http = reqwest::Client::new();

    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, next, url, token) = (
            http.clone(),
            next.clone(),
            format!("{base}/v1/vault/records"),
            token.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= records {
                    break;
                }
                let st = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&receipt(i))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert!(st.is_success(), "{st}");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{records} receipts written by {concurrency} clients in {secs:.1} s ({:.0}/s)",
        records as f64 / secs
    );

    for format in ["json", "json", "json", "jsonld"] {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/v1/me/export?format={format}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let body = r.bytes().await.unwrap();
        println!(
            "export ({format}): {:.0} ms, {:.1} MB",
            t.elapsed().as_secs_f64() * 1000.0,
            body.len() as f64 / 1e6
        );
    }

    let t = Instant::now();
    let r = http
        .delete(format!("{base}/v1/me"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "passphrase": PASSPHRASE }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    println!(
        "erasure (DELETE /v1/me): {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    clock.advance_seconds(node.vault.erasure_schedule().latest_release_seconds());
    let t = Instant::now();
    let n = node.vault.release_erasures_due().await.unwrap();
    println!(
        "the batch's release ({n} member): {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let _ = stop.send(());
    node.shutdown().await;
}
