//! The node's public key (given, or derived from the master key) and
//! `me2b verify-receipt`: checks a signed consent receipt offline.

use crate::config::Settings;
use anyhow::Context;
use me2b_crypto::{Keyring, MasterKey, NodeVerifyingKey};

pub(crate) fn node_key(
    settings: &Settings,
    public_key: Option<String>,
) -> anyhow::Result<NodeVerifyingKey> {
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

pub(crate) fn verify_receipt(
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
