//! The privacy accountant's ledger, on both databases: ε spent per (pool,
//! period), per (pool, period, asker) and per pool over its life. A charge
//! covers every pool a release reads and is all or nothing.

use crate::sql::{begin_postgres, begin_sqlite, SqlStore};
use crate::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// Attempts at a charge that meets a deadlock or a busy database.
const CHARGE_ATTEMPTS: u32 = 20;

macro_rules! impl_privacy_store {
    ($pool:ty, $begin:ident) => {
        impl SqlStore<$pool> {
            /// One attempt: every line in one transaction, pools in a fixed
            /// order (so two charges never wait on each other in a cycle).
            async fn dp_charge_once(&self, asker: &str, lines: &[PoolCharge]) -> Result<DpCharge> {
                let mut order: Vec<usize> = (0..lines.len()).collect();
                order.sort_by(|a, b| lines[*a].pool.cmp(&lines[*b].pool));
                let mut tx = $begin(self.pool()).await?;
                for i in order {
                    let l = &lines[i];
                    let pool = l.pool.clone();
                    sqlx::query("INSERT INTO dp_pool_periods (pool, period, spent_micro) VALUES ($1, $2, 0) ON CONFLICT (pool, period) DO NOTHING")
                        .bind(pool.clone())
                        .bind(l.period)
                        .execute(&mut *tx)
                        .await?;
                    let period = sqlx::query("UPDATE dp_pool_periods SET spent_micro = spent_micro + $3 WHERE pool = $1 AND period = $2 AND spent_micro + $3 <= $4")
                        .bind(pool.clone())
                        .bind(l.period)
                        .bind(l.micros)
                        .bind(l.period_budget)
                        .execute(&mut *tx)
                        .await?;
                    let mut refused = (period.rows_affected() != 1).then_some(PoolLimit::Period);
                    if refused.is_none() {
                        sqlx::query("INSERT INTO dp_pool_lifetime (pool, spent_micro) VALUES ($1, 0) ON CONFLICT (pool) DO NOTHING")
                            .bind(pool.clone())
                            .execute(&mut *tx)
                            .await?;
                        let life = sqlx::query("UPDATE dp_pool_lifetime SET spent_micro = spent_micro + $2 WHERE pool = $1 AND spent_micro + $2 <= $3")
                            .bind(pool.clone())
                            .bind(l.micros)
                            .bind(l.lifetime_budget)
                            .execute(&mut *tx)
                            .await?;
                        refused = (life.rows_affected() != 1).then_some(PoolLimit::Lifetime);
                    }
                    if refused.is_none() {
                        sqlx::query("INSERT INTO dp_asker_spend (pool, period, asker, spent_micro, releases) VALUES ($1, $2, $3, 0, 0) ON CONFLICT (pool, period, asker) DO NOTHING")
                            .bind(pool.clone())
                            .bind(l.period)
                            .bind(asker.to_owned())
                            .execute(&mut *tx)
                            .await?;
                        let mine = sqlx::query("UPDATE dp_asker_spend SET spent_micro = spent_micro + $4, releases = releases + 1 WHERE pool = $1 AND period = $2 AND asker = $3 AND spent_micro + $4 <= $5")
                            .bind(pool.clone())
                            .bind(l.period)
                            .bind(asker.to_owned())
                            .bind(l.micros)
                            .bind(l.allowance)
                            .execute(&mut *tx)
                            .await?;
                        refused = (mine.rows_affected() != 1).then_some(PoolLimit::Allowance);
                    }
                    if let Some(limit) = refused {
                        tx.rollback().await?;
                        let spent = self.dp_spent_on(limit, l, asker).await?;
                        return Ok(DpCharge::Refused { line: i, limit, spent });
                    }
                }
                tx.commit().await?;
                Ok(DpCharge::Charged)
            }

            async fn dp_spent_on(&self, limit: PoolLimit, l: &PoolCharge, asker: &str) -> Result<i64> {
                let q = match limit {
                    PoolLimit::Period => sqlx::query("SELECT spent_micro FROM dp_pool_periods WHERE pool = $1 AND period = $2")
                        .bind(l.pool.clone())
                        .bind(l.period),
                    PoolLimit::Lifetime => sqlx::query("SELECT spent_micro FROM dp_pool_lifetime WHERE pool = $1")
                        .bind(l.pool.clone()),
                    PoolLimit::Allowance => sqlx::query("SELECT spent_micro FROM dp_asker_spend WHERE pool = $1 AND period = $2 AND asker = $3")
                        .bind(l.pool.clone())
                        .bind(l.period)
                        .bind(asker.to_owned()),
                };
                Ok(match q.fetch_optional(self.pool()).await? {
                    Some(r) => r.try_get("spent_micro")?,
                    None => 0,
                })
            }
        }

        #[async_trait]
        impl PrivacyStore for SqlStore<$pool> {
            async fn dp_charge(&self, asker: &str, lines: &[PoolCharge]) -> Result<DpCharge> {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match self.dp_charge_once(asker, lines).await {
                        Err(e) if attempt < CHARGE_ATTEMPTS && crate::sql::retryable(&e) => {
                            tokio::task::yield_now().await;
                        }
                        other => return other,
                    }
                }
            }
            async fn dp_pool_spend(&self, pool: &str, period: i64) -> Result<PoolSpend> {
                let rows = sqlx::query(
                    "SELECT asker, spent_micro, releases FROM dp_asker_spend WHERE pool = $1 AND period = $2 ORDER BY asker",
                )
                .bind(pool.to_owned())
                .bind(period)
                .fetch_all(self.pool())
                .await?;
                let mut by_asker = Vec::with_capacity(rows.len());
                for r in rows {
                    by_asker.push(AskerSpend {
                        asker: r.try_get("asker")?,
                        spent_micro: r.try_get("spent_micro")?,
                        releases: r.try_get("releases")?,
                    });
                }
                let spent = sqlx::query("SELECT spent_micro FROM dp_pool_periods WHERE pool = $1 AND period = $2")
                    .bind(pool.to_owned())
                    .bind(period)
                    .fetch_optional(self.pool())
                    .await?
                    .map(|r| r.try_get::<i64, _>("spent_micro"))
                    .transpose()?
                    .unwrap_or(0);
                let lifetime = sqlx::query("SELECT spent_micro FROM dp_pool_lifetime WHERE pool = $1")
                    .bind(pool.to_owned())
                    .fetch_optional(self.pool())
                    .await?
                    .map(|r| r.try_get::<i64, _>("spent_micro"))
                    .transpose()?
                    .unwrap_or(0);
                Ok(PoolSpend {
                    period_micro: spent,
                    lifetime_micro: lifetime,
                    by_asker,
                })
            }
        }
    };
}

impl_privacy_store!(SqlitePool, begin_sqlite);
impl_privacy_store!(PgPool, begin_postgres);
