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
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
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

/// One transcryptor's file (format version 1): its name, the node's token,
/// its secrets, its access rule, the co-ops it gives their own key share to,
/// and its TLS certificate and key. Private: mode 0600.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscryptorFile {
    v: u8,
    name: String,
    token: String,
    /// [`TranscryptorSecrets`] as stored, as a JSON object.
    secrets: serde_json::Value,
    policy: PolicyFile,
    /// Registered co-ops: organisation id → SHA-256 (hex) of its token here.
    #[serde(default)]
    coops: std::collections::BTreeMap<String, String>,
    /// The certificate and key it serves TLS with (an https:// url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls: Option<TlsFile>,
}

/// A transcryptor's TLS certificate and private key, PEM.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_pem: String,
    key_pem: String,
}

impl Drop for TlsFile {
    fn drop(&mut self) {
        self.key_pem.zeroize();
    }
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

/// The node's public key as the node publishes it: the JSON of
/// `GET /.well-known/me2b/node-keys` (a JWK set with one Ed25519 key), one
/// JWK, its `x` (base64url), or hex.
pub fn parse_grant_key(text: &str) -> anyhow::Result<NodeVerifyingKey> {
    use base64::Engine as _;
    let text = text.trim();
    let x = if text.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).context("--grant-key: not the node's key JSON")?;
        let jwk = match v.get("keys").and_then(|k| k.as_array()) {
            Some(keys) if keys.len() == 1 => &keys[0],
            Some(_) => bail!("--grant-key: the key set must hold exactly one key"),
            None => &v,
        };
        anyhow::ensure!(
            jwk["kty"] == "OKP" && jwk["crv"] == "Ed25519",
            "--grant-key: not an Ed25519 key (kty OKP, crv Ed25519)"
        );
        jwk["x"]
            .as_str()
            .context("--grant-key: the key has no `x`")?
            .to_owned()
    } else {
        text.to_owned()
    };
    let bytes = if x.len() == 64 && x.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(&x).context("--grant-key: bad hex")?
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(x.trim_end_matches('='))
            .context("--grant-key: neither hex nor base64url")?
    };
    NodeVerifyingKey::from_bytes(&bytes).context("--grant-key is not an Ed25519 public key")
}

/// The host of a transcryptor url, for its certificate.
fn url_host(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .context("a transcryptor url starts with https:// (or http:// on loopback)")?;
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
        None => rest.split([':', '/']).next().unwrap_or("").to_owned(),
    };
    anyhow::ensure!(!host.is_empty(), "{url}: no host");
    Ok(host)
}

/// A self-signed certificate for `host` (its DER, for pinning) and the PEMs.
fn self_signed(host: &str) -> anyhow::Result<(Vec<u8>, TlsFile)> {
    let ck = rcgen::generate_simple_self_signed(vec![host.to_owned()])
        .context("cannot make the transcryptor's TLS certificate")?;
    Ok((
        ck.cert.der().to_vec(),
        TlsFile {
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
        },
    ))
}

/// `me2b trust init`: `urls` gives where each transcryptor will listen, in
/// chain order (default: loopback, http://127.0.0.1:7101 onwards); an
/// https:// url gets a self-signed certificate, pinned in the links.
pub fn init(n: usize, out: &Path, grant_key: &str, urls: &[String]) -> anyhow::Result<()> {
    if n == 0 || n > MAX_TRANSCRYPTORS {
        bail!("--transcryptors is 1 to {MAX_TRANSCRYPTORS}");
    }
    let grant_key = parse_grant_key(grant_key)?;
    let urls: Vec<String> = if urls.is_empty() {
        (1..=n)
            .map(|i| format!("http://127.0.0.1:{}", 7100 + i))
            .collect()
    } else {
        anyhow::ensure!(
            urls.len() == n,
            "give one --url per transcryptor ({n}), in chain order"
        );
        urls.iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect()
    };
    // Every url must make a working link: https, or http on loopback.
    for u in &urls {
        if u.starts_with("http://") {
            me2b_trust::remote::RemoteLink::new("check", u, "check")
                .map_err(|e| anyhow::anyhow!("{u}: {e}"))?;
        } else {
            url_host(u)?;
        }
    }
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
    let policy = Policy::standard(Some(grant_key)).to_file();

    write_new(&out.join(FEDERATION_FILE), &federation.to_json(), 0o644)?;
    let mut links = LinksFile {
        v: 1,
        transcryptors: Vec::with_capacity(n),
    };
    let mut written = Vec::new();
    for ((i, s), url) in (1..=n).zip(secrets).zip(&urls) {
        let name = format!("transcryptor-{i}");
        let mut token = Zeroizing::new([0u8; 32]);
        random.fill(token.as_mut());
        let token = Zeroizing::new(hex::encode(token.as_ref()));
        let (cert, tls) = if url.starts_with("https://") {
            let (der, tls) = self_signed(&url_host(url)?)?;
            (Some(der), Some(tls))
        } else {
            (None, None)
        };
        let secrets_json = s.to_json();
        let file = TranscryptorFile {
            v: 1,
            name: name.clone(),
            token: token.to_string(),
            secrets: serde_json::from_str(&secrets_json)
                .context("the transcryptor secrets did not serialise")?,
            policy: policy.clone(),
            coops: Default::default(),
            tls,
        };
        let text = Zeroizing::new(
            serde_json::to_string_pretty(&file).context("cannot serialise a transcryptor file")?,
        );
        let path = out.join(transcryptor_file_name(i));
        write_new(&path, &text, 0o600)?;
        written.push(path);
        use base64::Engine as _;
        links.transcryptors.push(LinkEntry {
            name,
            url: url.clone(),
            token: token.to_string(),
            cert: cert.map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
        });
    }
    write_new(&out.join(LINKS_FILE), &links.to_json(), 0o600)?;

    out!(
        "federation    {} (public: the global key and the blinded secret key)",
        out.join(FEDERATION_FILE).display()
    );
    for (p, u) in written.iter().zip(&urls) {
        out!(
            "transcryptor  {} (secret, mode 0600), to listen at {u}",
            p.display()
        );
    }
    out!(
        "links         {} (secret: each transcryptor's url, token and pinned certificate; mode 0600)",
        out.join(LINKS_FILE).display()
    );
    out!();
    out!("Give each transcryptor file to its operator only, and start it with");
    out!("  me2b transcryptor --config transcryptor-N.json --data-dir DIR --listen ADDR");
    out!("Register each co-op with every transcryptor:");
    out!("  me2b transcryptor --config transcryptor-N.json add-coop --org ORG_ID --url URL --out FILE");
    out!("and give the co-op the files: with them it fetches its own domain's keys");
    out!("(`me2b coop keys --federation federation.json --link FILE ...`), which the node never holds.");
    out!(
        "Grants signed by node key {} open co-op → co-op pairs (with a member's consent) and moves",
        grant_key.key_id()
    );
    out!("out of the origin (for a member's own request).");
    Ok(())
}

/// `me2b transcryptor add-coop`: registers a co-op with one transcryptor and
/// writes the co-op's link to it (url, pinned certificate, token) to `out`,
/// a new private file: the token is shown nowhere else and only its SHA-256
/// is kept.
pub fn add_coop(config: &Path, org: &str, url: &str, out: &Path) -> anyhow::Result<()> {
    let org: me2b_domain::OrgId = org.parse().context("--org is an organisation id")?;
    let url = url.trim_end_matches('/');
    let text = Zeroizing::new(read_private(config)?);
    let Ok(mut file) = serde_json::from_str::<TranscryptorFile>(&text) else {
        bail!(
            "{} is not a transcryptor file (written by `me2b trust init`)",
            config.display()
        );
    };
    anyhow::ensure!(
        !file.coops.contains_key(&org.to_string()),
        "{org} is already registered with {}: a co-op keeps its one token",
        file.name
    );
    anyhow::ensure!(
        url.starts_with("https://") == file.tls.is_some(),
        "{} serves {}: give its https:// url",
        file.name,
        if file.tls.is_some() {
            "TLS"
        } else {
            "plain http on loopback"
        }
    );
    let cert = file
        .tls
        .as_ref()
        .map(|t| {
            CertificateDer::pem_slice_iter(t.cert_pem.as_bytes())
                .next()
                .and_then(Result::ok)
                .map(|der| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(der.as_ref())
                })
                .context("the transcryptor's certificate is not PEM")
        })
        .transpose()?;
    let mut raw = Zeroizing::new([0u8; 32]);
    OsRandom.fill(raw.as_mut());
    let token = Zeroizing::new(hex::encode(raw.as_ref()));
    let link = LinksFile {
        v: 1,
        transcryptors: vec![LinkEntry {
            name: file.name.clone(),
            url: url.to_owned(),
            token: token.to_string(),
            cert,
        }],
    };
    // The link must work before anything is written.
    link.links()
        .map_err(|e| anyhow::anyhow!("--url {url}: {e}"))?;
    write_new(out, &link.to_json(), 0o600)?;
    file.coops.insert(
        org.to_string(),
        hex::encode(me2b_crypto::hash_token(&token)),
    );
    let updated = Zeroizing::new(
        serde_json::to_string_pretty(&file).context("cannot serialise the transcryptor file")?,
    );
    let tmp = config.with_extension("json.new");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, &updated, 0o600)?;
    std::fs::rename(&tmp, config)
        .with_context(|| format!("cannot replace {}", config.display()))?;
    out!(
        "{org} registered with {}; its link (with its token here) is in {} (mode 0600).",
        file.name,
        out.display()
    );
    out!("Restart the transcryptor to take it in, and give the co-op that file over a safe");
    out!("channel: with it the co-op fetches its own key share here (`me2b coop keys`), nothing else.");
    Ok(())
}

/// Reads a private file (a transcryptor's, with secrets), refusing one that
/// others can read.
fn read_private(path: &Path) -> anyhow::Result<String> {
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
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A transcryptor file, loaded.
struct Loaded {
    name: String,
    token: Zeroizing<String>,
    transcryptor: Transcryptor,
    coops: Vec<(me2b_domain::OrgId, me2b_crypto::TokenHash)>,
    tls: Option<TlsFile>,
}

/// Reads a transcryptor file, refusing one that others can read.
fn load_file(path: &Path) -> anyhow::Result<Loaded> {
    let text = Zeroizing::new(read_private(path)?);
    // The parse error would quote the file: do not show it.
    let Ok(mut file) = serde_json::from_str::<TranscryptorFile>(&text) else {
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
    let mut coops = Vec::with_capacity(file.coops.len());
    for (org, hash) in &file.coops {
        let org = org.parse().map_err(|_| {
            anyhow::anyhow!("{}: a co-op id is not an organisation id", path.display())
        })?;
        let mut h = [0u8; 32];
        hex::decode_to_slice(hash, &mut h).map_err(|_| {
            anyhow::anyhow!("{}: a co-op's token hash is not 64 hex", path.display())
        })?;
        coops.push((org, h));
    }
    Ok(Loaded {
        name: file.name.clone(),
        token: Zeroizing::new(file.token.clone()),
        transcryptor: Transcryptor::with_policy(secrets, policy),
        coops,
        tls: file.tls.take(),
    })
}

/// The TLS acceptor of a transcryptor's certificate and key.
fn tls_acceptor(tls: &TlsFile) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the transcryptor's certificate is not PEM")?;
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes())
        .context("the transcryptor file holds no TLS key in PEM")?;
    // The one crypto provider built in (ring: the workspace enables no other).
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the transcryptor's certificate and key do not match")?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
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
    let Loaded {
        name,
        token,
        transcryptor,
        coops,
        tls,
    } = load_file(config)?;
    let acceptor = tls.as_ref().map(tls_acceptor).transpose()?;

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
    // Its audit events are sealed at rest as a node's are (adv7).
    store.set_metadata_keys(Arc::new(keys.metadata_keys(Arc::new(OsRandom))));
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
        coops,
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
    out!(
        "listening on {}://{addr}",
        if acceptor.is_some() { "https" } else { "http" }
    );
    let _ = std::io::stdout().flush();
    tracing::info!(transcryptor = %name, audit_key = %keys.verifying_key().key_id(), "transcryptor started");

    let integrity = me2b_node::spawn_integrity_check(store.clone());
    let served =
        me2b_server::transcryptor::serve(listener, state, limits, acceptor, shutdown).await;
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

    /// A node key, as the node publishes it at /.well-known/me2b/node-keys.
    fn grant_key() -> String {
        let key = me2b_crypto::Keyring::derive(&me2b_crypto::MasterKey::generate(&OsRandom));
        let x = {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())
        };
        serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]}).to_string()
    }

    #[test]
    fn init_writes_private_files_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fed");
        let key = grant_key();
        init(2, &out, &key, &[]).unwrap();
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
        let Ok(loaded) = load_file(&out.join("transcryptor-2.json")) else {
            panic!("the file did not load");
        };
        assert_eq!(loaded.name, "transcryptor-2");
        assert_eq!(loaded.token.len(), 64);
        assert!(!format!("{:?}", loaded.transcryptor).contains(loaded.token.as_str()));
        assert!(loaded.coops.is_empty() && loaded.tls.is_none());
        let links =
            LinksFile::from_json(&std::fs::read_to_string(out.join(LINKS_FILE)).unwrap()).unwrap();
        assert_eq!(links.transcryptors[1].token, loaded.token.as_str());
        assert_eq!(links.transcryptors[1].url, "http://127.0.0.1:7102");
        assert!(me2b_trust::pseudonym::Federation::from_json(
            &std::fs::read_to_string(out.join(FEDERATION_FILE)).unwrap()
        )
        .is_ok());
        // Never overwritten, and nothing half-written.
        let err = init(2, &out, &key, &[]).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(init(0, &dir.path().join("x"), &key, &[]).is_err());
        // A grant key is required and must be one.
        assert!(init(1, &dir.path().join("y"), "zz", &[]).is_err());
        assert!(!dir.path().join("y").exists());
        // One url per transcryptor; plain http only on loopback.
        let err = init(
            2,
            &dir.path().join("z"),
            &key,
            &["https://a.example".into()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("one --url"), "{err}");
        let err = init(
            1,
            &dir.path().join("z"),
            &key,
            &["http://t1.example:7101".into()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("t1.example"), "{err}");
        assert!(!dir.path().join("z").exists());
    }

    /// An https url gets a self-signed certificate for its host, its key in
    /// the transcryptor's file and its DER pinned in the links.
    #[test]
    fn https_urls_get_pinned_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let urls = vec![
            "https://t1.example:7101/".to_owned(),
            "https://[::1]:7102".to_owned(),
        ];
        init(2, dir.path(), &grant_key(), &urls).unwrap();
        let links =
            LinksFile::from_json(&std::fs::read_to_string(dir.path().join(LINKS_FILE)).unwrap())
                .unwrap();
        assert_eq!(links.transcryptors[0].url, "https://t1.example:7101");
        for (i, entry) in links.transcryptors.iter().enumerate() {
            assert!(entry.cert.is_some(), "{i}");
            assert!(entry.link().is_ok(), "{i}");
            let Ok(loaded) = load_file(&dir.path().join(transcryptor_file_name(i + 1))) else {
                panic!("transcryptor {i} did not load");
            };
            let tls = loaded.tls.as_ref().unwrap();
            assert!(tls_acceptor(tls).is_ok());
        }
    }

    #[test]
    fn grant_keys_parse_in_every_published_form() {
        let key = me2b_crypto::Keyring::derive(&me2b_crypto::MasterKey::generate(&OsRandom))
            .verifying_key();
        let bytes = key.to_bytes();
        use base64::Engine as _;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        for text in [
            hex::encode(bytes),
            x.clone(),
            jwk.to_string(),
            serde_json::json!({"keys": [jwk]}).to_string(),
        ] {
            assert_eq!(parse_grant_key(&text).unwrap().to_bytes(), bytes, "{text}");
        }
        let two = serde_json::json!({"keys": [jwk, jwk]}).to_string();
        assert!(parse_grant_key(&two).is_err());
        let rsa = serde_json::json!({"kty": "RSA", "n": "x"}).to_string();
        assert!(parse_grant_key(&rsa).is_err());
        assert!(parse_grant_key("not a key").is_err());
    }

    /// `add-coop` registers a co-op once, keeps only its token's hash and
    /// keeps the file private.
    #[test]
    fn add_coop_keeps_only_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        init(1, dir.path(), &grant_key(), &[]).unwrap();
        let p = dir.path().join("transcryptor-1.json");
        let org = me2b_domain::OrgId::generate(&OsRandom);
        let link = dir.path().join("coop-link.json");
        // The url must match how the transcryptor serves (here plain http).
        let err = add_coop(&p, &org.to_string(), "https://t1.example", &link).unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
        assert!(!link.exists());
        add_coop(&p, &org.to_string(), "http://127.0.0.1:7101", &link).unwrap();
        let links = LinksFile::from_json(&std::fs::read_to_string(&link).unwrap()).unwrap();
        let token = links.transcryptors[0].token.clone();
        assert_eq!(links.transcryptors[0].name, "transcryptor-1");
        assert!(
            !std::fs::read_to_string(&p).unwrap().contains(&token),
            "only the hash is kept"
        );
        let Ok(loaded) = load_file(&p) else {
            panic!("the file did not load after add-coop");
        };
        assert_eq!(loaded.coops.len(), 1);
        assert_eq!(loaded.coops[0].0, org);
        assert_eq!(loaded.coops[0].1, me2b_crypto::hash_token(&token));
        let again = dir.path().join("again.json");
        let err = add_coop(&p, &org.to_string(), "http://127.0.0.1:7101", &again).unwrap_err();
        assert!(err.to_string().contains("already registered"), "{err}");
        assert!(add_coop(&p, "not-an-org", "http://127.0.0.1:7101", &again).is_err());
        assert!(!again.exists());
        #[cfg(unix)]
        for f in [&p, &link] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    /// A transcryptor file whose access rule could open a co-op → co-op pair
    /// without a grant (issue 12) does not load.
    #[test]
    fn wildcard_coop_rules_in_a_transcryptor_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        init(1, dir.path(), &grant_key(), &[]).unwrap();
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
            let Err(err) = load_file(&p) else {
                panic!("{rule:?} loaded");
            };
            assert!(err.to_string().contains("policy"), "{rule:?}: {err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn readable_transcryptor_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        init(1, dir.path(), &grant_key(), &[]).unwrap();
        let p = dir.path().join("transcryptor-1.json");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let Err(err) = load_file(&p) else {
            panic!("a readable file loaded");
        };
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
