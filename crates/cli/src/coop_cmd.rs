//! `me2b coop`: a co-op's side of the data trust, on the command line. The
//! node never holds a co-op's domain keys: the co-op fetches its own, opens
//! its members' cards with them, and seals its pseudonyms afresh for each
//! submission.

use crate::CoopCommand;
use anyhow::{bail, Context};
use me2b_coop::CoopKeys;
use me2b_crypto::OsRandom;
use me2b_domain::OrgId;
use me2b_trust::pseudonym::Federation;
use me2b_trust::remote::{LinksFile, RemoteLink};
use std::process::ExitCode;

pub async fn run(cmd: &CoopCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CoopCommand::Keys {
            org,
            out,
            node,
            api_key,
            federation,
            links,
        } => {
            let org: OrgId = org.parse().context("--org is an organisation id")?;
            let keys = match (node, federation) {
                (Some(node), None) => {
                    anyhow::ensure!(
                        links.is_empty(),
                        "--link goes with --federation, not --node"
                    );
                    let key = api_key
                        .as_deref()
                        .context("--api-key (or ME2B_API_KEY) is required with --node")?;
                    CoopKeys::fetch_from_node(node, key, org)
                        .await
                        .context("the node did not give the co-op's keys")?
                }
                (None, Some(path)) => {
                    let fed = Federation::from_json(
                        &std::fs::read_to_string(path)
                            .with_context(|| format!("cannot read {}", path.display()))?,
                    )
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    let links = read_links(links)?;
                    CoopKeys::fetch_from_transcryptors(&fed, org, &links)
                        .await
                        .context("the transcryptors did not all give the co-op its share")?
                }
                _ => bail!(
                    "give --node (embedded trust) or --federation with one --link per transcryptor"
                ),
            };
            keys.save(out)?;
            out!(
                "the co-op's keys are in {} (mode 0600): keep them private",
                out.display()
            );
        }
        CoopCommand::OpenCard { keys, card } => {
            out!("{}", CoopKeys::load(keys)?.open_card(card)?);
        }
        CoopCommand::Seal { keys, pseudonym } => {
            out!("{}", CoopKeys::load(keys)?.seal(pseudonym, &OsRandom)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The links in the files `me2b transcryptor add-coop` wrote (or a links
/// file naming several), in order. They hold tokens: others may not read them.
fn read_links(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<RemoteLink>> {
    if files.is_empty() {
        bail!("give one --link FILE per transcryptor (written by `me2b transcryptor add-coop`)");
    }
    let mut out = Vec::new();
    for path in files {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .permissions()
                .mode();
            anyhow::ensure!(
                mode & 0o077 == 0,
                "{} holds the co-op's token but group or others can read it: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
        let file =
            LinksFile::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        out.extend(
            file.links()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        );
    }
    Ok(out)
}
