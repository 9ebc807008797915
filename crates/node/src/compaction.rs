//! The scheduled compaction (issue 13): the member tables rewritten in key
//! order every so often (`Store::compact_if_written`), so the order rows
//! were written in, which SQLite's cells within a page and PostgreSQL's
//! heap keep, lasts in the file only until the next run.

use me2b_storage::Store;
use std::sync::Arc;
use std::time::Duration;

/// How often by default: `[storage] compact_every`. SQLite holds the write
/// lock while it rewrites the file (BENCHMARKS.md, "Scheduled compaction":
/// 1.4 s for 10,000 members' rows, 17 s for 100,000); an hour bounds how
/// long new rows keep their order while writes wait well under a
/// hundredth of the time on a node of 10,000 members.
pub const COMPACT_EVERY: Duration = Duration::from_secs(3600);

/// A compaction longer than this is reported as a warning: half of the
/// time an SQLite writer waits on a lock before it fails (PostgreSQL's
/// writers wait on the table being clustered).
const SLOW: Duration = Duration::from_secs(5);

/// Runs `Store::compact_if_written` every `every`, the first time `every`
/// after the start (a start that re-keyed rows compacts at once, in
/// `Node::open`). It skips a run when nothing was written since the last
/// one. Abort at shutdown; the log names no row.
pub fn spawn_compaction(store: Arc<dyn Store>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + every;
        let mut tick = tokio::time::interval_at(start, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            match store.compact_if_written().await {
                Ok(true) if started.elapsed() > SLOW => tracing::warn!(
                    seconds = started.elapsed().as_secs_f64(),
                    "database compacted, but writes waited on it (on SQLite they fail after 10 s; on PostgreSQL each table's wait while it is rewritten): set [storage] compact_every longer, or to \"off\""
                ),
                Ok(true) => tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "database compacted: rows in key order"
                ),
                Ok(false) => tracing::debug!("nothing written since the last compaction"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "the database could not be compacted; tried again at the next interval"
                ),
            }
        }
    })
}
