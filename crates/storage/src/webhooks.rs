//! Organisations' webhooks for erasure requests (issue 15, item 2), on both
//! databases: the URL an organisation registered, and each request's
//! delivery state (attempts, the next one due), kept so that retries survive
//! a restart. Nothing here names a member.

use crate::erasure::ErasureRequestRow;
use crate::sql::SqlStore;
use crate::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// An organisation's registered webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRow {
    pub url: String,
    pub created_at: Timestamp,
}

/// A released, unconfirmed erasure request whose delivery is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    pub request: ErasureRequestRow,
    pub url: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// Where one request's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryState {
    pub attempts: u32,
    /// The next attempt (None: delivered, or given up).
    pub next_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    /// The receiver's last HTTP status (None: no answer).
    pub last_status: Option<u16>,
}

/// Webhooks and their deliveries.
#[async_trait]
pub trait WebhookStore {
    /// Registers `org`'s webhook, replacing any earlier one.
    async fn set_webhook(&self, org: OrgId, url: &str, at: Timestamp) -> Result<()>;
    async fn webhook(&self, org: OrgId) -> Result<Option<WebhookRow>>;
    /// Removes `org`'s webhook; false when it had none.
    async fn delete_webhook(&self, org: OrgId) -> Result<bool>;
    /// Released, unconfirmed requests of organisations with a webhook whose
    /// delivery is due at `now` (never tried, or its next attempt is due),
    /// the longest waiting first, at most `limit`.
    async fn webhook_deliveries_due(&self, now: Timestamp, limit: u32) -> Result<Vec<DueDelivery>>;
    /// Records an attempt's outcome for request `id`.
    async fn webhook_attempted(&self, id: &[u8; 16], state: &DeliveryState) -> Result<()>;
    async fn webhook_delivery(&self, id: &[u8; 16]) -> Result<Option<DeliveryState>>;
}

fn bad(what: &str) -> StorageError {
    StorageError::Corrupt(format!("{what} is malformed"))
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_unix_millis)
}

macro_rules! impl_webhook_store {
    ($pool:ty) => {
        #[async_trait]
        impl WebhookStore for SqlStore<$pool> {
            async fn set_webhook(&self, org: OrgId, url: &str, at: Timestamp) -> Result<()> {
                sqlx::query(
                    "INSERT INTO org_webhooks (org_id, url, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (org_id) DO UPDATE SET url = excluded.url, created_at = excluded.created_at",
                )
                .bind(org)
                .bind(url)
                .bind(at.unix_millis())
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn webhook(&self, org: OrgId) -> Result<Option<WebhookRow>> {
                let row = sqlx::query("SELECT url, created_at FROM org_webhooks WHERE org_id = $1")
                    .bind(org)
                    .fetch_optional(self.pool())
                    .await?;
                row.map(|r| {
                    Ok(WebhookRow {
                        url: r.try_get("url")?,
                        created_at: Timestamp::from_unix_millis(r.try_get("created_at")?),
                    })
                })
                .transpose()
            }

            async fn delete_webhook(&self, org: OrgId) -> Result<bool> {
                Ok(sqlx::query("DELETE FROM org_webhooks WHERE org_id = $1")
                    .bind(org)
                    .execute(self.pool())
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn webhook_deliveries_due(&self, now: Timestamp, limit: u32) -> Result<Vec<DueDelivery>> {
                let rows = sqlx::query(
                    "SELECT r.request_id, r.org_id, r.subject, r.receipt_tag, r.released_at, r.confirmed_at, \
                            w.url, COALESCE(d.attempts, 0) AS attempts \
                     FROM erasure_requests r \
                     JOIN org_webhooks w ON w.org_id = r.org_id \
                     LEFT JOIN webhook_deliveries d ON d.request_id = r.request_id \
                     WHERE r.released_at IS NOT NULL AND r.confirmed_at IS NULL \
                       AND (d.request_id IS NULL OR d.next_at <= $1) \
                     ORDER BY COALESCE(d.next_at, r.released_at), r.request_id \
                     LIMIT $2",
                )
                .bind(now.unix_millis())
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| {
                        let attempts: i64 = row.try_get("attempts")?;
                        Ok(DueDelivery {
                            request: self.erasure_row(row)?,
                            url: row.try_get("url")?,
                            attempts: u32::try_from(attempts).map_err(|_| bad("webhook_deliveries.attempts"))?,
                        })
                    })
                    .collect()
            }

            async fn webhook_attempted(&self, id: &[u8; 16], state: &DeliveryState) -> Result<()> {
                sqlx::query(
                    "INSERT INTO webhook_deliveries (request_id, attempts, next_at, delivered_at, last_status) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO UPDATE SET \
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

            async fn webhook_delivery(&self, id: &[u8; 16]) -> Result<Option<DeliveryState>> {
                let row = sqlx::query(
                    "SELECT attempts, next_at, delivered_at, last_status FROM webhook_deliveries WHERE request_id = $1",
                )
                .bind(id.to_vec())
                .fetch_optional(self.pool())
                .await?;
                row.map(|r| {
                    let attempts: i64 = r.try_get("attempts")?;
                    let status: Option<i64> = r.try_get("last_status")?;
                    Ok(DeliveryState {
                        attempts: u32::try_from(attempts).map_err(|_| bad("webhook_deliveries.attempts"))?,
                        next_at: ts(r.try_get("next_at")?),
                        delivered_at: ts(r.try_get("delivered_at")?),
                        last_status: status
                            .map(|s| u16::try_from(s).map_err(|_| bad("webhook_deliveries.last_status")))
                            .transpose()?,
                    })
                })
                .transpose()
            }
        }
    };
}

impl_webhook_store!(SqlitePool);
impl_webhook_store!(PgPool);
