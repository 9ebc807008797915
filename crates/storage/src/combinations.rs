//! How many credentials share a combination of claim values (issue 12), on
//! both databases: aggregates keyed by a keyed hash the credential service
//! computes, with no member id, no time and no code. See
//! `migrations/*/0037_credential_combinations.sql`.

use crate::sql::{begin_postgres, begin_sqlite, SqlStore};
use crate::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

#[async_trait]
pub trait CombinationStore {
    /// Adds one credential to each of `combinations` (keyed hashes), all of
    /// validity epoch `epoch`, in one transaction, unless `holder` (a keyed
    /// hash of the member, the issuer and the epoch) was counted already in
    /// that epoch: a member counts once per issuer and epoch, however many
    /// of its credentials they hold. False when not counted.
    async fn count_credential_combinations(
        &self,
        holder: &[u8; 32],
        epoch: u32,
        combinations: &[[u8; 32]],
    ) -> Result<bool>;
    /// How many credentials share `combination` (0 if none).
    async fn credential_combination_count(&self, combination: &[u8; 32]) -> Result<u64>;
    /// Deletes the counts (and the holders counted) of epochs before `epoch`.
    async fn purge_credential_combinations(&self, epoch: u32) -> Result<u64>;
}

macro_rules! impl_combination_store {
    ($pool:ty, $begin:ident) => {
        #[async_trait]
        impl CombinationStore for SqlStore<$pool> {
            async fn count_credential_combinations(
                &self,
                holder: &[u8; 32],
                epoch: u32,
                combinations: &[[u8; 32]],
            ) -> Result<bool> {
                // One order for every writer, so two redemptions never wait
                // on each other's rows in opposite orders.
                let mut sorted = combinations.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                let mut tx = $begin(self.pool()).await?;
                let first = sqlx::query(
                    "INSERT INTO credential_holders (holder, epoch) VALUES ($1, $2) \
                     ON CONFLICT (holder) DO NOTHING",
                )
                .bind(holder.to_vec())
                .bind(i64::from(epoch))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if first == 0 {
                    return Ok(false);
                }
                for c in &sorted {
                    sqlx::query(
                        "INSERT INTO credential_combinations (combination, epoch, shared_by) \
                         VALUES ($1, $2, 1) ON CONFLICT (combination) \
                         DO UPDATE SET shared_by = credential_combinations.shared_by + 1",
                    )
                    .bind(c.to_vec())
                    .bind(i64::from(epoch))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn credential_combination_count(&self, combination: &[u8; 32]) -> Result<u64> {
                let row = sqlx::query(
                    "SELECT shared_by FROM credential_combinations WHERE combination = $1",
                )
                .bind(combination.to_vec())
                .fetch_optional(self.pool())
                .await?;
                match row {
                    Some(r) => Ok(u64::try_from(r.try_get::<i64, _>("shared_by")?).unwrap_or(0)),
                    None => Ok(0),
                }
            }

            async fn purge_credential_combinations(&self, epoch: u32) -> Result<u64> {
                sqlx::query("DELETE FROM credential_holders WHERE epoch < $1")
                    .bind(i64::from(epoch))
                    .execute(self.pool())
                    .await?;
                Ok(
                    sqlx::query("DELETE FROM credential_combinations WHERE epoch < $1")
                        .bind(i64::from(epoch))
                        .execute(self.pool())
                        .await?
                        .rows_affected(),
                )
            }
        }
    };
}

impl_combination_store!(SqlitePool, begin_sqlite);
impl_combination_store!(PgPool, begin_postgres);
