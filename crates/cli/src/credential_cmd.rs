//! `me2b credential verify`: checks a member's presentation offline, with the
//! verifier's own challenge and the federation's published key; no node
//! needed. The issuing co-op is shown only when the member disclosed it (the
//! challenge named co-ops).

use anyhow::Context;
use me2b_credentials::service::IssuerDocument;
use me2b_credentials::status::BitstringStatusList;
use me2b_credentials::{
    default_bbs, verify_presentation, Challenge, CredentialError, Epoch, Presentation, StatusLists,
    VerifiedClaims,
};
use me2b_domain::Timestamp;
use std::path::Path;

/// Largest issuer document or status list read (a status list of 131,072
/// entries is a few KiB; the cap only stops a wrong file).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        meta.len() <= MAX_FILE_BYTES,
        "{} is too large ({} bytes)",
        path.display(),
        meta.len()
    );
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The inputs of an offline verification, as the verifier holds them.
pub struct Inputs<'a> {
    pub challenge: &'a [u8],
    pub presentation: &'a [u8],
    pub issuers: &'a [u8],
    pub status: Option<&'a [u8]>,
}

/// Verifies; the outer error is a file the verifier itself got wrong (its
/// challenge, the issuer document, the status list), the inner one the
/// presentation's fault.
pub fn verify(
    inputs: &Inputs<'_>,
    now: Timestamp,
) -> anyhow::Result<Result<VerifiedClaims, CredentialError>> {
    let challenge = Challenge::parse(inputs.challenge).context("the challenge file")?;
    let doc: IssuerDocument = serde_json::from_slice(inputs.issuers).context("the issuers file")?;
    let keys = doc.keys().context("the issuers file")?;
    let presentation = match Presentation::parse(inputs.presentation) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let mut lists = StatusLists::new();
    if let Some(bytes) = inputs.status {
        let subject: BitstringStatusList =
            serde_json::from_slice(bytes).context("the status list file")?;
        lists.insert(
            presentation.issuer_key_id().clone(),
            subject.list().context("the status list file")?,
        );
    }
    Ok(verify_presentation(
        default_bbs(),
        &challenge,
        &presentation,
        &keys,
        &lists,
        Epoch::containing(now),
    ))
}

/// The command: prints VALID and the disclosed claims, or INVALID and why
/// (exit status 1).
pub fn run(
    challenge: &Path,
    presentation: &Path,
    issuers: &Path,
    status: Option<&Path>,
    now: Timestamp,
) -> anyhow::Result<std::process::ExitCode> {
    let status = status.map(read).transpose()?;
    let (c, p, i) = (read(challenge)?, read(presentation)?, read(issuers)?);
    let inputs = Inputs {
        challenge: &c,
        presentation: &p,
        issuers: &i,
        status: status.as_deref(),
    };
    match verify(&inputs, now)? {
        Ok(v) => {
            out!("VALID presentation, issuer key {}", v.issuer_key_id());
            match v.issuer() {
                Some(org) => {
                    let doc: IssuerDocument = serde_json::from_slice(&i)?;
                    out!(
                        "  issued by co-op {}",
                        doc.coop_name(org).unwrap_or("(not in the issuers file)")
                    );
                }
                None => out!("  issued by a co-op of the federation (which one was not disclosed)"),
            }
            for (name, value) in v.disclosed() {
                out!("  {:<16} {}", name.as_str(), value.as_str());
            }
            out!("Nothing else about the member was disclosed. Use each challenge once: keep its nonce");
            out!("and refuse a second presentation for it.");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            out!("INVALID ({}): {e}", e.code());
            Ok(std::process::ExitCode::from(1))
        }
    }
}
