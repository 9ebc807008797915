//! The accountant against real databases: over random sequences of releases,
//! by random askers, over random sets of pools, run concurrently from two
//! stores on SQLite and on PostgreSQL, no pool's spent ε ever exceeds its
//! period budget or its lifetime cap, no asker exceeds its allowance, and
//! what the ledger recorded is exactly what was charged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_audit::AuditLog;
use me2b_crypto::{Keyring, MasterKey, SeededRandom};
use me2b_domain::{Clock, FixedClock, OrgId, Timestamp};
use me2b_dp::accountant::{micros_down, micros_up};
use me2b_dp::{Accountant, DpError, Pool, PrivacyGovernance, Release};
use me2b_testkit::{fresh, Db};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn org(i: u8) -> OrgId {
    format!("6f1c1e2a-0000-4000-8000-00000000000{i}")
        .parse()
        .unwrap()
}

fn governance() -> PrivacyGovernance {
    let mut g = PrivacyGovernance {
        period: "1 days".into(),
        ..Default::default()
    };
    let p = &mut g.pools;
    p.trust_coop.epsilon_per_period = 1.0;
    p.trust_coop.lifetime = 2.0;
    p.trust_coop.allowance = 0.4;
    p.trust_coop.others_total = Some(0.6);
    p.trust_research.epsilon_per_period = 1.0;
    p.trust_research.lifetime = 2.5;
    p.trust_research.allowances.insert(org(1), 0.6);
    p.trust_research.allowances.insert(org(2), 0.7);
    p.offers_audience.epsilon_per_period = 1.0;
    p.offers_audience.lifetime = 3.0;
    p.offers_audience.allowance = 0.5;
    g
}

fn pools() -> [Pool; 4] {
    [
        Pool::TrustCoop(org(1)),
        Pool::TrustCoop(org(2)),
        Pool::TrustResearch,
        Pool::OffersAudience,
    ]
}

async fn accountant(
    url: &str,
    clock: Arc<FixedClock>,
    dir: &std::path::Path,
) -> (Accountant, Arc<dyn me2b_storage::Store>) {
    let store = me2b_storage::open(url).await.unwrap();
    let rng = SeededRandom::new(1);
    let (master, _) = MasterKey::load_or_create(&dir.join("master.key"), &rng).unwrap();
    let keys = Arc::new(Keyring::derive(&master));
    let audit = AuditLog::start(store.clone(), clock.clone(), keys, 1000)
        .await
        .unwrap();
    (
        Accountant::new(store.clone(), audit, clock, governance()).unwrap(),
        store,
    )
}

/// One release: who asks, which pools (a non-empty subset, by bits), ε, and
/// how many days later than the previous batch it comes.
type Step = (u8, u8, f64, bool);

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for db in Db::ALL {
            let Some(t) = fresh(db).await.unwrap() else {
                continue;
            };
            let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
                1_790_000_000_000,
            )));
            let (one, store) = accountant(&t.url, clock.clone(), t.data_dir.path()).await;
            let (two, second) = accountant(&t.url, clock.clone(), t.data_dir.path()).await;
            // Batches of releases that run concurrently, a day apart.
            let mut batches: Vec<Vec<Step>> = vec![Vec::new()];
            for s in steps.clone() {
                if s.3 {
                    batches.push(Vec::new());
                }
                if let Some(b) = batches.last_mut() {
                    b.push(s);
                }
            }
            // (pool, period) → accepted micro-ε; (pool, period, asker) → same.
            let mut by_pool: BTreeMap<(String, i64), i64> = BTreeMap::new();
            let mut by_asker: BTreeMap<(String, i64, String), i64> = BTreeMap::new();
            for (day, batch) in batches.into_iter().enumerate() {
                if day > 0 {
                    clock.advance_seconds(86_400);
                }
                let period = clock.now().unix_millis().div_euclid(86_400_000);
                let mut set = tokio::task::JoinSet::new();
                for (i, (who, mask, eps, _)) in batch.into_iter().enumerate() {
                    let acc = if i % 2 == 0 { one.clone() } else { two.clone() };
                    let chosen: Vec<Pool> = pools()
                        .into_iter()
                        .enumerate()
                        .filter(|(k, _)| mask & (1 << k) != 0)
                        .map(|(_, p)| p)
                        .collect();
                    set.spawn(async move {
                        let r = acc
                            .charge(Release {
                                asker: org(who),
                                pools: chosen.clone(),
                                epsilon: eps,
                                mechanism: "test".into(),
                                what: "test".into(),
                            })
                            .await;
                        (who, chosen, eps, r)
                    });
                }
                while let Some(j) = set.join_next().await {
                    let (who, chosen, eps, r) = j.unwrap();
                    match r {
                        Ok(c) => {
                            prop_assert_eq!(c.epsilon, micros_up(eps).max(1) as f64 / 1e6);
                            for p in &chosen {
                                *by_pool.entry((p.to_string(), period)).or_default() +=
                                    micros_up(eps).max(1);
                                *by_asker
                                    .entry((p.to_string(), period, org(who).to_string()))
                                    .or_default() += micros_up(eps).max(1);
                            }
                        }
                        Err(DpError::OverBudget { .. } | DpError::NoAllowance { .. }) => {}
                        Err(e) => prop_assert!(false, "{db:?}: {e}"),
                    }
                }
            }
            let g = governance();
            let mut lifetime: BTreeMap<String, i64> = BTreeMap::new();
            for ((pool, period), spent) in &by_pool {
                let Ok(p) = pool.parse::<Pool>() else {
                    continue;
                };
                let rule = g.rule(p.class());
                let stored = store.dp_pool_spend(pool, *period).await.unwrap();
                prop_assert_eq!(stored.period_micro, *spent, "{:?} {} {}", db, pool, period);
                prop_assert!(
                    *spent <= micros_down(rule.epsilon_per_period),
                    "{db:?}: {pool} over its period budget"
                );
                for a in &stored.by_asker {
                    let asker: OrgId = a.asker.parse().unwrap();
                    prop_assert!(
                        a.spent_micro <= micros_down(g.allowance(&p, asker)),
                        "{db:?}: {} over its allowance in {pool}",
                        a.asker
                    );
                    prop_assert_eq!(
                        by_asker
                            .get(&(pool.clone(), *period, a.asker.clone()))
                            .copied()
                            .unwrap_or(0),
                        a.spent_micro
                    );
                }
                // Everyone but a co-op spends at most `others_total` of its pool.
                if let (Some(owner), Some(others)) = (p.owner(), rule.others_total) {
                    let theirs: i64 = stored
                        .by_asker
                        .iter()
                        .filter(|a| a.asker != owner.to_string())
                        .map(|a| a.spent_micro)
                        .sum();
                    prop_assert!(
                        theirs <= micros_down(others),
                        "{db:?}: others spent {theirs} of {pool}"
                    );
                }
                *lifetime.entry(pool.clone()).or_default() += spent;
            }
            for (pool, spent) in lifetime {
                let p: Pool = pool.parse().unwrap();
                let any = store.dp_pool_spend(&pool, 0).await.unwrap();
                prop_assert_eq!(any.lifetime_micro, spent, "{:?}", db);
                prop_assert!(
                    spent <= micros_down(g.rule(p.class()).lifetime),
                    "{db:?}: {pool} over its lifetime cap"
                );
            }
            second.close().await;
            store.close().await;
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn no_pool_ever_spends_more_than_its_budget(
        steps in proptest::collection::vec(
            (1u8..4, 1u8..16, 0.01f64..0.6, proptest::bool::weighted(0.15)),
            1..60,
        ),
    ) {
        run(steps)?;
    }
}
