//! One tag per audit entry (issue 13 item 4, issue 12).
//!
//! The log's `subject` column holds, for the `k`-th entry (k = 0, 1, …)
//! under a name, [`MetadataKeys::audit_entry_tag`]`(name, k)`: a keyed hash
//! of both. The name is the member's audit subject (itself a keyed hash of
//! their id and `members.audit_salt`, which erasure deletes), or a trust
//! pseudonym with no account (a loyalty subject). No two entries share a
//! value, so grouping the column gathers nothing: with the file alone, the
//! log is its order and its count.
//!
//! * **Writing**: the writer keeps the next `k` per name in memory; a name it
//!   has not seen (a start, a full cache) is probed in the log, an
//!   exponential then a binary search over `k` (O(log n) point queries on
//!   the subject index), relying on what every writer keeps true: a name's
//!   tags are `0..n`, none missing. Each batch checks, in one query, that no
//!   cached next tag was written meanwhile (another node on the same
//!   PostgreSQL) and probes on from there if one was. The append's
//!   transaction is serialised with every other one by the log's sequence
//!   numbers, so two nodes never write one tag twice.
//! * **Reading**: a member's entries are found by enumerating their tags in
//!   growing batches (`subject IN (…)`) until a batch finds none; rows an
//!   older node wrote under the name itself are read as well.
//! * **An older node's rows** are re-keyed once, at the first start
//!   (`REKEYED_AUDIT_TAGS` in `node_meta`, taken in the same transaction).

use crate::sql::SqlStore;
use crate::*;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// `node_meta` marker: the rows an older node wrote under one subject per
/// member re-keyed to one tag per entry (migration 0040 sets it on a log
/// with nothing to re-key).
pub const REKEYED_AUDIT_TAGS: &str = "rekeyed_audit_entry_tags";

/// The name the tags of entries about no member are made under (with the
/// entry's sequence number for `k`): no member's audit subject is this.
pub(crate) const UNNAMED: MemberId = MemberId::nil();

/// Names whose next tag is kept in memory, at most this many (then the
/// cache starts over and names are probed again).
const NEXT_TAG_CACHE: usize = 100_000;
/// Tags per name in the first query of an enumeration; each next query
/// asks for twice as many, up to [`ENUMERATE_MAX`].
const ENUMERATE_FIRST: u64 = 32;
const ENUMERATE_MAX: u64 = 1024;
/// Values bound in one `IN (…)` list at most.
pub(crate) const IN_CHUNK: usize = 4096;

impl<P> SqlStore<P> {
    pub(crate) fn entry_tag(&self, name: MemberId, k: u64) -> Result<MemberId> {
        Ok(self.keys()?.audit_entry_tag(name, k))
    }
    fn cached_next_tag(&self, name: MemberId) -> Option<u64> {
        self.meta
            .next_tags
            .lock()
            .map_or(None, |c| c.get(&name).copied())
    }
    /// Keeps the next `k` of each name, after the batch that used the ones
    /// before it committed (a rolled-back batch leaves the cache as it was:
    /// no tag is ever skipped).
    pub(crate) fn remember_next_tags(&self, next: &HashMap<MemberId, u64>) {
        if let Ok(mut c) = self.meta.next_tags.lock() {
            if c.len().saturating_add(next.len()) > NEXT_TAG_CACHE {
                c.clear();
            }
            c.extend(next.iter().map(|(n, k)| (*n, *k)));
        }
    }
    pub(crate) fn forget_next_tag(&self, name: MemberId) {
        if let Ok(mut c) = self.meta.next_tags.lock() {
            c.remove(&name);
        }
    }
}

fn subject_of(v: &[u8]) -> Result<MemberId> {
    MemberId::from_slice(v).map_err(|_| StorageError::Corrupt("audit_log.subject".into()))
}

macro_rules! impl_audit_tags {
    ($pool:ty) => {
        impl SqlStore<$pool> {
            async fn tag_exists(
                &self,
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                name: MemberId,
                k: u64,
            ) -> Result<bool> {
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM audit_log WHERE subject = $1 LIMIT 1")
                        .bind(self.entry_tag(name, k)?)
                        .fetch_optional(&mut *conn)
                        .await?;
                Ok(found.is_some())
            }

            /// The first `k >= from` whose tag is not in the log, every tag
            /// below it being there: doubling steps from `from`, then a
            /// binary search between the last tag found and the first not.
            async fn probe_next_tag(
                &self,
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                name: MemberId,
                from: u64,
            ) -> Result<u64> {
                if !self.tag_exists(conn, name, from).await? {
                    return Ok(from);
                }
                let (mut lo, mut step) = (from, 1u64);
                let mut hi = loop {
                    let k = from.saturating_add(step);
                    if k == lo || !self.tag_exists(conn, name, k).await? {
                        break k;
                    }
                    lo = k;
                    step = step.saturating_mul(2);
                };
                while hi.saturating_sub(lo) > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if self.tag_exists(conn, name, mid).await? {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                Ok(hi)
            }

            /// The next `k` of each of `names`, inside the append's
            /// transaction: the cached one unless another writer used it
            /// since (one query for all of them), else probed.
            pub(crate) async fn next_tags_in(
                &self,
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                names: &[MemberId],
            ) -> Result<HashMap<MemberId, u64>> {
                let mut next = HashMap::with_capacity(names.len());
                let mut check = HashMap::new();
                for name in names {
                    if next.contains_key(name) {
                        continue;
                    }
                    let k = match self.cached_next_tag(*name) {
                        Some(k) => {
                            check.insert(self.entry_tag(*name, k)?, (*name, k));
                            k
                        }
                        None => self.probe_next_tag(conn, *name, 0).await?,
                    };
                    next.insert(*name, k);
                }
                let tags: Vec<MemberId> = check.keys().copied().collect();
                for chunk in tags.chunks(IN_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<<$pool as crate::sql::PoolDb>::Db>::new(
                        "SELECT subject FROM audit_log WHERE subject IN (",
                    );
                    let mut sep = q.separated(", ");
                    for t in chunk {
                        sep.push_bind(*t);
                    }
                    q.push(")");
                    let taken: Vec<Vec<u8>> = q.build_query_scalar().fetch_all(&mut *conn).await?;
                    for t in taken {
                        if let Some((name, k)) = check.get(&subject_of(&t)?) {
                            let k = self.probe_next_tag(conn, *name, *k).await?;
                            next.insert(*name, k);
                        }
                    }
                }
                Ok(next)
            }

            /// The sequence numbers of every entry under `names`: their
            /// tags k = 0, 1, … in growing batches, a name done at the
            /// first batch that finds none of its tags; and the rows an
            /// older node wrote under a name itself. Sorted, each once.
            pub(crate) async fn tagged_seqs(&self, names: &[MemberId]) -> Result<Vec<u64>> {
                let mut conn = self.pool().acquire().await?;
                let mut names: Vec<MemberId> = names.to_vec();
                names.sort_unstable();
                names.dedup();
                let mut out = self.seqs_under(&mut conn, &names).await?;
                if self.keys().is_ok() {
                    let (mut from, mut batch) = (0u64, ENUMERATE_FIRST);
                    while !names.is_empty() {
                        let mut owner = HashMap::with_capacity(names.len() * batch as usize);
                        for name in &names {
                            for k in from..from.saturating_add(batch) {
                                owner.insert(self.entry_tag(*name, k)?, *name);
                            }
                        }
                        let tags: Vec<MemberId> = owner.keys().copied().collect();
                        let mut hit = HashSet::new();
                        for (subject, seq) in self.subjects_and_seqs(&mut conn, &tags).await? {
                            if let Some(name) = owner.get(&subject) {
                                hit.insert(*name);
                                out.push(seq);
                            }
                        }
                        names.retain(|n| hit.contains(n));
                        from = from.saturating_add(batch);
                        batch = batch.saturating_mul(2).min(ENUMERATE_MAX);
                    }
                }
                out.sort_unstable();
                out.dedup();
                Ok(out)
            }

            async fn seqs_under(
                &self,
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                subjects: &[MemberId],
            ) -> Result<Vec<u64>> {
                Ok(self
                    .subjects_and_seqs(conn, subjects)
                    .await?
                    .into_iter()
                    .map(|(_, seq)| seq)
                    .collect())
            }

            /// `(subject, seq)` of the rows under any of `subjects`.
            async fn subjects_and_seqs(
                &self,
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                subjects: &[MemberId],
            ) -> Result<Vec<(MemberId, u64)>> {
                let mut out = Vec::new();
                for chunk in subjects.chunks(IN_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<<$pool as crate::sql::PoolDb>::Db>::new(
                        "SELECT subject, seq FROM audit_log WHERE subject IN (",
                    );
                    let mut sep = q.separated(", ");
                    for s in chunk {
                        sep.push_bind(*s);
                    }
                    q.push(")");
                    for row in q.build().fetch_all(&mut *conn).await? {
                        let subject = subject_of(&row.try_get::<Vec<u8>, _>("subject")?)?;
                        let seq = u64::try_from(row.try_get::<i64, _>("seq")?)
                            .map_err(|_| StorageError::Corrupt("audit_log.seq".into()))?;
                        out.push((subject, seq));
                    }
                }
                Ok(out)
            }

            /// Rows an older node wrote under one subject per member (its
            /// audit subject, or older still its id) get one tag per entry,
            /// numbered per member in log order, once: the marker is taken
            /// in the same transaction, so two nodes starting together do
            /// not both re-key, and a crash leaves neither half done.
            pub(crate) async fn rekey_audit_tags(&self) -> Result<u64> {
                if NodeMetaStore::meta(self, REKEYED_AUDIT_TAGS).await?.is_some() {
                    return Ok(0);
                }
                let mut tx = self.pool().begin().await?;
                let claimed = sqlx::query(
                    "INSERT INTO node_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(REKEYED_AUDIT_TAGS)
                .bind(b"1".to_vec())
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() == 0 {
                    return Ok(0);
                }
                let rows = sqlx::query(
                    "SELECT seq, subject FROM audit_log WHERE subject IS NOT NULL ORDER BY seq",
                )
                .fetch_all(&mut *tx)
                .await?;
                let mut name_of: HashMap<Vec<u8>, MemberId> = HashMap::new();
                let mut next: HashMap<MemberId, u64> = HashMap::new();
                let mut changed = 0u64;
                for row in rows {
                    let seq: i64 = row.try_get("seq")?;
                    let stored: Vec<u8> = row.try_get("subject")?;
                    let name = match name_of.get(&stored) {
                        Some(n) => *n,
                        None => {
                            // A member id with an account (the oldest rows)
                            // goes under the member's audit subject; any
                            // other value is a name itself.
                            let v = subject_of(&stored)?;
                            let n = self.audit_subject_in(&mut *tx, v, false).await?.unwrap_or(v);
                            name_of.insert(stored, n);
                            n
                        }
                    };
                    let k = next.entry(name).or_insert(0);
                    let r = sqlx::query("UPDATE audit_log SET subject = $1 WHERE seq = $2")
                        .bind(self.entry_tag(name, *k)?)
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                    *k += 1;
                    changed += r.rows_affected();
                }
                tx.commit().await?;
                self.remember_next_tags(&next);
                Ok(changed)
            }
        }
    };
}

impl_audit_tags!(SqlitePool);
impl_audit_tags!(PgPool);
