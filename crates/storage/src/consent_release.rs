//! Consent changes released in batches (issue 12: the links polling finds),
//! on both databases.
//!
//! Organisations see a member's consent as it was at the last release
//! (`org_body`): a grant appears in their lists, and a withdrawal or an
//! expiry's receipt shows, only when the node releases every change of the
//! period together. The record now (`body`) still decides every access.

use crate::sql::{begin_postgres, begin_sqlite, SqlStore};
use crate::*;
use me2b_domain::meta::MetaTable;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;
use std::collections::BTreeSet;

/// A consent as organisations see it: the record now (which decides) and
/// the record as of the last release (what the organisation is shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleasedConsent {
    pub now: ConsentRow,
    /// The record's JSON at the last release.
    pub released_body: Vec<u8>,
    /// Its version then (differs from `now.version` while a change waits).
    pub released_version: i64,
}

/// The release of consent changes to organisations.
#[async_trait]
pub trait ConsentReleaseStore {
    /// How many members have a consent change not yet released (a grant, a
    /// withdrawal, or envelopes re-sealed by a change of content), and when
    /// the oldest was made.
    async fn consent_changes_pending(&self) -> Result<(u64, Option<Timestamp>)>;
    /// Releases every change made before `before` (all of them: a change
    /// is never split from the others of its period), the pending
    /// envelopes with the records, in one transaction; returns how many
    /// consents changed.
    async fn consent_release(&self, before: Timestamp) -> Result<u64>;
    /// Releases one consent's record as it is now (a contact the
    /// organisation asked for and knows already); false if none.
    async fn consent_release_one(&self, id: ConsentId) -> Result<bool>;
    /// The consents given (or since withdrawn) under `request` that were
    /// released, in no meaningful order.
    async fn released_consents_for_request(
        &self,
        request: ConsentRequestId,
    ) -> Result<Vec<ReleasedConsent>>;
    /// One consent, if released.
    async fn released_consent(&self, id: ConsentId) -> Result<Option<ReleasedConsent>>;
}

/// A change waits while the version differs from the released one; its
/// time is the withdrawal's, or the grant's.
const PENDING: &str = "status IN ('given', 'withdrawn') \
     AND (org_version IS NULL OR org_version <> version)";

macro_rules! impl_consent_release_store {
    ($pool:ty, $begin:ident) => {
        impl SqlStore<$pool> {
            fn released_row(
                &self,
                row: &<<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Row,
            ) -> Result<ReleasedConsent> {
                let now = self.consent_row(row)?;
                let legacy: i64 = row.try_get("org_legacy")?;
                let body: Vec<u8> = row.try_get("org_body")?;
                Ok(ReleasedConsent {
                    released_body: self.open_body(
                        MetaTable::Consents,
                        now.id.as_bytes(),
                        body,
                        legacy != 0,
                    )?,
                    released_version: row.try_get("org_version")?,
                    now,
                })
            }
        }

        #[async_trait]
        impl ConsentReleaseStore for SqlStore<$pool> {
            async fn consent_changes_pending(&self) -> Result<(u64, Option<Timestamp>)> {
                // Members, not (member, organisation) pairs: a consent's
                // locator is per organisation, so the sealed ids are counted.
                let rows = sqlx::query(&format!(
                    "SELECT consent_id, member_ct, legacy_member_id, \
                     COALESCE(withdrawn_at, given_at) AS at FROM consents WHERE {PENDING}"
                ))
                .fetch_all(self.pool())
                .await?;
                // A changed envelope waiting for the release counts like a
                // grant: its member is one of the batch's.
                let envelopes = sqlx::query(
                    "SELECT p.consent_id, c.member_ct, c.legacy_member_id, p.changed_at AS at \
                     FROM consent_envelopes_pending p JOIN consents c ON c.consent_id = p.consent_id",
                )
                .fetch_all(self.pool())
                .await?;
                let mut members = BTreeSet::new();
                let mut first: Option<i64> = None;
                for row in rows.into_iter().chain(envelopes) {
                    let cid: Vec<u8> = row.try_get("consent_id")?;
                    members.insert(self.open_member(
                        MetaTable::Consents,
                        &cid,
                        row.try_get("member_ct")?,
                        row.try_get("legacy_member_id")?,
                    )?);
                    let at: i64 = row.try_get("at")?;
                    first = Some(first.map_or(at, |f| f.min(at)));
                }
                Ok((
                    u64::try_from(members.len()).unwrap_or(0),
                    first.map(Timestamp::from_unix_millis),
                ))
            }

            async fn consent_release(&self, before: Timestamp) -> Result<u64> {
                let before = before.unix_millis();
                // One transaction: the period's records and its pending
                // envelopes show together, never one without the other.
                let mut tx = $begin(self.pool()).await?;
                let records: Vec<Vec<u8>> = sqlx::query_scalar(&format!(
                    "UPDATE consents SET org_body = body, org_version = version, \
                     org_legacy = CASE WHEN legacy_member_id IS NULL THEN 0 ELSE 1 END \
                     WHERE {PENDING} AND COALESCE(withdrawn_at, given_at) < $1 RETURNING consent_id"
                ))
                .bind(before)
                .fetch_all(&mut *tx)
                .await?;
                let mut changed: BTreeSet<Vec<u8>> = records.into_iter().collect();
                // Each pending envelope taken (exactly the rows deleted, even
                // with a seal committing meanwhile) replaces the served one
                // of its place (`sealed` NULL: the place is emptied).
                let due = sqlx::query(
                    "DELETE FROM consent_envelopes_pending WHERE changed_at < $1 \
                     RETURNING consent_id, key_id, category, expires_at, updated_at, sealed, digest",
                )
                .bind(before)
                .fetch_all(&mut *tx)
                .await?;
                for p in due {
                    let cid: Vec<u8> = p.try_get("consent_id")?;
                    let key: Vec<u8> = p.try_get("key_id")?;
                    let category: String = p.try_get("category")?;
                    sqlx::query(
                        "DELETE FROM consent_envelopes WHERE consent_id = $1 AND key_id = $2 AND category = $3",
                    )
                    .bind(cid.clone())
                    .bind(key.clone())
                    .bind(category.clone())
                    .execute(&mut *tx)
                    .await?;
                    if let Some(sealed) = p.try_get::<Option<Vec<u8>>, _>("sealed")? {
                        sqlx::query(
                            "INSERT INTO consent_envelopes (consent_id, key_id, category, expires_at, updated_at, sealed, digest) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(cid.clone())
                        .bind(key)
                        .bind(category)
                        .bind(p.try_get::<i64, _>("expires_at")?)
                        .bind(p.try_get::<i64, _>("updated_at")?)
                        .bind(sealed)
                        .bind(p.try_get::<Option<Vec<u8>>, _>("digest")?)
                        .execute(&mut *tx)
                        .await?;
                    }
                    changed.insert(cid);
                }
                tx.commit().await?;
                Ok(u64::try_from(changed.len()).unwrap_or(u64::MAX))
            }

            async fn consent_release_one(&self, id: ConsentId) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE consents SET org_body = body, org_version = version, \
                     org_legacy = CASE WHEN legacy_member_id IS NULL THEN 0 ELSE 1 END \
                     WHERE consent_id = $1 AND status IN ('given', 'withdrawn')",
                )
                .bind(id)
                .execute(self.pool())
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn released_consents_for_request(
                &self,
                request: ConsentRequestId,
            ) -> Result<Vec<ReleasedConsent>> {
                sqlx::query(
                    "SELECT * FROM consents WHERE request_id = $1 AND org_body IS NOT NULL \
                     ORDER BY consent_id",
                )
                .bind(request)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| self.released_row(r))
                .collect()
            }

            async fn released_consent(&self, id: ConsentId) -> Result<Option<ReleasedConsent>> {
                sqlx::query("SELECT * FROM consents WHERE consent_id = $1 AND org_body IS NOT NULL")
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?
                    .as_ref()
                    .map(|r| self.released_row(r))
                    .transpose()
            }
        }
    };
}

impl_consent_release_store!(SqlitePool, begin_sqlite);
impl_consent_release_store!(PgPool, begin_postgres);
