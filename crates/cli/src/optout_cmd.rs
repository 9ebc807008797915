//! `me2b optout`: a member's opt-out from all direct marketing, from the
//! command line: the one-click opt-out, typing a paper code (as anyone at the
//! public page, or as a shop's desk), and writing the printable card.

use anyhow::Context;
use clap::Subcommand;
use me2b_server::card::{self, CardInput};
use std::path::{Path, PathBuf};

/// `Debug` is written by hand: it shows no session token, API key, opt-out
/// code or recovery code (see [`redacted`]).
#[derive(Subcommand, Clone)]
pub enum OptoutCommand {
    /// Opt out of all direct marketing now: every marketing consent is
    /// withdrawn (each with its receipt) and no offer is matched until you
    /// opt back in (`--undo`).
    Marketing {
        /// The node's url.
        #[arg(long)]
        node: String,
        /// Your session token (from logging in).
        #[arg(long, env = "ME2B_SESSION", hide_env_values = true)]
        session: String,
        /// Opt back in instead.
        #[arg(long)]
        undo: bool,
    },
    /// Type a paper opt-out code: at the public page (no key), or as a
    /// shop's desk (an API key with the `optout-desk` role).
    Use {
        #[arg(long)]
        node: String,
        /// A desk's API key.
        #[arg(long, env = "ME2B_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// The code as printed (groups of four; case and dashes do not matter).
        code: String,
    },
    /// Write the printable opt-out card, OUT.pdf and OUT.svg: with a new code
    /// made on the node (--node and --session; the old code stops working),
    /// or with a code you have (--code). The recovery code, if given, goes on
    /// a part of its own (below a cut line; the PDF's second page) to keep at
    /// home.
    Card {
        /// Where to write: OUT.pdf and OUT.svg (never overwritten).
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        node: Option<String>,
        #[arg(long, env = "ME2B_SESSION", hide_env_values = true)]
        session: Option<String>,
        /// An opt-out code you already have.
        #[arg(long, env = "ME2B_OPTOUT_CODE", hide_env_values = true)]
        code: Option<String>,
        /// Your recovery code, to print on the card's part to keep at home.
        #[arg(long, env = "ME2B_RECOVERY_CODE", hide_env_values = true)]
        recovery_code: Option<String>,
    },
}

/// How a secret argument shows in `Debug`: whether it was given, never what.
pub(crate) fn redacted(secret: Option<&str>) -> &'static str {
    match secret {
        Some(_) => "<redacted>",
        None => "None",
    }
}

impl std::fmt::Debug for OptoutCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Marketing {
                node,
                session,
                undo,
            } => f
                .debug_struct("Marketing")
                .field("node", node)
                .field("session", &redacted(Some(session)))
                .field("undo", undo)
                .finish(),
            Self::Use {
                node,
                api_key,
                code,
            } => f
                .debug_struct("Use")
                .field("node", node)
                .field("api_key", &redacted(api_key.as_deref()))
                .field("code", &redacted(Some(code)))
                .finish(),
            Self::Card {
                out,
                node,
                session,
                code,
                recovery_code,
            } => f
                .debug_struct("Card")
                .field("out", out)
                .field("node", node)
                .field("session", &redacted(session.as_deref()))
                .field("code", &redacted(code.as_deref()))
                .field("recovery_code", &redacted(recovery_code.as_deref()))
                .finish(),
        }
    }
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let mut r = reqwest::Client::new().request(method, &url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        anyhow::bail!(
            "the node refused ({status}): {}",
            v["error"]["message"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(v)
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist)", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// Writes `out`.pdf and `out`.svg; returns their paths.
pub fn write_card(out: &Path, input: &CardInput<'_>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let pdf = card::pdf(input).context("the code does not fit a QR code")?;
    let svg = card::svg(input).context("the code does not fit a QR code")?;
    let (p, s) = (out.with_extension("pdf"), out.with_extension("svg"));
    write_new(&p, &pdf)?;
    write_new(&s, svg.as_bytes())?;
    Ok((p, s))
}

#[allow(clippy::print_stdout)]
pub async fn run(cmd: OptoutCommand) -> anyhow::Result<std::process::ExitCode> {
    let base = |n: &str| n.trim_end_matches('/').to_owned();
    match cmd {
        OptoutCommand::Marketing {
            node,
            session,
            undo,
        } => {
            let url = format!("{}/v1/me/marketing-opt-out", base(&node));
            if undo {
                call(reqwest::Method::DELETE, url, Some(&session), None).await?;
                println!("You are opted in again: offers are matched for you. Withdrawn consents stay withdrawn.");
            } else {
                let v = call(reqwest::Method::POST, url, Some(&session), None).await?;
                let withdrawn = v["withdrawn"].as_array().cloned().unwrap_or_default();
                println!(
                    "Opted out of all direct marketing since {}; {} consent(s) withdrawn now:",
                    v["opted_out_since"].as_str().unwrap_or("?"),
                    withdrawn.len()
                );
                for w in withdrawn {
                    println!(
                        "  {} ({}), receipt {}",
                        w["organisation"].as_str().unwrap_or("?"),
                        w["consent_id"].as_str().unwrap_or("?"),
                        w["receipt"].as_str().unwrap_or("")
                    );
                }
            }
        }
        OptoutCommand::Use {
            node,
            api_key,
            code,
        } => {
            let path = if api_key.is_some() {
                "/v1/org/optout"
            } else {
                "/v1/optout"
            };
            call(
                reqwest::Method::POST,
                format!("{}{path}", base(&node)),
                api_key.as_deref(),
                Some(serde_json::json!({ "code": code })),
            )
            .await?;
            println!("Done: the code's member is opted out of all direct marketing.");
        }
        OptoutCommand::Card {
            out,
            node,
            session,
            code,
            recovery_code,
        } => {
            let code = match (code, node.as_deref(), session) {
                (Some(c), _, _) => me2b_crypto::OptOutCode::parse(&c)?.display(),
                (None, Some(n), Some(s)) => {
                    let v = call(
                        reqwest::Method::POST,
                        format!("{}/v1/me/optout-code", base(n)),
                        Some(&s),
                        None,
                    )
                    .await?;
                    v["code"]
                        .as_str()
                        .context("the node sent no code")?
                        .to_owned()
                }
                _ => anyhow::bail!("give --code, or --node and --session to make a new code"),
            };
            let recovery = recovery_code
                .map(|r| me2b_crypto::RecoveryCode::parse(&r).map(|c| c.display()))
                .transpose()?;
            let url = node.as_deref().map(base);
            let (p, s) = write_card(
                &out,
                &CardInput {
                    optout_code: &code,
                    recovery_code: recovery.as_deref(),
                    optout_url: url.as_deref(),
                },
            )?;
            println!("Wrote {} and {}.", p.display(), s.display());
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
