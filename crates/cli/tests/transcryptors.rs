//! Three `me2b transcryptor` processes set up by `me2b trust init`, driven
//! over HTTPS (pinned certificates) with the trust library: pseudonyms are
//! stable within a domain and unlinkable across domains, a co-op's domain
//! keys go to that co-op only, a move out of the origin needs the member's
//! request and co-op → co-op a signed grant, every transcryptor is needed, a
//! dead one stops the chain, and each keeps its own verifiable audit log.
//! Then a node on three processes, its co-ops on their own keys, and the
//! node's operator with one transcryptor's secrets trying to link cards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod signup;

use me2b_crypto::{Keyring, MasterKey, OsRandom};
use me2b_domain::{Clock, OrgId, SystemClock};
use me2b_trust::domain::{Domain, Requester};
use me2b_trust::link::{run_chain, TranscryptorLink};
use me2b_trust::policy::{Grant, SignedGrant, MEMBER_REQUEST};
use me2b_trust::pseudonym::{DomainClient, EncryptedPseudonym, Federation, ORIGIN, RESEARCH};
use me2b_trust::remote::{LinksFile, RemoteLink};
use me2b_trust::wire::{Item, TranscryptRequest};
use me2b_trust::TrustError;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_me2b");

fn me2b() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

/// A running transcryptor; killed (SIGKILL) on drop if still running.
struct Proc {
    name: String,
    child: Option<Child>,
    base: String,
    data_dir: PathBuf,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Proc {
    /// SIGTERM, then waits (at most 30 s) for the exit status.
    fn term(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("already stopped");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop on SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `me2b transcryptor` on port 0 and reads its "listening on" line.
fn start(i: usize, fed_dir: &Path, root: &Path) -> Proc {
    let name = format!("transcryptor-{i}");
    let data_dir = root.join(format!("t{i}"));
    let log = root.join(format!("t{i}.log"));
    let logf = std::fs::File::create(&log).unwrap();
    let mut child = me2b()
        .arg("transcryptor")
        .arg("--config")
        .arg(fed_dir.join(format!("{name}.json")))
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(logf)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut proc = Proc {
        name,
        child: Some(child),
        base: String::new(),
        data_dir,
        log,
    };
    let Some(base) = line.trim_end().strip_prefix("listening on ") else {
        panic!(
            "no listening line from {}: {line:?} (log: {})",
            proc.name,
            std::fs::read_to_string(&proc.log).unwrap_or_default()
        );
    };
    proc.base = base.to_owned();
    proc
}

/// `me2b transcryptor --config FED/transcryptor-I.json add-coop`: the co-op's
/// link file to that transcryptor.
fn add_coop(i: usize, fed_dir: &Path, org: OrgId, url: &str, out: &Path) {
    let done = me2b()
        .arg("transcryptor")
        .arg("--config")
        .arg(fed_dir.join(format!("transcryptor-{i}.json")))
        .args(["add-coop", "--org", &org.to_string(), "--url", url, "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let text = String::from_utf8_lossy(&done.stdout);
    let link = LinksFile::from_json(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert!(
        !text.contains(&link.transcryptors[0].token),
        "the token is only in the file"
    );
}

/// Points a links file's entries at where the processes listen (they start
/// on port 0), keeping each pinned certificate.
fn repoint(path: &Path, procs: &[&Proc]) {
    let mut links = LinksFile::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    for entry in links.transcryptors.iter_mut() {
        let p = procs.iter().find(|p| p.name == entry.name).unwrap();
        entry.url = p.base.clone();
    }
    std::fs::write(path, links.to_json().as_bytes()).unwrap();
}

/// A grant attesting that the member asked for their pseudonym to leave the
/// origin for `to`, signed by `keys` (the node's, or a forger's).
fn member_request(keys: &Keyring, to: &str) -> SignedGrant {
    Grant {
        v: 1,
        consent: MEMBER_REQUEST.into(),
        purpose: "card".into(),
        from: ORIGIN.into(),
        to: to.into(),
        expires_at_ms: SystemClock.now().unix_millis() + 300_000,
    }
    .sign(keys)
}

fn request(
    from: &str,
    to: &str,
    items: Vec<Item>,
    grant: Option<me2b_trust::policy::SignedGrant>,
) -> TranscryptRequest {
    TranscryptRequest {
        requester: "trust".into(),
        from: from.into(),
        to: to.into(),
        grant,
        items,
    }
}

struct World {
    fed: Federation,
    /// The node's links (its token at each transcryptor).
    links: Vec<Arc<dyn TranscryptorLink>>,
    /// Each co-op's links (its own token at each transcryptor).
    coops: HashMap<OrgId, Vec<RemoteLink>>,
    node_keys: Keyring,
    rng: rand::rngs::StdRng,
}

impl World {
    /// The domain's keys, from its owner's links: a co-op's own, or the
    /// node's for the trust's domains.
    async fn client(&self, domain: &str) -> DomainClient {
        let d: Domain = domain.parse().unwrap();
        let mut shares = Vec::new();
        match d.coop() {
            Some(org) => {
                for l in &self.coops[&org] {
                    shares.push(l.key_share(Requester::Coop(org), d).await.unwrap());
                }
            }
            None => {
                for l in &self.links {
                    shares.push(l.key_share(Requester::Trust, d).await.unwrap());
                }
            }
        }
        self.fed.client(&shares)
    }

    /// The member's pseudonym in `domain`, through every transcryptor, for
    /// the member's own request.
    async fn pseudonym_in(&self, member: &EncryptedPseudonym, domain: &str) -> String {
        let item = Item {
            ct: *member,
            key: self.fed.origin_key(),
        };
        let grant = member_request(&self.node_keys, domain);
        let out = run_chain(
            &self.links,
            request(ORIGIN, domain, vec![item], Some(grant)),
        )
        .await
        .unwrap();
        self.client(domain).await.pseudonym(&out[0].ct)
    }
}

/// The transcryptor's metadata keys on `store`: its audit events are
/// sealed at rest under them.
fn with_audit_keys(store: &dyn me2b_storage::Store, data_dir: &Path) {
    let master = MasterKey::load(&data_dir.join(me2b_node::MASTER_KEY_FILE)).unwrap();
    let keys = Keyring::derive(&master);
    store.set_metadata_keys(Arc::new(keys.metadata_keys(Arc::new(OsRandom))));
}

/// (action, outcome, object) of every entry of a transcryptor's audit log.
async fn audit_entries(data_dir: &Path) -> Vec<(String, String, String, String)> {
    let url = format!(
        "sqlite://{}",
        data_dir.join(me2b_node::SQLITE_FILE).display()
    );
    let store = me2b_storage::open(&url).await.unwrap();
    with_audit_keys(store.as_ref(), data_dir);
    let entries = store.audit_entries(0, 100_000).await.unwrap();
    store.close().await;
    entries
        .iter()
        .map(|e| {
            let raw = String::from_utf8(e.event_json.clone()).unwrap();
            let v: Value = serde_json::from_str(&raw).unwrap();
            (
                v["action"].as_str().unwrap().to_owned(),
                v["outcome"].as_str().unwrap().to_owned(),
                v["object"].as_str().unwrap_or_default().to_owned(),
                raw,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_transcryptor_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let fed_dir = tmp.path().join("federation");
    let node_keys = Keyring::derive(&MasterKey::from_bytes([7; 32]));
    // The node's key as the node publishes it (GET /.well-known/me2b/node-keys).
    let x = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(node_keys.verifying_key().to_bytes())
    };
    let published = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]}).to_string();
    let grant_key = hex::encode(node_keys.verifying_key().to_bytes());

    // Set up: three transcryptor files with TLS certificates, the federation,
    // the node's links. The ports are placeholders: each process starts on
    // port 0 and the links are pointed at it (the certificate names the host).
    let out = me2b()
        .args(["trust", "init", "--transcryptors", "3", "--out"])
        .arg(&fed_dir)
        .args(["--grant-key", &published])
        .args(["--url", "https://127.0.0.1:7101"])
        .args(["--url", "https://127.0.0.1:7102"])
        .args(["--url", "https://127.0.0.1:7103"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("https://127.0.0.1:7103"), "{stdout}");
    let links_file =
        LinksFile::from_json(&std::fs::read_to_string(fed_dir.join("links.json")).unwrap())
            .unwrap();
    for t in &links_file.transcryptors {
        assert!(!stdout.contains(&t.token), "a token was printed");
        assert!(t.cert.is_some(), "{} has a pinned certificate", t.name);
    }
    // Setting up again into the same directory is refused.
    let again = me2b()
        .args(["trust", "init", "--transcryptors", "3", "--out"])
        .arg(&fed_dir)
        .args(["--grant-key", &grant_key])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    // Plain http off loopback is refused at set-up.
    let plain = me2b()
        .args(["trust", "init", "--transcryptors", "1", "--out"])
        .arg(tmp.path().join("plain"))
        .args([
            "--grant-key",
            &grant_key,
            "--url",
            "http://t1.example.org:7101",
        ])
        .output()
        .unwrap();
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );

    // A transcryptor file that others can read is refused at start.
    let loose = tmp.path().join("loose.json");
    std::fs::copy(fed_dir.join("transcryptor-1.json"), &loose).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = me2b()
            .arg("transcryptor")
            .arg("--config")
            .arg(&loose)
            .arg("--data-dir")
            .arg(tmp.path().join("loose"))
            .output()
            .unwrap();
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("chmod 600"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }

    // Two co-ops, registered with every transcryptor before they start.
    let (a, b) = (OrgId::generate(&OsRandom), OrgId::generate(&OsRandom));
    let coop_link = |org: OrgId, i: usize| tmp.path().join(format!("{org}-{i}.json"));
    for org in [a, b] {
        for i in 1..=3 {
            let url = format!("https://127.0.0.1:710{i}");
            add_coop(i, &fed_dir, org, &url, &coop_link(org, i));
        }
    }

    let mut procs: Vec<Proc> = (1..=3).map(|i| start(i, &fed_dir, tmp.path())).collect();
    for p in &procs {
        assert!(p.base.starts_with("https://127.0.0.1:"), "{}", p.base);
    }
    let all: Vec<&Proc> = procs.iter().collect();
    repoint(&fed_dir.join("links.json"), &all);
    for org in [a, b] {
        for i in 1..=3 {
            repoint(&coop_link(org, i), &all);
        }
    }
    let links_file =
        LinksFile::from_json(&std::fs::read_to_string(fed_dir.join("links.json")).unwrap())
            .unwrap();
    let links: Vec<Arc<dyn TranscryptorLink>> = links_file
        .links()
        .unwrap()
        .into_iter()
        .map(|l| Arc::new(l) as Arc<dyn TranscryptorLink>)
        .collect();
    let mut coops = HashMap::new();
    for org in [a, b] {
        let mut ls = Vec::new();
        for i in 1..=3 {
            let f =
                LinksFile::from_json(&std::fs::read_to_string(coop_link(org, i)).unwrap()).unwrap();
            ls.extend(f.links().unwrap());
        }
        coops.insert(org, ls);
    }
    let fed =
        Federation::from_json(&std::fs::read_to_string(fed_dir.join("federation.json")).unwrap())
            .unwrap();
    let mut w = World {
        fed,
        links,
        coops,
        node_keys: Keyring::derive(&MasterKey::from_bytes([7; 32])),
        rng: rand::rngs::StdRng::seed_from_u64(2026),
    };
    let (da, db) = (Domain::Coop(a).to_string(), Domain::Coop(b).to_string());

    // Within a domain: the same member is the same pseudonym.
    let ana = w.fed.enrol(&mut w.rng);
    let bo = w.fed.enrol(&mut w.rng);
    let a1 = w.pseudonym_in(&ana, &da).await;
    let a2 = w.pseudonym_in(&ana, &da).await;
    assert_eq!(a1, a2, "same member, same pseudonym within a domain");
    assert_ne!(w.pseudonym_in(&bo, &da).await, a1);
    // Across domains: unlinkable.
    let b1 = w.pseudonym_in(&ana, &db).await;
    let r = w.pseudonym_in(&ana, RESEARCH).await;
    assert!(a1 != b1 && a1 != r && b1 != r, "unlinkable across domains");

    // A co-op's domain keys go to that co-op only: the node's token gets no
    // share of a co-op domain, a co-op's token no share of another's, nor of
    // the trust's, and a co-op's token transcrypts nothing. Each refusal by
    // every transcryptor on its own.
    for (i, l) in w.links.iter().enumerate() {
        let err = l
            .key_share(Requester::Trust, Domain::Coop(a))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, TrustError::KeyShareRefused { .. }),
            "transcryptor {i}: {err}"
        );
    }
    for l in &w.coops[&a] {
        for d in [
            Domain::Coop(b),
            Domain::Research,
            Domain::Loyalty,
            Domain::Origin,
        ] {
            let err = l.key_share(Requester::Coop(a), d).await.unwrap_err();
            assert!(
                matches!(&err, TrustError::KeyShareRefused { .. }),
                "{d}: {err}"
            );
        }
        // The body cannot claim to be the trust: the token decides.
        let err = l
            .key_share(Requester::Trust, Domain::Research)
            .await
            .unwrap_err();
        assert!(matches!(&err, TrustError::KeyShareRefused { .. }), "{err}");
        let item = Item {
            ct: ana,
            key: w.fed.origin_key(),
        };
        let grant = member_request(&node_keys, &da);
        let err = l
            .transcrypt(&request(ORIGIN, &da, vec![item], Some(grant)))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, TrustError::TranscryptorFailed { code, .. } if code == "forbidden"),
            "{err}"
        );
    }

    // A move out of the origin needs the member's request, signed by the
    // node, for exactly that pair.
    let item = Item {
        ct: ana,
        key: w.fed.origin_key(),
    };
    let err = run_chain(&w.links, request(ORIGIN, &da, vec![item], None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrustError::TranscryptionRefused { .. }),
        "{err}"
    );
    let other_pair = member_request(&node_keys, &db);
    let err = run_chain(&w.links, request(ORIGIN, &da, vec![item], Some(other_pair)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrustError::TranscryptionRefused { .. }),
        "{err}"
    );
    let forger = Keyring::derive(&MasterKey::from_bytes([8; 32]));
    let err = run_chain(
        &w.links,
        request(ORIGIN, &da, vec![item], Some(member_request(&forger, &da))),
    )
    .await
    .unwrap_err();
    assert_eq!(err, TrustError::BadGrant);

    // Transitivity A → B: refused without a grant...
    let ca = w.client(&da).await;
    let ct_a = ca.encrypt(&a1, &mut w.rng).unwrap();
    let item_a = Item {
        ct: ct_a,
        key: ca.key(),
    };
    let refused = run_chain(&w.links, request(&da, &db, vec![item_a], None)).await;
    assert_eq!(
        refused.unwrap_err(),
        TrustError::TranscryptionRefused {
            from: da.clone(),
            to: db.clone()
        }
    );
    // ...refused with an expired grant, one signed by another key, or a
    // member's request (which never opens a co-op pair)...
    let now = SystemClock.now().unix_millis();
    let grant = |exp: i64| Grant {
        v: 1,
        consent: "share_1".into(),
        purpose: "cross-sell".into(),
        from: da.clone(),
        to: db.clone(),
        expires_at_ms: exp,
    };
    let expired = grant(now - 1).sign(&node_keys);
    let err = run_chain(&w.links, request(&da, &db, vec![item_a], Some(expired)))
        .await
        .unwrap_err();
    assert_eq!(err, TrustError::GrantExpired);
    let forged = grant(now + 3_600_000).sign(&forger);
    let err = run_chain(&w.links, request(&da, &db, vec![item_a], Some(forged)))
        .await
        .unwrap_err();
    assert_eq!(err, TrustError::BadGrant);
    let as_request = Grant {
        consent: MEMBER_REQUEST.into(),
        ..grant(now + 3_600_000)
    }
    .sign(&node_keys);
    let err = run_chain(&w.links, request(&da, &db, vec![item_a], Some(as_request)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrustError::TranscryptionRefused { .. }),
        "{err}"
    );
    // ...and gives B's own pseudonym with a grant signed by the node's key.
    let signed = grant(now + 3_600_000).sign(&node_keys);
    let out = run_chain(&w.links, request(&da, &db, vec![item_a], Some(signed)))
        .await
        .unwrap();
    assert_eq!(
        w.client(&db).await.pseudonym(&out[0].ct),
        b1,
        "A→B gives B's pseudonym"
    );

    // Two of three transcryptors give a wrong pseudonym.
    let partial = run_chain(
        &w.links[..2],
        request(
            ORIGIN,
            &da,
            vec![item],
            Some(member_request(&node_keys, &da)),
        ),
    )
    .await
    .unwrap();
    assert_ne!(w.client(&da).await.pseudonym(&partial[0].ct), a1);

    // Every transcryptor refuses an unconsented pair on its own (audited as denied).
    for l in &w.links {
        let err = l
            .transcrypt(&request(&db, &da, vec![item], None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, TrustError::TranscryptionRefused { .. }),
            "{err}"
        );
    }

    // A wrong token gets nothing.
    let entry = &links_file.transcryptors[0];
    let cert = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(entry.cert.as_deref().unwrap())
            .unwrap()
    };
    let wrong = RemoteLink::pinned(
        "transcryptor-1",
        &procs[0].base,
        "0".repeat(64),
        Some(&cert),
    )
    .unwrap();
    let err = wrong
        .key_share(Requester::Trust, Domain::Research)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TrustError::TranscryptorFailed {
            name: "transcryptor-1".into(),
            code: "unauthenticated".into()
        }
    );
    assert!(wrong
        .transcrypt(&request(ORIGIN, &da, vec![item], None))
        .await
        .is_err());
    // A network attacker's certificate is not the pinned one: nothing is sent.
    let other_cert = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(links_file.transcryptors[1].cert.as_deref().unwrap())
            .unwrap()
    };
    let mitm = RemoteLink::pinned(
        "transcryptor-1",
        &procs[0].base,
        entry.token.clone(),
        Some(&other_cert),
    )
    .unwrap();
    let err = mitm
        .key_share(Requester::Trust, Domain::Research)
        .await
        .unwrap_err();
    assert!(matches!(err, TrustError::TranscryptorDown { .. }), "{err}");
    // Plain http to a TLS transcryptor gets no answer either.
    let plain = RemoteLink::new(
        "transcryptor-1",
        &procs[0].base.replace("https://", "http://"),
        entry.token.clone(),
    )
    .unwrap();
    assert!(plain
        .key_share(Requester::Trust, Domain::Research)
        .await
        .is_err());

    // Raw HTTPS: malformed ciphertexts are a 400 that does not echo them; no
    // key share for the origin domain; health names the transcryptor.
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_der(&cert).unwrap())
        .build()
        .unwrap();
    let token = &entry.token;
    let resp = http
        .post(format!("{}/v1/transcrypt", procs[0].base))
        .bearer_auth(token)
        .json(&json!({
            "requester": "trust", "from": ORIGIN, "to": da,
            "items": [{"ct": "not-a-ciphertext", "key": "00"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let text = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "malformed_ciphertext");
    assert!(!text.contains("not-a-ciphertext"));
    let resp = http
        .post(format!("{}/v1/key-share", procs[0].base))
        .bearer_auth(token)
        .json(&json!({"requester": "trust", "domain": ORIGIN}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    let v: Value = http
        .get(format!("{}/v1/health", procs[0].base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "transcryptor-1");
    assert_eq!(v["policy"]["grant_key"], grant_key);

    // One transcryptor down: the chain fails and names it.
    let st = procs[1].term();
    assert!(st.success(), "transcryptor-2 exit: {st:?}");
    let err = run_chain(
        &w.links,
        request(
            ORIGIN,
            &da,
            vec![item],
            Some(member_request(&node_keys, &da)),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        TrustError::TranscryptorDown {
            name: "transcryptor-2".into()
        }
    );
    for i in [0, 2] {
        let st = procs[i].term();
        assert!(st.success(), "{} exit: {st:?}", procs[i].name);
    }

    // Each transcryptor's own audit log verifies and holds its decisions.
    let ct_text = serde_json::to_string(&ana).unwrap();
    let ct_text = ct_text.trim_matches('"');
    for p in &procs {
        let out = me2b()
            .args(["audit", "verify", "--data-dir"])
            .arg(&p.data_dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {stdout} {}",
            p.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("OK"), "{stdout}");

        let log = audit_entries(&p.data_dir).await;
        let count = |action: &str, outcome: &str| {
            log.iter()
                .filter(|e| e.0 == action && e.1 == outcome)
                .count()
        };
        assert!(count("node.start", "ok") >= 1, "{}", p.name);
        assert!(count("trust.transcrypt", "ok") >= 5, "{}: {log:?}", p.name);
        assert!(count("trust.transcrypt", "denied") >= 1, "{}", p.name);
        assert!(count("trust.key_share", "ok") >= 1, "{}", p.name);
        assert!(log
            .iter()
            .filter(|e| e.0 == "trust.transcrypt")
            .all(|e| e.2.starts_with(&format!("{}: ", p.name))));
        // Every move out of the origin is logged with the member's request.
        assert!(log.iter().any(|e| e.0 == "trust.transcrypt"
            && e.1 == "ok"
            && e.2.contains(ORIGIN)
            && e.3.contains(&format!("consent {MEMBER_REQUEST}"))));
        // The co-ops' own key shares, logged as theirs.
        assert!(log.iter().any(|e| e.0 == "trust.key_share"
            && e.1 == "ok"
            && e.2.contains(&format!("{da} for {a}"))));
        assert!(
            log.iter().all(|e| !e.3.contains(ct_text)),
            "no ciphertext in the audit log"
        );
        assert!(log.iter().all(|e| !e.3.contains(token.as_str())));
    }
    // transcryptor-1 also logged the refused grants, the refused shares, the
    // wrong token and the malformed body.
    let log = audit_entries(&procs[0].data_dir).await;
    assert!(log.iter().any(|e| e.0 == "trust.transcrypt"
        && e.1 == "denied"
        && e.3.contains("\"purpose\":\"cross-sell\"")));
    assert!(log
        .iter()
        .any(|e| e.1 == "denied" && e.2 == "transcryptor-1: unauthenticated request"));
    assert!(log
        .iter()
        .any(|e| e.1 == "failed" && e.2 == "transcryptor-1: malformed request"));
    assert!(log
        .iter()
        .any(|e| e.0 == "trust.key_share" && e.1 == "denied" && e.2.contains(ORIGIN)));
    assert!(log.iter().any(|e| e.0 == "trust.key_share"
        && e.1 == "denied"
        && e.2.contains(&format!("{da} for trust"))));
}

/// `me2b serve` on SQLite with ME2B_TRUST_DIR pointing at three transcryptor
/// processes, its co-ops holding their own keys (`me2b coop keys` from the
/// transcryptors): cards, receipts, consented cross-selling and loyalty work
/// across processes; a transcryptor that is down fails the request clearly
/// with nothing stored. Then the node's operator, with the node's database,
/// its master key, its links and one transcryptor's secrets, tries to tell
/// which co-op card belongs to which member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_its_trust_on_three_transcryptor_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let fed_dir = tmp.path().join("federation");
    std::fs::create_dir_all(&data).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // The node's master key first: its public key signs the grants the
    // transcryptors honour.
    let (master, _) = MasterKey::load_or_create(&data.join("master.key"), &OsRandom).unwrap();
    let node_keys = Keyring::derive(&master);
    let grant_key = hex::encode(node_keys.verifying_key().to_bytes());
    drop(master);
    let out = me2b()
        .args(["trust", "init", "--transcryptors", "3", "--out"])
        .arg(&fed_dir)
        .args(["--grant-key", &grant_key])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut procs: Vec<Proc> = (1..=3).map(|i| start(i, &fed_dir, tmp.path())).collect();
    let links_path = fed_dir.join("links.json");
    repoint(&links_path, &procs.iter().collect::<Vec<_>>());

    let node = |args: &[&str]| {
        let mut c = me2b();
        c.env("ME2B_DATA_DIR", &data)
            .env("ME2B_TRUST_DIR", &fed_dir)
            .args(args);
        c
    };
    let mut keys = Vec::new();
    for name in ["Corner Co-op", "Green Wheels"] {
        let out = node(&["org", "create", "--name", name, "--roles", "insights"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id: OrgId = text
            .lines()
            .find_map(|l| l.strip_prefix("organisation"))
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("api key       "))
            .unwrap()
            .trim()
            .to_owned();
        keys.push((id, key));
    }
    let ((a, ka), (b, kb)) = (keys[0].clone(), keys[1].clone());
    // Each co-op registered with every transcryptor, which restarts to take
    // it in; its link files point at where the transcryptors now listen.
    let coop_link = |org: OrgId, i: usize| tmp.path().join(format!("{org}-{i}.json"));
    for org in [a, b] {
        for (i, p) in procs.iter().enumerate() {
            add_coop(i + 1, &fed_dir, org, &p.base, &coop_link(org, i + 1));
        }
    }
    for p in procs.iter_mut() {
        assert!(p.term().success());
    }
    let procs_now: Vec<Proc> = (1..=3).map(|i| start(i, &fed_dir, tmp.path())).collect();
    procs = procs_now;
    let all: Vec<&Proc> = procs.iter().collect();
    repoint(&links_path, &all);
    for org in [a, b] {
        for i in 1..=3 {
            repoint(&coop_link(org, i), &all);
        }
    }
    // Each co-op fetches its own keys from the transcryptors, as a user would.
    let coop_keys = |org: OrgId| {
        let path = tmp.path().join(format!("{org}-keys.json"));
        let mut c = me2b();
        c.args(["coop", "keys", "--org", &org.to_string(), "--federation"])
            .arg(fed_dir.join("federation.json"))
            .arg("--out")
            .arg(&path);
        for i in 1..=3 {
            c.arg("--link").arg(coop_link(org, i));
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        me2b_coop::CoopKeys::load(&path).unwrap()
    };
    let (keys_a, keys_b) = (coop_keys(a), coop_keys(b));
    // Co-op A's links cannot fetch B's keys.
    let mut c = me2b();
    c.args(["coop", "keys", "--org", &b.to_string(), "--federation"])
        .arg(fed_dir.join("federation.json"))
        .arg("--out")
        .arg(tmp.path().join("stolen.json"));
    for i in 1..=3 {
        c.arg("--link").arg(coop_link(a, i));
    }
    let stolen = c.output().unwrap();
    assert!(!stolen.status.success());
    assert!(!tmp.path().join("stolen.json").exists());

    let log = std::fs::File::create(tmp.path().join("node.log")).unwrap();
    let mut server = node(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(server.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    reader.read_line(&mut first).unwrap();
    reader.read_line(&mut second).unwrap();
    let mut guard = Proc {
        name: "node".into(),
        child: Some(server),
        base: String::new(),
        data_dir: data.clone(),
        log: tmp.path().join("node.log"),
    };
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| {
            panic!(
                "no listening line: {first:?} {}",
                std::fs::read_to_string(&guard.log).unwrap_or_default()
            )
        });
    assert!(
        second.contains("distributed over 3 transcryptor processes"),
        "{second}"
    );
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let call = |m: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut r = http.request(m, format!("{base}{path}")).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let resp = r.send().await.unwrap();
            let st = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                st,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    // The node gives no co-op its keys when the trust is distributed.
    let (st, v) = call(reqwest::Method::POST, "/v1/org/trust/keys", &ka, None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("ask_transcryptors")),
        "{v}"
    );

    let mut members = Vec::new();
    for email in ["ana@example.org", "bo@example.org"] {
        let v = signup::sign_up(&http, &base, &data, email, "correct horse battery").await;
        members.push(v["token"].as_str().unwrap().to_owned());
    }
    // Each member's card at each co-op: a ciphertext only that co-op opens.
    let mut cards = HashMap::new();
    let mut truth = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        for (org, k) in [(a, &keys_a), (b, &keys_b)] {
            let (st, v) = call(
                reqwest::Method::GET,
                &format!("/v1/me/trust/cards/{org}"),
                m,
                None,
            )
            .await;
            assert_eq!(st, 200, "{v}");
            let card = v["card"].as_str().unwrap().to_owned();
            let p = k.open_card(&card).unwrap();
            cards.insert((i, org), card);
            truth.insert((i, org), p);
        }
    }
    assert_ne!(truth[&(0, a)], truth[&(0, b)]);
    assert_ne!(truth[&(0, a)], truth[&(1, a)]);
    // A card shown again is a fresh ciphertext of the same pseudonym.
    let (_, v) = call(
        reqwest::Method::GET,
        &format!("/v1/me/trust/cards/{a}"),
        &members[0],
        None,
    )
    .await;
    let again = v["card"].as_str().unwrap();
    assert_ne!(again, cards[&(0, a)]);
    assert_eq!(keys_a.open_card(again).unwrap(), truth[&(0, a)]);
    // `me2b coop open-card` says the same.
    let opened = me2b()
        .args(["coop", "open-card", "--keys"])
        .arg(tmp.path().join(format!("{a}-keys.json")))
        .arg(&cards[&(0, a)])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&opened.stdout).trim(),
        truth[&(0, a)]
    );
    // B cannot open A's card to A's pseudonym.
    assert_ne!(keys_b.open_card(&cards[&(0, a)]).unwrap(), truth[&(0, a)]);

    let receipt = |p: &str| {
        json!({"receipts": [{"card": keys_a.seal(p, &OsRandom).unwrap(),
            "at": "2026-11-20T17:42:13+01:00", "area": "NL-NH",
            "items": [{"category": "organic", "amount_cents": 450}]}]})
    };
    let (st, v) = call(
        reqwest::Method::POST,
        "/v1/org/trust/receipts",
        &ka,
        Some(receipt(&truth[&(0, a)])),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, _) = call(
        reqwest::Method::POST,
        "/v1/me/trust/sharing",
        &members[0],
        Some(json!({"from": a, "to": b, "purpose": "cross-sell"})),
    )
    .await;
    assert_eq!(st, 201);
    let (st, v) = call(
        reqwest::Method::GET,
        &format!("/v1/org/trust/shared/{a}"),
        &kb,
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        keys_b.open_card(v[0]["card"].as_str().unwrap()).unwrap(),
        truth[&(0, b)],
        "B's own pseudonym, through three processes"
    );
    let (st, v) = call(
        reqwest::Method::POST,
        "/v1/org/trust/loyalty/earn",
        &ka,
        Some(json!({"card": keys_a.seal(&truth[&(0, a)], &OsRandom).unwrap(), "points": 150})),
    )
    .await;
    assert_eq!((st, &v), (202, &json!({"status": "accepted"})), "{v}");
    let (st, t) = call(
        reqwest::Method::POST,
        "/v1/me/trust/loyalty/tokens",
        &members[0],
        Some(json!({"org": b, "points": 100})),
    )
    .await;
    assert_eq!(st, 201, "{t}");
    let (st, v) = call(
        reqwest::Method::POST,
        "/v1/org/trust/loyalty/redeem",
        &kb,
        Some(json!({"token": t["token"], "points": 100})),
    )
    .await;
    assert_eq!(
        (st, &v),
        (200, &json!({"status": "redeemed", "points": 100})),
        "{v}"
    );
    let (st, v) = call(reqwest::Method::GET, "/v1/me/trust", &members[0], None).await;
    assert_eq!((st, v["loyalty_points"].as_i64()), (200, Some(50)), "{v}");

    // Transcryptor 2 goes down: the submission fails clearly, nothing is stored.
    let t2 = procs.remove(1);
    drop(t2);
    let (st, v) = call(
        reqwest::Method::POST,
        "/v1/org/trust/receipts",
        &ka,
        Some(receipt(&truth[&(1, a)])),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (503, Some("transcryptor_down")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("transcryptor-2"),
        "{v}"
    );
    assert!(guard.term().success());
    let store = me2b_storage::open(&format!(
        "sqlite://{}",
        data.join(me2b_node::SQLITE_FILE).display()
    ))
    .await
    .unwrap();
    with_audit_keys(store.as_ref(), &data);
    assert_eq!(
        store.trust_member_count(&a.to_string()).await.unwrap(),
        1,
        "nothing half-written"
    );
    let entries = store.audit_entries(0, 100_000).await.unwrap();
    let failed = entries.iter().any(|e| {
        let v: Value = serde_json::from_slice(&e.event_json).unwrap();
        v["action"] == "trust.receipts.submit" && v["outcome"] == "failed"
    });
    assert!(failed, "the failed submission is audited");
    store.close().await;
    // Transcryptor 2 back, for the operator's attempt below.
    procs.insert(1, start(2, &fed_dir, tmp.path()));
    repoint(&links_path, &procs.iter().collect::<Vec<_>>());

    // The operator's attempt, with everything it holds: the node's database,
    // its master key, its links (the node's token at every transcryptor, all
    // running) and transcryptor-1's secrets, plus every card the node ever
    // answered. The co-ops' pseudonyms are the ground truth it must not reach.
    let fed =
        Federation::from_json(&std::fs::read_to_string(fed_dir.join("federation.json")).unwrap())
            .unwrap();
    let links = LinksFile::from_json(&std::fs::read_to_string(&links_path).unwrap())
        .unwrap()
        .links()
        .unwrap();
    let t1_file: Value = serde_json::from_str(
        &std::fs::read_to_string(fed_dir.join("transcryptor-1.json")).unwrap(),
    )
    .unwrap();
    let t1 = me2b_trust::pseudonym::Transcryptor::new(
        me2b_trust::pseudonym::TranscryptorSecrets::from_json(&t1_file["secrets"].to_string())
            .unwrap(),
    );
    let mut guesses: Vec<String> = Vec::new();
    let mut refused_total = 0;
    for org in [a, b] {
        let d = Domain::Coop(org);
        // 1. The node's token asks every transcryptor for the co-op's domain
        // share (any share given is used below); each must refuse.
        let mut given = Vec::new();
        let mut refused = 0;
        for l in &links {
            match l.key_share(Requester::Trust, d).await {
                Ok(share) => given.push(Some(share)),
                Err(TrustError::KeyShareRefused { .. }) => {
                    refused += 1;
                    given.push(None);
                }
                Err(e) => panic!("{e}"),
            }
        }
        // 2. Transcryptor-1's own share of the co-op's domain, with every share
        // the node can get from the others (the trust's domains, and the
        // co-op's if one was given), in every combination.
        let own = t1.key_share(&d.to_string());
        let mut others = vec![Vec::new()];
        for (i, l) in links.iter().enumerate().skip(1) {
            let mut candidates = vec![
                l.key_share(Requester::Trust, Domain::Research)
                    .await
                    .unwrap(),
                l.key_share(Requester::Trust, Domain::Loyalty)
                    .await
                    .unwrap(),
            ];
            candidates.extend(given[i]);
            let mut next = Vec::new();
            for share in candidates {
                for prefix in &others {
                    let mut v: Vec<_> = prefix.clone();
                    v.push(share);
                    next.push(v);
                }
            }
            others.extend(next);
        }
        refused_total += refused;
        for rest in others {
            let mut shares = vec![own];
            shares.extend(rest);
            let client = fed.client(&shares);
            for ((_, o), card) in &cards {
                if *o == org {
                    let ct = me2b_trust::service::parse_card(card).unwrap();
                    guesses.push(client.pseudonym(&ct));
                }
            }
        }
    }
    for g in &guesses {
        assert!(
            !truth.values().any(|t| t == g),
            "the operator opened a co-op's card"
        );
    }
    assert_eq!(
        refused_total, 6,
        "every transcryptor refused the node every co-op share"
    );
    // 3. Nothing the node wrote holds a co-op's pseudonym for a member: not
    // its database (with its WAL), not its log.
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            written.push(std::fs::read(&path).unwrap());
        }
    }
    written.push(std::fs::read(tmp.path().join("node.log")).unwrap());
    for p in truth.values() {
        let raw = hex::decode(p).unwrap();
        for bytes in &written {
            assert!(
                !bytes.windows(raw.len()).any(|w| w == raw.as_slice())
                    && !bytes.windows(p.len()).any(|w| w == p.as_bytes()),
                "a co-op pseudonym is in the node's files"
            );
        }
    }
    drop(procs);
}
