//! Compaction on a schedule (issue 13; adv8's open finding, the order of
//! cells within a page). SQLite writes each new cell of a page below the
//! older ones, so the cells' offsets list a page's rows in the order
//! written, whatever their keys; PostgreSQL's heap keeps rows in the order
//! written (`ctid`). A compaction rewrites the member tables in key order:
//! SQLite's `VACUUM` (every page of the file, then the log emptied),
//! PostgreSQL's `CLUSTER` of the member tables on their primary keys (the
//! tables migration 0035 clustered once). `me2b serve` runs it every
//! `[storage] compact_every`, and only when something was written since the
//! last one: an idle node's file is left alone.

use crate::sql::SqlStore;
use crate::Result;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{ConnectOptions, Connection};

/// The member tables migrations 0035 and 0039 clustered on their primary
/// keys on PostgreSQL; each compaction clusters them again. A table that is
/// not there (renamed by a later migration) is skipped.
const CLUSTERED: &[&str] = &[
    "members",
    "sessions",
    "sign_ups",
    "vault_records",
    "consents",
    "consent_envelopes",
    "consent_envelopes_pending",
    "member_gpc",
    "marketing_optouts",
    "optout_codes",
    "optout_jobs",
    "imported_history",
    "credential_codes",
    "trust_enrolments",
    "trust_sharing",
    "trust_loyalty_tokens",
    "trust_loyalty_balances",
    "trust_erased",
    "trust_members",
    "trust_bins",
    "trust_receipts",
    "trust_events",
];

/// What the last compaction saw (one at a time: the store holds it behind
/// a lock).
#[derive(Default)]
pub(crate) struct Compaction {
    /// SQLite: a connection of the compaction's own. Its `PRAGMA
    /// data_version` changes when another connection commits (not on its
    /// own `VACUUM` and checkpoint, nor on a statement that changed
    /// nothing), so it tells whether anything was written since.
    conn: Option<SqliteConnection>,
    /// Read before the last compaction: SQLite's data version on `conn`;
    /// PostgreSQL's count of rows inserted, updated and deleted in the
    /// clustered tables (`pg_stat_user_tables`). None: no compaction yet
    /// (the first run always compacts).
    mark: Option<i64>,
}

impl std::fmt::Debug for Compaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compaction")
            .field("mark", &self.mark)
            .finish_non_exhaustive()
    }
}

impl SqlStore<SqlitePool> {
    /// `Store::compact_if_written` on SQLite: `VACUUM` and a TRUNCATE
    /// checkpoint on the compaction's connection, if another connection
    /// committed since the last run. While `VACUUM` runs it holds the write
    /// lock (writers wait, up to the busy timeout; readers go on).
    pub(crate) async fn scheduled_compaction(&self) -> Result<bool> {
        let mut guard = self.compaction.lock().await;
        let state = &mut *guard;
        let r = async {
            let conn = match &mut state.conn {
                Some(c) => c,
                None => state
                    .conn
                    .insert(self.pool().connect_options().connect().await?),
            };
            let version: i64 = sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&mut *conn)
                .await?;
            if state.mark == Some(version) {
                return Ok(false);
            }
            sqlx::query("VACUUM").execute(&mut *conn).await?;
            // On this connection, so its own data version does not move;
            // through the busy handler: a reader may hold the log a moment.
            let (busy, _, _) =
                sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&mut *conn)
                    .await?;
            if busy != 0 {
                // The log still holds the pages as they were: the sweeper
                // retries until it is emptied.
                self.log_not_emptied();
            }
            state.mark = Some(version);
            Ok(true)
        }
        .await;
        if r.is_err() {
            // A connection that failed may be unusable: a new one next time,
            // and its data version means nothing against this one's.
            if let Some(c) = state.conn.take() {
                let _ = c.close().await;
            }
            state.mark = None;
        }
        r
    }

    /// Closes the compaction's connection (the store is closing).
    pub(crate) async fn close_compaction(&self) {
        if let Some(c) = self.compaction.lock().await.conn.take() {
            let _ = c.close().await;
        }
    }
}

impl SqlStore<PgPool> {
    /// `Store::compact_if_written` on PostgreSQL: the clustered tables'
    /// counts of rows written, from the statistics (which reach them
    /// within seconds of a commit: a write just before a run is seen by
    /// the next), and `CLUSTER` if they moved.
    pub(crate) async fn scheduled_compaction(&self) -> Result<bool> {
        let mut state = self.compaction.lock().await;
        let writes: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0)::BIGINT \
             FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = ANY($1)",
        )
        .bind(CLUSTERED)
        .fetch_one(self.pool())
        .await?;
        if state.mark == Some(writes) {
            return Ok(false);
        }
        self.cluster().await?;
        state.mark = Some(writes);
        Ok(true)
    }

    /// `CLUSTER` of each table of [`CLUSTERED`] on its primary key, one
    /// table at a time: each holds an ACCESS EXCLUSIVE lock on its table
    /// (reads and writes of it wait) while it is rewritten.
    pub(crate) async fn cluster(&self) -> Result<()> {
        for table in CLUSTERED {
            let key: Option<String> = sqlx::query_scalar(
                "SELECT c.relname::TEXT FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid \
                 WHERE x.indrelid = to_regclass($1) AND x.indisprimary",
            )
            .bind(table)
            .fetch_optional(self.pool())
            .await?;
            let Some(key) = key else { continue };
            // Both names are identifiers from the catalogue, quoted.
            let sql = format!(
                "CLUSTER \"{}\" USING \"{}\"",
                table.replace('"', "\"\""),
                key.replace('"', "\"\"")
            );
            sqlx::query(&sql).execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Nothing to close on PostgreSQL (the pool's connections).
    pub(crate) async fn close_compaction(&self) {}
}
