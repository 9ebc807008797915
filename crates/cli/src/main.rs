//! `me2b`: run a node (`serve`), walk a demo federation (`demo`), operate a
//! node (`org`, `audit`), and set up and run the data trust's transcryptors
//! (`trust init`, `transcryptor`).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// `println!` that does not panic when stdout is closed (e.g. `me2b org list | head`).
macro_rules! out {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod config;
mod credential_cmd;
mod demo;
mod logging;
mod trust_cmd;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use config::{CommonArgs, FileConfig, Settings};
use me2b_crypto::{Keyring, MasterKey, NodeVerifyingKey, OsRandom};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::SystemClock;
use me2b_node::Node;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "me2b", version, about = "Me2B personal data stores for co-operatives", long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node: the HTTP API on --listen, data in --data-dir (or --database).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "ME2B_LISTEN")]
        listen: Option<SocketAddr>,
        /// Adds an unauthenticated constant route for HTTP benchmarks.
        #[arg(long, env = "ME2B_BENCH_ROUTES", hide = true)]
        bench_routes: bool,
    },
    /// Build a throwaway node in a temporary directory and walk it end to end.
    Demo {
        /// How many members to create.
        #[arg(long, default_value_t = 1000)]
        members: usize,
        /// Keep the demo's data directory here instead of a temporary one.
        #[arg(long)]
        keep: Option<std::path::PathBuf>,
    },
    /// Organisations (co-ops, brands, verifiers).
    #[command(subcommand)]
    Org(OrgCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Consent receipts.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// The data trust: set up its transcryptors.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Co-op credentials: verify a member's presentation offline.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Run one transcryptor of the data trust as its own process. Here
    /// --config is the transcryptor's file from `me2b trust init` (mode 0600)
    /// and --data-dir its own directory (audit log and master key), never a
    /// node's. Prints `listening on http://ADDR` once it accepts requests.
    Transcryptor {
        /// Address to listen on (default 127.0.0.1:7100). Plain HTTP: put TLS
        /// in front of it for anything but the same host.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
}

#[derive(Subcommand, Debug)]
enum TrustCommand {
    /// Set up a federation of N transcryptors: writes DIR/federation.json
    /// (public), DIR/transcryptor-I.json for each (secret, 0600) and
    /// DIR/links.json (the node's urls and tokens, secret, 0600). Never
    /// overwrites a file.
    Init {
        /// How many transcryptors (all of them take part in every transcription).
        #[arg(long)]
        transcryptors: usize,
        /// The directory to write to.
        #[arg(long)]
        out: std::path::PathBuf,
        /// The node's Ed25519 public key (hex) that signs consent grants; without
        /// it co-op → co-op sharing stays refused.
        #[arg(long)]
        grant_key: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CredentialCommand {
    /// Verify a member's presentation offline, with no node: your own
    /// challenge, the presentation the member gave you, and the issuers' public
    /// keys (the JSON of GET /.well-known/me2b/issuers). Prints what the member
    /// disclosed. Exit status 1 if it does not verify. Offline, you keep your
    /// challenges' nonces yourself and accept each once.
    Verify {
        #[arg(long)]
        challenge: std::path::PathBuf,
        #[arg(long)]
        presentation: std::path::PathBuf,
        #[arg(long)]
        issuers: std::path::PathBuf,
        /// The issuer's status list (GET /.well-known/me2b/status/{key_id}),
        /// for a challenge that checks revocation.
        #[arg(long)]
        status: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ConsentCommand {
    /// Verify a signed consent receipt offline (a file holding the compact JWS).
    /// Exit status 1 if it does not verify.
    VerifyReceipt {
        file: std::path::PathBuf,
        /// The node's public key, hex (default: derived from the master key).
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum OrgCommand {
    /// Register an organisation and print its first API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// coop, brand or verifier.
        #[arg(long, default_value = "coop")]
        kind: String,
        /// Comma-separated roles: admin, consent, offers, credentials, insights.
        #[arg(long, default_value = "admin")]
        roles: String,
    },
    /// List organisations.
    List,
    /// Delete an organisation and revoke all its API keys.
    Delete { org_id: String },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the hash chain and check every signed checkpoint; names the
    /// first entry that does not verify. Exit status 1 if any does not.
    Verify {
        /// The node's public key (hex), for verifying without the master key.
        #[arg(long)]
        public_key: Option<String>,
    },
}

fn init_logging(filter: &str) {
    logging::init(filter);
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    // The trust's commands read no node configuration: for `transcryptor`,
    // --config is the transcryptor's own file.
    match &cli.command {
        Command::Trust(TrustCommand::Init {
            transcryptors,
            out,
            grant_key,
        }) => {
            init_logging(cli.common.log.as_deref().unwrap_or("info"));
            trust_cmd::init(*transcryptors, out, grant_key.as_deref())?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Command::Credential(CredentialCommand::Verify {
            challenge,
            presentation,
            issuers,
            status,
        }) => {
            use me2b_domain::Clock as _;
            return credential_cmd::run(
                challenge,
                presentation,
                issuers,
                status.as_deref(),
                SystemClock.now(),
            );
        }
        Command::Transcryptor { listen } => {
            init_logging(cli.common.log.as_deref().unwrap_or("info"));
            trust_cmd::run_transcryptor(
                cli.common.config.as_deref(),
                cli.common.data_dir.as_deref(),
                *listen,
            )
            .await?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        _ => {}
    }
    let file = FileConfig::load(cli.common.config.as_deref())?;
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let settings = Settings::resolve(&cli.common, listen, file)?;
    let quiet = matches!(cli.command, Command::Demo { .. });
    init_logging(if quiet && cli.common.log.is_none() {
        logging::DEMO_FILTER
    } else {
        &settings.log
    });
    match cli.command {
        Command::Serve { bench_routes, .. } => serve(&settings, bench_routes).await?,
        Command::Demo { members, keep } => demo::run(members, keep).await?,
        Command::Org(cmd) => org(&settings, cmd).await?,
        Command::Audit(AuditCommand::Verify { public_key }) => {
            return audit_verify(&settings, public_key).await
        }
        Command::Consent(ConsentCommand::VerifyReceipt { file, public_key }) => {
            return verify_receipt(&settings, &file, public_key)
        }
        Command::Trust(_) | Command::Transcryptor { .. } | Command::Credential(_) => {}
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn open_node(settings: &Settings) -> anyhow::Result<Node> {
    Node::open(
        &settings.node_config(),
        Arc::new(SystemClock),
        Arc::new(OsRandom),
    )
    .await
    .context("cannot open the node")
}

/// Installs the SIGINT and SIGTERM handlers now (before the node announces that
/// it listens, so a signal sent right after is never lost) and returns a future
/// that completes on the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
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

async fn serve(settings: &Settings, bench_routes: bool) -> anyhow::Result<()> {
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
    let state = me2b_server::AppState { node };
    me2b_server::serve(
        listener,
        state,
        me2b_server::ServerOptions { bench_routes },
        shutdown,
    )
    .await?;
    out!("me2b stopped cleanly");
    Ok(())
}

async fn org(settings: &Settings, cmd: OrgCommand) -> anyhow::Result<()> {
    let node = open_node(settings).await?;
    match cmd {
        OrgCommand::Create { name, kind, roles } => {
            let name = Label::try_from(name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
            let kind: OrgKind = kind.parse().map_err(|e| anyhow::anyhow!("--kind {e}"))?;
            let roles = roles
                .split(',')
                .map(|r| r.trim().parse::<Role>())
                .collect::<Result<Vec<_>, _>>()
                .and_then(Roles::try_from)
                .map_err(|e| anyhow::anyhow!("--roles {e}"))?;
            let (org, key) = node
                .orgs
                .create(name, kind, roles)
                .await
                .map_err(anyhow::Error::new)?;
            out!(
                "organisation  {} ({}, {})",
                org.id,
                org.name,
                org.kind.as_str()
            );
            out!("api key id    {}", key.id);
            out!("roles         {}", key.roles.to_stored());
            out!("api key       {}", key.secret.expose());
            out!();
            out!("The API key is shown once and stored only as a hash: keep it now.");
        }
        OrgCommand::List => {
            for o in node.orgs.list().await.map_err(anyhow::Error::new)? {
                let state = if o.deleted_at.is_some() {
                    "deleted"
                } else {
                    "active"
                };
                out!("{}  {:<8}  {:<7}  {}", o.id, o.kind.as_str(), state, o.name);
            }
        }
        OrgCommand::Delete { org_id } => {
            let id = org_id.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            node.orgs.delete(id).await.map_err(anyhow::Error::new)?;
            out!("organisation {id} deleted; its API keys are revoked");
        }
    }
    node.shutdown().await;
    Ok(())
}

fn node_key(settings: &Settings, public_key: Option<String>) -> anyhow::Result<NodeVerifyingKey> {
    match public_key {
        Some(hex_key) => {
            let bytes = hex::decode(hex_key.trim()).context("--public-key must be hex")?;
            NodeVerifyingKey::from_bytes(&bytes)
                .context("--public-key is not an Ed25519 public key")
        }
        None => {
            let master = MasterKey::load(&settings.node_config().master_key_path())
                .context("cannot read the master key (or pass --public-key)")?;
            Ok(Keyring::derive(&master).verifying_key())
        }
    }
}

fn verify_receipt(
    settings: &Settings,
    file: &std::path::Path,
    public_key: Option<String>,
) -> anyhow::Result<std::process::ExitCode> {
    let key = node_key(settings, public_key)?;
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    anyhow::ensure!(
        meta.len() <= me2b_consent::receipt::MAX_RECEIPT_BYTES as u64,
        "{} is too large to be a receipt",
        file.display()
    );
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match me2b_consent::receipt::verify(&text, &key) {
        Ok(c) => {
            out!("VALID consent receipt, signed by node key {}", key.key_id());
            out!(
                "  event        {:?} (version {})",
                c.event,
                c.consent_version
            );
            out!("  consent      {}", c.consent_id);
            out!("  controller   {} ({})", c.controller.name, c.controller.id);
            out!("  subject      {}", c.subject);
            let ids = |t: &[me2b_consent::receipt::CitedTerm]| {
                t.iter()
                    .map(|x| x.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out!("  purposes     {}", ids(&c.purposes));
            out!("  categories   {}", ids(&c.categories));
            out!("  processing   {}", ids(&c.processing));
            out!("  legal basis  {}", c.legal_basis.id);
            out!("  given        {}  expires {}", c.given_at, c.expires_at);
            if let Some(w) = &c.withdrawn_at {
                out!("  withdrawn    {w}");
            }
            out!(
                "  notice       version {} sha256 {}",
                c.notice.version,
                c.notice.sha256
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            out!("INVALID: {e}");
            Ok(std::process::ExitCode::from(1))
        }
    }
}

async fn audit_verify(
    settings: &Settings,
    public_key: Option<String>,
) -> anyhow::Result<std::process::ExitCode> {
    let cfg = settings.node_config();
    // Verification reads only: it opens the database, not a node (which would log
    // its own start).
    let store = me2b_storage::open(&cfg.database_url())
        .await
        .context("cannot open the database")?;
    let key = match public_key {
        Some(hex_key) => {
            let bytes = hex::decode(hex_key.trim()).context("--public-key must be hex")?;
            NodeVerifyingKey::from_bytes(&bytes)
                .context("--public-key is not an Ed25519 public key")?
        }
        None => {
            let master = MasterKey::load(&cfg.master_key_path())
                .context("cannot read the master key (or pass --public-key)")?;
            Keyring::derive(&master).verifying_key()
        }
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message("verifying the audit log");
    let report = me2b_audit::verify(store.as_ref(), &key, &|n| {
        bar.set_message(format!("verified {n} entries"))
    })
    .await?;
    bar.finish_and_clear();
    store.close().await;
    print_verify_report(&report, &key);
    Ok(if report.ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

pub(crate) fn print_verify_report(report: &me2b_audit::VerifyReport, key: &NodeVerifyingKey) {
    out!("node key      {} (Ed25519)", key.key_id());
    out!("entries       {}", report.entries);
    out!("checkpoints   {} signed", report.checkpoints);
    if let Some((seq, hash)) = &report.head {
        out!("head          #{seq} {hash}");
    }
    match &report.first_failure {
        None => out!("result        OK: every entry links to the previous one and matches every signed checkpoint"),
        Some(f) => out!("result        FAILED at entry #{}: {}", f.seq, f.reason),
    }
}

/// Used by `demo` and tests to fail with a message instead of panicking.
pub(crate) fn ensure(cond: bool, msg: &str) -> anyhow::Result<()> {
    if !cond {
        bail!("{msg}");
    }
    Ok(())
}
