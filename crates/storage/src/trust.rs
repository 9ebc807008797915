//! The data trust's tables on both databases (issue 13 for what they keep
//! at rest): receipts and their items, per-member totals and bins per scope
//! (each co-op, and `*` for all co-ops), sharing consents, erasure.
//!
//! A `*` row of `trust_members` says only that a member is in the pool, and
//! `*` keeps no bins (adv8): a pooled total would be the sum of the member's
//! co-op rows, pooled values the union of theirs, and either links them.
//! The pooled sum and histogram are computed at query time from the co-op
//! rows, each holding the member's research tag sealed to it.

use crate::sql::{
    begin_postgres, begin_sqlite, corrupt, hash32, hour_ms, seq_u64, PoolDb, SqlStore,
};
use crate::*;
use me2b_domain::meta::MetaTable;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// A receipt's (scope, stored tag) pairs that keep bins: its co-op's only.
fn binned(scopes: &[(String, [u8; 32]); 2]) -> Vec<(&str, [u8; 32])> {
    scopes
        .iter()
        .filter(|(scope, _)| scope != "*")
        .map(|(s, t)| (s.as_str(), *t))
        .collect()
}

macro_rules! impl_trust_store {
    ($pool:ty, $begin:ident) => {
        #[async_trait]
        impl TrustStore for SqlStore<$pool> {
            async fn enrol_trust_member(&self, member: MemberId, origin_ct: &[u8], at: Timestamp) -> Result<Vec<u8>> {
                sqlx::query("INSERT INTO trust_enrolments (member_loc, origin_ct, created_at) VALUES ($1, $2, $3) ON CONFLICT (member_loc) DO NOTHING")
                    .bind(self.loc(MetaTable::TrustEnrolments, member)?)
                    .bind(origin_ct)
                    .bind(hour_ms(at))
                    .execute(self.pool())
                    .await?;
                self.trust_enrolment(member).await?.ok_or_else(|| corrupt("trust_enrolments"))
            }
            async fn trust_enrolment(&self, member: MemberId) -> Result<Option<Vec<u8>>> {
                let row = sqlx::query("SELECT origin_ct FROM trust_enrolments WHERE member_loc = $1")
                    .bind(self.loc(MetaTable::TrustEnrolments, member)?)
                    .fetch_optional(self.pool())
                    .await?;
                row.map(|r| r.try_get::<Vec<u8>, _>("origin_ct").map_err(StorageError::from)).transpose()
            }
            async fn insert_trust_receipts(&self, receipts: &[TrustReceiptRow], max_values: u32) -> Result<()> {
                type Db = <$pool as PoolDb>::Db;
                // A handful of statements per batch, not per receipt: multi-row
                // INSERTs, per-member totals summed in memory, and the bins' cap
                // decided in memory after one read of the members' present values.
                // The cap must be decided from what is committed, even with
                // another node on the same database. SQLite takes the write
                // lock up front (BEGIN IMMEDIATE). On PostgreSQL the
                // per-member upsert into trust_members below comes BEFORE the
                // bins are read: it row-locks each (scope, member) until
                // commit, so a concurrent batch for the same member waits
                // there and then reads the bins this one wrote. Keep that order
                // (the suite's concurrent-cap test checks it).
                // Each receipt under its tag scoped to the co-op, and its
                // time to the hour (issue 13): a thief holding co-ops' own
                // records finds no shared tag nor exact time to join on.
                let stored_tags = receipts
                    .iter()
                    .map(|r| self.org_tag(MetaTable::TrustReceipts, &r.tag, r.org.as_bytes()))
                    .collect::<Result<Vec<_>>>()?;
                let mut tx = $begin(self.pool()).await?;
                for (chunk, tags) in receipts.chunks(3_000).zip(stored_tags.chunks(3_000)) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(
                        "INSERT INTO trust_receipts (receipt_id, org_id, tag, source_ct, research_ct, day, area, amount_cents, created_at, tag_scoped) ",
                    );
                    q.push_values(chunk.iter().zip(tags), |mut b, (r, tag)| {
                        b.push_bind(r.id)
                            .push_bind(r.org)
                            .push_bind(tag.clone())
                            .push_bind(r.source_ct.clone())
                            .push_bind(r.research_ct.clone())
                            .push_bind(i64::from(r.day))
                            .push_bind(r.area.clone())
                            .push_bind(r.amount_cents)
                            .push_bind(hour_ms(r.created_at))
                            .push_bind(1i64);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                // Items keyed by (receipt, position): in the file in the
                // receipt's random id order, not the order written (adv8).
                let events: Vec<(&TrustReceiptRow, i64, i64, i64)> = receipts
                    .iter()
                    .flat_map(|r| r.items.iter().zip(0i64..).map(move |((c, a), i)| (r, i, *c, *a)))
                    .collect();
                for chunk in events.chunks(10_000) {
                    let mut q = sqlx::QueryBuilder::<Db>::new("INSERT INTO trust_events (receipt_id, item, category, amount_cents) ");
                    q.push_values(chunk, |mut b, (r, i, c, a)| {
                        b.push_bind(r.id).push_bind(*i).push_bind(*c).push_bind(*a);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                // Each receipt counts in its co-op's scope and in `*`, under
                // the tag scoped to each (issue 13): a member's rows in two
                // scopes share no tag. A co-op scope's new row keeps the
                // research tag sealed to it, for overlaps and the pooled sum.
                // A `*` row keeps no totals (adv8): they would be the sum of
                // the member's co-op rows, and name which rows are one
                // member's.
                let scoped = receipts
                    .iter()
                    .map(|r| {
                        let org = r.org.to_string();
                        let at_org = self.scope_tag(&r.tag, &org)?;
                        Ok([(org, at_org), ("*".to_owned(), self.scope_tag(&r.tag, "*")?)])
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut members: std::collections::BTreeMap<(&str, [u8; 32]), (i64, i64, Option<[u8; 32]>)> = Default::default();
                for (r, scopes) in receipts.iter().zip(&scoped) {
                    for (scope, stored) in scopes {
                        let e = members.entry((scope.as_str(), *stored)).or_default();
                        if scope != "*" {
                            e.0 = e.0.saturating_add(r.amount_cents);
                            e.1 += 1;
                            e.2 = Some(r.tag);
                        }
                    }
                }
                let members = members
                    .into_iter()
                    .map(|((scope, stored), (total, n, tag))| {
                        let ct = tag.map(|t| self.seal_scope_tag(scope, &stored, &t)).transpose()?;
                        Ok((scope, stored, total, n, ct))
                    })
                    .collect::<Result<Vec<_>>>()?;
                for chunk in members.chunks(5_000) {
                    let mut q = sqlx::QueryBuilder::<Db>::new("INSERT INTO trust_members (scope, tag, total_cents, receipts, tag_ct, tag_scoped) ");
                    q.push_values(chunk, |mut b, (scope, stored, total, n, ct)| {
                        b.push_bind(scope.to_string())
                            .push_bind(stored.to_vec())
                            .push_bind(*total)
                            .push_bind(*n)
                            .push_bind(ct.clone())
                            .push_bind(1i64);
                    });
                    q.push(
                        " ON CONFLICT (scope, tag) DO UPDATE SET total_cents = trust_members.total_cents + excluded.total_cents, \
                         receipts = trust_members.receipts + excluded.receipts",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                // Bins are kept per co-op only (adv8): a member's `*` bins
                // were the union of their co-op bins, and a thief matched
                // unions to link the co-op rows. The pooled histogram is
                // computed at query time (`trust_pooled_bin_counts`).
                // The values already counted for the batch's members.
                let mut present: std::collections::HashMap<(&str, i64, [u8; 32]), Vec<i64>> = Default::default();
                let mut by_scope: std::collections::BTreeMap<&str, Vec<[u8; 32]>> = Default::default();
                for scopes in &scoped {
                    for (scope, stored) in binned(scopes) {
                        by_scope.entry(scope).or_default().push(stored);
                    }
                }
                for (scope, mut tags) in by_scope {
                    tags.sort_unstable();
                    tags.dedup();
                    for chunk in tags.chunks(2_000) {
                        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT dim, value, tag FROM trust_bins WHERE scope = ");
                        q.push_bind(scope.to_owned()).push(" AND tag IN (");
                        let mut sep = q.separated(", ");
                        for t in chunk {
                            sep.push_bind(t.to_vec());
                        }
                        q.push(")");
                        for row in q.build().fetch_all(&mut *tx).await? {
                            let tag = hash32(row.try_get("tag")?, "trust_bins.tag")?;
                            present
                                .entry((scope, row.try_get("dim")?, tag))
                                .or_default()
                                .push(row.try_get("value")?);
                        }
                    }
                }
                // First come, first counted, up to `max_values` per (scope, dim).
                let mut new_bins: Vec<(&str, i64, i64, [u8; 32])> = Vec::new();
                for (r, scopes) in receipts.iter().zip(&scoped) {
                    let mut values: Vec<(i64, i64)> = r.items.iter().map(|(c, _)| (TrustDim::Category as i64, *c)).collect();
                    values.push((TrustDim::Area as i64, crate::types::pack_area(&r.area)));
                    values.sort_unstable();
                    values.dedup();
                    for (scope, stored) in binned(scopes) {
                        for (dim, value) in &values {
                            let have = present.entry((scope, *dim, stored)).or_default();
                            if have.contains(value) || have.len() >= max_values as usize {
                                continue;
                            }
                            have.push(*value);
                            new_bins.push((scope, *dim, *value, stored));
                        }
                    }
                }
                // Bins added, and the per-value member counts the histograms read.
                let mut added: std::collections::BTreeMap<(String, i64, i64), i64> = Default::default();
                for chunk in new_bins.chunks(5_000) {
                    let mut q = sqlx::QueryBuilder::<Db>::new("INSERT INTO trust_bins (scope, dim, value, tag, tag_scoped) ");
                    q.push_values(chunk, |mut b, (scope, dim, value, tag)| {
                        b.push_bind(scope.to_string())
                            .push_bind(*dim)
                            .push_bind(*value)
                            .push_bind(tag.to_vec())
                            .push_bind(1i64);
                    });
                    q.push(" ON CONFLICT DO NOTHING RETURNING scope, dim, value");
                    for row in q.build().fetch_all(&mut *tx).await? {
                        *added
                            .entry((row.try_get("scope")?, row.try_get("dim")?, row.try_get("value")?))
                            .or_default() += 1;
                    }
                }
                let added: Vec<_> = added.into_iter().collect();
                for chunk in added.chunks(5_000) {
                    let mut q = sqlx::QueryBuilder::<Db>::new("INSERT INTO trust_bin_totals (scope, dim, value, members) ");
                    q.push_values(chunk, |mut b, ((scope, dim, value), n)| {
                        b.push_bind(scope.clone()).push_bind(*dim).push_bind(*value).push_bind(*n);
                    });
                    q.push(" ON CONFLICT (scope, dim, value) DO UPDATE SET members = trust_bin_totals.members + excluded.members");
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
            async fn trust_receipts_present(&self, ids: &[TrustReceiptId]) -> Result<Vec<TrustReceiptId>> {
                let mut out = Vec::new();
                for chunk in ids.chunks(2_000) {
                    let mut q = sqlx::QueryBuilder::<<$pool as PoolDb>::Db>::new("SELECT receipt_id FROM trust_receipts WHERE receipt_id IN (");
                    let mut sep = q.separated(", ");
                    for id in chunk {
                        sep.push_bind(id);
                    }
                    q.push(")");
                    for row in q.build().fetch_all(self.pool()).await? {
                        out.push(
                            row.try_get::<TrustReceiptId, _>("receipt_id")?,
                        );
                    }
                }
                Ok(out)
            }
            async fn trust_member_count(&self, scope: &str) -> Result<u64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM trust_members WHERE scope = $1")
                    .bind(scope)
                    .fetch_one(self.pool())
                    .await?;
                seq_u64(row.try_get("n")?)
            }
            async fn trust_clamped_sum(&self, scope: &str, upper: i64) -> Result<(u64, i64)> {
                if scope == "*" {
                    return self.pooled_clamped_sum(upper).await;
                }
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(CASE WHEN total_cents > $2 THEN $2 WHEN total_cents < 0 THEN 0 ELSE total_cents END), 0) AS BIGINT) AS s \
                     FROM trust_members WHERE scope = $1",
                )
                .bind(scope)
                .bind(upper)
                .fetch_one(self.pool())
                .await?;
                Ok((seq_u64(row.try_get("n")?)?, row.try_get("s")?))
            }
            async fn trust_bin_counts(&self, scope: &str, dim: TrustDim) -> Result<Vec<(i64, u64)>> {
                if scope == "*" {
                    return Err(StorageError::Corrupt(
                        "the `*` scope keeps no bins: ask trust_pooled_bin_counts".into(),
                    ));
                }
                sqlx::query("SELECT value, members AS n FROM trust_bin_totals WHERE scope = $1 AND dim = $2 ORDER BY value")
                    .bind(scope)
                    .bind(dim as i64)
                    .fetch_all(self.pool())
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("value")?, seq_u64(r.try_get("n")?)?)))
                    .collect()
            }
            async fn trust_pooled_bin_counts(&self, dim: TrustDim, max_values: u32) -> Result<Vec<(i64, u64)>> {
                // Which member each co-op scope's row is: its research tag,
                // opened from the row (as the overlap does).
                let mut member: std::collections::HashMap<(String, Vec<u8>), [u8; 32]> = Default::default();
                for r in sqlx::query("SELECT scope, tag, tag_ct FROM trust_members WHERE scope <> '*'")
                    .fetch_all(self.pool())
                    .await?
                {
                    let scope: String = r.try_get("scope")?;
                    let stored: Vec<u8> = r.try_get("tag")?;
                    let ct: Option<Vec<u8>> = r.try_get("tag_ct")?;
                    let ct = ct.ok_or_else(|| corrupt("trust_members.tag_ct"))?;
                    let tag = self.open_scope_tag(&scope, &stored, &ct)?;
                    member.insert((scope, stored), tag);
                }
                let mut values: std::collections::HashMap<[u8; 32], std::collections::BTreeSet<i64>> = Default::default();
                for r in sqlx::query("SELECT scope, value, tag FROM trust_bins WHERE scope <> '*' AND dim = $1")
                    .bind(dim as i64)
                    .fetch_all(self.pool())
                    .await?
                {
                    let key = (r.try_get::<String, _>("scope")?, r.try_get::<Vec<u8>, _>("tag")?);
                    let tag = member.get(&key).ok_or_else(|| corrupt("trust_bins.tag"))?;
                    values.entry(*tag).or_default().insert(r.try_get("value")?);
                }
                // A member counts for at most `max_values` values (their
                // smallest): the histogram's sensitivity.
                let mut counts: std::collections::BTreeMap<i64, u64> = Default::default();
                for vs in values.values() {
                    for v in vs.iter().take(max_values as usize) {
                        *counts.entry(*v).or_default() += 1;
                    }
                }
                Ok(counts.into_iter().collect())
            }
            async fn trust_member_scopes(&self, tag: &[u8; 32]) -> Result<Vec<String>> {
                // Scope by scope (every organisation, and `*`), each under
                // its own tag (issue 13).
                let mut scopes = vec!["*".to_owned()];
                for id in sqlx::query_scalar::<_, Vec<u8>>("SELECT org_id FROM organisations")
                    .fetch_all(self.pool())
                    .await?
                {
                    scopes.push(OrgId::from_slice(&id).map_err(|_| corrupt("organisations.org_id"))?.to_string());
                }
                let mut found = Vec::new();
                for scope in scopes {
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trust_members WHERE scope = $1 AND tag = $2")
                        .bind(&scope)
                        .bind(self.scope_tag(tag, &scope)?.to_vec())
                        .fetch_one(self.pool())
                        .await?;
                    if n > 0 {
                        found.push(scope);
                    }
                }
                found.sort();
                Ok(found)
            }
            async fn trust_overlap(&self, a: &str, b: &str) -> Result<u64> {
                // No tag joins two scopes at rest (issue 13): the members of
                // `a` are told by their research tags, opened here from the
                // rows, and looked for among those of `b`.
                let tags = |scope: &str| {
                    let scope = scope.to_owned();
                    async move {
                        let rows = sqlx::query("SELECT tag, tag_ct FROM trust_members WHERE scope = $1")
                            .bind(&scope)
                            .fetch_all(self.pool())
                            .await?;
                        rows.iter()
                            .map(|r| {
                                let stored: Vec<u8> = r.try_get("tag")?;
                                let ct: Option<Vec<u8>> = r.try_get("tag_ct")?;
                                let ct = ct.ok_or_else(|| corrupt("trust_members.tag_ct"))?;
                                self.open_scope_tag(&scope, &stored, &ct)
                            })
                            .collect::<Result<std::collections::HashSet<[u8; 32]>>>()
                    }
                };
                let (x, y) = (tags(a).await?, tags(b).await?);
                Ok(u64::try_from(x.intersection(&y).count()).unwrap_or(u64::MAX))
            }
            async fn trust_receipts_of(&self, org: OrgId, tag: &[u8; 32]) -> Result<Vec<TrustReceiptRow>> {
                let rows = sqlx::query(
                    "SELECT * FROM trust_receipts WHERE org_id = $1 AND tag = $2 ORDER BY day, created_at, receipt_id",
                )
                .bind(org)
                .bind(self.org_tag(MetaTable::TrustReceipts, tag, org.as_bytes())?)
                .fetch_all(self.pool())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id = row.try_get::<TrustReceiptId, _>("receipt_id")?;
                    let items = sqlx::query("SELECT category, amount_cents FROM trust_events WHERE receipt_id = $1 ORDER BY item")
                        .bind(id)
                        .fetch_all(self.pool())
                        .await?
                        .iter()
                        .map(|r| Ok((r.try_get("category")?, r.try_get("amount_cents")?)))
                        .collect::<Result<Vec<(i64, i64)>>>()?;
                    out.push(TrustReceiptRow {
                        id,
                        org,
                        tag: *tag,
                        source_ct: row.try_get("source_ct")?,
                        research_ct: row.try_get("research_ct")?,
                        day: i32::try_from(row.try_get::<i64, _>("day")?).map_err(|_| corrupt("trust_receipts.day"))?,
                        area: row.try_get("area")?,
                        amount_cents: row.try_get("amount_cents")?,
                        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                        items,
                    });
                }
                Ok(out)
            }
            async fn insert_trust_sharing(&self, s: &TrustSharingRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO trust_sharing (sharing_id, member_loc, member_ct, from_org, to_org, purpose, created_at, expires_at, withdrawn_at, research_tag) \
                     VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(s.id)
                .bind(self.loc(MetaTable::TrustSharing, s.member)?)
                .bind(s.from_org)
                .bind(s.to_org)
                .bind(&s.purpose)
                // Whole hours (issue 13); an expiry floored: delivery stops
                // up to an hour early, never late. The member's own sealed
                // consent keeps the exact times.
                .bind(hour_ms(s.created_at))
                .bind(hour_ms(s.expires_at))
                .bind(s.withdrawn_at.map(hour_ms))
                .bind(s.research_tag.map(|t| t.to_vec()))
                .bind(self.seal_member(MetaTable::TrustSharing, s.id.as_bytes(), s.member)?)
                .execute(self.pool())
                .await?;
                Ok(())
            }
            async fn withdraw_trust_sharing(&self, id: SharingId, member: MemberId, at: Timestamp) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE trust_sharing SET withdrawn_at = $3 WHERE sharing_id = $1 AND member_loc = $2 AND withdrawn_at IS NULL",
                )
                .bind(id)
                .bind(self.loc(MetaTable::TrustSharing, member)?)
                .bind(hour_ms(at))
                .execute(self.pool())
                .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn trust_sharing_of_member(&self, member: MemberId) -> Result<Vec<TrustSharingRow>> {
                sqlx::query("SELECT * FROM trust_sharing WHERE member_loc = $1 ORDER BY created_at, sharing_id")
                    .bind(self.loc(MetaTable::TrustSharing, member)?)
                    .fetch_all(self.pool())
                    .await?
                    .iter()
                    .map(|r| self.sharing_row(r))
                    .collect()
            }
            async fn trust_sharing_between(&self, from: OrgId, to: OrgId, now: Timestamp) -> Result<Vec<TrustSharingRow>> {
                sqlx::query(
                    "SELECT * FROM trust_sharing WHERE to_org = $1 AND from_org = $2 AND withdrawn_at IS NULL AND expires_at > $3 \
                     ORDER BY created_at, sharing_id",
                )
                .bind(to)
                .bind(from)
                .bind(now.unix_millis())
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| self.sharing_row(r))
                .collect()
            }
            async fn trust_forget(&self, research_tag: &[u8; 32], loyalty_tag: &[u8; 32], at: Timestamp) -> Result<u64> {
                let mut tx = $begin(self.pool()).await?;
                let removed = crate::erasure::forget_research_tags!(self, tx, [research_tag]);
                crate::erasure::forget_loyalty_days!(self, tx, [loyalty_tag]);
                sqlx::query("DELETE FROM trust_loyalty_balances WHERE tag = $1")
                    .bind(loyalty_tag.to_vec())
                    .execute(&mut *tx)
                    .await?;
                // The day, not the hour (issue 13): a held erasure's research
                // and loyalty tags are two of every tag erased that day (the
                // SQLite table keeps rows in tag order, not written order).
                let day = at.unix_millis() - at.unix_millis().rem_euclid(86_400_000);
                for t in [research_tag, loyalty_tag] {
                    sqlx::query("INSERT INTO trust_erased (tag, erased_at) VALUES ($1, $2) ON CONFLICT (tag) DO NOTHING")
                        .bind(t.to_vec())
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(removed)
            }
            async fn trust_erased_among(&self, tags: &[[u8; 32]]) -> Result<Vec<[u8; 32]>> {
                let mut erased = Vec::new();
                for chunk in tags.chunks(2_000) {
                    let mut q = sqlx::QueryBuilder::<<$pool as PoolDb>::Db>::new("SELECT tag FROM trust_erased WHERE tag IN (");
                    let mut sep = q.separated(", ");
                    for t in chunk {
                        sep.push_bind(t.to_vec());
                    }
                    q.push(")");
                    for row in q.build().fetch_all(self.pool()).await? {
                        let t: Vec<u8> = row.try_get("tag")?;
                        erased.push(<[u8; 32]>::try_from(t.as_slice()).map_err(|_| corrupt("trust_erased.tag"))?);
                    }
                }
                Ok(erased)
            }
        }
        impl SqlStore<$pool> {
            /// The members of all co-ops and the sum of their totals, each
            /// member's total over every co-op clamped to `[0, upper]` (the
            /// sum's sensitivity): read from the co-op rows, a member told
            /// by the research tag sealed to each row (adv8: no stored row
            /// holds a member's total over co-ops).
            async fn pooled_clamped_sum(&self, upper: i64) -> Result<(u64, i64)> {
                let mut totals: std::collections::HashMap<[u8; 32], i64> = Default::default();
                let rows = sqlx::query("SELECT scope, tag, tag_ct, total_cents FROM trust_members WHERE scope <> '*'")
                    .fetch_all(self.pool())
                    .await?;
                for r in &rows {
                    let scope: String = r.try_get("scope")?;
                    let stored: Vec<u8> = r.try_get("tag")?;
                    let ct: Option<Vec<u8>> = r.try_get("tag_ct")?;
                    let ct = ct.ok_or_else(|| corrupt("trust_members.tag_ct"))?;
                    let tag = self.open_scope_tag(&scope, &stored, &ct)?;
                    let t = totals.entry(tag).or_default();
                    *t = t.saturating_add(r.try_get::<i64, _>("total_cents")?);
                }
                let n = u64::try_from(totals.len()).unwrap_or(u64::MAX);
                let sum = totals.values().fold(0i64, |s, t| s.saturating_add((*t).clamp(0, upper)));
                Ok((n, sum))
            }
        }
    };
}

impl_trust_store!(SqlitePool, begin_sqlite);
impl_trust_store!(PgPool, begin_postgres);
