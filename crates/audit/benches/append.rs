//! Audit append throughput through the group-commit writer (`AuditLog`), on a
//! fresh SQLite file (WAL, `synchronous=FULL`: one fsync per batch), and on
//! PostgreSQL when `ME2B_TEST_POSTGRES_URL` is set.
//!
//! ```sh
//! cargo bench -p me2b-audit --bench append          # ME2B_BENCH_SECONDS=5 by default
//! ```
//!
//! For each concurrency (1, 16, 128 callers, each awaiting its own `record`
//! in a loop, as request handlers do), it runs for the set time and prints
//! entries per second, commits per second (one signed head each) and the
//! mean batch. Issue 14 (one signed head per batch) measured entries per
//! second before and after the change; see BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_audit::AuditLog;
use me2b_crypto::{Keyring, MasterKey, SeededRandom};
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::{MemberId, SystemClock};
use me2b_testkit::{fresh, Db};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn run(db: Db, callers: usize, secs: u64) -> Option<(f64, f64, f64)> {
    let t = fresh(db).await.unwrap()?;
    let store = me2b_storage::open(&t.url).await.unwrap();
    let keys = Arc::new(Keyring::derive(&MasterKey::generate(&SeededRandom::new(1))));
    let log = AuditLog::start(store.clone(), Arc::new(SystemClock), keys, 1000)
        .await
        .unwrap();
    let m = MemberId::generate(&SeededRandom::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (log, stop, done) = (log.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                log.record(
                    AuditEvent::new(Actor::Member(m), Action::RecordRead)
                        .subject(m)
                        .object("0190f3a2-7d1c-7b3e-9a4f-2c8d5e6f7a8b"),
                )
                .await
                .unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let entries = done.load(Ordering::Relaxed) as f64;
    // One signed head per committed batch.
    let commits = store.audit_signed_heads(0, u64::MAX).await.unwrap().len() as u64;
    store.close().await;
    Some((
        entries / elapsed,
        commits as f64 / elapsed,
        entries / commits.max(1) as f64,
    ))
}

fn main() {
    let secs: u64 = std::env::var("ME2B_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("| database | callers | entries/s | commits/s | mean batch |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for db in Db::ALL {
        for callers in [1, 16, 128] {
            if let Some((eps, cps, batch)) = rt.block_on(run(db, callers, secs)) {
                println!("| {db:?} | {callers} | {eps:.0} | {cps:.0} | {batch:.1} |");
            }
        }
    }
}
