//! Rectification notices (issue 15, item 3; GDPR Art. 16 and 19), on both
//! databases: one per organisation that received data of a corrected
//! record's category, released in batches at period boundaries, confirmed
//! by the organisation, and delivered to its webhook with retries. A notice
//! names the organisation's pseudonym for the member, never the member id;
//! `member_tag` (a keyed hash under the node's key) lets the member follow
//! their own.

use crate::erasure::Confirmed;
use crate::sql::SqlStore;
use crate::webhooks::DeliveryState;
use crate::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// A rectification notice to one organisation, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RectificationRow {
    pub id: [u8; 16],
    pub org: OrgId,
    /// The organisation's own pseudonym for the member.
    pub subject: String,
    /// The consent under which it received the category.
    pub consent: ConsentId,
    pub category: String,
    pub member_tag: [u8; 32],
    pub created_at: Timestamp,
    /// The batch boundary it was released at (None: not yet).
    pub released_at: Option<Timestamp>,
    pub confirmed_at: Option<Timestamp>,
}

/// A released, unconfirmed notice whose webhook delivery is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueRectification {
    pub notice: RectificationRow,
    pub url: String,
    pub attempts: u32,
}

/// Rectification notices and their deliveries.
#[async_trait]
pub trait RectificationStore {
    /// Stores new notices; one that repeats a notice not yet released (same
    /// member, organisation, consent and category) is left out. Returns how
    /// many were stored.
    async fn rectification_add(&self, notices: &[RectificationRow]) -> Result<usize>;
    /// How many members have notices not released made before `before`,
    /// and the earliest.
    async fn rectification_pending_before(
        &self,
        before: Timestamp,
    ) -> Result<(u64, Option<Timestamp>)>;
    /// Releases at `at` every notice made before `before`; how many.
    async fn rectification_release(&self, before: Timestamp, at: Timestamp) -> Result<u64>;
    /// Released notices of `org` it has not confirmed, oldest first.
    async fn rectifications_pending(&self, org: OrgId) -> Result<Vec<RectificationRow>>;
    /// `org` confirms its released notice `id` at `at`.
    async fn rectification_confirm(
        &self,
        org: OrgId,
        id: &[u8; 16],
        at: Timestamp,
    ) -> Result<Confirmed>;
    /// The notices under a member's tag, newest first.
    async fn rectifications_of(&self, member_tag: &[u8; 32]) -> Result<Vec<RectificationRow>>;
    /// Released, unconfirmed notices of organisations with a webhook whose
    /// delivery is due at `now`, the longest waiting first, at most `limit`.
    async fn rectification_deliveries_due(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueRectification>>;
    async fn rectification_attempted(&self, id: &[u8; 16], state: &DeliveryState) -> Result<()>;
    async fn rectification_delivery(&self, id: &[u8; 16]) -> Result<Option<DeliveryState>>;
}

fn bad(what: &str) -> StorageError {
    StorageError::Corrupt(format!("{what} is malformed"))
}

const COLUMNS: &str = "n.notice_id, n.org_id, n.subject, n.consent_id, n.category, n.member_tag, n.created_at, n.released_at, n.confirmed_at";

macro_rules! impl_rectification_store {
    ($pool:ty) => {
        impl SqlStore<$pool> {
            fn rectification_row(
                row: &<<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Row,
            ) -> Result<RectificationRow> {
                let id: Vec<u8> = row.try_get("notice_id")?;
                let org: Vec<u8> = row.try_get("org_id")?;
                let consent: Vec<u8> = row.try_get("consent_id")?;
                let tag: Vec<u8> = row.try_get("member_tag")?;
                let created: i64 = row.try_get("created_at")?;
                let released: Option<i64> = row.try_get("released_at")?;
                let confirmed: Option<i64> = row.try_get("confirmed_at")?;
                Ok(RectificationRow {
                    id: <[u8; 16]>::try_from(id.as_slice())
                        .map_err(|_| bad("rectification_notices.notice_id"))?,
                    org: OrgId::from_slice(&org).map_err(|_| bad("rectification_notices.org_id"))?,
                    subject: row.try_get("subject")?,
                    consent: ConsentId::from_slice(&consent)
                        .map_err(|_| bad("rectification_notices.consent_id"))?,
                    category: row.try_get("category")?,
                    member_tag: <[u8; 32]>::try_from(tag.as_slice())
                        .map_err(|_| bad("rectification_notices.member_tag"))?,
                    created_at: Timestamp::from_unix_millis(created),
                    released_at: released.map(Timestamp::from_unix_millis),
                    confirmed_at: confirmed.map(Timestamp::from_unix_millis),
                })
            }
        }

        #[async_trait]
        impl RectificationStore for SqlStore<$pool> {
            async fn rectification_add(&self, notices: &[RectificationRow]) -> Result<usize> {
                let mut stored = 0;
                for n in notices {
                    let before: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM rectification_notices WHERE member_tag = $1 AND org_id = $2 \
                         AND consent_id = $3 AND category = $4 AND released_at IS NULL",
                    )
                    .bind(n.member_tag.to_vec())
                    .bind(n.org.as_bytes().to_vec())
                    .bind(n.consent.as_bytes().to_vec())
                    .bind(&n.category)
                    .fetch_one(self.pool())
                    .await?;
                    if before > 0 {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO rectification_notices (notice_id, org_id, subject, consent_id, category, member_tag, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(n.id.to_vec())
                    .bind(n.org.as_bytes().to_vec())
                    .bind(&n.subject)
                    .bind(n.consent.as_bytes().to_vec())
                    .bind(&n.category)
                    .bind(n.member_tag.to_vec())
                    .bind(n.created_at.unix_millis())
                    .execute(self.pool())
                    .await?;
                    stored += 1;
                }
                Ok(stored)
            }

            async fn rectification_pending_before(&self, before: Timestamp) -> Result<(u64, Option<Timestamp>)> {
                let row = sqlx::query(
                    "SELECT COUNT(DISTINCT member_tag) AS n, MIN(created_at) AS first FROM rectification_notices \
                     WHERE released_at IS NULL AND created_at < $1",
                )
                .bind(before.unix_millis())
                .fetch_one(self.pool())
                .await?;
                let n: i64 = row.try_get("n")?;
                let first: Option<i64> = row.try_get("first")?;
                Ok((u64::try_from(n).unwrap_or(0), first.map(Timestamp::from_unix_millis)))
            }

            async fn rectification_release(&self, before: Timestamp, at: Timestamp) -> Result<u64> {
                Ok(sqlx::query(
                    "UPDATE rectification_notices SET released_at = $2 WHERE released_at IS NULL AND created_at < $1",
                )
                .bind(before.unix_millis())
                .bind(at.unix_millis())
                .execute(self.pool())
                .await?
                .rows_affected())
            }

            async fn rectifications_pending(&self, org: OrgId) -> Result<Vec<RectificationRow>> {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM rectification_notices n WHERE n.org_id = $1 AND n.released_at IS NOT NULL \
                     AND n.confirmed_at IS NULL ORDER BY n.released_at, n.notice_id"
                ))
                .bind(org.as_bytes().to_vec())
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(Self::rectification_row)
                .collect()
            }

            async fn rectification_confirm(&self, org: OrgId, id: &[u8; 16], at: Timestamp) -> Result<Confirmed> {
                let n = sqlx::query(
                    "UPDATE rectification_notices SET confirmed_at = $3 WHERE notice_id = $1 AND org_id = $2 \
                     AND released_at IS NOT NULL AND confirmed_at IS NULL",
                )
                .bind(id.to_vec())
                .bind(org.as_bytes().to_vec())
                .bind(at.unix_millis())
                .execute(self.pool())
                .await?
                .rows_affected();
                if n == 1 {
                    return Ok(Confirmed::Now);
                }
                let before: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM rectification_notices WHERE notice_id = $1 AND org_id = $2 AND released_at IS NOT NULL",
                )
                .bind(id.to_vec())
                .bind(org.as_bytes().to_vec())
                .fetch_one(self.pool())
                .await?;
                Ok(if before > 0 { Confirmed::Already } else { Confirmed::NotFound })
            }

            async fn rectifications_of(&self, member_tag: &[u8; 32]) -> Result<Vec<RectificationRow>> {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM rectification_notices n WHERE n.member_tag = $1 \
                     ORDER BY n.created_at DESC, n.notice_id"
                ))
                .bind(member_tag.to_vec())
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(Self::rectification_row)
                .collect()
            }

            async fn rectification_deliveries_due(&self, now: Timestamp, limit: u32) -> Result<Vec<DueRectification>> {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS}, w.url, COALESCE(d.attempts, 0) AS attempts \
                     FROM rectification_notices n \
                     JOIN org_webhooks w ON w.org_id = n.org_id \
                     LEFT JOIN rectification_deliveries d ON d.notice_id = n.notice_id \
                     WHERE n.released_at IS NOT NULL AND n.confirmed_at IS NULL \
                       AND (d.notice_id IS NULL OR d.next_at <= $1) \
                     ORDER BY COALESCE(d.next_at, n.released_at), n.notice_id \
                     LIMIT $2"
                ))
                .bind(now.unix_millis())
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| {
                        let attempts: i64 = row.try_get("attempts")?;
                        Ok(DueRectification {
                            notice: Self::rectification_row(row)?,
                            url: row.try_get("url")?,
                            attempts: u32::try_from(attempts)
                                .map_err(|_| bad("rectification_deliveries.attempts"))?,
                        })
                    })
                    .collect()
            }

            async fn rectification_attempted(&self, id: &[u8; 16], state: &DeliveryState) -> Result<()> {
                sqlx::query(
                    "INSERT INTO rectification_deliveries (notice_id, attempts, next_at, delivered_at, last_status) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (notice_id) DO UPDATE SET \
                     attempts = excluded.attempts, next_at = excluded.next_at, \
                     delivered_at = excluded.delivered_at, last_status = excluded.last_status",
                )
                .bind(id.to_vec())
                .bind(i64::from(state.attempts))
                .bind(state.next_at.map(Timestamp::unix_millis))
                .bind(state.delivered_at.map(Timestamp::unix_millis))
                .bind(state.last_status.map(i64::from))
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn rectification_delivery(&self, id: &[u8; 16]) -> Result<Option<DeliveryState>> {
                let row = sqlx::query(
                    "SELECT attempts, next_at, delivered_at, last_status FROM rectification_deliveries WHERE notice_id = $1",
                )
                .bind(id.to_vec())
                .fetch_optional(self.pool())
                .await?;
                row.map(|r| {
                    let attempts: i64 = r.try_get("attempts")?;
                    let status: Option<i64> = r.try_get("last_status")?;
                    let next: Option<i64> = r.try_get("next_at")?;
                    let delivered: Option<i64> = r.try_get("delivered_at")?;
                    Ok(DeliveryState {
                        attempts: u32::try_from(attempts).map_err(|_| bad("rectification_deliveries.attempts"))?,
                        next_at: next.map(Timestamp::from_unix_millis),
                        delivered_at: delivered.map(Timestamp::from_unix_millis),
                        last_status: status
                            .map(|s| u16::try_from(s).map_err(|_| bad("rectification_deliveries.last_status")))
                            .transpose()?,
                    })
                })
                .transpose()
            }
        }
    };
}

impl_rectification_store!(SqlitePool);
impl_rectification_store!(PgPool);
