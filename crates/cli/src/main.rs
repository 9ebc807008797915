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

mod audit_cmd;
mod breach_cmd;
mod check_cmd;
mod config;
mod coop_cmd;
mod credential_cmd;
mod demo;
mod erasure_cmd;
mod logging;
mod optout_cmd;
mod org_cmd;
mod receipt_cmd;
mod serve_cmd;
mod trust_cmd;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use config::{CommonArgs, ConnArgs, FileConfig, Settings};
use me2b_crypto::OsRandom;
use me2b_domain::SystemClock;
use me2b_node::Node;
use std::net::SocketAddr;
use std::sync::Arc;

use org_cmd::org;
pub(crate) use receipt_cmd::node_key;
use receipt_cmd::verify_receipt;
use serve_cmd::serve;
pub(crate) use serve_cmd::shutdown_signal;

#[derive(Parser, Debug)]
#[command(name = "me2b", version, about = "Me2B personal data stores for co-operatives", long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum IntentsCommand {
    /// Answers members reported, newest first: the organisation, its answer
    /// and the reason (nothing of the member or the intent), as JSON.
    Reports,
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
        /// Seconds between runs of the sweeper and the opt-out worker (tests).
        #[arg(long, env = "ME2B_SWEEP_INTERVAL", hide = true, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
        sweep_interval: u64,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Build a throwaway node in a temporary directory and walk it end to end.
    Demo {
        /// How many members to create.
        #[arg(long, default_value_t = 1000)]
        members: usize,
        /// Keep the demo's data directory here instead of a temporary one.
        #[arg(long)]
        keep: Option<std::path::PathBuf>,
        /// Afterwards, keep the demo's node running and serve it (the API and
        /// the web pages) until Ctrl-C, printing a member's and a co-op's login.
        #[arg(long)]
        serve: bool,
        /// Where `--serve` listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        serve_on: std::net::SocketAddr,
    },
    /// Organisations (co-ops, brands, verifiers).
    #[command(subcommand)]
    Org(OrgCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check the database file (SQLite: PRAGMA quick_check over the whole file).
    /// Exit status 1 if it finds damage. `serve` runs the same check in the
    /// background at every start and logs the outcome.
    Check {
        /// PRAGMA integrity_check: also that every index matches its table (slower).
        #[arg(long)]
        full: bool,
    },
    /// Consent receipts.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Members' keys.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Erasure requests to the organisations that received members' data:
    /// waiting for their batch, pending, overdue or confirmed, one per line.
    Erasures,
    /// The data trust: set up its transcryptors.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// The 72-hour breach report, from the audit log.
    #[command(subcommand)]
    Breach(BreachCommand),
    /// A member's opt-out from all direct marketing: one click, a paper
    /// code, the printable card.
    #[command(subcommand)]
    Optout(optout_cmd::OptoutCommand),
    /// Co-op credentials: verify a member's presentation offline.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// A co-op's side of the data trust: its own keys, opening cards, sealing them.
    #[command(subcommand)]
    Coop(CoopCommand),
    /// Intents (members' requests for proposal): what the operator sees.
    #[command(subcommand)]
    Intents(IntentsCommand),
    /// Run one transcryptor of the data trust as its own process. Here
    /// --config is the transcryptor's file from `me2b trust init` (mode 0600)
    /// and --data-dir its own directory (audit log and master key), never a
    /// node's. Prints `listening on http://ADDR` once it accepts requests.
    Transcryptor {
        /// Address to listen on (default 127.0.0.1:7100). TLS when its file
        /// holds a certificate (an https:// url at `trust init`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        action: Option<TranscryptorCommand>,
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
        /// The node's public key, as GET /.well-known/me2b/node-keys serves it
        /// (that JSON, the key's JWK or its `x`), or hex: it signs the grants
        /// that open co-op → co-op pairs (a member's consent) and moves out of
        /// the origin (a member's own request).
        #[arg(long)]
        grant_key: String,
        /// Where each transcryptor will listen, in chain order, once per
        /// transcryptor: https://host:port (a self-signed certificate is made
        /// and pinned), or http:// on loopback only. Default:
        /// http://127.0.0.1:7101 onwards.
        #[arg(long = "url")]
        urls: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TranscryptorCommand {
    /// Register a co-op with this transcryptor: writes the co-op's link to it
    /// (its url, pinned certificate and the co-op's token here, shown
    /// nowhere else) to a new private file to give the co-op. Only the
    /// token's SHA-256 stays in the transcryptor's file; restart the
    /// transcryptor to take it in.
    AddCoop {
        /// The co-op's organisation id (`me2b org list` on the node).
        #[arg(long)]
        org: String,
        /// Where the co-op reaches this transcryptor (as in links.json).
        #[arg(long)]
        url: String,
        /// The file to write (mode 0600; never overwritten).
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

/// `Debug` is written by hand: it shows no API key.
#[derive(Subcommand)]
enum CoopCommand {
    /// Fetch the co-op's own key material and write it to a new private file:
    /// from the node (embedded trust: --node and --api-key) or from every
    /// transcryptor of a distributed trust (--federation and one --link per
    /// transcryptor, the files `me2b transcryptor add-coop` wrote).
    Keys {
        /// The co-op's organisation id.
        #[arg(long)]
        org: String,
        /// The file to write (mode 0600; never overwritten).
        #[arg(long)]
        out: std::path::PathBuf,
        /// The node's url (embedded trust).
        #[arg(long)]
        node: Option<String>,
        /// The co-op's API key on the node (embedded trust).
        #[arg(long, env = "ME2B_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// The federation's public file (federation.json), distributed trust.
        #[arg(long)]
        federation: Option<std::path::PathBuf>,
        /// The co-op's link to one transcryptor (from `me2b transcryptor
        /// add-coop`), once per transcryptor.
        #[arg(long = "link")]
        links: Vec<std::path::PathBuf>,
    },
    /// Open a member's card: prints the co-op's pseudonym for them.
    OpenCard {
        #[arg(long)]
        keys: std::path::PathBuf,
        /// A card is base64url: about one in 64 starts with `-`.
        #[arg(allow_hyphen_values = true)]
        card: String,
    },
    /// Seal one of the co-op's pseudonyms afresh for a submission (receipts,
    /// loyalty): prints the card to send.
    Seal {
        #[arg(long)]
        keys: std::path::PathBuf,
        pseudonym: String,
    },
}

impl std::fmt::Debug for CoopCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keys {
                org,
                out,
                node,
                api_key,
                federation,
                links,
            } => f
                .debug_struct("Keys")
                .field("org", org)
                .field("out", out)
                .field("node", node)
                .field("api_key", &optout_cmd::redacted(api_key.as_deref()))
                .field("federation", federation)
                .field("links", links)
                .finish(),
            Self::OpenCard { keys, card } => f
                .debug_struct("OpenCard")
                .field("keys", keys)
                .field("card", card)
                .finish(),
            Self::Seal { keys, pseudonym } => f
                .debug_struct("Seal")
                .field("keys", keys)
                .field("pseudonym", pseudonym)
                .finish(),
        }
    }
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
enum BreachCommand {
    /// Who and what an incident touched, from the audit log entries between
    /// --from and --to: members affected (pseudonymous ids and a count), the
    /// data exposed, the 72-hour deadline from --detected, and draft notices
    /// to the members and to the supervisory authority.
    Report {
        /// Start of the incident's window (RFC 3339).
        #[arg(long)]
        from: String,
        /// End of the window (RFC 3339).
        #[arg(long)]
        to: String,
        /// Only this part of the node: vault, accounts, consent, offers,
        /// trust, credentials, rights.
        #[arg(long)]
        component: Option<String>,
        /// When the breach was detected (RFC 3339; default now).
        #[arg(long)]
        detected: Option<String>,
        /// The report as JSON instead of text.
        #[arg(long)]
        json: bool,
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
        /// Comma-separated roles: admin, consent, offers, credentials, insights, optout-desk,
        /// certifier (vouches for other organisations' certifications; only given here).
        #[arg(long, default_value = "admin")]
        roles: String,
    },
    /// List organisations.
    List,
    /// Delete an organisation and revoke all its API keys.
    Delete { org_id: String },
}

#[derive(Subcommand, Debug)]
enum MembersCommand {
    /// Finishes the move off the master key for members who stay away.
    /// Members whose data key an older node wrapped under the master key
    /// get it re-wrapped for their passphrase at their next login. One who
    /// has not logged in for --inactive-days is sent a warning (once); one
    /// warned at least --grace-days ago who still has not logged in loses
    /// the master-key wrap, and with it the vault: they are erased as
    /// `DELETE /v1/me` would. Run it from cron; it prints what it did.
    RetireLegacy {
        #[arg(long, default_value_t = 180)]
        inactive_days: u32,
        #[arg(long, default_value_t = 30)]
        grace_days: u32,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the hash chain and check every signed head and checkpoint,
    /// and that the log still holds the entry named by the signed head file
    /// (DATA_DIR/audit-head), so a removed tail is caught; names the first
    /// entry that does not verify. Exit status 1 if any does not.
    Verify {
        /// The node's public key (hex), for verifying without the master key.
        #[arg(long)]
        public_key: Option<String>,
        /// A copy of the head file kept elsewhere, instead of DATA_DIR/audit-head.
        #[arg(long, value_name = "FILE", conflicts_with = "no_head_file")]
        head: Option<std::path::PathBuf>,
        /// Check without a head file (e.g. a database copy on its own): a
        /// removed tail is then NOT noticed, and the output says so.
        #[arg(long)]
        no_head_file: bool,
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
            urls,
        }) => {
            init_logging(cli.common.log.as_deref().unwrap_or("info"));
            trust_cmd::init(*transcryptors, out, grant_key, urls)?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Command::Transcryptor {
            action: Some(TranscryptorCommand::AddCoop { org, url, out }),
            ..
        } => {
            let Some(config) = cli.common.config.as_deref() else {
                bail!("--config FILE is required: the transcryptor's file");
            };
            trust_cmd::add_coop(config, org, url, out)?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Command::Coop(cmd) => return coop_cmd::run(cmd).await,
        Command::Optout(cmd) => return optout_cmd::run(cmd.clone()).await,
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
        Command::Transcryptor { listen, conn, .. } => {
            init_logging(cli.common.log.as_deref().unwrap_or("info"));
            trust_cmd::run_transcryptor(
                cli.common.config.as_deref(),
                cli.common.data_dir.as_deref(),
                *listen,
                conn.limits(&FileConfig::default())?,
            )
            .await?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        _ => {}
    }
    let file = FileConfig::load(cli.common.config.as_deref())?;
    let no_conn = ConnArgs::default();
    let (listen, conn) = match &cli.command {
        Command::Serve { listen, conn, .. } => (*listen, conn),
        _ => (None, &no_conn),
    };
    let settings = Settings::resolve(&cli.common, listen, conn, file)?;
    let quiet = matches!(cli.command, Command::Demo { .. });
    init_logging(if quiet && cli.common.log.is_none() {
        logging::DEMO_FILTER
    } else {
        &settings.log
    });
    match cli.command {
        Command::Serve {
            bench_routes,
            sweep_interval,
            ..
        } => {
            let every = std::time::Duration::from_secs(sweep_interval);
            serve(&settings, bench_routes, every).await?
        }
        Command::Demo {
            members,
            keep,
            serve,
            serve_on,
        } => demo::run(members, keep, serve.then_some(serve_on)).await?,
        Command::Org(cmd) => org(&settings, cmd).await?,
        Command::Audit(AuditCommand::Verify {
            public_key,
            head,
            no_head_file,
        }) => return audit_cmd::verify(&settings, public_key, head, no_head_file).await,
        Command::Consent(ConsentCommand::VerifyReceipt { file, public_key }) => {
            return verify_receipt(&settings, &file, public_key)
        }
        Command::Check { full } => return check_cmd::run(&settings, full).await,
        Command::Breach(BreachCommand::Report {
            from,
            to,
            component,
            detected,
            json,
        }) => {
            return breach_cmd::report(
                &settings,
                &from,
                &to,
                component.as_deref(),
                detected.as_deref(),
                json,
            )
            .await
        }
        Command::Intents(IntentsCommand::Reports) => {
            let node = open_node(&settings).await?;
            let reports = node.intents.reports().await;
            node.shutdown().await;
            out!("{}", serde_json::to_string_pretty(&reports?)?);
        }
        Command::Members(MembersCommand::RetireLegacy {
            inactive_days,
            grace_days,
        }) => retire_legacy(&settings, inactive_days, grace_days).await?,
        Command::Erasures => erasure_cmd::list(&settings).await?,
        Command::Trust(_)
        | Command::Transcryptor { .. }
        | Command::Credential(_)
        | Command::Coop(_)
        | Command::Optout(_) => {}
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

async fn retire_legacy(
    settings: &Settings,
    inactive_days: u32,
    grace_days: u32,
) -> anyhow::Result<()> {
    let node = open_node(settings).await?;
    let day = 86_400_i64;
    let r = node
        .vault
        .retire_legacy_wraps(i64::from(inactive_days) * day, i64::from(grace_days) * day)
        .await?;
    out!(
        "{} members on the master-key wrap: {} warned now, {} erased (warned {grace_days}+ days ago, still away), {} within the grace period, {} could not be warned",
        r.legacy,
        r.warned,
        r.erased,
        r.waiting,
        r.unreachable
    );
    Ok(())
}

/// Used by `demo` and tests to fail with a message instead of panicking.
pub(crate) fn ensure(cond: bool, msg: &str) -> anyhow::Result<()> {
    if !cond {
        bail!("{msg}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_that_starts_with_a_hyphen_is_a_card() {
        let cli = Cli::try_parse_from(["me2b", "coop", "open-card", "--keys", "k.json", "-xY_z"])
            .unwrap();
        match cli.command {
            Command::Coop(CoopCommand::OpenCard { card, .. }) => assert_eq!(card, "-xY_z"),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn debug_shows_no_session_token_api_key_or_code() {
        let secrets = [
            "me2b_s_SESSIONSECRET",
            "me2b_k_APIKEYSECRET",
            "OPTO-UTCO-DESE-CRET",
            "RECO-VERY-CODE-SECRET",
        ];
        let parsed = [
            vec![
                "me2b",
                "optout",
                "marketing",
                "--node",
                "http://n",
                "--session",
                secrets[0],
            ],
            vec![
                "me2b",
                "optout",
                "use",
                "--node",
                "http://n",
                "--api-key",
                secrets[1],
                secrets[2],
            ],
            vec![
                "me2b",
                "optout",
                "card",
                "--out",
                "card",
                "--node",
                "http://n",
                "--session",
                secrets[0],
                "--code",
                secrets[2],
                "--recovery-code",
                secrets[3],
            ],
            vec![
                "me2b",
                "coop",
                "keys",
                "--org",
                "o",
                "--out",
                "k.json",
                "--node",
                "http://n",
                "--api-key",
                secrets[1],
            ],
        ];
        for args in parsed {
            let cli = Cli::try_parse_from(&args).unwrap();
            let shown = format!("{:?} {:#?}", cli.command, cli.command);
            assert!(shown.contains("<redacted>"), "{shown}");
            for s in secrets {
                assert!(!shown.contains(s), "{s} in {shown}");
            }
        }
    }
}
