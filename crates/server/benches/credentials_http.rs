//! Presentation verification through the HTTP API, in requests/s (issue 4),
//! next to the same check in the library, in one run:
//!
//!     cargo bench -p me2b-server --bench credentials_http
//!
//! A real node (SQLite in a temporary directory) serves the real router on
//! 127.0.0.1:0. A co-op issues one member a credential; the member answers
//! `ME2B_BENCH_PRESENTATIONS` (default 2,000) challenges of a verifier, made in
//! advance because each nonce works once. Then:
//!
//! * **HTTP verify**: `ME2B_BENCH_CONCURRENCY` (default 16) clients post the
//!   presentations to `POST /v1/org/credentials/verify` (API key check, strict
//!   parse, the challenge taken from the database, the issuers' keys read, the
//!   BBS proof checked, an audit entry made durable, the JSON answer).
//! * **library verify**: `verify_presentation` on one thread over the same
//!   presentations (parse included), no I/O.
//! * **present (service)**: `Credentials::present` as the API runs it (vault
//!   read, proof generation, audit entry), one at a time, while preparing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_credentials::service::{ChallengeRequest, CodeRequest};
use me2b_credentials::{default_bbs, verify_presentation, Challenge, Epoch, Presentation};
use me2b_crypto::{OsRandom, PassphraseParams};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::{Clock, SystemClock};
use me2b_node::{Node, NodeConfig};
use me2b_server::{AppState, ServerOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_usize("ME2B_BENCH_PRESENTATIONS", 2_000);
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

    let roles = || Roles::try_from(vec![Role::Credentials]).unwrap();
    let (coop, _) = node
        .orgs
        .create(
            Label::try_from("Bench Co-op").unwrap(),
            OrgKind::Coop,
            roles(),
        )
        .await
        .unwrap();
    let (shop, shop_key) = node
        .orgs
        .create(
            Label::try_from("Bench Market").unwrap(),
            OrgKind::Verifier,
            roles(),
        )
        .await
        .unwrap();
    let shop_key = shop_key.secret.expose().to_owned();
    let session = outbox
        .sign_up(
            &node.vault,
            Email::parse("bench@example.org").unwrap(),
            Passphrase::parse("a bench passphrase, not a real one".to_owned()).unwrap(),
        )
        .await
        .unwrap()
        .session;
    let s = node
        .vault
        .authenticate(session.token.expose())
        .await
        .unwrap();
    let code = node
        .credentials
        .create_code(
            coop.id,
            &CodeRequest {
                federation: None,
                tier: "member".into(),
                region: "NL-NH".into(),
                member_since: 2020,
                interests: vec!["cycling".into()],
            },
        )
        .await
        .unwrap();
    let held = node.credentials.redeem(&s, &code.code).await.unwrap();

    // Challenges and presentations, made in advance (each nonce works once).
    let ask = ChallengeRequest {
        federation: "Fair Economy Federation".into(),
        ..ChallengeRequest::default()
    };
    let mut pairs = Vec::with_capacity(n);
    let mut present_time = 0.0;
    for _ in 0..n {
        let c = node.credentials.challenge(shop.id, &ask).await.unwrap();
        let c = serde_json::to_vec(&c).unwrap();
        let t = Instant::now();
        let p = node
            .credentials
            .present(
                &s,
                held.id,
                &c,
                &me2b_credentials::service::Disclosure {
                    accept_rare: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        present_time += t.elapsed().as_secs_f64();
        pairs.push((c, serde_json::to_vec(&p.presentation).unwrap()));
    }

    // The library, one thread, no I/O.
    let keys = node.credentials.published().await.unwrap().keys().unwrap();
    let epoch = Epoch::containing(SystemClock.now());
    let lists = me2b_credentials::StatusLists::new();
    let t = Instant::now();
    for (c, p) in &pairs {
        let challenge = Challenge::parse(c).unwrap();
        let p = Presentation::parse(p).unwrap();
        verify_presentation(default_bbs(), &challenge, &p, &keys, &lists, epoch).unwrap();
    }
    let library = n as f64 / t.elapsed().as_secs_f64();

    // Through the API.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(pairs.into_iter().map(|(_, p)| p).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/org/credentials/verify");
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (bodies, next, http, url, key) = (
            bodies.clone(),
            next.clone(),
            http.clone(),
            url.clone(),
            shop_key.clone(),
        );
        tasks.spawn(async move {
            let mut ok = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let r = http
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), reqwest::StatusCode::OK);
                let _ = r.bytes().await.unwrap();
                ok += 1;
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        ok += r.unwrap();
    }
    let over_http = ok as f64 / t.elapsed().as_secs_f64();
    assert_eq!(ok, n);

    println!(
        "{n} presentations (schema v1: 12 messages, 3 disclosed), {} cores, SQLite\n",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    println!("| operation | per second |");
    println!("| --- | ---: |");
    println!(
        "| present through the service (vault read + proof + audit), 1 at a time | {:.0} |",
        n as f64 / present_time
    );
    println!("| verify in the library, 1 thread | {library:.0} |");
    println!("| verify through the HTTP API, {concurrency} clients | {over_http:.0} |");
    println!("\nHTTP / library (1 thread): {:.2}", over_http / library);
    let _ = stop.send(());
}
