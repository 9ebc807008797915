//! Intents through the HTTP API (issue 17), in one run:
//!
//!     cargo bench -p me2b-server --bench intents_http
//!
//! A real node (SQLite in a temporary directory, or `DATABASE=postgres://…`
//! on an empty PostgreSQL database) serves the real router on 127.0.0.1:0.
//!
//! * **publishing** (after matching, so that its intents do not crowd the
//!   new one's hour): `ME2B_BENCH_MEMBERS` (default 400) members signed up
//!   beforehand publish five intents each (the weekly quota) through
//!   `POST /v1/me/intents` from `ME2B_BENCH_CONCURRENCY` (default 16)
//!   clients: session check, parsing, the quota row, the vault record sealed,
//!   the intent row, an audit entry made durable. Requests/s and latency.
//! * **matching**: `ME2B_BENCH_INTENTS` (default 100,000) open intents over
//!   the taxonomy's topics and the trust's areas, published over the last
//!   week (written straight into the database, one transaction), and
//!   `ME2B_BENCH_ORGS` (default 1,000) organisations, each following three
//!   top-level topics (the new intent's among them) and zero to two areas
//!   (the new intent's among them when any). A member publishes one more
//!   intent, and its batch is released (new intents reach organisations in
//!   batches; the bench releases the next hour's at once, a batch of one);
//!   then every organisation reads the first page of its feed
//!   (`GET /v1/org/intents`, 200 intents, the latest hour first), 16 at a
//!   time, and must find it there. Organisations pull their feed, so the
//!   time for a new intent to reach its subscribers is the time for all of
//!   them to read it once: reported, with each read's latency.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_crypto::{OsRandom, PassphraseParams};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::{Clock, SystemClock, Timestamp};
use me2b_node::{Node, NodeConfig};
use me2b_server::{AppState, ServerOptions};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const AREAS: [&str; 12] = [
    "NL-DR", "NL-FL", "NL-FR", "NL-GE", "NL-GR", "NL-LI", "NL-NB", "NL-NH", "NL-OV", "NL-UT",
    "NL-ZE", "NL-ZH",
];
const HOUR: i64 = 3_600_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator for the bench's data (not a secret).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() as usize) % v.len()]
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn intent_body(topic: &str, region: &str) -> serde_json::Value {
    json!({"topic": topic, "text": "A cargo bike for two children, second-hand is fine.",
           "budget": {"min_cents": 100_000, "max_cents": 300_000, "currency": "EUR"},
           "region": region, "deadline_days": 14, "audience": {"kind": "any"},
           "acknowledge_free_text_warning": true})
}

/// Runs `jobs` requests from `concurrency` clients; returns the wall time
/// and every request's latency.
async fn run<F, Fut>(jobs: usize, concurrency: usize, f: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (f, next) = (f.clone(), next.clone());
        tasks.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    break;
                }
                let s = Instant::now();
                f(i).await;
                lat.push(s.elapsed());
            }
            lat
        });
    }
    let mut all = Vec::with_capacity(jobs);
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let wall = t.elapsed();
    all.sort();
    (wall, all)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let members = env_usize("ME2B_BENCH_MEMBERS", 400);
    let concurrency = env_usize("ME2B_BENCH_CONCURRENCY", 16);
    let n_intents = env_usize("ME2B_BENCH_INTENTS", 100_000);
    let n_orgs = env_usize("ME2B_BENCH_ORGS", 1_000);
    let database = std::env::var("DATABASE").ok().filter(|d| !d.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = NodeConfig::new(dir.path().join("node"));
    cfg.passphrase = PassphraseParams::INSECURE_FAST_FOR_TESTS;
    cfg.database_url = database.clone();
    let outbox = Arc::new(me2b_vault::MemoryOutbox::default());
    cfg.outbox = Some(outbox.clone());
    let node = Node::open(&cfg, Arc::new(SystemClock), Arc::new(OsRandom))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
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
    let http = reqwest::Client::new();

    // Members, signed up beforehand (not measured).
    let mut tokens = Vec::with_capacity(members);
    for i in 0..members {
        let signed = outbox
            .sign_up(
                &node.vault,
                Email::parse(&format!("bench{i}@example.org")).unwrap(),
                Passphrase::parse("a bench passphrase, not a real one".to_owned()).unwrap(),
            )
            .await
            .unwrap();
        tokens.push(signed.session.token.expose().to_owned());
    }
    let tokens = Arc::new(tokens);

    // Matching: the open intents, straight into the database.
    let taxonomy = me2b_offers::Taxonomy::shipped().unwrap();
    let topics: Vec<String> = taxonomy
        .topics()
        .iter()
        .filter(|t| {
            let idx = taxonomy.by_slug(&t.slug).unwrap();
            !taxonomy.is_sensitive(idx)
        })
        .map(|t| t.slug.clone())
        .collect();
    let top: Vec<String> = taxonomy
        .topics()
        .iter()
        .filter(|t| {
            t.parent.is_none() && !taxonomy.is_sensitive(taxonomy.by_slug(&t.slug).unwrap())
        })
        .map(|t| t.slug.clone())
        .collect();
    let now = SystemClock.now().unix_millis();
    let this_hour = now - now.rem_euclid(HOUR);
    let mut rng = Lcg(17);
    let rows: Vec<(Vec<u8>, String, String, i64, i64)> = (0..n_intents)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&rng.next().to_be_bytes());
            id[8..].copy_from_slice(&(i as u64).to_be_bytes());
            let published = this_hour - HOUR * (1 + (rng.next() % 167) as i64);
            let deadline = published + 86_400_000 * (7 + (rng.next() % 23) as i64);
            (
                id.to_vec(),
                rng.pick(&topics).clone(),
                (*rng.pick(&AREAS)).to_owned(),
                published,
                deadline,
            )
        })
        .collect();
    let intent_json = serde_json::to_vec(&json!({"v": 1, "text": "A bench intent.",
        "budget": {"min_cents": 1_000, "max_cents": 9_000, "currency": "EUR"},
        "audience": {"kind": "any"}}))
    .unwrap();
    let t = Instant::now();
    macro_rules! insert_all {
        ($pool:expr) => {{
            let pool = $pool;
            let mut tx = pool.begin().await.unwrap();
            for (id, topic, region, published, deadline) in &rows {
                sqlx::query(
                    "INSERT INTO intents (intent_id, owner_check, topic, region, body, \
                     published_hour, deadline, closed, visible_hour) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6)",
                )
                .bind(id.clone())
                .bind(vec![7u8; 32])
                .bind(topic)
                .bind(region)
                .bind(intent_json.clone())
                .bind(*published)
                .bind(*deadline)
                .bind(0i64)
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
        }};
    }
    match &database {
        None => insert_all!(sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path()
                .join("node")
                .join(me2b_node::SQLITE_FILE)
                .display()
        ))
        .await
        .unwrap()),
        Some(url) => insert_all!(sqlx::PgPool::connect(url).await.unwrap()),
    }
    let insert_time = t.elapsed();

    // The organisations and what they follow: three top-level topics, the
    // new intent's among them; zero to two areas, NL-UT among them if any.
    let new_topic = "bicycles-and-accessories";
    let new_root = taxonomy
        .topics()
        .iter()
        .find(|t| {
            t.parent.is_none() && {
                let i = taxonomy.by_slug(&t.slug).unwrap();
                taxonomy.is_within(taxonomy.by_slug(new_topic).unwrap(), i)
            }
        })
        .unwrap()
        .slug
        .clone();
    let mut keys = Vec::with_capacity(n_orgs);
    for i in 0..n_orgs {
        let (_, key) = node
            .orgs
            .create(
                Label::try_from(format!("Bench Org {i}").as_str()).unwrap(),
                if i % 2 == 0 {
                    OrgKind::Coop
                } else {
                    OrgKind::Brand
                },
                Roles::try_from(vec![Role::Offers]).unwrap(),
            )
            .await
            .unwrap();
        let key = key.secret.expose().to_owned();
        let mut follow = vec![new_root.clone()];
        while follow.len() < 3 {
            let t = rng.pick(&top).clone();
            if !follow.contains(&t) {
                follow.push(t);
            }
        }
        let regions: Vec<&str> = match rng.next() % 3 {
            0 => vec![],
            1 => vec!["NL-UT"],
            _ => vec!["NL-UT", *rng.pick(&AREAS)],
        };
        let r = http
            .put(format!("{base}/v1/org/intents/subscription"))
            .bearer_auth(&key)
            .json(&json!({"topics": follow, "regions": regions}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            reqwest::StatusCode::OK,
            "{}",
            r.text().await.unwrap()
        );
        keys.push(key);
    }
    let keys = Arc::new(keys);

    // A new intent, then every subscriber reads its feed once.
    let fresh = outbox
        .sign_up(
            &node.vault,
            Email::parse("new@example.org").unwrap(),
            Passphrase::parse("a bench passphrase, not a real one".to_owned()).unwrap(),
        )
        .await
        .unwrap()
        .session
        .token
        .expose()
        .to_owned();
    let t0 = Instant::now();
    let r = http
        .post(format!("{base}/v1/me/intents"))
        .bearer_auth(&fresh)
        .json(&intent_body(new_topic, "NL-UT"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let new_id: String = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let publish_one = t0.elapsed();
    // New intents reach organisations in batches: this one waits for the
    // next hour's. The bench releases that batch now (a batch of one, at the
    // next boundary) and times its reaching the subscribers from there.
    let boundary = Timestamp::from_unix_millis(this_hour + HOUR);
    let released = node
        .store
        .release_intent_batch(boundary, 1, boundary)
        .await
        .unwrap();
    assert!(released >= 1);
    let t0 = Instant::now();
    let found = Arc::new(AtomicUsize::new(0));
    let (feed_wall, feed_lat) = {
        let (http, keys, found, new_id) =
            (http.clone(), keys.clone(), found.clone(), Arc::new(new_id));
        let url = format!("{base}/v1/org/intents");
        run(n_orgs, concurrency, move |i| {
            let (http, keys, found, new_id, url) = (
                http.clone(),
                keys.clone(),
                found.clone(),
                new_id.clone(),
                url.clone(),
            );
            async move {
                let r = http.get(&url).bearer_auth(&keys[i]).send().await.unwrap();
                assert_eq!(r.status(), reqwest::StatusCode::OK);
                let v: Vec<serde_json::Value> = r.json().await.unwrap();
                if v.iter().any(|x| x["id"] == new_id.as_str()) {
                    found.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await
    };
    let reached = t0.elapsed();
    assert_eq!(
        found.load(Ordering::Relaxed),
        n_orgs,
        "every subscriber sees it"
    );

    // Publishing: five intents per member (the weekly quota).
    let publishes = members * 5;
    let body =
        Arc::new(serde_json::to_vec(&intent_body("bicycles-and-accessories", "NL-UT")).unwrap());
    let url = format!("{base}/v1/me/intents");
    let (pub_wall, pub_lat) = {
        let (http, tokens, body, url) = (http.clone(), tokens.clone(), body.clone(), url.clone());
        run(publishes, concurrency, move |i| {
            let (http, tokens, body, url) =
                (http.clone(), tokens.clone(), body.clone(), url.clone());
            async move {
                let r = http
                    .post(&url)
                    .bearer_auth(&tokens[i % tokens.len()])
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), reqwest::StatusCode::CREATED);
                let _ = r.bytes().await.unwrap();
            }
        })
        .await
    };

    println!(
        "{} cores, {}\n",
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        if database.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!("| what | figure |");
    println!("| --- | ---: |");
    println!(
        "| publish `POST /v1/me/intents`, {concurrency} clients, {publishes} intents | {:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms |",
        publishes as f64 / pub_wall.as_secs_f64(),
        percentile(&pub_lat, 0.5),
        percentile(&pub_lat, 0.99)
    );
    println!(
        "| {n_intents} open intents written (one transaction, setup) | {:.1} s |",
        insert_time.as_secs_f64()
    );
    println!(
        "| one more intent published, over {n_intents} open | {:.1} ms |",
        publish_one.as_secs_f64() * 1000.0
    );
    println!(
        "| its {n_orgs} subscribers each read their feed's first page ({concurrency} at a time) | {:.2} s in all ({:.0} feeds/s), p50 {:.1} ms, p99 {:.1} ms per read |",
        feed_wall.as_secs_f64(),
        n_orgs as f64 / feed_wall.as_secs_f64(),
        percentile(&feed_lat, 0.5),
        percentile(&feed_lat, 0.99)
    );
    println!(
        "| from its batch's release to the last subscriber having it | {:.2} s |",
        reached.as_secs_f64()
    );
}
