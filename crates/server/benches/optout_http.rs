//! The paper opt-out endpoint's throughput under its rate limit:
//!
//!     cargo bench -p me2b-server --bench optout_http
//!
//! A real node (SQLite in a temporary directory) serves the real router on
//! 127.0.0.1:0 behind a trusted proxy (127.0.0.1), so each request can come
//! from its own client address (`X-Forwarded-For`). Members each hold a
//! paper opt-out code. Then `ME2B_BENCH_CONCURRENCY` clients (16) post
//! `ME2B_BENCH_REQUESTS` codes (2,000) to `POST /v1/optout`:
//!
//! 1. members' codes, each from a fresh address (within the limit): each one
//!    parsed, hashed, looked up, audited, and its member opted out;
//! 2. unknown codes (valid check characters), each from a fresh address;
//! 3. one address, past its burst: answered 429 before any work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_crypto::{OsRandom, PassphraseParams};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::SystemClock;
use me2b_node::{Node, NodeConfig};
use me2b_server::{AppState, ServerOptions, ThrottleSettings};
use std::sync::Arc;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(
    base: &str,
    bodies: Vec<(String, String)>,
    concurrency: usize,
) -> (f64, std::collections::BTreeMap<u16, usize>) {
    let client = reqwest::Client::new();
    let work = Arc::new(tokio::sync::Mutex::new(bodies));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, work, url) = (client.clone(), work.clone(), format!("{base}/v1/optout"));
        tasks.spawn(async move {
            let mut seen = std::collections::BTreeMap::new();
            loop {
                let Some((addr, code)) = work.lock().await.pop() else {
                    break;
                };
                let st = client
                    .post(&url)
                    .header("x-forwarded-for", addr)
                    .json(&serde_json::json!({ "code": code }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                *seen.entry(st).or_insert(0usize) += 1;
            }
            seen
        });
    }
    let mut all = std::collections::BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        for (k, v) in r.unwrap() {
            *all.entry(k).or_insert(0) += v;
        }
    }
    (t.elapsed().as_secs_f64(), all)
}

fn addr(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_usize("ME2B_BENCH_REQUESTS", 2_000);
    let members = env_usize("ME2B_BENCH_MEMBERS", 50);
    let concurrency = env_usize("ME2B_BENCH_CONCURRENCY", 16);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = NodeConfig::new(dir.path().join("node"));
    cfg.passphrase = PassphraseParams::INSECURE_FAST_FOR_TESTS;
    let outbox = Arc::new(me2b_vault::MemoryOutbox::default());
    cfg.outbox = Some(outbox.clone());
    let node = Node::open(&cfg, Arc::new(SystemClock), Arc::new(OsRandom))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServerOptions {
        throttle: ThrottleSettings {
            trusted_proxies: vec![std::net::IpAddr::from([127, 0, 0, 1])],
            ..ThrottleSettings::default()
        },
        ..ServerOptions::default()
    };
    tokio::spawn(me2b_server::serve(
        listener,
        AppState {
            node: node.clone().into(),
        },
        opts,
        async {
            let _ = stopped.await;
        },
    ));
    let mut codes = Vec::with_capacity(members);
    for i in 0..members {
        let session = outbox
            .sign_up(
                &node.vault,
                Email::parse(&format!("bench-{i}@example.org")).unwrap(),
                Passphrase::parse("a bench passphrase, not a real one".to_owned()).unwrap(),
            )
            .await
            .unwrap()
            .session;
        let code = node
            .consents
            .issue_optout_code(session.member)
            .await
            .unwrap();
        codes.push(code.display());
    }
    println!("paper opt-out, {n} requests, {concurrency} clients, {members} members:");
    let known: Vec<(String, String)> = (0..n)
        .map(|i| (addr(i), codes[i % members].clone()))
        .collect();
    let (secs, seen) = run(&base, known, concurrency).await;
    println!(
        "  members' codes, a fresh address each: {:.0}/s {seen:?}",
        n as f64 / secs
    );
    let unknown: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                addr(n + i),
                me2b_crypto::OptOutCode::generate(&OsRandom).display(),
            )
        })
        .collect();
    let (secs, seen) = run(&base, unknown, concurrency).await;
    println!(
        "  unknown codes, a fresh address each:  {:.0}/s {seen:?}",
        n as f64 / secs
    );
    let flood: Vec<(String, String)> = (0..n)
        .map(|_| {
            (
                "192.0.2.1".to_owned(),
                me2b_crypto::OptOutCode::generate(&OsRandom).display(),
            )
        })
        .collect();
    let (secs, seen) = run(&base, flood, concurrency).await;
    println!(
        "  one address past its burst:           {:.0}/s {seen:?}",
        n as f64 / secs
    );
    let _ = stop.send(());
    node.shutdown().await;
}
