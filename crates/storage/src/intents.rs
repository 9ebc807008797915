//! Intents on both databases: members' requests for proposal (no member id),
//! organisations' answers and subscriptions, members' reports, and released
//! counts. The same SQL runs on SQLite and PostgreSQL.

use crate::sql::{begin_postgres, begin_sqlite, PoolDb, SqlStore};
use crate::*;
use me2b_domain::meta::MetaTable;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_owned())
}

fn id16(v: Vec<u8>, what: &str) -> Result<[u8; 16]> {
    v.try_into().map_err(|_| corrupt(what))
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn count_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt("intents count"))
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The condition under which organisations see an intent as open at `$1`:
/// released in a batch, not past its deadline, not visibly closed.
const VISIBLY_OPEN: &str =
    "visible_hour IS NOT NULL AND deadline > $1 AND (closed = 0 OR (closed_visible_at IS NOT NULL AND closed_visible_at > $1))";

/// Topics from which a feed query reads in the feed's order (see
/// `open_intents`).
const BROAD_SUBSCRIPTION: usize = 16;

macro_rules! impl_intent_store {
    ($pool:ty, $begin:ident) => {
        impl SqlStore<$pool> {
            /// Erases `member`'s intents (found through `intent_owners`):
            /// with `close_at` (the erasure's hold), those not yet released
            /// go at once and the published ones close, seen closed from
            /// `close_at` as any closed intent; without (the release), every
            /// one goes with its answers. The links go with the member's
            /// other rows (member_rows.rs).
            pub(crate) async fn erase_member_intents(
                &self,
                conn: &mut <<$pool as PoolDb>::Db as sqlx::Database>::Connection,
                member: MemberId,
                close_at: Option<Timestamp>,
            ) -> Result<()> {
                let loc = self.loc(MetaTable::IntentOwners, member)?;
                let sealed: Vec<Vec<u8>> =
                    sqlx::query_scalar("SELECT intent_ct FROM intent_owners WHERE member_loc = $1")
                        .bind(loc.clone())
                        .fetch_all(&mut *conn)
                        .await?;
                for ct in sealed {
                    let id = self
                        .keys()?
                        .open(MetaTable::IntentOwners, &loc, &ct)
                        .ok_or_else(|| corrupt("intent_owners.intent_ct"))?;
                    match close_at {
                        Some(at) => {
                            sqlx::query("DELETE FROM intents WHERE intent_id = $1 AND visible_hour IS NULL")
                                .bind(id.clone())
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("UPDATE intents SET closed = 1, closed_visible_at = $2 WHERE intent_id = $1 AND closed = 0")
                                .bind(id)
                                .bind(at.unix_millis())
                                .execute(&mut *conn)
                                .await?;
                        }
                        None => {
                            for sql in [
                                "DELETE FROM intent_answers WHERE intent_id = $1",
                                "DELETE FROM intents WHERE intent_id = $1",
                            ] {
                                sqlx::query(sql).bind(id.clone()).execute(&mut *conn).await?;
                            }
                        }
                    }
                }
                Ok(())
            }

            /// The one insert of an intent's row, on `conn` (a pooled
            /// connection or the transaction that also links its owner).
            async fn write_intent(
                conn: &mut <<$pool as PoolDb>::Db as sqlx::Database>::Connection,
                r: &IntentRow,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO intents (intent_id, owner_check, topic, region, body, published_hour, deadline, closed, closed_visible_at, visible_hour, audience_key) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(r.id.to_vec())
                .bind(r.owner_check.to_vec())
                .bind(r.topic.clone())
                .bind(r.region.clone())
                .bind(r.body.clone())
                .bind(r.published_hour.unix_millis())
                .bind(r.deadline.unix_millis())
                .bind(i64::from(r.closed))
                .bind(r.closed_visible_at.map(Timestamp::unix_millis))
                .bind(r.visible_hour.map(Timestamp::unix_millis))
                .bind(r.audience_key.clone())
                .execute(conn)
                .await?;
                Ok(())
            }

            fn intent_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<IntentRow> {
                Ok(IntentRow {
                    id: id16(row.try_get("intent_id")?, "intents.intent_id")?,
                    owner_check: row
                        .try_get::<Vec<u8>, _>("owner_check")?
                        .try_into()
                        .map_err(|_| corrupt("intents.owner_check"))?,
                    topic: row.try_get("topic")?,
                    region: row.try_get("region")?,
                    body: row.try_get("body")?,
                    published_hour: Timestamp::from_unix_millis(row.try_get("published_hour")?),
                    visible_hour: row
                        .try_get::<Option<i64>, _>("visible_hour")?
                        .map(Timestamp::from_unix_millis),
                    deadline: Timestamp::from_unix_millis(row.try_get("deadline")?),
                    closed: row.try_get::<i64, _>("closed")? != 0,
                    closed_visible_at: row
                        .try_get::<Option<i64>, _>("closed_visible_at")?
                        .map(Timestamp::from_unix_millis),
                    audience_key: row.try_get("audience_key")?,
                })
            }

            fn answer_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<IntentAnswerRow> {
                Ok(IntentAnswerRow {
                    id: id16(row.try_get("answer_id")?, "intent_answers.answer_id")?,
                    intent: id16(row.try_get("intent_id")?, "intent_answers.intent_id")?,
                    org: row.try_get::<OrgId, _>("org_id")?,
                    created_hour: Timestamp::from_unix_millis(row.try_get("created_hour")?),
                    valid_until: Timestamp::from_unix_millis(row.try_get("valid_until")?),
                    keep_until: Timestamp::from_unix_millis(row.try_get("keep_until")?),
                    body: row.try_get("body")?,
                    accepted: row.try_get::<i64, _>("accepted")? != 0,
                    delivery: row.try_get("delivery")?,
                })
            }

            fn subscription_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<IntentSubscriptionRow> {
                Ok(IntentSubscriptionRow {
                    org: row.try_get::<OrgId, _>("org_id")?,
                    topics: split(&row.try_get::<String, _>("topics")?),
                    regions: split(&row.try_get::<String, _>("regions")?),
                    version: row.try_get("version")?,
                    updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
                })
            }

            fn report_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<IntentReportRow> {
                Ok(IntentReportRow {
                    id: id16(row.try_get("report_id")?, "intent_reports.report_id")?,
                    answer: id16(row.try_get("answer_id")?, "intent_reports.answer_id")?,
                    org: row.try_get::<OrgId, _>("org_id")?,
                    reason: row.try_get("reason")?,
                    body: row.try_get("body")?,
                    at_hour: Timestamp::from_unix_millis(row.try_get("at_hour")?),
                })
            }
        }

        #[async_trait]
        impl IntentStore for SqlStore<$pool> {
            async fn insert_intent(&self, r: &IntentRow) -> Result<()> {
                let mut conn = self.pool().acquire().await?;
                Self::write_intent(&mut conn, r).await
            }

            async fn insert_member_intent(&self, r: &IntentRow, member: MemberId) -> Result<()> {
                let loc = self.loc(MetaTable::IntentOwners, member)?;
                let ct = self.keys()?.seal(MetaTable::IntentOwners, &loc, &r.id);
                let mut tx = $begin(self.pool()).await?;
                sqlx::query("INSERT INTO intent_owners (member_loc, intent_ct) VALUES ($1, $2)")
                    .bind(loc)
                    .bind(ct)
                    .execute(&mut *tx)
                    .await?;
                Self::write_intent(&mut tx, r).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn intent(&self, id: &[u8; 16], now: Timestamp) -> Result<Option<IntentRow>> {
                sqlx::query("SELECT * FROM intents WHERE intent_id = $1 AND deadline > $2")
                    .bind(id.to_vec())
                    .bind(now.unix_millis())
                    .fetch_optional(self.pool())
                    .await?
                    .as_ref()
                    .map(Self::intent_row)
                    .transpose()
            }

            async fn open_intents(
                &self,
                now: Timestamp,
                topics: &[String],
                regions: &[String],
                audiences: &[String],
                offset: u64,
                limit: u64,
            ) -> Result<Vec<IntentRow>> {
                if topics.is_empty() {
                    return Ok(Vec::new());
                }
                // Many topics (a top-level one expands to dozens) match many
                // intents: read intents_by_hour in the feed's order and stop
                // at the page, instead of sorting every match. `topic || ''`
                // keeps SQLite's planner off intents_by_topic, which is
                // better for a few topics (measured, BENCHMARKS.md).
                let topic = if topics.len() > BROAD_SUBSCRIPTION {
                    "(topic || '')"
                } else {
                    "topic"
                };
                let mut sql = format!(
                    "SELECT * FROM intents WHERE {VISIBLY_OPEN} AND {topic} IN ({})",
                    placeholders(2, topics.len())
                );
                let next = 2 + topics.len();
                if !regions.is_empty() {
                    sql.push_str(&format!(" AND region IN ({})", placeholders(next, regions.len())));
                }
                let next = next + regions.len();
                sql.push_str(" AND (audience_key IS NULL");
                if !audiences.is_empty() {
                    sql.push_str(&format!(" OR audience_key IN ({})", placeholders(next, audiences.len())));
                }
                sql.push(')');
                let next = next + audiences.len();
                sql.push_str(&format!(
                    " ORDER BY visible_hour DESC, intent_id LIMIT ${} OFFSET ${}",
                    next,
                    next + 1
                ));
                let mut q = sqlx::query(&sql).bind(now.unix_millis());
                for t in topics {
                    q = q.bind(t.clone());
                }
                for r in regions {
                    q = q.bind(r.clone());
                }
                for a in audiences {
                    q = q.bind(a.clone());
                }
                let rows = q
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(Self::intent_row).collect()
            }

            async fn release_intent_batch(
                &self,
                boundary: Timestamp,
                min_batch: u64,
                oldest_by: Timestamp,
            ) -> Result<u64> {
                let mut tx = $begin(self.pool()).await?;
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n, MIN(published_hour) AS oldest FROM intents \
                     WHERE visible_hour IS NULL AND published_hour < $1 AND closed = 0",
                )
                .bind(boundary.unix_millis())
                .fetch_one(&mut *tx)
                .await?;
                let n = count_u64(row.try_get("n")?)?;
                let oldest: Option<i64> = row.try_get("oldest")?;
                let waited = oldest.is_some_and(|t| t <= oldest_by.unix_millis());
                if n == 0 || (n < min_batch && !waited) {
                    tx.rollback().await?;
                    return Ok(0);
                }
                let released = sqlx::query(
                    "UPDATE intents SET visible_hour = $1, deadline = deadline + ($1 - published_hour) \
                     WHERE visible_hour IS NULL AND published_hour < $1",
                )
                .bind(boundary.unix_millis())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(released)
            }

            async fn intent_counts_published(
                &self,
                from: Timestamp,
                to: Timestamp,
            ) -> Result<Vec<(String, u64)>> {
                let rows = sqlx::query(
                    "SELECT topic, COUNT(*) AS n FROM intents WHERE published_hour >= $1 AND published_hour < $2 GROUP BY topic ORDER BY topic",
                )
                .bind(from.unix_millis())
                .bind(to.unix_millis())
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("topic")?, count_u64(r.try_get("n")?)?)))
                    .collect()
            }

            async fn bump_intent_quota(&self, tag: &[u8; 32], week: i64, max: u64) -> Result<bool> {
                let max = i64::try_from(max).unwrap_or(i64::MAX);
                if max < 1 {
                    return Ok(false);
                }
                let n: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO intent_quota (tag, week, n) VALUES ($1, $2, 1) \
                     ON CONFLICT (tag) DO UPDATE SET n = intent_quota.n + 1 WHERE intent_quota.n < $3 \
                     RETURNING n",
                )
                .bind(tag.to_vec())
                .bind(week)
                .bind(max)
                .fetch_optional(self.pool())
                .await?;
                Ok(n.is_some())
            }

            async fn intent_quota_rows(&self, tags: &[[u8; 32]]) -> Result<u64> {
                let mut n = 0;
                for tag in tags {
                    let c: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM intent_quota WHERE tag = $1")
                        .bind(tag.to_vec())
                        .fetch_one(self.pool())
                        .await?;
                    n += count_u64(c)?;
                }
                Ok(n)
            }

            async fn close_intent(
                &self,
                id: &[u8; 16],
                visible_at: Timestamp,
                accept: Option<(&[u8; 16], &[u8], Timestamp)>,
            ) -> Result<bool> {
                let mut tx = $begin(self.pool()).await?;
                let closed = sqlx::query(
                    "UPDATE intents SET closed = 1, closed_visible_at = $2 WHERE intent_id = $1 AND closed = 0",
                )
                .bind(id.to_vec())
                .bind(visible_at.unix_millis())
                .execute(&mut *tx)
                .await?;
                if closed.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if let Some((answer, delivery, keep_until)) = accept {
                    let a = sqlx::query(
                        "UPDATE intent_answers SET accepted = 1, delivery = $3, keep_until = $4 \
                         WHERE answer_id = $1 AND intent_id = $2 AND accepted = 0",
                    )
                    .bind(answer.to_vec())
                    .bind(id.to_vec())
                    .bind(delivery.to_vec())
                    .bind(keep_until.unix_millis())
                    .execute(&mut *tx)
                    .await?;
                    if a.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn insert_intent_answer(&self, a: &IntentAnswerRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO intent_answers (answer_id, intent_id, org_id, created_hour, valid_until, keep_until, body, accepted, delivery) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(a.id.to_vec())
                .bind(a.intent.to_vec())
                .bind(a.org)
                .bind(a.created_hour.unix_millis())
                .bind(a.valid_until.unix_millis())
                .bind(a.keep_until.unix_millis())
                .bind(a.body.clone())
                .bind(i64::from(a.accepted))
                .bind(a.delivery.clone())
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn intent_answer(&self, id: &[u8; 16], now: Timestamp) -> Result<Option<IntentAnswerRow>> {
                sqlx::query("SELECT * FROM intent_answers WHERE answer_id = $1 AND keep_until > $2")
                    .bind(id.to_vec())
                    .bind(now.unix_millis())
                    .fetch_optional(self.pool())
                    .await?
                    .as_ref()
                    .map(Self::answer_row)
                    .transpose()
            }

            async fn intent_answers(&self, intent: &[u8; 16], now: Timestamp) -> Result<Vec<IntentAnswerRow>> {
                let rows = sqlx::query(
                    "SELECT * FROM intent_answers WHERE intent_id = $1 AND keep_until > $2 ORDER BY created_hour, answer_id",
                )
                .bind(intent.to_vec())
                .bind(now.unix_millis())
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::answer_row).collect()
            }

            async fn intent_answers_of_org(&self, org: OrgId, now: Timestamp) -> Result<Vec<IntentAnswerRow>> {
                let rows = sqlx::query(
                    "SELECT * FROM intent_answers WHERE org_id = $1 AND keep_until > $2 ORDER BY created_hour DESC, answer_id",
                )
                .bind(org)
                .bind(now.unix_millis())
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::answer_row).collect()
            }

            async fn count_intent_answers_since(&self, org: OrgId, since: Timestamp) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM intent_answers WHERE org_id = $1 AND created_hour >= $2",
                )
                .bind(org)
                .bind(since.unix_millis())
                .fetch_one(self.pool())
                .await?;
                count_u64(n)
            }

            async fn put_intent_subscription(
                &self,
                org: OrgId,
                topics: &[String],
                regions: &[String],
                at: Timestamp,
            ) -> Result<IntentSubscriptionRow> {
                let row = sqlx::query(
                    "INSERT INTO intent_subscriptions (org_id, topics, regions, version, updated_at) VALUES ($1, $2, $3, 1, $4) \
                     ON CONFLICT (org_id) DO UPDATE SET topics = excluded.topics, regions = excluded.regions, \
                     version = intent_subscriptions.version + 1, updated_at = excluded.updated_at \
                     RETURNING *",
                )
                .bind(org)
                .bind(topics.join(","))
                .bind(regions.join(","))
                .bind(at.unix_millis())
                .fetch_one(self.pool())
                .await?;
                Self::subscription_row(&row)
            }

            async fn intent_subscription(&self, org: OrgId) -> Result<Option<IntentSubscriptionRow>> {
                sqlx::query("SELECT * FROM intent_subscriptions WHERE org_id = $1")
                    .bind(org)
                    .fetch_optional(self.pool())
                    .await?
                    .as_ref()
                    .map(Self::subscription_row)
                    .transpose()
            }

            async fn intent_subscriptions(&self) -> Result<Vec<IntentSubscriptionRow>> {
                let rows = sqlx::query("SELECT * FROM intent_subscriptions ORDER BY org_id")
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(Self::subscription_row).collect()
            }

            async fn intent_subscriptions_stamp(&self) -> Result<(u64, i64)> {
                // PostgreSQL sums BIGINT into NUMERIC: cast back.
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(version), 0) AS BIGINT) AS v FROM intent_subscriptions",
                )
                .fetch_one(self.pool())
                .await?;
                Ok((count_u64(row.try_get("n")?)?, row.try_get("v")?))
            }

            async fn insert_intent_report(&self, r: &IntentReportRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO intent_reports (report_id, answer_id, org_id, reason, body, at_hour) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(r.id.to_vec())
                .bind(r.answer.to_vec())
                .bind(r.org)
                .bind(r.reason.clone())
                .bind(r.body.clone())
                .bind(r.at_hour.unix_millis())
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn intent_reports(&self) -> Result<Vec<IntentReportRow>> {
                let rows = sqlx::query("SELECT * FROM intent_reports ORDER BY at_hour DESC, report_id")
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(Self::report_row).collect()
            }

            async fn put_intent_release(&self, window: i64, body: &[u8]) -> Result<Vec<u8>> {
                sqlx::query(
                    "INSERT INTO intent_releases (release_window, body) VALUES ($1, $2) ON CONFLICT (release_window) DO NOTHING",
                )
                .bind(window)
                .bind(body.to_vec())
                .execute(self.pool())
                .await?;
                self.intent_release(window)
                    .await?
                    .ok_or_else(|| corrupt("intent_releases"))
            }

            async fn intent_release(&self, window: i64) -> Result<Option<Vec<u8>>> {
                Ok(sqlx::query_scalar("SELECT body FROM intent_releases WHERE release_window = $1")
                    .bind(window)
                    .fetch_optional(self.pool())
                    .await?)
            }

            async fn purge_intents(
                &self,
                now: Timestamp,
                releases_before: i64,
                reports_before: Timestamp,
            ) -> Result<u64> {
                let mut n = 0;
                for sql in [
                    "DELETE FROM intent_answers WHERE keep_until <= $1",
                    // A pending intent is released (its deadline moved on)
                    // before it is deleted, unless it was withdrawn.
                    "DELETE FROM intents WHERE deadline <= $1 AND (visible_hour IS NOT NULL OR closed = 1)",
                ] {
                    n += sqlx::query(sql)
                        .bind(now.unix_millis())
                        .execute(self.pool())
                        .await?
                        .rows_affected();
                }
                for sql in [
                    "DELETE FROM intent_releases WHERE release_window < $1",
                    "DELETE FROM intent_quota WHERE week < $1",
                ] {
                    sqlx::query(sql)
                        .bind(releases_before)
                        .execute(self.pool())
                        .await?;
                }
                sqlx::query("DELETE FROM intent_reports WHERE at_hour < $1")
                    .bind(reports_before.unix_millis())
                    .execute(self.pool())
                    .await?;
                Ok(n)
            }
        }
    };
}

impl_intent_store!(SqlitePool, begin_sqlite);
impl_intent_store!(PgPool, begin_postgres);
