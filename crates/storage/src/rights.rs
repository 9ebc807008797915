//! Member rights (issue 15), on both databases: the one-click marketing
//! opt-out, paper opt-out codes (keyed hashes only) and what an import from
//! another node restored, in one transaction with the records it brought.
//! Each is found by the member's locator (issue 13, metadata at rest); an
//! opt-out code keeps its member's id sealed, bound to the code's hash.

use crate::sql::{begin_postgres, begin_sqlite, SqlStore};
use crate::*;
use me2b_domain::meta::MetaTable;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// What an import brought back as history, sealed under the member's data key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedHistoryRow {
    pub import_id: [u8; 16],
    pub member: MemberId,
    pub imported_at: Timestamp,
    pub sealed: Vec<u8>,
}

/// Opt-outs, opt-out codes and imports.
#[async_trait]
pub trait RightsStore {
    /// Records the member's opt-out of all direct marketing unless one is in
    /// force; returns the time of the one in force.
    async fn marketing_opt_out(
        &self,
        member: MemberId,
        at: Timestamp,
        method: &str,
    ) -> Result<Timestamp>;
    /// Ends the opt-out; false when there was none.
    async fn marketing_opt_in(&self, member: MemberId) -> Result<bool>;
    async fn marketing_opted_out_since(&self, member: MemberId) -> Result<Option<Timestamp>>;
    /// Stores the member's opt-out code's keyed hash, replacing any earlier one.
    async fn set_optout_code(
        &self,
        member: MemberId,
        index: &[u8; 32],
        at: Timestamp,
    ) -> Result<()>;
    /// The active member (not being erased) whose code has this keyed hash.
    async fn member_by_optout_code(&self, index: &[u8; 32]) -> Result<Option<MemberId>>;
    /// When the member's code was made, if they have one.
    async fn optout_code_since(&self, member: MemberId) -> Result<Option<Timestamp>>;
    /// Inserts the records and the history in one transaction: all or none.
    async fn import_member_data(
        &self,
        records: &[StoredRecord],
        history: &ImportedHistoryRow,
    ) -> Result<()>;
    async fn imported_history(&self, member: MemberId) -> Result<Vec<ImportedHistoryRow>>;
    /// Queues a paper opt-out of `member` for the worker (one insert: the
    /// request that typed the code does no more).
    async fn enqueue_optout_job(
        &self,
        job: [u8; 16],
        member: MemberId,
        at: Timestamp,
    ) -> Result<()>;
    /// Takes up to `limit` queued opt-outs no worker holds (or whose lease
    /// ran out), each held until `lease_until`: two workers never take one
    /// job at once.
    async fn claim_optout_jobs(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<([u8; 16], MemberId)>>;
    /// A job done: deleted.
    async fn finish_optout_job(&self, job: [u8; 16]) -> Result<()>;
    /// How many opt-outs are queued.
    async fn optout_jobs_pending(&self) -> Result<u64>;
}

macro_rules! impl_rights_store {
    ($pool:ty, $begin:ident) => {
        #[async_trait]
        impl RightsStore for SqlStore<$pool> {
            async fn marketing_opt_out(&self, member: MemberId, at: Timestamp, method: &str) -> Result<Timestamp> {
                sqlx::query("INSERT INTO marketing_optouts (member_loc, since, method) VALUES ($1, $2, $3) ON CONFLICT (member_loc) DO NOTHING")
                    .bind(self.loc(MetaTable::MarketingOptouts, member)?)
                    .bind(crate::sql::hour_ms(at))
                    .bind(method)
                    .execute(self.pool())
                    .await?;
                Ok(self
                    .marketing_opted_out_since(member)
                    .await?
                    .unwrap_or(Timestamp::from_unix_millis(crate::sql::hour_ms(at))))
            }

            async fn marketing_opt_in(&self, member: MemberId) -> Result<bool> {
                Ok(sqlx::query("DELETE FROM marketing_optouts WHERE member_loc = $1 OR legacy_member_id = $2")
                    .bind(self.loc(MetaTable::MarketingOptouts, member)?)
                    .bind(member)
                    .execute(self.pool())
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn marketing_opted_out_since(&self, member: MemberId) -> Result<Option<Timestamp>> {
                let v: Option<i64> = sqlx::query_scalar("SELECT since FROM marketing_optouts WHERE member_loc = $1")
                    .bind(self.loc(MetaTable::MarketingOptouts, member)?)
                    .fetch_optional(self.pool())
                    .await?;
                Ok(v.map(Timestamp::from_unix_millis))
            }

            async fn set_optout_code(&self, member: MemberId, index: &[u8; 32], at: Timestamp) -> Result<()> {
                sqlx::query(
                    "INSERT INTO optout_codes (member_loc, member_ct, code_index, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (member_loc) DO UPDATE SET member_ct = excluded.member_ct, \
                     code_index = excluded.code_index, created_at = excluded.created_at",
                )
                .bind(self.loc(MetaTable::OptoutCodes, member)?)
                .bind(self.seal_member(MetaTable::OptoutCodes, index, member)?)
                .bind(index.to_vec())
                .bind(crate::sql::hour_ms(at))
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn member_by_optout_code(&self, index: &[u8; 32]) -> Result<Option<MemberId>> {
                let row = sqlx::query("SELECT member_ct, legacy_member_id FROM optout_codes WHERE code_index = $1")
                    .bind(index.to_vec())
                    .fetch_optional(self.pool())
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let member = self.open_member(
                    MetaTable::OptoutCodes,
                    index,
                    row.try_get("member_ct")?,
                    row.try_get("legacy_member_id")?,
                )?;
                let active: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE member_id = $1 AND state = 'active'")
                    .bind(member)
                    .fetch_one(self.pool())
                    .await?;
                Ok((active > 0).then_some(member))
            }

            async fn optout_code_since(&self, member: MemberId) -> Result<Option<Timestamp>> {
                let v: Option<i64> = sqlx::query_scalar("SELECT created_at FROM optout_codes WHERE member_loc = $1")
                    .bind(self.loc(MetaTable::OptoutCodes, member)?)
                    .fetch_optional(self.pool())
                    .await?;
                Ok(v.map(Timestamp::from_unix_millis))
            }

            async fn import_member_data(&self, records: &[StoredRecord], history: &ImportedHistoryRow) -> Result<()> {
                let mut tx = $begin(self.pool()).await?;
                for r in records {
                    sqlx::query(
                        "INSERT INTO vault_records (record_id, member_loc, revision, created_at, updated_at, ciphertext, ord) \
                         VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(ord), 0) + 1 FROM vault_records WHERE member_loc = $2))",
                    )
                    .bind(r.id)
                    .bind(self.loc(MetaTable::VaultRecords, r.member)?)
                    .bind(r.revision)
                    .bind(crate::sql::hour_ms(r.created_at))
                    .bind(crate::sql::hour_ms(r.updated_at))
                    .bind(r.ciphertext.clone())
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("INSERT INTO imported_history (import_id, member_loc, imported_at, sealed) VALUES ($1, $2, $3, $4)")
                    .bind(history.import_id.to_vec())
                    .bind(self.loc(MetaTable::ImportedHistory, history.member)?)
                    .bind(crate::sql::hour_ms(history.imported_at))
                    .bind(history.sealed.clone())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn imported_history(&self, member: MemberId) -> Result<Vec<ImportedHistoryRow>> {
                sqlx::query("SELECT import_id, imported_at, sealed FROM imported_history WHERE member_loc = $1 ORDER BY imported_at")
                    .bind(self.loc(MetaTable::ImportedHistory, member)?)
                    .fetch_all(self.pool())
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(ImportedHistoryRow {
                            import_id: r
                                .try_get::<Vec<u8>, _>("import_id")?
                                .try_into()
                                .map_err(|_| StorageError::Corrupt("imported_history.import_id".into()))?,
                            member,
                            imported_at: Timestamp::from_unix_millis(r.try_get("imported_at")?),
                            sealed: r.try_get("sealed")?,
                        })
                    })
                    .collect()
            }

            async fn enqueue_optout_job(&self, job: [u8; 16], member: MemberId, at: Timestamp) -> Result<()> {
                sqlx::query("INSERT INTO optout_jobs (job_id, member_loc, member_ct, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(job.to_vec())
                    .bind(self.loc(MetaTable::OptoutJobs, member)?)
                    .bind(self.seal_member(MetaTable::OptoutJobs, &job, member)?)
                    .bind(crate::sql::hour_ms(at))
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn claim_optout_jobs(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> Result<Vec<([u8; 16], MemberId)>> {
                let rows = sqlx::query(
                    "SELECT job_id, member_ct FROM optout_jobs WHERE lease_until IS NULL OR lease_until <= $1 \
                     ORDER BY created_at, job_id LIMIT $2",
                )
                .bind(now.unix_millis())
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let job: [u8; 16] = r
                        .try_get::<Vec<u8>, _>("job_id")?
                        .try_into()
                        .map_err(|_| StorageError::Corrupt("optout_jobs.job_id".into()))?;
                    let taken = sqlx::query(
                        "UPDATE optout_jobs SET lease_until = $1 WHERE job_id = $2 AND (lease_until IS NULL OR lease_until <= $3)",
                    )
                    .bind(crate::sql::hour_up_ms(lease_until))
                    .bind(job.to_vec())
                    .bind(now.unix_millis())
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                    if taken == 1 {
                        let member = self.open_member(MetaTable::OptoutJobs, &job, r.try_get("member_ct")?, None)?;
                        out.push((job, member));
                    }
                }
                Ok(out)
            }

            async fn finish_optout_job(&self, job: [u8; 16]) -> Result<()> {
                sqlx::query("DELETE FROM optout_jobs WHERE job_id = $1")
                    .bind(job.to_vec())
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn optout_jobs_pending(&self) -> Result<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM optout_jobs")
                    .fetch_one(self.pool())
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }
    };
}

impl_rights_store!(SqlitePool, begin_sqlite);
impl_rights_store!(PgPool, begin_postgres);
