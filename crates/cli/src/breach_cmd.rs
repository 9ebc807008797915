//! `me2b breach report`: the 72-hour breach report from the audit log
//! (`me2b_audit::breach`).

use crate::config::Settings;
use anyhow::Context;
use me2b_crypto::{Keyring, MasterKey};
use me2b_domain::Timestamp;

fn time(name: &str, v: &str) -> anyhow::Result<Timestamp> {
    Timestamp::parse_rfc3339(v)
        .with_context(|| format!("--{name} must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"))
}

#[allow(clippy::print_stdout)]
pub async fn report(
    settings: &Settings,
    from: &str,
    to: &str,
    component: Option<&str>,
    detected: Option<&str>,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    use me2b_domain::Clock as _;
    let (from, to) = (time("from", from)?, time("to", to)?);
    anyhow::ensure!(from <= to, "--from must not be after --to");
    if let Some(c) = component {
        anyhow::ensure!(
            me2b_audit::breach::is_component(c),
            "--component must be one of: {}",
            me2b_audit::breach::COMPONENTS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let detected = match detected {
        Some(d) => time("detected", d)?,
        None => me2b_domain::SystemClock.now(),
    };
    let cfg = settings.node_config();
    let master = MasterKey::load(&cfg.master_key_path())
        .context("cannot read the master key (the report names members by a keyed hash)")?;
    let keys = Keyring::derive(&master);
    let store = me2b_storage::open(&cfg.database_url())
        .await
        .context("cannot open the database")?;
    // Audit events are sealed at rest under the node's metadata keys.
    store.set_metadata_keys(std::sync::Arc::new(
        keys.metadata_keys(std::sync::Arc::new(me2b_crypto::OsRandom)),
    ));
    let r = me2b_audit::breach::report(store.as_ref(), &keys, from, to, component, detected).await;
    store.close().await;
    let r = r?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", r.to_markdown());
    }
    Ok(std::process::ExitCode::SUCCESS)
}
