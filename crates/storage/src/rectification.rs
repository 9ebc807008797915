//! Rectification notices (issue 15, item 3; GDPR Art. 16 and 19), on both
//! databases: one per organisation that received data of a corrected
//! record's category, released in batches at period boundaries, confirmed
//! by the organisation, and delivered to its webhook with retries. A notice
//! names the organisation's pseudonym for the member, never the member id.
//!
//! At rest (issue 13, attack 3a of adv5) a notice keeps the member id, the
//! consent id and the subject sealed under the node's metadata key, bound to
//! the notice, and in `member_tag` the member's locator scoped to the
//! notice's organisation: a copy of the file pairs no member's pseudonyms
//! at two co-ops. Its creation time is a whole hour.

use crate::erasure::Confirmed;
use crate::sql::SqlStore;
use crate::webhooks::DeliveryState;
use crate::*;
use me2b_domain::meta::MetaTable;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;
use std::collections::{HashMap, HashSet};

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
    /// The member (stored sealed, never in clear).
    pub member: MemberId,
    /// Stored as the whole hour.
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
    /// The member's notices, newest first.
    async fn rectifications_of(&self, member: MemberId) -> Result<Vec<RectificationRow>>;
    /// Released, unconfirmed notices of organisations with a webhook whose
    /// delivery is due at `now`, the longest waiting first, at most `limit`.
    async fn rectification_deliveries_due(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueRectification>>;
    async fn rectification_attempted(&self, id: &[u8; 16], state: &DeliveryState) -> Result<()>;
    async fn rectification_delivery(&self, id: &[u8; 16]) -> Result<Option<DeliveryState>>;
    /// Seals the notices an older node stored in clear (under the member
    /// tag `tag_of` gives); those of members no longer on the node go.
    /// Returns how many rows changed.
    async fn rectification_rekey(
        &self,
        tag_of: &(dyn Fn(MemberId) -> [u8; 32] + Send + Sync),
    ) -> Result<u64>;
}

/// The whole hour of `t` (times at rest, issue 13).
fn hour(t: Timestamp) -> i64 {
    let ms = t.unix_millis();
    ms - ms.rem_euclid(3_600_000)
}

/// The version of a sealed notice's plaintext: then the member id (16
/// bytes), the consent id (16) and the subject.
const SEALED_V1: u8 = 1;

/// What a notice keeps sealed.
struct Sealed {
    member: MemberId,
    consent: ConsentId,
    subject: String,
}

impl<P> SqlStore<P> {
    fn seal_notice(&self, id: &[u8; 16], s: &Sealed) -> Result<Vec<u8>> {
        let mut plain = vec![SEALED_V1];
        plain.extend_from_slice(s.member.as_bytes());
        plain.extend_from_slice(s.consent.as_bytes());
        plain.extend_from_slice(s.subject.as_bytes());
        Ok(self
            .keys()?
            .seal(MetaTable::RectificationNotices, &bound_id(id), &plain))
    }

    fn open_notice(&self, id: &[u8], sealed: &[u8]) -> Result<Sealed> {
        let plain = self
            .keys()?
            .open(MetaTable::RectificationNotices, &bound_id(id), sealed)
            .ok_or_else(|| bad("rectification_notices.sealed"))?;
        let (Some(&SEALED_V1), Some(member), Some(consent), Some(subject)) = (
            plain.first(),
            plain.get(1..17),
            plain.get(17..33),
            plain.get(33..),
        ) else {
            return Err(bad("rectification_notices.sealed"));
        };
        Ok(Sealed {
            member: MemberId::from_slice(member)
                .map_err(|_| bad("rectification_notices.sealed"))?,
            consent: ConsentId::from_slice(consent)
                .map_err(|_| bad("rectification_notices.sealed"))?,
            subject: String::from_utf8(subject.to_vec())
                .map_err(|_| bad("rectification_notices.sealed"))?,
        })
    }

    /// The member's locator for their notices to `org`.
    pub(crate) fn notice_loc(&self, member: MemberId, org: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .keys()?
            .scoped_locator(MetaTable::RectificationNotices, member, org)
            .to_vec())
    }
}

fn bound_id(id: &[u8]) -> Vec<u8> {
    let mut v = b"notice\0".to_vec();
    v.extend_from_slice(id);
    v
}

fn bad(what: &str) -> StorageError {
    StorageError::Corrupt(format!("{what} is malformed"))
}

const COLUMNS: &str =
    "n.notice_id, n.org_id, n.category, n.sealed, n.created_at, n.released_at, n.confirmed_at";

macro_rules! impl_rectification_store {
    ($pool:ty) => {
        impl SqlStore<$pool> {
            fn rectification_row(
                &self,
                row: &<<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Row,
            ) -> Result<RectificationRow> {
                let id: Vec<u8> = row.try_get("notice_id")?;
                let org: OrgId = row.try_get("org_id")?;
                // A row an older node wrote is sealed at start, before
                // anything is served.
                let sealed: Option<Vec<u8>> = row.try_get("sealed")?;
                let sealed = self.open_notice(
                    &id,
                    &sealed.ok_or_else(|| bad("rectification_notices.sealed"))?,
                )?;
                let created: i64 = row.try_get("created_at")?;
                let released: Option<i64> = row.try_get("released_at")?;
                let confirmed: Option<i64> = row.try_get("confirmed_at")?;
                Ok(RectificationRow {
                    id: <[u8; 16]>::try_from(id.as_slice())
                        .map_err(|_| bad("rectification_notices.notice_id"))?,
                    org,
                    subject: sealed.subject,
                    consent: sealed.consent,
                    category: row.try_get("category")?,
                    member: sealed.member,
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
                    let org = n.org.as_bytes().to_vec();
                    let loc = self.notice_loc(n.member, &org)?;
                    let waiting = sqlx::query(
                        "SELECT notice_id, sealed FROM rectification_notices WHERE member_tag = $1 AND org_id = $2 \
                         AND category = $3 AND released_at IS NULL AND sealed IS NOT NULL",
                    )
                    .bind(loc.clone())
                    .bind(org.clone())
                    .bind(&n.category)
                    .fetch_all(self.pool())
                    .await?;
                    let mut repeats = false;
                    for w in &waiting {
                        let id: Vec<u8> = w.try_get("notice_id")?;
                        let sealed: Vec<u8> = w.try_get("sealed")?;
                        repeats |= self.open_notice(&id, &sealed)?.consent == n.consent;
                    }
                    if repeats {
                        continue;
                    }
                    let sealed = self.seal_notice(
                        &n.id,
                        &Sealed { member: n.member, consent: n.consent, subject: n.subject.clone() },
                    )?;
                    sqlx::query(
                        "INSERT INTO rectification_notices (notice_id, org_id, subject, consent_id, category, member_tag, created_at, sealed) \
                         VALUES ($1, $2, '', $3, $4, $5, $6, $7)",
                    )
                    .bind(n.id.to_vec())
                    .bind(org)
                    .bind(Vec::<u8>::new())
                    .bind(&n.category)
                    .bind(loc)
                    .bind(hour(n.created_at))
                    .bind(sealed)
                    .execute(self.pool())
                    .await?;
                    stored += 1;
                }
                Ok(stored)
            }

            async fn rectification_pending_before(&self, before: Timestamp) -> Result<(u64, Option<Timestamp>)> {
                let rows = sqlx::query(
                    "SELECT notice_id, sealed, created_at FROM rectification_notices \
                     WHERE released_at IS NULL AND created_at < $1",
                )
                .bind(before.unix_millis())
                .fetch_all(self.pool())
                .await?;
                let mut members = HashSet::new();
                let mut first: Option<i64> = None;
                for r in &rows {
                    let id: Vec<u8> = r.try_get("notice_id")?;
                    let sealed: Option<Vec<u8>> = r.try_get("sealed")?;
                    let sealed = sealed.ok_or_else(|| bad("rectification_notices.sealed"))?;
                    members.insert(self.open_notice(&id, &sealed)?.member);
                    let at: i64 = r.try_get("created_at")?;
                    first = Some(first.map_or(at, |f| f.min(at)));
                }
                Ok((u64::try_from(members.len()).unwrap_or(u64::MAX), first.map(Timestamp::from_unix_millis)))
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
                .bind(org)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| self.rectification_row(r))
                .collect()
            }

            async fn rectification_confirm(&self, org: OrgId, id: &[u8; 16], at: Timestamp) -> Result<Confirmed> {
                let n = sqlx::query(
                    "UPDATE rectification_notices SET confirmed_at = $3 WHERE notice_id = $1 AND org_id = $2 \
                     AND released_at IS NOT NULL AND confirmed_at IS NULL",
                )
                .bind(id.to_vec())
                .bind(org)
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
                .bind(org)
                .fetch_one(self.pool())
                .await?;
                Ok(if before > 0 { Confirmed::Already } else { Confirmed::NotFound })
            }

            async fn rectifications_of(&self, member: MemberId) -> Result<Vec<RectificationRow>> {
                let orgs: Vec<Vec<u8>> =
                    sqlx::query_scalar("SELECT DISTINCT org_id FROM rectification_notices")
                        .fetch_all(self.pool())
                        .await?;
                let mut out = Vec::new();
                for org in orgs {
                    let rows = sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM rectification_notices n WHERE n.member_tag = $1 AND n.org_id = $2"
                    ))
                    .bind(self.notice_loc(member, &org)?)
                    .bind(org)
                    .fetch_all(self.pool())
                    .await?;
                    for r in &rows {
                        out.push(self.rectification_row(r)?);
                    }
                }
                out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
                Ok(out)
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
                            notice: self.rectification_row(row)?,
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
                .bind(state.delivered_at.map(hour))
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

            async fn rectification_rekey(
                &self,
                tag_of: &(dyn Fn(MemberId) -> [u8; 32] + Send + Sync),
            ) -> Result<u64> {
                // Once (issue 13): a started node's next start reads the
                // marker, not every notice.
                if NodeMetaStore::meta(self, crate::REKEYED_RECTIFICATIONS).await?.is_some() {
                    return Ok(0);
                }
                let changed = self.rectification_rekey_rows(tag_of).await?;
                NodeMetaStore::put_meta_if_absent(self, crate::REKEYED_RECTIFICATIONS, b"1").await?;
                Ok(changed)
            }
        }

        impl SqlStore<$pool> {
            async fn rectification_rekey_rows(
                &self,
                tag_of: &(dyn Fn(MemberId) -> [u8; 32] + Send + Sync),
            ) -> Result<u64> {
                let rows = sqlx::query(
                    "SELECT notice_id, org_id, subject, consent_id, member_tag FROM rectification_notices WHERE sealed IS NULL",
                )
                .fetch_all(self.pool())
                .await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let ids: Vec<MemberId> = sqlx::query_scalar("SELECT member_id FROM members")
                    .fetch_all(self.pool())
                    .await?;
                let mut by_tag = HashMap::new();
                for m in ids {
                    by_tag.insert(tag_of(m).to_vec(), m);
                }
                let mut changed = 0;
                for r in &rows {
                    let id: Vec<u8> = r.try_get("notice_id")?;
                    let tag: Vec<u8> = r.try_get("member_tag")?;
                    let Some(member) = by_tag.get(&tag).copied() else {
                        // The member's erasure was released: their notices go.
                        sqlx::query("DELETE FROM rectification_deliveries WHERE notice_id = $1")
                            .bind(id.clone())
                            .execute(self.pool())
                            .await?;
                        changed += sqlx::query("DELETE FROM rectification_notices WHERE notice_id = $1 AND sealed IS NULL")
                            .bind(id)
                            .execute(self.pool())
                            .await?
                            .rows_affected();
                        continue;
                    };
                    let org: Vec<u8> = r.try_get("org_id")?;
                    let consent: ConsentId = r.try_get("consent_id")?;
                    let notice = <[u8; 16]>::try_from(id.as_slice())
                        .map_err(|_| bad("rectification_notices.notice_id"))?;
                    let sealed = self.seal_notice(
                        &notice,
                        &Sealed {
                            member,
                            consent,
                            subject: r.try_get("subject")?,
                        },
                    )?;
                    changed += sqlx::query(
                        "UPDATE rectification_notices SET sealed = $1, member_tag = $2, subject = '', consent_id = $3 \
                         WHERE notice_id = $4 AND sealed IS NULL",
                    )
                    .bind(sealed)
                    .bind(self.notice_loc(member, &org)?)
                    .bind(Vec::<u8>::new())
                    .bind(id)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                }
                Ok(changed)
            }
        }
    };
}

impl_rectification_store!(SqlitePool);
impl_rectification_store!(PgPool);
