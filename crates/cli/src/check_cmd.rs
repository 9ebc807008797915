//! `me2b check`: the database's integrity check, on demand. `me2b serve` runs
//! the quick check in the background at every start and logs the outcome; this
//! command is how an operator runs it and gets an exit status.

use crate::config::Settings;
use anyhow::Context;
use me2b_storage::{Backend, IntegrityLevel, StorageError};
use std::process::ExitCode;

pub async fn run(settings: &Settings, full: bool) -> anyhow::Result<ExitCode> {
    let cfg = settings.node_config();
    // The database only: no master key is needed and nothing is written.
    let store = me2b_storage::open(&cfg.database_url())
        .await
        .context("cannot open the database (a file SQLite cannot read at all fails here)")?;
    let (level, what) = match (store.backend(), full) {
        (Backend::Sqlite, false) => (IntegrityLevel::Quick, "SQLite quick_check"),
        (Backend::Sqlite, true) => (IntegrityLevel::Full, "SQLite integrity_check"),
        (Backend::Postgres, _) => (IntegrityLevel::Quick, "PostgreSQL connection"),
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar.set_message(format!("{what}: reading the whole database"));
    let started = std::time::Instant::now();
    let result = store.check_integrity(level).await;
    bar.finish_and_clear();
    store.close().await;
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            out!(
                "database   {}",
                me2b_storage::redact_url(&cfg.database_url())
            );
            out!("result     OK: {what} passed in {secs:.1} s");
            if store.backend() == Backend::Postgres {
                out!("           PostgreSQL checks its own pages: enable data checksums, and run pg_amcheck for a full check");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(StorageError::Corrupt(msg)) => {
            out!(
                "database   {}",
                me2b_storage::redact_url(&cfg.database_url())
            );
            out!("result     FAILED: {msg}");
            out!("           stop the node and restore the database from a backup; `me2b audit verify` checks the audit log of the restored copy");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e).context("the integrity check could not run"),
    }
}
