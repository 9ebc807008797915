//! `me2b audit verify`: the chain, every signature, and the signed head file.

use crate::config::Settings;
use anyhow::Context;
use me2b_audit::{ExpectedHead, VerifyReport};
use me2b_crypto::NodeVerifyingKey;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the expected head comes from.
enum HeadSource {
    File(PathBuf),
    Skipped,
}

pub async fn verify(
    settings: &Settings,
    public_key: Option<String>,
    head: Option<PathBuf>,
    no_head_file: bool,
) -> anyhow::Result<ExitCode> {
    let cfg = settings.node_config();
    // Verification reads only: it opens the database, not a node (which would
    // log its own start and move the head file).
    let store = me2b_storage::open(&cfg.database_url())
        .await
        .context("cannot open the database")?;
    let key = crate::node_key(settings, public_key)?;
    let source = match (head, no_head_file) {
        (_, true) => HeadSource::Skipped,
        (Some(f), false) => HeadSource::File(f),
        (None, false) => HeadSource::File(cfg.data_dir.join(me2b_audit::HEAD_FILE)),
    };
    let expected = match &source {
        HeadSource::Skipped => None,
        HeadSource::File(path) => match me2b_audit::head::read(path) {
            Ok(Some(head)) => Some(ExpectedHead {
                head,
                source: path.display().to_string(),
            }),
            Ok(None) => None,
            Err(e) => {
                store.close().await;
                out!("node key      {} (Ed25519)", key.key_id());
                out!("result        FAILED: {e}");
                return Ok(ExitCode::from(1));
            }
        },
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message("verifying the audit log");
    let report = me2b_audit::verify_with(store.as_ref(), &key, expected.as_ref(), &|n| {
        bar.set_message(format!("verified {n} entries"))
    })
    .await?;
    bar.finish_and_clear();
    store.close().await;
    // No head file where one should be: every node writes one, so a log with
    // entries and none is a log whose tail cannot be vouched for.
    let missing = match (&source, &expected) {
        (HeadSource::File(path), None) if report.entries > 0 => Some(path.clone()),
        _ => None,
    };
    print_report(&report, &key, &source, missing.as_deref());
    Ok(if report.ok() && missing.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(
    report: &VerifyReport,
    key: &NodeVerifyingKey,
    source: &HeadSource,
    missing: Option<&std::path::Path>,
) {
    out!("node key      {} (Ed25519)", key.key_id());
    out!("entries       {}", report.entries);
    out!(
        "signed        {} batch heads, {} checkpoints",
        report.signed_heads,
        report.checkpoints
    );
    if let Some((seq, hash)) = &report.head {
        out!("head          #{seq} {hash}");
    }
    if report.sealed_unread > 0 {
        out!(
            "sealed        {} entries sealed at rest: their hashes verified, their content not read (no metadata key)",
            report.sealed_unread
        );
    }
    match (source, report.head_checked) {
        (HeadSource::Skipped, _) => out!(
            "head file     NOT CHECKED (--no-head-file): entries removed from the end of the log would not be noticed"
        ),
        (HeadSource::File(p), Some(seq)) => {
            out!("head file     {}: entry #{seq} present and unchanged", p.display())
        }
        (HeadSource::File(_), None) => {}
    }
    match (&report.first_failure, missing) {
        (Some(f), _) => out!("result        FAILED at entry #{}: {}", f.seq, f.reason),
        (None, Some(p)) => out!(
            "result        FAILED: there is no signed head file at {}, so entries removed from the end of the log cannot be noticed; every node writes one in its data directory (pass --head FILE for a copy kept elsewhere, or --no-head-file to check the rest only)",
            p.display()
        ),
        (None, None) => out!(
            "result        OK: every entry links to the previous one and matches every signed head"
        ),
    }
}
