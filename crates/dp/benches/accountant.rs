//! The accountant's cost per release, on SQLite (a file, `synchronous=FULL`,
//! as a node runs it) and, when `ME2B_BENCH_POSTGRES_URL` names a server, on
//! PostgreSQL:
//!
//!     cargo bench -p me2b-dp --bench accountant
//!
//! Timed, alternately in one run, per release: the ledger's charge alone
//! (`PrivacyStore::dp_charge`: one transaction of three conditional UPDATEs
//! per pool) and the whole `Accountant::charge` (that, the audit entry
//! committed through the audit log's group commit, and each pool's budget
//! read back for the answer), for releases reading one pool (a co-op's own
//! question) and two (an overlap). Then releases from 16 concurrent askers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use me2b_audit::AuditLog;
use me2b_crypto::{Keyring, MasterKey, SeededRandom};
use me2b_domain::{OrgId, SystemClock};
use me2b_dp::{Accountant, Pool, PrivacyGovernance, Release};
use me2b_storage::{PoolCharge, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 300;

fn org(i: u32) -> OrgId {
    format!("6f1c1e2a-0000-4000-8000-{i:012}").parse().unwrap()
}

fn governance() -> PrivacyGovernance {
    let mut g = PrivacyGovernance::default();
    let rule = &mut g.pools.trust_coop;
    rule.epsilon_per_period = 1_000.0;
    rule.lifetime = 1_000.0;
    rule.allowance = 1_000.0;
    rule.others_total = None;
    g
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn show(what: &str, v: &[Duration]) {
    println!(
        "  {what:<52} p50 {:>8.3} ms   p99 {:>8.3} ms",
        pct(v.to_vec(), 0.5).as_secs_f64() * 1e3,
        pct(v.to_vec(), 0.99).as_secs_f64() * 1e3
    );
}

async fn bench(label: &str, store: Arc<dyn Store>, dir: &std::path::Path) {
    let clock = Arc::new(SystemClock);
    let (master, _) =
        MasterKey::load_or_create(&dir.join("master.key"), &SeededRandom::new(1)).unwrap();
    let audit = AuditLog::start(
        store.clone(),
        clock.clone(),
        Arc::new(Keyring::derive(&master)),
        1000,
    )
    .await
    .unwrap();
    let acc = Accountant::new(store.clone(), audit, clock, governance()).unwrap();
    println!("{label}:");
    for pools in [1usize, 2] {
        let chosen: Vec<Pool> = (0..pools as u32)
            .map(|i| Pool::TrustCoop(org(i + 1)))
            .collect();
        let lines: Vec<PoolCharge> = chosen
            .iter()
            .map(|p| PoolCharge {
                pool: format!("bench:{p}"),
                period: 1,
                micros: 1,
                period_budget: i64::MAX / 4,
                allowance: i64::MAX / 4,
                lifetime_budget: i64::MAX / 4,
            })
            .collect();
        let (mut raw, mut full) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            store.dp_charge("bench", &lines).await.unwrap();
            raw.push(t.elapsed());
            let t = Instant::now();
            acc.charge(Release {
                asker: org(1),
                pools: chosen.clone(),
                epsilon: 0.000_001,
                mechanism: "bench".into(),
                what: "bench".into(),
            })
            .await
            .unwrap();
            full.push(t.elapsed());
        }
        show(&format!("{pools} pool(s): the ledger's charge alone"), &raw);
        show(
            &format!("{pools} pool(s): Accountant::charge (+ audit, budgets)"),
            &full,
        );
    }
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for a in 0..16u32 {
        let acc = acc.clone();
        set.spawn(async move {
            for _ in 0..50 {
                acc.charge(Release {
                    asker: org(100 + a),
                    pools: vec![Pool::TrustCoop(org(1))],
                    epsilon: 0.000_001,
                    mechanism: "bench".into(),
                    what: "bench".into(),
                })
                .await
                .unwrap();
            }
        });
    }
    while set.join_next().await.is_some() {}
    println!(
        "  16 concurrent askers, 800 releases on one pool: {:.0} releases/s",
        800.0 / t.elapsed().as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
        bench(
            "SQLite (file, WAL, synchronous=FULL)",
            me2b_storage::open(&url).await.unwrap(),
            dir.path(),
        )
        .await;
        if let Ok(url) = std::env::var("ME2B_BENCH_POSTGRES_URL") {
            let dir = tempfile::tempdir().unwrap();
            bench(
                "PostgreSQL",
                me2b_storage::open(&url).await.unwrap(),
                dir.path(),
            )
            .await;
        }
    });
}
