//! The persisted accountant: over random query sequences against a real SQLite
//! store (and PostgreSQL when configured), accepted ε never exceeds the
//! configured budget, and every refusal is a query that would have exceeded it.
//! Queries are charged exactly as the service charges them (ε rounded up to a
//! micro-ε, the budget rounded down).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_storage::BudgetCharge;
use me2b_testkit::{fresh, Db};
use me2b_trust::budget::{micros_down, micros_up};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

static CASE: AtomicU64 = AtomicU64::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn persisted_budgets_never_exceed(
        budget in 0.0f64..5.0,
        queries in proptest::collection::vec(0.0001f64..2.0, 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            for db in Db::ALL {
                let Some(t) = fresh(db).await.unwrap() else { continue };
                let store = me2b_storage::open(&t.url).await.unwrap();
                let requester = format!("org:case-{}", CASE.fetch_add(1, Ordering::Relaxed));
                let budget_m = i64::try_from(micros_down(budget)).unwrap();
                let mut accepted = 0i64;
                for q in &queries {
                    let need = i64::try_from(micros_up(*q).max(1)).unwrap();
                    match store.trust_charge(&requester, need, budget_m).await.unwrap() {
                        BudgetCharge::Charged { spent } => {
                            accepted += need;
                            prop_assert_eq!(spent, accepted);
                        }
                        BudgetCharge::Refused { spent } => {
                            prop_assert_eq!(spent, accepted);
                            prop_assert!(accepted + need > budget_m, "refused a query that fit");
                        }
                    }
                    prop_assert!(accepted <= budget_m);
                    prop_assert!(accepted as f64 / 1e6 <= budget + 1e-9);
                }
                prop_assert_eq!(store.trust_spent(&requester).await.unwrap(), accepted);
                store.close().await;
            }
            Ok(())
        })?;
    }
}
