//! `me2b serve`: runs a node until SIGINT or SIGTERM, finishing the requests
//! in flight.

use crate::config::Settings;
use crate::open_node;
use anyhow::Context;

/// Installs the SIGINT and SIGTERM handlers now (before the node announces that
/// it listens, so a signal sent right after is never lost) and returns a future
/// that completes on the first of them.
pub(crate) fn shutdown_signal(
) -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        let mut term =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
}

/// `sweep_interval`: between runs of the sweeper and the opt-out worker
/// (`me2b_node::BACKGROUND_INTERVAL`; tests pass a shorter one).
pub(crate) async fn serve(
    settings: &Settings,
    bench_routes: bool,
    sweep_interval: std::time::Duration,
) -> anyhow::Result<()> {
    let node = open_node(settings).await?;
    if node.master_key_created {
        tracing::warn!(
            path = %settings.node_config().master_key_path().display(),
            "created a new master key: back it up; without it the vault cannot be read"
        );
    }
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    out!(
        "me2b {} listening on http://{addr} (database: {}, data directory: {})",
        env!("CARGO_PKG_VERSION"),
        node.database,
        settings.data_dir.display()
    );
    if node.trust.single_party() {
        out!(
            "data trust: single-party ({} transcryptors in this process, one operator holds every secret); for a distributed trust run `me2b transcryptor` processes and set ME2B_TRUST_DIR",
            node.trust.transcryptors()
        );
    } else {
        out!(
            "data trust: distributed over {} transcryptor processes",
            node.trust.transcryptors()
        );
    }
    if node.legacy_members > 0 {
        out!(
            "{} members still have their data key wrapped under the master key (an older node's): each is moved to member-held keys at their next login; `me2b members retire-legacy` warns, then erases, those who stay away",
            node.legacy_members
        );
    }
    // The integrity check reads the whole file: in the background, reported
    // in the log, never a gate on serving (`me2b check` runs it on demand).
    let integrity = me2b_node::spawn_integrity_check(node.store.clone());
    let optouts = node.spawn_optout_worker_every(sweep_interval);
    // Releases due at a boundary no request crossed, webhook deliveries,
    // and expired envelopes, sign-ups and sessions (with their key wraps).
    let sweeper = node.spawn_sweeper_every(sweep_interval);
    // The member tables rewritten in key order (`[storage] compact_every`).
    let compaction = settings
        .compact_every
        .map(|every| me2b_node::compaction::spawn_compaction(node.store.clone(), every));
    let state = me2b_server::AppState { node: node.into() };
    let served = me2b_server::serve(
        listener,
        state,
        me2b_server::ServerOptions {
            bench_routes,
            limits: settings.limits,
            throttle: settings.throttle.clone(),
        },
        shutdown,
    )
    .await;
    integrity.abort();
    optouts.abort();
    sweeper.abort();
    if let Some(c) = compaction {
        c.abort();
    }
    served?;
    out!("me2b stopped cleanly");
    Ok(())
}
