//! The loyalty ledger with the member present (issue 12), and the queries
//! behind a member's own audit view, on both databases.
//!
//! Loyalty: a balance per loyalty tag (a keyed hash of the member's
//! loyalty-domain pseudonym), the tags of enrolled members (a card that moves
//! to none of them is refused), the history per co-op and day, and one-time
//! redemption tokens whose points are reserved when the member makes them.
//! Nothing here holds a member id.

use crate::sql::{begin_postgres, begin_sqlite, SqlStore};
use crate::*;
use me2b_domain::meta::MetaTable;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// Points earned and redeemed at one co-op on one day (UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoyaltyDay {
    pub org: OrgId,
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub earned: i64,
    pub redeemed: i64,
}

/// What a member sees of their points.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoyaltyAccount {
    /// Points that can be put on a new redemption token.
    pub balance: i64,
    /// Points held by tokens that are neither used nor expired.
    pub reserved: i64,
    /// Oldest day first.
    pub days: Vec<LoyaltyDay>,
}

/// A one-time redemption token as stored: its hash, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRedemptionToken {
    pub token_hash: [u8; 32],
    pub tag: [u8; 32],
    pub org: OrgId,
    pub points: i64,
    pub expires_at: Timestamp,
}

/// The loyalty ledger.
#[async_trait]
pub trait LoyaltyStore {
    /// Records that `tag` is an enrolled member's loyalty tag (idempotent).
    async fn loyalty_register(&self, tag: &[u8; 32]) -> Result<()>;
    /// Adds `points` earned at `org` on `day` to the tag's balance and
    /// history; false (nothing written) when the tag is not an enrolled
    /// member's. One transaction; the member's row is locked meanwhile, so an
    /// erasure cannot slip between the check and the write.
    async fn loyalty_earn(&self, tag: &[u8; 32], org: OrgId, points: i64, day: i64)
        -> Result<bool>;
    /// Gives back the points of the tag's tokens that expired at `now`, then
    /// takes the token's points from the balance and stores the token, in one
    /// transaction; false (nothing reserved) when the balance is short.
    async fn loyalty_reserve(&self, token: &NewRedemptionToken, now: Timestamp) -> Result<bool>;
    /// Uses a token: deletes it if it is this co-op's, for exactly `points`,
    /// and unexpired at `now` (one DELETE … RETURNING, so exactly one of
    /// concurrent callers gets it), and adds the redemption to the history
    /// on `day`. Returns the tag whose points it was.
    async fn loyalty_redeem(
        &self,
        token_hash: &[u8; 32],
        org: OrgId,
        points: i64,
        now: Timestamp,
        day: i64,
    ) -> Result<Option<[u8; 32]>>;
    /// The tag's balance, reserved points and history, after giving back the
    /// points of its tokens that expired at `now`.
    async fn loyalty_account(&self, tag: &[u8; 32], now: Timestamp) -> Result<LoyaltyAccount>;
}

/// A member's own audit view.
#[async_trait]
pub trait MemberAuditStore {
    /// The entries whose subject is one of `subjects`, in log order, after
    /// skipping the first `skip` of them (entries are numbered per member).
    async fn audit_entries_of(
        &self,
        subjects: &[MemberId],
        skip: u64,
        limit: u64,
    ) -> Result<Vec<AuditEntry>>;
    /// The first signed head at or after entry `seq`: the head of the batch
    /// that wrote it (or, for entries written before heads existed, the
    /// first later one).
    async fn audit_covering_head(&self, seq: u64) -> Result<Option<Checkpoint>>;
}

fn tag32(v: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    v.try_into()
        .map_err(|_| StorageError::Corrupt(what.to_owned()))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

macro_rules! impl_loyalty_store {
    ($pool:ty, $begin:ident) => {
        impl SqlStore<$pool> {
            /// The tag's balance inside `tx`, its row locked until the commit
            /// (a no-op update, on both databases); `None`: no row.
            async fn balance_in(
                &self,
                tx: &mut sqlx::Transaction<'static, <$pool as crate::sql::PoolDb>::Db>,
                tag: &[u8; 32],
            ) -> Result<Option<i64>> {
                sqlx::query("UPDATE trust_loyalty_balances SET tag = tag WHERE tag = $1")
                    .bind(tag.to_vec())
                    .execute(&mut **tx)
                    .await?;
                let row = sqlx::query("SELECT balance, balance_ct FROM trust_loyalty_balances WHERE tag = $1")
                    .bind(tag.to_vec())
                    .fetch_optional(&mut **tx)
                    .await?;
                row.map(|r| self.open_balance(tag, r.try_get("balance_ct")?, r.try_get("balance")?))
                    .transpose()
            }

            /// Stores the tag's balance, sealed (adv9: in clear, two co-ops'
            /// own points summed to it); plain in a store without keys.
            async fn set_balance_in(
                &self,
                tx: &mut sqlx::Transaction<'static, <$pool as crate::sql::PoolDb>::Db>,
                tag: &[u8; 32],
                balance: i64,
            ) -> Result<()> {
                let (plain, sealed) = if self.keys().is_ok() {
                    (0, Some(self.seal_balance(tag, balance)?))
                } else {
                    (balance, None)
                };
                sqlx::query("UPDATE trust_loyalty_balances SET balance = $2, balance_ct = $3 WHERE tag = $1")
                    .bind(tag.to_vec())
                    .bind(plain)
                    .bind(sealed)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Gives back the points of the tag's expired tokens, inside `tx`.
            /// Tokens are kept under the loyalty tag scoped to their co-op
            /// (issue 13): looked up co-op by co-op.
            async fn refund_expired(
                &self,
                tx: &mut sqlx::Transaction<'static, <$pool as crate::sql::PoolDb>::Db>,
                tag: &[u8; 32],
                now: Timestamp,
            ) -> Result<()> {
                let orgs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT DISTINCT org_id FROM trust_loyalty_tokens")
                    .fetch_all(&mut **tx)
                    .await?;
                let mut rows = Vec::new();
                for org in &orgs {
                    rows.extend(
                        sqlx::query(
                            "DELETE FROM trust_loyalty_tokens WHERE tag = $1 AND org_id = $2 AND expires_at <= $3 RETURNING points",
                        )
                        .bind(self.org_tag(MetaTable::TrustLoyaltyTokens, tag, org)?)
                        .bind(org.clone())
                        .bind(now.unix_millis())
                        .fetch_all(&mut **tx)
                        .await?,
                    );
                }
                let mut back = 0i64;
                for r in &rows {
                    back = back.saturating_add(r.try_get::<i64, _>("points")?);
                }
                if back > 0 {
                    if let Some(balance) = self.balance_in(tx, tag).await? {
                        self.set_balance_in(tx, tag, balance.saturating_add(back)).await?;
                    }
                }
                Ok(())
            }

            /// The history is kept under the loyalty tag scoped to the co-op
            /// (issue 13): a member's days at two co-ops share no tag.
            async fn add_day(
                &self,
                tx: &mut sqlx::Transaction<'static, <$pool as crate::sql::PoolDb>::Db>,
                tag: &[u8; 32],
                org: OrgId,
                day: i64,
                earned: i64,
                redeemed: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO trust_loyalty_days (tag, org_id, day, earned, redeemed, tag_scoped) VALUES ($1, $2, $3, $4, $5, 1) \
                     ON CONFLICT (tag, org_id, day) DO UPDATE SET earned = trust_loyalty_days.earned + excluded.earned, \
                     redeemed = trust_loyalty_days.redeemed + excluded.redeemed",
                )
                .bind(self.org_tag(MetaTable::TrustLoyaltyDays, tag, org.as_bytes())?)
                .bind(org)
                .bind(day)
                .bind(earned)
                .bind(redeemed)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl LoyaltyStore for SqlStore<$pool> {
            async fn loyalty_register(&self, tag: &[u8; 32]) -> Result<()> {
                sqlx::query("INSERT INTO trust_loyalty_members (tag) VALUES ($1) ON CONFLICT (tag) DO NOTHING")
                    .bind(tag.to_vec())
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn loyalty_earn(&self, tag: &[u8; 32], org: OrgId, points: i64, day: i64) -> Result<bool> {
                let mut tx = $begin(self.pool()).await?;
                // A no-op update: finds the member's row and locks it until
                // the commit (an erasure deletes it), on both databases.
                let known = sqlx::query("UPDATE trust_loyalty_members SET tag = tag WHERE tag = $1")
                    .bind(tag.to_vec())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if !known {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query("INSERT INTO trust_loyalty_balances (tag, balance) VALUES ($1, 0) ON CONFLICT (tag) DO NOTHING")
                    .bind(tag.to_vec())
                    .execute(&mut *tx)
                    .await?;
                let balance = self.balance_in(&mut tx, tag).await?.unwrap_or(0);
                self.set_balance_in(&mut tx, tag, balance.saturating_add(points)).await?;
                self.add_day(&mut tx, tag, org, day, points, 0).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn loyalty_reserve(&self, t: &NewRedemptionToken, now: Timestamp) -> Result<bool> {
                let mut tx = $begin(self.pool()).await?;
                self.refund_expired(&mut tx, &t.tag, now).await?;
                let balance = self.balance_in(&mut tx, &t.tag).await?;
                let taken = matches!(balance, Some(b) if t.points > 0 && b >= t.points);
                if let (true, Some(b)) = (taken, balance) {
                    self.set_balance_in(&mut tx, &t.tag, b - t.points).await?;
                }
                if !taken {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // Under the tag scoped to the co-op, the member's own tag
                // sealed to the token (issue 13): a member's pending tokens
                // at two co-ops share no tag, nor one with their balance.
                sqlx::query(
                    "INSERT INTO trust_loyalty_tokens (token_hash, tag, org_id, points, expires_at, tag_ct, tag_scoped) \
                     VALUES ($1, $2, $3, $4, $5, $6, 1)",
                )
                    .bind(t.token_hash.to_vec())
                    .bind(self.org_tag(MetaTable::TrustLoyaltyTokens, &t.tag, t.org.as_bytes())?)
                    .bind(t.org)
                    .bind(t.points)
                    .bind(t.expires_at.unix_millis())
                    .bind(self.seal_token_tag(&t.token_hash, &t.tag)?)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn loyalty_redeem(
                &self,
                token_hash: &[u8; 32],
                org: OrgId,
                points: i64,
                now: Timestamp,
                day: i64,
            ) -> Result<Option<[u8; 32]>> {
                let mut tx = $begin(self.pool()).await?;
                let row = sqlx::query(
                    "DELETE FROM trust_loyalty_tokens WHERE token_hash = $1 AND org_id = $2 AND points = $3 AND expires_at > $4 RETURNING tag_ct",
                )
                .bind(token_hash.to_vec())
                .bind(org)
                .bind(points)
                .bind(now.unix_millis())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let sealed: Option<Vec<u8>> = row.try_get("tag_ct")?;
                let tag = self.open_token_tag(token_hash, &sealed.unwrap_or_default())?;
                self.add_day(&mut tx, &tag, org, day, 0, points).await?;
                tx.commit().await?;
                Ok(Some(tag))
            }

            async fn loyalty_account(&self, tag: &[u8; 32], now: Timestamp) -> Result<LoyaltyAccount> {
                let mut tx = $begin(self.pool()).await?;
                self.refund_expired(&mut tx, tag, now).await?;
                tx.commit().await?;
                let balance = match sqlx::query("SELECT balance, balance_ct FROM trust_loyalty_balances WHERE tag = $1")
                    .bind(tag.to_vec())
                    .fetch_optional(self.pool())
                    .await?
                {
                    Some(r) => self.open_balance(tag, r.try_get("balance_ct")?, r.try_get("balance")?)?,
                    None => 0,
                };
                let mut reserved = 0i64;
                let orgs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT DISTINCT org_id FROM trust_loyalty_tokens")
                    .fetch_all(self.pool())
                    .await?;
                for org in &orgs {
                    for r in sqlx::query("SELECT points FROM trust_loyalty_tokens WHERE tag = $1 AND org_id = $2")
                        .bind(self.org_tag(MetaTable::TrustLoyaltyTokens, tag, org)?)
                        .bind(org.clone())
                        .fetch_all(self.pool())
                        .await?
                    {
                        reserved = reserved.saturating_add(r.try_get::<i64, _>("points")?);
                    }
                }
                // One lookup per co-op with days kept, by the scoped tag.
                let orgs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT DISTINCT org_id FROM trust_loyalty_days")
                    .fetch_all(self.pool())
                    .await?;
                let mut rows = Vec::new();
                for org in &orgs {
                    rows.extend(
                        sqlx::query("SELECT org_id, day, earned, redeemed FROM trust_loyalty_days WHERE tag = $1 AND org_id = $2")
                            .bind(self.org_tag(MetaTable::TrustLoyaltyDays, tag, org)?)
                            .bind(org.clone())
                            .fetch_all(self.pool())
                            .await?,
                    );
                }
                let mut days = rows
                    .iter()
                    .map(|r| {
                        Ok(LoyaltyDay {
                            org: r.try_get::<OrgId, _>("org_id")?,
                            day: r.try_get("day")?,
                            earned: r.try_get("earned")?,
                            redeemed: r.try_get("redeemed")?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                days.sort_by(|a, b| (a.day, a.org.as_bytes()).cmp(&(b.day, b.org.as_bytes())));
                Ok(LoyaltyAccount {
                    balance,
                    reserved,
                    days,
                })
            }
        }

        #[async_trait]
        impl MemberAuditStore for SqlStore<$pool> {
            async fn audit_entries_of(&self, subjects: &[MemberId], skip: u64, limit: u64) -> Result<Vec<AuditEntry>> {
                // A member's entries are under their audit subject's tags,
                // one per entry (issue 13 item 4), and, those an older node
                // wrote, their subject or id: enumerated, then the page read.
                let subjects = &crate::MetadataStore::audit_subjects(self, subjects).await?;
                let seqs: Vec<u64> = self
                    .tagged_seqs(subjects)
                    .await?
                    .into_iter()
                    .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    .collect();
                let mut out = Vec::with_capacity(seqs.len());
                for chunk in seqs.chunks(crate::audit_tags::IN_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<<$pool as crate::sql::PoolDb>::Db>::new(
                        "SELECT seq, at, event, prev_hash, hash FROM audit_log WHERE seq IN (",
                    );
                    let mut sep = q.separated(", ");
                    for s in chunk {
                        sep.push_bind(i64_of(*s));
                    }
                    q.push(") ORDER BY seq");
                    for row in q.build().fetch_all(self.pool()).await? {
                        let seq = u64::try_from(row.try_get::<i64, _>("seq")?)
                            .map_err(|_| StorageError::Corrupt("audit_log.seq".into()))?;
                        let (event_json, stored) = self.stored_event(seq, row.try_get("event")?);
                        out.push(self.opened_objects(AuditEntry {
                            seq,
                            at: Timestamp::from_unix_millis(row.try_get("at")?),
                            event_json,
                            stored,
                            prev_hash: tag32(row.try_get("prev_hash")?, "audit_log.prev_hash")?,
                            hash: tag32(row.try_get("hash")?, "audit_log.hash")?,
                        }));
                    }
                }
                Ok(out)
            }

            async fn audit_covering_head(&self, seq: u64) -> Result<Option<Checkpoint>> {
                sqlx::query("SELECT seq, hash, at, head_sig FROM audit_log WHERE seq >= $1 AND head_sig IS NOT NULL ORDER BY seq LIMIT 1")
                    .bind(i64_of(seq))
                    .fetch_optional(self.pool())
                    .await?
                    .map(|row| {
                        Ok(Checkpoint {
                            seq: u64::try_from(row.try_get::<i64, _>("seq")?)
                                .map_err(|_| StorageError::Corrupt("audit_log.seq".into()))?,
                            head: tag32(row.try_get("hash")?, "audit_log.hash")?,
                            at: Timestamp::from_unix_millis(row.try_get("at")?),
                            signature: row.try_get("head_sig")?,
                        })
                    })
                    .transpose()
            }
        }
    };
}

impl_loyalty_store!(SqlitePool, begin_sqlite);
impl_loyalty_store!(PgPool, begin_postgres);
