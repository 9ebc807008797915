//! Erasures released in batches (issue 12, finding A), on both databases.
//!
//! An erasure destroys the member's keys and data at once; what organisations
//! can observe of it waits on a pending list until the node releases every
//! pending erasure together at a period boundary: then the member's consent
//! records and account row go, and their trust tags are named to co-ops as
//! erased.

use crate::member_rows::Stage;
use crate::sql::{begin_postgres, begin_sqlite, SqlStore};
use crate::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// A trust tag on the erased list, and whether co-ops are told so yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErasedTag {
    pub tag: [u8; 32],
    /// Released: co-ops are told the card is an erased member's.
    pub released: bool,
}

/// An erasure request to one recipient, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureRequestRow {
    pub id: [u8; 16],
    pub org: OrgId,
    /// The recipient's own pseudonym for the member.
    pub subject: String,
    /// A keyed hash under the member's erasure receipt.
    pub receipt_tag: [u8; 32],
    /// The batch boundary it was released at (None: not yet).
    pub released_at: Option<Timestamp>,
    pub confirmed_at: Option<Timestamp>,
}

/// What confirming an erasure request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    Now,
    /// It was confirmed before: nothing changed.
    Already,
    /// No released request of this organisation has this id.
    NotFound,
}

/// Pending erasures.
#[async_trait]
pub trait ErasureStore {
    /// Deletes what is left of an erased member except what organisations
    /// observe until the release (their consent records, their account row
    /// with every secret already cleared), puts them on the pending list and
    /// stores their recipients' erasure requests and the receipt covering
    /// them (`receipt_hash`, how many), in one transaction. Done once: a
    /// member already held is left as is (false).
    async fn erasure_hold(
        &self,
        member: MemberId,
        erased_at: Timestamp,
        requests: &[ErasureRequestRow],
        receipt_hash: &[u8; 32],
    ) -> Result<bool>;
    /// Released requests of `org` it has not confirmed, oldest first.
    async fn erasure_requests_pending(&self, org: OrgId) -> Result<Vec<ErasureRequestRow>>;
    /// `org` confirms its released request `id` at `at`.
    async fn erasure_confirm(&self, org: OrgId, id: &[u8; 16], at: Timestamp) -> Result<Confirmed>;
    /// How many requests the receipt with this hash covers.
    async fn erasure_receipt(&self, receipt_hash: &[u8; 32]) -> Result<Option<u32>>;
    /// The requests with these receipt tags.
    async fn erasure_requests_tagged(&self, tags: &[[u8; 32]]) -> Result<Vec<ErasureRequestRow>>;
    /// Every request (the operator's view): no two are linked.
    async fn erasure_requests_all(&self) -> Result<Vec<ErasureRequestRow>>;
    /// How many pending erasures began before `before`, and the earliest.
    async fn erasure_pending_before(&self, before: Timestamp) -> Result<(u64, Option<Timestamp>)>;
    /// Releases the pending erasures that began before `before`, in one
    /// transaction: their consent records and account rows are deleted, and
    /// every tag on the trust's erased list not yet released is released at
    /// `at` (the loyalty rows under it deleted). Returns how many members.
    async fn erasure_release(&self, before: Timestamp, at: Timestamp) -> Result<u64>;
    /// Which of `tags` are on the erased list, and whether released.
    async fn trust_erased_states(&self, tags: &[[u8; 32]]) -> Result<Vec<ErasedTag>>;
    /// Whether `tag` is on the list of enrolled loyalty members.
    async fn loyalty_enrolled(&self, tag: &[u8; 32]) -> Result<bool>;
}

fn bad(what: &str) -> StorageError {
    StorageError::Corrupt(format!("{what} is malformed"))
}

/// Deletes, in the transaction `$tx`, every receipt, item, bin and per-member
/// total under each research tag of `$tags` (byte vectors), decrementing the
/// bins' totals; evaluates to the number of receipts removed. Tags that are
/// not research tags (loyalty tags) match nothing. `trust_forget` runs it at
/// the erasure, and the release runs it again for the tags it releases: a
/// co-op's receipts on a held card are stored like any (the same work, so
/// that timing the answers does not name the card) and go here.
macro_rules! forget_research_tags {
    ($store:ident, $tx:ident, $tags:expr) => {{
        // Scope by scope (every organisation, and `*`), so each lookup uses
        // the (scope, tag) and (org_id, tag) indexes the ingest path keeps
        // anyway.
        let mut orgs: Vec<Vec<u8>> = Vec::new();
        let mut scopes: Vec<String> = Vec::new();
        for row in sqlx::query("SELECT org_id FROM organisations").fetch_all(&mut *$tx).await? {
            let id: Vec<u8> = row.try_get("org_id")?;
            let org = me2b_domain::OrgId::from_slice(&id)
                .map_err(|_| crate::StorageError::Corrupt("organisations.org_id is malformed".to_owned()))?;
            scopes.push(org.to_string());
            orgs.push(id);
        }
        scopes.push("*".to_owned());
        let mut removed: u64 = 0;
        for tag in $tags {
            let tag: Vec<u8> = tag.to_vec();
            let research = <[u8; 32]>::try_from(tag.as_slice())
                .map_err(|_| crate::StorageError::Corrupt("trust_erased.tag is malformed".to_owned()))?;
            for scope in &scopes {
                // Each scope's rows under the tag scoped to it (issue 13).
                let stored = $store.scope_tag(&research, scope)?.to_vec();
                let bins = sqlx::query("SELECT dim, value FROM trust_bins WHERE scope = $1 AND tag = $2")
                    .bind(scope)
                    .bind(stored.clone())
                    .fetch_all(&mut *$tx)
                    .await?;
                for b in &bins {
                    sqlx::query("UPDATE trust_bin_totals SET members = members - 1 WHERE scope = $1 AND dim = $2 AND value = $3")
                        .bind(scope)
                        .bind(b.try_get::<i64, _>("dim")?)
                        .bind(b.try_get::<i64, _>("value")?)
                        .execute(&mut *$tx)
                        .await?;
                }
                for sql in [
                    "DELETE FROM trust_bins WHERE scope = $1 AND tag = $2",
                    "DELETE FROM trust_members WHERE scope = $1 AND tag = $2",
                ] {
                    sqlx::query(sql).bind(scope).bind(stored.clone()).execute(&mut *$tx).await?;
                }
            }
            for org in &orgs {
                // Receipts are stored under the tag scoped to their co-op.
                let scoped = $store.org_tag(me2b_domain::meta::MetaTable::TrustReceipts, &research, org)?;
                sqlx::query(
                    "DELETE FROM trust_events WHERE receipt_id IN \
                     (SELECT receipt_id FROM trust_receipts WHERE org_id = $1 AND tag = $2)",
                )
                .bind(org.clone())
                .bind(scoped.clone())
                .execute(&mut *$tx)
                .await?;
                removed += sqlx::query("DELETE FROM trust_receipts WHERE org_id = $1 AND tag = $2")
                    .bind(org.clone())
                    .bind(scoped)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected();
            }
        }
        removed
    }};
}
pub(crate) use forget_research_tags;

/// Deletes, in the transaction `$tx`, the loyalty history and pending
/// redemption tokens of each loyalty tag of `$tags`: stored under the tag
/// scoped to each co-op (issue 13).
macro_rules! forget_loyalty_days {
    ($store:ident, $tx:ident, $tags:expr) => {{
        let orgs: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT DISTINCT org_id FROM trust_loyalty_days")
                .fetch_all(&mut *$tx)
                .await?;
        let token_orgs: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT DISTINCT org_id FROM trust_loyalty_tokens")
                .fetch_all(&mut *$tx)
                .await?;
        for tag in $tags {
            let tag = <[u8; 32]>::try_from(&tag[..]).map_err(|_| {
                crate::StorageError::Corrupt("trust_erased.tag is malformed".to_owned())
            })?;
            for org in &token_orgs {
                sqlx::query("DELETE FROM trust_loyalty_tokens WHERE tag = $1 AND org_id = $2")
                    .bind($store.org_tag(
                        me2b_domain::meta::MetaTable::TrustLoyaltyTokens,
                        &tag,
                        org,
                    )?)
                    .bind(org.clone())
                    .execute(&mut *$tx)
                    .await?;
            }
            for org in &orgs {
                sqlx::query("DELETE FROM trust_loyalty_days WHERE tag = $1 AND org_id = $2")
                    .bind($store.org_tag(
                        me2b_domain::meta::MetaTable::TrustLoyaltyDays,
                        &tag,
                        org,
                    )?)
                    .bind(org.clone())
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}
pub(crate) use forget_loyalty_days;

macro_rules! impl_erasure_store {
    ($pool:ty, $begin:ident) => {
        impl SqlStore<$pool> {
            pub(crate) fn erasure_row(
                &self,
                row: &<<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Row,
            ) -> Result<ErasureRequestRow> {
            let id: Vec<u8> = row.try_get("request_id")?;
            let org: OrgId = row.try_get("org_id")?;
            let tag: Vec<u8> = row.try_get("receipt_tag")?;
            let released: Option<i64> = row.try_get("released_at")?;
            let confirmed: Option<i64> = row.try_get("confirmed_at")?;
            Ok(ErasureRequestRow {
                id: <[u8; 16]>::try_from(id.as_slice()).map_err(|_| bad("erasure_requests.request_id"))?,
                org,
                subject: self.open_subject(&id, row.try_get("subject")?)?,
                receipt_tag: <[u8; 32]>::try_from(tag.as_slice())
                    .map_err(|_| bad("erasure_requests.receipt_tag"))?,
                released_at: released.map(Timestamp::from_unix_millis),
                confirmed_at: confirmed.map(Timestamp::from_unix_millis),
            })
            }
        }

        #[async_trait]
        impl ErasureStore for SqlStore<$pool> {
            async fn erasure_hold(
                &self,
                member: MemberId,
                erased_at: Timestamp,
                requests: &[ErasureRequestRow],
                receipt_hash: &[u8; 32],
            ) -> Result<bool> {
                let mut tx = $begin(self.pool()).await?;
                // The member's intents: the held ones go, the published
                // ones close from the next whole hour (deleted at release).
                let hour = 3_600_000;
                let next_hour = Timestamp::from_unix_millis(
                    (erased_at.unix_millis().div_euclid(hour) + 1).saturating_mul(hour),
                );
                self.erase_member_intents(&mut *tx, member, Some(next_hour)).await?;
                let orgs: Vec<Vec<u8>> = sqlx::query_scalar(crate::meta::CONSENT_ORGS)
                    .fetch_all(&mut *tx)
                    .await?;
                for (sql, binds) in self.member_deletes(member, &[Stage::Hold], &orgs)? {
                    let mut q = sqlx::query(sql);
                    for b in binds {
                        q = q.bind(b);
                    }
                    q.execute(&mut *tx).await?;
                }
                let held = sqlx::query("UPDATE members SET erased_at = $2 WHERE member_id = $1 AND state = 'erasing' AND erased_at IS NULL")
                    .bind(member)
                    .bind(erased_at.unix_millis())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if !held {
                    tx.commit().await?;
                    return Ok(false);
                }
                for r in requests {
                    sqlx::query("INSERT INTO erasure_requests (request_id, org_id, subject, receipt_tag) VALUES ($1, $2, $3, $4)")
                        .bind(r.id.to_vec())
                        .bind(r.org)
                        .bind(self.seal_subject(&r.id, &r.subject)?)
                        .bind(r.receipt_tag.to_vec())
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("INSERT INTO erasure_receipts (receipt_hash, recipients) VALUES ($1, $2)")
                    .bind(receipt_hash.to_vec())
                    .bind(i64::try_from(requests.len()).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.scrub_deleted().await;
                Ok(true)
            }

            async fn erasure_requests_pending(&self, org: OrgId) -> Result<Vec<ErasureRequestRow>> {
                sqlx::query("SELECT * FROM erasure_requests WHERE org_id = $1 AND released_at IS NOT NULL AND confirmed_at IS NULL ORDER BY released_at, request_id")
                    .bind(org)
                    .fetch_all(self.pool())
                    .await?
                    .iter()
                    .map(|r| self.erasure_row(r))
                    .collect()
            }

            async fn erasure_confirm(&self, org: OrgId, id: &[u8; 16], at: Timestamp) -> Result<Confirmed> {
                let n = sqlx::query("UPDATE erasure_requests SET confirmed_at = $3 WHERE request_id = $1 AND org_id = $2 AND released_at IS NOT NULL AND confirmed_at IS NULL")
                    .bind(id.to_vec())
                    .bind(org)
                    .bind(at.unix_millis())
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                if n == 1 {
                    return Ok(Confirmed::Now);
                }
                let before: Option<i64> = sqlx::query_scalar("SELECT COUNT(*) FROM erasure_requests WHERE request_id = $1 AND org_id = $2 AND released_at IS NOT NULL")
                    .bind(id.to_vec())
                    .bind(org)
                    .fetch_optional(self.pool())
                    .await?;
                Ok(if before.unwrap_or(0) > 0 { Confirmed::Already } else { Confirmed::NotFound })
            }

            async fn erasure_receipt(&self, receipt_hash: &[u8; 32]) -> Result<Option<u32>> {
                let n: Option<i64> = sqlx::query_scalar("SELECT recipients FROM erasure_receipts WHERE receipt_hash = $1")
                    .bind(receipt_hash.to_vec())
                    .fetch_optional(self.pool())
                    .await?;
                Ok(n.map(|n| u32::try_from(n).unwrap_or(0)))
            }

            async fn erasure_requests_tagged(&self, tags: &[[u8; 32]]) -> Result<Vec<ErasureRequestRow>> {
                let mut out = Vec::new();
                for chunk in tags.chunks(1_000) {
                    let mut q = sqlx::QueryBuilder::<<$pool as crate::sql::PoolDb>::Db>::new(
                        "SELECT * FROM erasure_requests WHERE receipt_tag IN (",
                    );
                    let mut sep = q.separated(", ");
                    for t in chunk {
                        sep.push_bind(t.to_vec());
                    }
                    q.push(")");
                    for row in q.build().fetch_all(self.pool()).await? {
                        out.push(self.erasure_row(&row)?);
                    }
                }
                Ok(out)
            }

            async fn erasure_requests_all(&self) -> Result<Vec<ErasureRequestRow>> {
                sqlx::query("SELECT * FROM erasure_requests ORDER BY org_id, released_at, request_id")
                    .fetch_all(self.pool())
                    .await?
                    .iter()
                    .map(|r| self.erasure_row(r))
                    .collect()
            }

            async fn erasure_pending_before(&self, before: Timestamp) -> Result<(u64, Option<Timestamp>)> {
                let row = sqlx::query("SELECT COUNT(*) AS n, MIN(erased_at) AS first FROM members WHERE erased_at < $1")
                    .bind(before.unix_millis())
                    .fetch_one(self.pool())
                    .await?;
                let n: i64 = row.try_get("n")?;
                let first: Option<i64> = row.try_get("first")?;
                Ok((u64::try_from(n).unwrap_or(0), first.map(Timestamp::from_unix_millis)))
            }

            async fn erasure_release(&self, before: Timestamp, at: Timestamp) -> Result<u64> {
                let mut tx = $begin(self.pool()).await?;
                let ids: Vec<MemberId> = sqlx::query_scalar("SELECT member_id FROM members WHERE erased_at < $1")
                    .bind(before.unix_millis())
                    .fetch_all(&mut *tx)
                    .await?;
                let mut members = Vec::with_capacity(ids.len());
                let orgs: Vec<Vec<u8>> = sqlx::query_scalar(crate::meta::CONSENT_ORGS)
                    .fetch_all(&mut *tx)
                    .await?;
                for &member in &ids {
                    self.erase_member_intents(&mut *tx, member, None).await?;
                    for (sql, binds) in self.member_deletes(member, &[Stage::Hold, Stage::Release], &orgs)? {
                        let mut q = sqlx::query(sql);
                        for b in binds {
                            q = q.bind(b);
                        }
                        q.execute(&mut *tx).await?;
                    }
                    members.push(member);
                }
                if !ids.is_empty() {
                    // Receipts co-ops sent on the held cards since the
                    // erasure: stored like any, removed now.
                    let held: Vec<Vec<u8>> = sqlx::query_scalar("SELECT tag FROM trust_erased WHERE released_at IS NULL")
                        .fetch_all(&mut *tx)
                        .await?;
                    forget_research_tags!(self, tx, &held);
                    forget_loyalty_days!(self, tx, &held);
                    sqlx::query("UPDATE erasure_requests SET released_at = $1 WHERE released_at IS NULL")
                        .bind(at.unix_millis())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE trust_erased SET released_at = $1 WHERE released_at IS NULL")
                        .bind(at.unix_millis())
                        .execute(&mut *tx)
                        .await?;
                    for table in ["trust_loyalty_members", "trust_loyalty_balances"] {
                        sqlx::query(&format!(
                            "DELETE FROM {table} WHERE tag IN (SELECT tag FROM trust_erased WHERE released_at IS NOT NULL)"
                        ))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                for member in members {
                    self.forget_subject(member);
                }
                if !ids.is_empty() {
                    self.scrub_deleted().await;
                }
                Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
            }

            async fn trust_erased_states(&self, tags: &[[u8; 32]]) -> Result<Vec<ErasedTag>> {
                let mut out = Vec::new();
                for chunk in tags.chunks(2_000) {
                    let mut q = sqlx::QueryBuilder::<<$pool as crate::sql::PoolDb>::Db>::new(
                        "SELECT tag, released_at FROM trust_erased WHERE tag IN (",
                    );
                    let mut sep = q.separated(", ");
                    for t in chunk {
                        sep.push_bind(t.to_vec());
                    }
                    q.push(")");
                    for row in q.build().fetch_all(self.pool()).await? {
                        let t: Vec<u8> = row.try_get("tag")?;
                        let released: Option<i64> = row.try_get("released_at")?;
                        out.push(ErasedTag {
                            tag: <[u8; 32]>::try_from(t.as_slice()).map_err(|_| bad("trust_erased.tag"))?,
                            released: released.is_some(),
                        });
                    }
                }
                Ok(out)
            }

            async fn loyalty_enrolled(&self, tag: &[u8; 32]) -> Result<bool> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trust_loyalty_members WHERE tag = $1")
                    .bind(tag.to_vec())
                    .fetch_one(self.pool())
                    .await?;
                Ok(n > 0)
            }
        }
    };
}

impl_erasure_store!(SqlitePool, begin_sqlite);
impl_erasure_store!(PgPool, begin_postgres);
