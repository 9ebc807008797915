//! Three `me2b transcryptor` processes set up by `me2b trust init`, driven
//! over HTTP with the trust library: pseudonyms are stable within a domain and
//! unlinkable across domains, co-op → co-op needs a signed grant, every
//! transcryptor is needed, a dead one stops the chain, and each keeps its own
//! verifiable audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_crypto::{Keyring, MasterKey};
use me2b_domain::{Clock, SystemClock};
use me2b_trust::link::{run_chain, TranscryptorLink};
use me2b_trust::policy::Grant;
use me2b_trust::pseudonym::{DomainClient, EncryptedPseudonym, Federation, ORIGIN, RESEARCH};
use me2b_trust::remote::{LinksFile, RemoteLink};
use me2b_trust::wire::{Item, TranscryptRequest};
use me2b_trust::TrustError;
use rand::SeedableRng;
use serde_json::{json, Value};
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
    let Some(addr) = line.trim_end().strip_prefix("listening on http://") else {
        panic!(
            "no listening line from {}: {line:?} (log: {})",
            proc.name,
            std::fs::read_to_string(&proc.log).unwrap_or_default()
        );
    };
    proc.base = format!("http://{addr}");
    proc
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
    links: Vec<Arc<dyn TranscryptorLink>>,
    rng: rand::rngs::StdRng,
}

impl World {
    async fn client(&self, domain: &str) -> DomainClient {
        let mut shares = Vec::new();
        for l in &self.links {
            shares.push(l.key_share("trust", domain).await.unwrap());
        }
        self.fed.client(&shares)
    }

    /// The member's pseudonym in `domain`, through every transcryptor.
    async fn pseudonym_in(&self, member: &EncryptedPseudonym, domain: &str) -> String {
        let item = Item {
            ct: *member,
            key: self.fed.origin_key(),
        };
        let out = run_chain(&self.links, request(ORIGIN, domain, vec![item], None))
            .await
            .unwrap();
        self.client(domain).await.pseudonym(&out[0].ct)
    }
}

/// (action, outcome, object) of every entry of a transcryptor's audit log.
async fn audit_entries(data_dir: &Path) -> Vec<(String, String, String, String)> {
    let url = format!(
        "sqlite://{}",
        data_dir.join(me2b_node::SQLITE_FILE).display()
    );
    let store = me2b_storage::open(&url).await.unwrap();
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
    let grant_key = hex::encode(node_keys.verifying_key().to_bytes());

    // Set up: three transcryptor files, the federation, the node's links.
    let out = me2b()
        .args(["trust", "init", "--transcryptors", "3", "--out"])
        .arg(&fed_dir)
        .args(["--grant-key", &grant_key])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PORT-to-fill"), "{stdout}");
    let links_file =
        LinksFile::from_json(&std::fs::read_to_string(fed_dir.join("links.json")).unwrap())
            .unwrap();
    for t in &links_file.transcryptors {
        assert!(!stdout.contains(&t.token), "a token was printed");
    }
    // Setting up again into the same directory is refused.
    let again = me2b()
        .args(["trust", "init", "--transcryptors", "3", "--out"])
        .arg(&fed_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());

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

    let mut procs: Vec<Proc> = (1..=3).map(|i| start(i, &fed_dir, tmp.path())).collect();
    let mut links: Vec<Arc<dyn TranscryptorLink>> = Vec::new();
    for (p, entry) in procs.iter().zip(&links_file.transcryptors) {
        assert_eq!(p.name, entry.name);
        links.push(Arc::new(
            RemoteLink::new(entry.name.clone(), &p.base, entry.token.clone()).unwrap(),
        ));
    }
    let fed =
        Federation::from_json(&std::fs::read_to_string(fed_dir.join("federation.json")).unwrap())
            .unwrap();
    let mut w = World {
        fed,
        links,
        rng: rand::rngs::StdRng::seed_from_u64(2026),
    };

    // Within a domain: the same member is the same pseudonym.
    let ana = w.fed.enrol(&mut w.rng);
    let bo = w.fed.enrol(&mut w.rng);
    let a1 = w.pseudonym_in(&ana, "coop:a").await;
    let a2 = w.pseudonym_in(&ana, "coop:a").await;
    assert_eq!(a1, a2, "same member, same pseudonym within a domain");
    assert_ne!(w.pseudonym_in(&bo, "coop:a").await, a1);
    // Across domains: unlinkable.
    let b = w.pseudonym_in(&ana, "coop:b").await;
    let r = w.pseudonym_in(&ana, RESEARCH).await;
    assert!(a1 != b && a1 != r && b != r, "unlinkable across domains");

    // Transitivity A → B: refused without a grant...
    let ca = w.client("coop:a").await;
    let ct_a = ca.encrypt(&a1, &mut w.rng).unwrap();
    let item_a = Item {
        ct: ct_a,
        key: ca.key(),
    };
    let refused = run_chain(&w.links, request("coop:a", "coop:b", vec![item_a], None)).await;
    assert_eq!(
        refused.unwrap_err(),
        TrustError::TranscryptionRefused {
            from: "coop:a".into(),
            to: "coop:b".into()
        }
    );
    // ...refused with an expired grant or one signed by another key...
    let now = SystemClock.now().unix_millis();
    let grant = |exp: i64| Grant {
        v: 1,
        consent: "share_1".into(),
        purpose: "cross-sell".into(),
        from: "coop:a".into(),
        to: "coop:b".into(),
        expires_at_ms: exp,
    };
    let expired = grant(now - 1).sign(&node_keys);
    let err = run_chain(
        &w.links,
        request("coop:a", "coop:b", vec![item_a], Some(expired)),
    )
    .await
    .unwrap_err();
    assert_eq!(err, TrustError::GrantExpired);
    let forged = grant(now + 3_600_000).sign(&Keyring::derive(&MasterKey::from_bytes([8; 32])));
    let err = run_chain(
        &w.links,
        request("coop:a", "coop:b", vec![item_a], Some(forged)),
    )
    .await
    .unwrap_err();
    assert_eq!(err, TrustError::BadGrant);
    // ...and gives B's own pseudonym with a grant signed by the node's key.
    let signed = grant(now + 3_600_000).sign(&node_keys);
    let out = run_chain(
        &w.links,
        request("coop:a", "coop:b", vec![item_a], Some(signed)),
    )
    .await
    .unwrap();
    assert_eq!(
        w.client("coop:b").await.pseudonym(&out[0].ct),
        b,
        "A→B gives B's pseudonym"
    );

    // Two of three transcryptors give a wrong pseudonym.
    let item = Item {
        ct: ana,
        key: w.fed.origin_key(),
    };
    let partial = run_chain(&w.links[..2], request(ORIGIN, "coop:a", vec![item], None))
        .await
        .unwrap();
    assert_ne!(w.client("coop:a").await.pseudonym(&partial[0].ct), a1);

    // Every transcryptor refuses an unconsented pair on its own (audited as denied).
    for l in &w.links {
        let err = l
            .transcrypt(&request("coop:b", "coop:a", vec![item], None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, TrustError::TranscryptionRefused { .. }),
            "{err}"
        );
    }

    // A wrong token gets nothing.
    let wrong = RemoteLink::new("transcryptor-1", &procs[0].base, "0".repeat(64)).unwrap();
    let err = wrong.key_share("trust", "coop:a").await.unwrap_err();
    assert_eq!(
        err,
        TrustError::TranscryptorFailed {
            name: "transcryptor-1".into(),
            code: "unauthenticated".into()
        }
    );
    assert!(wrong
        .transcrypt(&request(ORIGIN, "coop:a", vec![item], None))
        .await
        .is_err());

    // Raw HTTP: malformed ciphertexts are a 400 that does not echo them; no
    // key share for the origin domain; health names the transcryptor.
    let http = reqwest::Client::new();
    let token = &links_file.transcryptors[0].token;
    let resp = http
        .post(format!("{}/v1/transcrypt", procs[0].base))
        .bearer_auth(token)
        .json(&json!({
            "requester": "trust", "from": ORIGIN, "to": "coop:a",
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
    let err = run_chain(&w.links, request(ORIGIN, "coop:a", vec![item], None))
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
        assert!(
            log.iter().all(|e| !e.3.contains(ct_text)),
            "no ciphertext in the audit log"
        );
        assert!(log.iter().all(|e| !e.3.contains(token.as_str())));
    }
    // transcryptor-1 also logged the refused grants, the wrong token and the
    // malformed body.
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
}

/// `me2b serve` on SQLite with ME2B_TRUST_DIR pointing at three transcryptor
/// processes: cards, receipts, consented cross-selling and loyalty work across
/// processes, and a transcryptor that is down fails the request clearly with
/// nothing stored.
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
    // The node's master key first: its public key signs the consent grants the
    // transcryptors honour.
    let (master, _) =
        MasterKey::load_or_create(&data.join("master.key"), &me2b_crypto::OsRandom).unwrap();
    let grant_key = hex::encode(Keyring::derive(&master).verifying_key().to_bytes());
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
    let mut links = LinksFile::from_json(&std::fs::read_to_string(&links_path).unwrap()).unwrap();
    for (entry, p) in links.transcryptors.iter_mut().zip(&procs) {
        entry.url = p.base.clone();
    }
    std::fs::write(&links_path, links.to_json().as_bytes()).unwrap();

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
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("organisation"))
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
            .to_owned();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("api key       "))
            .unwrap()
            .trim()
            .to_owned();
        keys.push((id, key));
    }
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
    let guard = Proc {
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
    let v = http
        .post(format!("{base}/v1/members"))
        .json(&json!({"email": "ana@example.org", "passphrase": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let member = v["token"].as_str().unwrap().to_owned();
    let ((a, ka), (b, kb)) = (keys[0].clone(), keys[1].clone());
    let (_, v) = call(
        reqwest::Method::GET,
        &format!("/v1/me/trust/cards/{a}"),
        &member,
        None,
    )
    .await;
    let card_a = v["pseudonym"].as_str().unwrap().to_owned();
    let (_, v) = call(
        reqwest::Method::GET,
        &format!("/v1/me/trust/cards/{b}"),
        &member,
        None,
    )
    .await;
    let card_b = v["pseudonym"].as_str().unwrap().to_owned();
    assert_ne!(card_a, card_b);
    let receipt = json!({"receipts": [{"pseudonym": card_a, "day": "2026-11-20", "area": "NL-NH",
        "items": [{"category": "organic", "amount_cents": 450}]}]});
    let (st, v) = call(
        reqwest::Method::POST,
        "/v1/org/trust/receipts",
        &ka,
        Some(receipt.clone()),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, _) = call(
        reqwest::Method::POST,
        "/v1/me/trust/sharing",
        &member,
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
        v[0]["pseudonym"],
        card_b.as_str(),
        "B's own pseudonym, through three processes"
    );
    let (st, v) = call(
        reqwest::Method::POST,
        "/v1/org/trust/loyalty/earn",
        &ka,
        Some(json!({"pseudonym": card_a, "points": 50})),
    )
    .await;
    assert_eq!((st, &v), (202, &json!({"status": "accepted"})), "{v}");
    let (st, t) = call(
        reqwest::Method::POST,
        "/v1/me/trust/loyalty/tokens",
        &member,
        Some(json!({"org": b, "points": 20})),
    )
    .await;
    assert_eq!(st, 201, "{t}");
    let (st, v) = call(
        reqwest::Method::POST,
        "/v1/org/trust/loyalty/redeem",
        &kb,
        Some(json!({"token": t["token"], "points": 20})),
    )
    .await;
    assert_eq!(
        (st, &v),
        (200, &json!({"status": "redeemed", "points": 20})),
        "{v}"
    );
    let (st, v) = call(reqwest::Method::GET, "/v1/me/trust", &member, None).await;
    assert_eq!((st, v["loyalty_points"].as_i64()), (200, Some(30)), "{v}");

    // Transcryptor 2 goes down: the submission fails clearly, nothing is stored.
    drop(procs.remove(1));
    let (st, v) = call(
        reqwest::Method::POST,
        "/v1/org/trust/receipts",
        &ka,
        Some(receipt),
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
    let store = me2b_storage::open(&format!(
        "sqlite://{}",
        data.join(me2b_node::SQLITE_FILE).display()
    ))
    .await
    .unwrap();
    assert_eq!(
        store.trust_member_count(&a).await.unwrap(),
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
    drop(guard);
}
