//! The data trust's transcryptors from the command line:
//!
//! * `me2b trust init`: sets up a federation of N transcryptors and writes one
//!   private file per transcryptor, the public federation file and the node's
//!   links file;
//! * `me2b transcryptor`: runs one transcryptor as its own process, with its
//!   own audit log and master key in its own data directory (so
//!   `me2b audit verify --data-dir DIR` checks it like a node's).

use anyhow::{bail, Context};
use me2b_audit::AuditLog;
use me2b_crypto::{NodeVerifyingKey, OsRandom};
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::{Clock, Random, SystemClock};
use me2b_server::transcryptor::TranscryptorState;
use me2b_trust::link::pep_rng;
use me2b_trust::policy::{Policy, PolicyFile};
use me2b_trust::pseudonym::{setup, Transcryptor, TranscryptorSecrets};
use me2b_trust::remote::{LinkEntry, LinksFile};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// Where `me2b transcryptor` listens by default.
pub const DEFAULT_TRANSCRYPTOR_LISTEN: &str = "127.0.0.1:7100";
/// Most transcryptors `trust init` sets up.
const MAX_TRANSCRYPTORS: usize = 16;
/// The federation's public key material.
pub const FEDERATION_FILE: &str = "federation.json";
/// The node's list of transcryptors and their tokens.
pub const LINKS_FILE: &str = "links.json";
/// The store's meta key naming the transcryptor a data directory belongs to.
const META_TRANSCRYPTOR: &str = "transcryptor";

/// One transcryptor's file (format version 1): its name, the token it expects,
/// its secrets and its access rule. Private: mode 0600.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscryptorFile {
    v: u8,
    name: String,
    token: String,
    /// [`TranscryptorSecrets`] as stored, as a JSON object.
    secrets: serde_json::Value,
    policy: PolicyFile,
}

fn scrub(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
        serde_json::Value::Object(o) => o.values_mut().for_each(scrub),
        _ => {}
    }
}

impl Drop for TranscryptorFile {
    fn drop(&mut self) {
        self.token.zeroize();
        scrub(&mut self.secrets);
    }
}

impl std::fmt::Debug for TranscryptorFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscryptorFile")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn transcryptor_file_name(i: usize) -> String {
    format!("transcryptor-{i}.json")
}

/// Writes a new file (never overwriting one) with `mode` on unix.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).with_context(|| {
        format!(
            "cannot create {} (an existing file is never overwritten)",
            path.display()
        )
    })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn parse_grant_key(hex_key: &str) -> anyhow::Result<NodeVerifyingKey> {
    let bytes = hex::decode(hex_key.trim()).context("--grant-key must be hex")?;
    NodeVerifyingKey::from_bytes(&bytes).context("--grant-key is not an Ed25519 public key")
}

/// `me2b trust init`.
pub fn init(n: usize, out: &Path, grant_key: Option<&str>) -> anyhow::Result<()> {
    if n == 0 || n > MAX_TRANSCRYPTORS {
        bail!("--transcryptors is 1 to {MAX_TRANSCRYPTORS}");
    }
    let grant_key = grant_key.map(parse_grant_key).transpose()?;
    let mut paths: Vec<PathBuf> = vec![out.join(FEDERATION_FILE), out.join(LINKS_FILE)];
    paths.extend((1..=n).map(|i| out.join(transcryptor_file_name(i))));
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        bail!(
            "{} already exists: a federation is set up once; choose another --out",
            p.display()
        );
    }
    me2b_node::create_private_dir(out)?;

    let random = OsRandom;
    let mut rng = pep_rng(&random);
    let (federation, secrets) = setup(n, &mut rng);
    let policy = Policy::standard(grant_key).to_file();

    write_new(&out.join(FEDERATION_FILE), &federation.to_json(), 0o644)?;
    let mut links = LinksFile {
        v: 1,
        transcryptors: Vec::with_capacity(n),
    };
    let mut written = Vec::new();
    for (i, s) in (1..=n).zip(secrets) {
        let name = format!("transcryptor-{i}");
        let mut token = Zeroizing::new([0u8; 32]);
        random.fill(token.as_mut());
        let token = Zeroizing::new(hex::encode(token.as_ref()));
        let secrets_json = s.to_json();
        let file = TranscryptorFile {
            v: 1,
            name: name.clone(),
            token: token.to_string(),
            secrets: serde_json::from_str(&secrets_json)
                .context("the transcryptor secrets did not serialise")?,
            policy: policy.clone(),
        };
        let text = Zeroizing::new(
            serde_json::to_string_pretty(&file).context("cannot serialise a transcryptor file")?,
        );
        let path = out.join(transcryptor_file_name(i));
        write_new(&path, &text, 0o600)?;
        written.push(path);
        links.transcryptors.push(LinkEntry {
            name,
            url: "http://127.0.0.1:PORT-to-fill".into(),
            token: token.to_string(),
        });
    }
    write_new(&out.join(LINKS_FILE), &links.to_json(), 0o600)?;

    out!(
        "federation    {} (public: the global key and the blinded secret key)",
        out.join(FEDERATION_FILE).display()
    );
    for p in &written {
        out!("transcryptor  {} (secret, mode 0600)", p.display());
    }
    out!(
        "links         {} (secret: holds each transcryptor's token; mode 0600)",
        out.join(LINKS_FILE).display()
    );
    out!();
    out!("Give each transcryptor file to its operator only, and start it with");
    out!("  me2b transcryptor --config transcryptor-N.json --data-dir DIR --listen ADDR");
    out!("The urls in {LINKS_FILE} are placeholders (http://127.0.0.1:PORT-to-fill): edit each");
    out!("to where that transcryptor listens before the node uses the file.");
    match &grant_key {
        Some(k) => out!("Consent grants signed by node key {} open co-op → co-op pairs.", k.key_id()),
        None => out!(
            "No --grant-key: co-op → co-op sharing stays refused until the node's public key is set as grant_key in every transcryptor file's policy."
        ),
    }
    Ok(())
}

/// Reads a transcryptor file, refusing one that others can read.
fn load_file(path: &Path) -> anyhow::Result<(String, Zeroizing<String>, Transcryptor)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} holds a transcryptor's secrets but is readable by group or others (mode {mode:o}): run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    anyhow::ensure!(meta.len() <= 1 << 20, "{} is too large", path.display());
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    // The parse error would quote the file: do not show it.
    let Ok(file) = serde_json::from_str::<TranscryptorFile>(&text) else {
        bail!(
            "{} is not a transcryptor file (written by `me2b trust init`)",
            path.display()
        );
    };
    anyhow::ensure!(
        file.v == 1,
        "{}: unsupported transcryptor file format version {}",
        path.display(),
        file.v
    );
    anyhow::ensure!(
        !file.name.is_empty() && file.name.len() <= 64,
        "{}: the name is 1 to 64 characters",
        path.display()
    );
    anyhow::ensure!(
        file.token.len() >= 32,
        "{}: the token is at least 32 characters",
        path.display()
    );
    let secrets_json = Zeroizing::new(serde_json::to_string(&file.secrets).unwrap_or_default());
    let secrets = TranscryptorSecrets::from_json(&secrets_json)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let policy = Policy::from_file(&file.policy)
        .map_err(|e| anyhow::anyhow!("{}: policy: {e}", path.display()))?;
    Ok((
        file.name.clone(),
        Zeroizing::new(file.token.clone()),
        Transcryptor::with_policy(secrets, policy),
    ))
}

/// `me2b transcryptor`.
pub async fn run_transcryptor(
    config: Option<&Path>,
    data_dir: Option<&Path>,
    listen: Option<SocketAddr>,
    limits: me2b_server::ConnLimits,
) -> anyhow::Result<()> {
    let Some(config) = config else {
        bail!("--config FILE is required: the transcryptor file written by `me2b trust init`");
    };
    let Some(data_dir) = data_dir else {
        bail!("--data-dir DIR is required: the transcryptor's own audit log and master key live there");
    };
    let listen = match listen {
        Some(l) => l,
        None => DEFAULT_TRANSCRYPTOR_LISTEN.parse()?,
    };
    let (name, token, transcryptor) = load_file(config)?;

    me2b_node::create_private_dir(data_dir)?;
    let url = format!(
        "sqlite://{}",
        data_dir.join(me2b_node::SQLITE_FILE).display()
    );
    let store = me2b_storage::open(&url)
        .await
        .context("cannot open the transcryptor's database")?;
    match store.meta(META_TRANSCRYPTOR).await? {
        Some(stored) if stored != name.as_bytes() => bail!(
            "{} belongs to transcryptor `{}`, not `{name}`",
            data_dir.display(),
            String::from_utf8_lossy(&stored)
        ),
        Some(_) => {}
        None if store.meta(me2b_node::META_KEY_CHECK).await?.is_some() => bail!(
            "{} holds a node's database, not a transcryptor's: give the transcryptor its own --data-dir",
            data_dir.display()
        ),
        None => {}
    }
    let key_path = data_dir.join(me2b_node::MASTER_KEY_FILE);
    let (keys, created) = me2b_node::open_keyring(store.as_ref(), &key_path, &OsRandom)
        .await
        .context("the transcryptor's master key")?;
    // A database seen for the first time becomes this transcryptor's (checked
    // above: one with a key check but no name is a node's).
    store
        .put_meta_if_absent(META_TRANSCRYPTOR, name.as_bytes())
        .await?;
    if created {
        tracing::warn!(path = %key_path.display(), "created a new master key for the transcryptor's audit log: back it up");
    }

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = AuditLog::start_with_head_file(
        store.clone(),
        clock.clone(),
        keys.clone(),
        1000,
        &data_dir.join(me2b_audit::HEAD_FILE),
    )
    .await?;
    let mut events = Vec::new();
    if created {
        events.push(
            AuditEvent::new(Actor::Node, Action::MasterKeyCreate)
                .object(keys.verifying_key().key_id()),
        );
    }
    events.push(AuditEvent::new(Actor::Node, Action::NodeStart).object(&name));
    audit.record_all(events).await?;

    let state = TranscryptorState::new(
        name.clone(),
        transcryptor,
        &token,
        audit.clone(),
        clock,
        Arc::new(OsRandom),
    );
    drop(token);
    let shutdown = crate::shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    out!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(transcryptor = %name, audit_key = %keys.verifying_key().key_id(), "transcryptor started");

    let integrity = me2b_node::spawn_integrity_check(store.clone());
    let served = me2b_server::transcryptor::serve(listener, state, limits, shutdown).await;
    integrity.abort();
    if let Err(e) = audit.checkpoint_now().await {
        tracing::error!(error = %e, "could not sign the audit checkpoint at shutdown");
    }
    store.close().await;
    served.context("the transcryptor's server failed")?;
    tracing::info!(transcryptor = %name, "stopped cleanly");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_private_files_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fed");
        init(2, &out, None).unwrap();
        for f in ["transcryptor-1.json", "transcryptor-2.json", LINKS_FILE] {
            let p = out.join(f);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{f}");
            }
            assert!(p.exists());
        }
        let (name, token, t) = load_file(&out.join("transcryptor-2.json")).unwrap();
        assert_eq!(name, "transcryptor-2");
        assert_eq!(token.len(), 64);
        assert!(!format!("{t:?}").contains(token.as_str()));
        let links =
            LinksFile::from_json(&std::fs::read_to_string(out.join(LINKS_FILE)).unwrap()).unwrap();
        assert_eq!(links.transcryptors[1].token, token.as_str());
        assert!(me2b_trust::pseudonym::Federation::from_json(
            &std::fs::read_to_string(out.join(FEDERATION_FILE)).unwrap()
        )
        .is_ok());
        // Never overwritten, and nothing half-written.
        let err = init(2, &out, None).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(init(0, &dir.path().join("x"), None).is_err());
        assert!(init(1, &dir.path().join("y"), Some("zz")).is_err());
    }

    /// A transcryptor file whose access rule could open a co-op → co-op pair
    /// without a grant (issue 12) does not load.
    #[test]
    fn wildcard_coop_rules_in_a_transcryptor_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        init(1, dir.path(), None).unwrap();
        let p = dir.path().join("transcryptor-1.json");
        let original = std::fs::read_to_string(&p).unwrap();
        assert!(load_file(&p).is_ok());
        for rule in [
            ["*", "coop:*"],
            ["coop:*", "*"],
            ["*", "*"],
            ["c*", "coop:b"],
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
            v["policy"]["allow"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!(rule));
            std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
            let err = load_file(&p).unwrap_err();
            assert!(err.to_string().contains("policy"), "{rule:?}: {err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn readable_transcryptor_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        init(1, dir.path(), None).unwrap();
        let p = dir.path().join("transcryptor-1.json");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_file(&p).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
