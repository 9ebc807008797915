//! The `me2b` binary as a user runs it: serve (SQLite and PostgreSQL), kill -9
//! durability, no personal data at rest or in logs, the operator commands, the
//! demo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod signup;

use me2b_testkit::{fresh, Db, TestDb};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_me2b");

fn me2b(t: &TestDb, db: Db) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("--data-dir")
        .arg(t.data_dir.path());
    if db == Db::Postgres {
        c.arg("--database").arg(&t.url);
    }
    c
}

struct Server {
    child: Child,
    base: String,
}

/// Starts `me2b serve` on port 0; its log (stderr) goes to `log`.
fn serve(t: &TestDb, db: Db, log: &Path, extra_env: &[(&str, &str)]) -> Server {
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = me2b(t, db);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(logf)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| {
            panic!(
                "no listening line: {line:?} (log: {})",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

/// A test that fails leaves no node running.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
    fn term(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut r = http.post(url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    for db in Db::ALL {
        let Some(t) = fresh(db).await.unwrap() else {
            continue;
        };
        let log = t.data_dir.path().join("server.log");
        let srv = serve(&t, db, &log, &[]);
        let http = reqwest::Client::new();
        let v = signup::sign_up(
            &http,
            &srv.base,
            t.data_dir.path(),
            "kill@example.org",
            "correct horse battery",
        )
        .await;
        let token = v["token"].as_str().unwrap().to_owned();

        // Four writers; the server is killed while they are mid-flight.
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let mut writers = Vec::new();
        for w in 0..4 {
            let (http, base, token, acked) =
                (http.clone(), srv.base.clone(), token.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let text = format!("writer {w} record {i} {}", "x".repeat(i % 200));
                    let Ok(resp) = http
                        .post(format!("{base}/v1/vault/records"))
                        .bearer_auth(&token)
                        .json(&json!({"kind": "note", "text": text}))
                        .send()
                        .await
                    else {
                        break;
                    };
                    if resp.status() != StatusCode::CREATED {
                        break;
                    }
                    let Ok(v) = resp.json::<Value>().await else {
                        break;
                    };
                    acked
                        .lock()
                        .unwrap()
                        .push((v["id"].as_str().unwrap().to_owned(), text));
                }
            }));
        }
        while acked.lock().unwrap().len() < 120 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        srv.kill9();
        for w in writers {
            w.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();

        let srv = serve(&t, db, &log, &[]);
        for (id, text) in &acked {
            let resp = http
                .get(format!("{}/v1/vault/records/{id}", srv.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "{db:?}: acknowledged record {id} lost after kill -9"
            );
            let v: Value = resp.json().await.unwrap();
            assert_eq!(
                v["content"]["text"],
                text.as_str(),
                "{db:?}: record {id} not intact"
            );
        }
        // The audit log is still a valid chain after the crash.
        let status = srv.term();
        assert!(status.success(), "{db:?}: {status}");
        let out = me2b(&t, db).args(["audit", "verify"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test]
async fn no_personal_data_in_the_data_directory_or_logs() {
    let db = Db::Sqlite;
    let t = fresh(db).await.unwrap().unwrap();
    let log = t.data_dir.path().join("server.log");
    // Debug logging on: even then nothing personal may be written.
    let srv = serve(&t, db, &log, &[("ME2B_LOG", "debug")]);
    let http = reqwest::Client::new();
    let email = "grace.hopper.personal@example.org";
    let v = signup::sign_up(
        &http,
        &srv.base,
        t.data_dir.path(),
        email,
        "Passphrase-Of-Grace-77",
    )
    .await;
    let token = v["token"].as_str().unwrap().to_owned();
    let secrets = [
        json!({"kind": "profile_attribute", "name": "family_name", "value": "Hopper-Unique-Surname"}),
        json!({"kind": "note", "text": "Diagnosis: Unique-Condition-Xylophage"}),
        json!({"kind": "receipt", "merchant": "Unique-Merchant-Quokka", "items": [{"name": "Unique-Item-Zebra", "category": "health.pharmacy", "quantity": 1, "unit_price": {"minor": 999, "currency": "EUR"}}], "total": {"minor": 999, "currency": "EUR"}, "purchased_at": "2026-11-01T09:00:00Z"}),
    ];
    for s in &secrets {
        let (st, _) = post(
            &http,
            format!("{}/v1/vault/records", srv.base),
            Some(&token),
            s.clone(),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    // Failed and malformed requests too: their values must not be logged either.
    post(
        &http,
        format!("{}/v1/sessions", srv.base),
        None,
        json!({"email": email, "passphrase": "Wrong-Passphrase-Of-Grace"}),
    )
    .await;
    post(
        &http,
        format!("{}/v1/vault/records", srv.base),
        Some(&token),
        json!({"kind": "note", "text": 5, "x": "Unique-Bad-Field-Value"}),
    )
    .await;
    let resp = http
        .get(format!("{}/v1/me", srv.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let needles = [
        email,
        "grace.hopper",
        "Passphrase-Of-Grace",
        "Hopper-Unique-Surname",
        "Unique-Condition-Xylophage",
        "Unique-Merchant-Quokka",
        "Unique-Item-Zebra",
        "Unique-Bad-Field-Value",
        &token[7..],
    ];
    let scan = |when: &str| {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(t.data_dir.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                // `outbox/`: mail on its way to members (the file outbox
                // stands in for SMTP); addressed to them by nature.
                continue;
            }
            let data = std::fs::read(&p).unwrap();
            names.push(p.file_name().unwrap().to_string_lossy().into_owned());
            for n in needles {
                assert!(
                    !data.windows(n.len()).any(|w| w == n.as_bytes()),
                    "{when}: {} contains {n:?}",
                    p.display()
                );
            }
        }
        names
    };
    // While the server runs, the SQLite WAL holds the recent writes: scan it too.
    let running = scan("while running");
    assert!(
        running.iter().any(|n| n.ends_with("-wal")),
        "expected a WAL file: {running:?}"
    );
    assert!(srv.term().success());
    let stopped = scan("after shutdown");
    assert!(
        stopped.len() >= 3,
        "expected the database, key and log files: {stopped:?}"
    );
    let logtext = std::fs::read_to_string(&log).unwrap();
    assert!(
        logtext.contains("DEBUG") || logtext.contains("INFO"),
        "the log should not be empty: {logtext}"
    );
}

#[tokio::test]
async fn operator_commands_and_tamper_detection() {
    let db = Db::Sqlite;
    let t = fresh(db).await.unwrap().unwrap();
    let out = me2b(&t, db)
        .args([
            "org",
            "create",
            "--name",
            "Corner Co-op",
            "--kind",
            "coop",
            "--roles",
            "admin,offers",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("api key       me2b_k_") && text.contains("shown once"),
        "{text}"
    );
    // Finishing the move off the master key: nobody is on it here.
    let out = me2b(&t, db)
        .args(["members", "retire-legacy", "--inactive-days", "90"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("0 members on the master-key wrap: 0 warned now, 0 erased"),
        "{said}"
    );
    let out = me2b(&t, db)
        .args(["org", "create", "--name", "Corner Co-op"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = me2b(&t, db)
        .args(["org", "create", "--name", "X", "--roles", "root"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--roles"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = me2b(&t, db).args(["org", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Corner Co-op"));

    let out = me2b(&t, db).args(["audit", "verify"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK"), "{text}");

    // Edit entry 2 behind the log's back.
    let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET at = at + 1 WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let out = me2b(&t, db).args(["audit", "verify"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED at entry #2"), "{text}");
}

#[tokio::test]
async fn a_wrong_master_key_fails_loudly_and_config_files_apply() {
    let db = Db::Sqlite;
    let t = fresh(db).await.unwrap().unwrap();
    let log = t.data_dir.path().join("server.log");
    let srv = serve(&t, db, &log, &[]);
    assert!(srv.term().success());
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("other.key");
    std::fs::write(
        &key,
        "me2b-master-key v1\n0000000000000000000000000000000000000000000000000000000000000000\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = me2b(&t, db)
        .env("ME2B_MASTER_KEY_FILE", &key)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("does not belong to this database"), "{err}");

    // A TOML file sets the listen address; the flag still wins over it.
    let cfg = other.path().join("me2b.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:1\"\nlog = \"warn\"\n").unwrap();
    let mut cmd = me2b(&t, db);
    let mut child = cmd
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains("listening on http://127.0.0.1:") && !line.contains(":1 "),
        "{line}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(&cfg, "lisen = 1\n").unwrap();
    let out = me2b(&t, db)
        .arg("--config")
        .arg(&cfg)
        .args(["org", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid config file"));
}

#[tokio::test]
async fn consent_receipts_verify_offline() {
    use me2b_consent::model::{ConsentRecord, ConsentRequestInput, GrantInput, Method};
    use me2b_consent::receipt::{self, ReceiptClaims};
    let db = Db::Sqlite;
    let t = fresh(db).await.unwrap().unwrap();
    // Initialise the node (creates its master key).
    let out = me2b(&t, db).args(["org", "list"]).output().unwrap();
    assert!(out.status.success());
    let master = me2b_crypto::MasterKey::load(&t.data_dir.path().join("master.key")).unwrap();
    let keys = me2b_crypto::Keyring::derive(&master);
    let v = me2b_consent::Vocabulary::shipped().unwrap();
    let rng = me2b_crypto::SeededRandom::new(1);
    let (org, member) = (
        me2b_domain::OrgId::generate(&rng),
        me2b_domain::MemberId::generate(&rng),
    );
    let now = me2b_domain::Timestamp::from_unix_millis(1_790_000_000_000);
    let req: ConsentRequestInput = serde_json::from_value(json!({"purposes": ["direct-marketing"], "categories": ["interest"],
        "processing": ["use"], "legal_basis": "consent", "retention_days": 30, "notice": "n", "notice_version": "1"})).unwrap();
    let req = req
        .validate(&v, me2b_domain::ConsentRequestId::generate(&rng), org, now)
        .unwrap();
    let rec = ConsentRecord::grant(
        me2b_domain::ConsentId::generate(&rng),
        &req,
        member,
        GrantInput::default(),
        Method::Paper,
        now,
    )
    .unwrap();
    let claims = ReceiptClaims::for_record(
        &v,
        &rec,
        "Corner Co-op",
        keys.subject_pseudonym(&org, &member),
        "test",
        now,
    );
    let jws = receipt::sign(&keys, &claims);
    let file = t.data_dir.path().join("receipt.jws");
    std::fs::write(&file, &jws).unwrap();
    let out = me2b(&t, db)
        .args(["consent", "verify-receipt"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("VALID"), "{text}");
    assert!(
        text.contains("Corner Co-op") && text.contains("direct-marketing"),
        "{text}"
    );
    // With the public key only, as a third party would.
    let pk = hex::encode(keys.verifying_key().to_bytes());
    let out = Command::new(BIN)
        .args(["consent", "verify-receipt"])
        .arg(&file)
        .args(["--public-key", &pk])
        .output()
        .unwrap();
    assert!(out.status.success());
    // Altered: refused, exit 1.
    let mut b = jws.into_bytes();
    let mid = b.len() / 2;
    b[mid] = if b[mid] == b'x' { b'y' } else { b'x' };
    std::fs::write(&file, b).unwrap();
    let out = me2b(&t, db)
        .args(["consent", "verify-receipt"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("INVALID"));
}

#[test]
fn the_demo_runs_end_to_end() {
    let keep = tempfile::tempdir().unwrap();
    let kept = keep.path().join("node");
    let out = Command::new(BIN)
        .args(["demo", "--members", "12", "--keep"])
        .arg(&kept)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expect in [
        "as stored",
        "grants and then withdraws",
        "verifies offline",
        "as the member reads it",
        "403 Forbidden",
        "0 found",
        "records left: 0",
        "chain and",
        // One erased in the vault walk-through, one in the trust's.
        "10 active, 2 erased",
        "Erasure reaches the trust",
        "answered as before and stored",
        "Co-ops learn of erasures in batches",
        // Loyalty with the member present: co-ops see no balance.
        "(POST /v1/org/trust/loyalty/earn → 202 {\"status\":\"accepted\"}): nothing more.",
        "(POST /v1/org/trust/loyalty/earn → accepted: the co-op never sees a balance)",
        "a one-time token for 100 points at Fair Threads only",
        "→ 404 Not Found unknown_card, nothing recorded",
        "screen shows it as text and as a QR code",
        "till scans the code: ",
        "→ redeemed 100): all Fair Threads learns.",
        "409 Conflict redemption_refused, the one answer",
        "→ 409 redemption_refused both times, word for word",
        "20 points left; history per co-op and day",
        // Offers: refusals with their position, a bundle endorsed, reasons,
        // suggestions without sensitive topics, counts withheld, leads.
        "REFUSED, 422 Unprocessable Entity rule_type at 1:8",
        "REFUSED, 422 Unprocessable Entity sensitive_topic",
        "REFUSED, 422 Unprocessable Entity rule_sensitive_topic at 1:1",
        "→ pending_partners",
        "Fair Threads endorses it",
        "a sensitive topic is never suggested",
        "why: You declared an interest in Cycling; Green Wheels targets Cycling, for members where",
        "(your region is Amsterdam)",
        "suggested from your receipts",
        "A bundle with Fair Threads.",
        "marks it not relevant",
        // Offers' statistics: released on a schedule, unchanged by a visit,
        // copies without statistics.
        "withheld (< 20)",
        "no release yet",
        "a visit never causes a release",
        "copies go live, each without statistics",
        "409 Conflict too_many_live_offers",
        // The trust: one accountant, budgets per pool shared by every asker.
        "403 Forbidden over_budget",
        "is spent for everyone this month",
        "open only to requesters the governance file names",
        "GET /v1/me/transparency, pool by pool",
        "GET /v1/me/offers → 403 Forbidden",
        "Accepted leads: Green Wheels reads its contact request",
        "The co-ops did NOT learn who matched an offer",
        "3 live (+8 copies without statistics), 3 refused at publish",
        // Credentials: two unlinkable visits, a replay, offline, revoked.
        "Visit 2: verify → 200 OK, VALID",
        "the presentation names no co-op",
        "cannot tell the two visits apart",
        "422 Unprocessable Entity unknown_challenge",
        "presentation → VALID.",
        "422 Unprocessable Entity revoked",
        "3 issued; 3 presentations verified",
    ] {
        assert!(
            text.contains(expect),
            "demo output lacks {expect:?}:\n{text}"
        );
    }

    // The redemption token's QR code, as the demo wrote it.
    let qr = std::fs::read_to_string(kept.join("loyalty-token.svg")).unwrap();
    assert!(qr.starts_with("<svg") && qr.contains("h1v1h-1z"), "{qr}");

    // The marketplace's files, verified offline by the command, with no node.
    let dir = kept.join("credential-offline");
    let verify = |presentation: &Path| {
        Command::new(BIN)
            .current_dir(&dir)
            .args([
                "credential",
                "verify",
                "--challenge",
                "challenge.json",
                "--issuers",
                "issuers.json",
                "--presentation",
            ])
            .arg(presentation)
            .output()
            .unwrap()
    };
    let ok = verify(Path::new("presentation.json"));
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{said}");
    assert!(said.contains("VALID presentation"), "{said}");
    assert!(
        said.contains("federation       Fair Economy Federation"),
        "{said}"
    );
    assert!(
        !said.contains("tier"),
        "undisclosed claims stay hidden: {said}"
    );
    assert!(said.contains("which one was not disclosed"), "{said}");
    // A disclosed claim changed, and a file that is not a presentation.
    let mut p: Value =
        serde_json::from_slice(&std::fs::read(dir.join("presentation.json")).unwrap()).unwrap();
    p["disclosed"]["validity_epoch"] = json!("4000000000");
    std::fs::write(dir.join("tampered.json"), p.to_string()).unwrap();
    for (file, code) in [
        ("tampered.json", "proof_invalid"),
        ("issuers.json", "malformed_presentation"),
    ] {
        let bad = verify(Path::new(file));
        let said = String::from_utf8_lossy(&bad.stdout);
        assert_eq!(bad.status.code(), Some(1), "{said}");
        assert!(said.contains(&format!("INVALID ({code})")), "{said}");
    }
}

/// `me2b demo --serve` keeps the demo's node running: the printed member
/// logs in with the printed passphrase, the printed co-op key works, and the
/// web pages answer.
#[tokio::test]
async fn the_demo_serves_its_node_with_a_members_and_a_coops_login() {
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--members",
            "3",
            "--serve",
            "--serve-on",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut email, mut pass, mut key) = (None, None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let word_after = |w: &str| {
            line.split_whitespace()
                .skip_while(|x| *x != w)
                .nth(1)
                .map(str::to_owned)
        };
        if line.contains("is running at") {
            url = word_after("at").map(|u| u.trim_end_matches('/').to_owned());
        } else if line.contains("a member") {
            email = word_after("e-mail");
        } else if let Some(p) = line.trim().strip_prefix("passphrase: ") {
            pass = Some(p.to_owned());
        } else if line.contains("a co-op") {
            key = word_after("key");
        }
        if line.contains("new members") {
            break;
        }
    }
    let (url, email, pass, key) = (url.unwrap(), email.unwrap(), pass.unwrap(), key.unwrap());
    let http = reqwest::Client::new();
    let login = http.get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(login.text().await.unwrap().contains("Log in"));
    let session = http
        .post(format!("{url}/v1/sessions"))
        .json(&json!({"email": email, "passphrase": pass}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::CREATED);
    let org = http
        .get(format!("{url}/v1/org"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(org.status(), StatusCode::OK);
    // Ctrl-C stops it cleanly.
    let int = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(int.success());
    assert!(child.wait().unwrap().success());
}

/// Rows in `table` of the node's database, read as a thief of the files would.
async fn rows(t: &TestDb, db: Db, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
            let n = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
            let n = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }
}

/// Polls `rows(table)` until it is `want`; fails after a minute (a task
/// that never runs), whatever the machine's load.
async fn until_rows(t: &TestDb, db: Db, table: &str, want: i64, what: &str) {
    for _ in 0..600 {
        if rows(t, db, table).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{db:?}: {what}");
}

/// What shows that the scheduled compaction ran, read from the files: on
/// SQLite the free pages (`VACUUM` leaves none), on PostgreSQL the file
/// behind `members` (`CLUSTER` writes the table to a new one).
async fn compaction_mark(t: &TestDb, db: Db) -> i64 {
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
            let n = sqlx::query_scalar("PRAGMA freelist_count")
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            n
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
            let n = sqlx::query_scalar(
                "SELECT relfilenode::BIGINT FROM pg_class WHERE relname = 'members'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            pool.close().await;
            n
        }
    }
}

/// Review of the last session: nothing checked that `me2b serve` starts its
/// background tasks (the sweeper had never been started). A sign-up never
/// confirmed is kept a day; here its end is moved a few seconds ahead (what
/// a day's wait would do) and the node left alone, sweeping every second:
/// the sweeper deletes it with no request to trigger it. And a paper code
/// typed at the public page only queues a job: the opt-out worker does it.
/// And the compaction (`[storage] compact_every`, here every second)
/// rewrites the file: on SQLite 200 free pages left by a dropped table are
/// gone (the node's few writes here reuse only some), on PostgreSQL
/// `members` is in a new file.
#[tokio::test]
async fn serve_runs_the_sweeper_the_optout_worker_and_the_compaction() {
    for db in Db::ALL {
        let Some(t) = fresh(db).await.unwrap() else {
            continue;
        };
        let log = t.data_dir.path().join("server.log");
        let config = t.data_dir.path().join("me2b.toml");
        std::fs::write(&config, "[storage]\ncompact_every = \"1s\"\n").unwrap();
        let srv = serve(
            &t,
            db,
            &log,
            &[
                ("ME2B_SWEEP_INTERVAL", "1"),
                ("ME2B_CONFIG", config.to_str().unwrap()),
            ],
        );
        if db == Db::Sqlite {
            // Free pages, written by another connection (which the
            // compaction sees as a write), counted before the commit (a
            // compaction may run at any time after it).
            let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(
                "CREATE TABLE filler AS WITH RECURSIVE n(i) AS \
                 (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 SELECT zeroblob(4000) AS b FROM n",
            )
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query("DROP TABLE filler")
                .execute(&mut *tx)
                .await
                .unwrap();
            let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            pool.close().await;
            assert!(free >= 150, "{db:?}: {free} free pages");
        }
        let before = compaction_mark(&t, db).await;
        let http = reqwest::Client::new();
        let v = signup::sign_up(
            &http,
            &srv.base,
            t.data_dir.path(),
            "optout@example.org",
            "correct horse battery",
        )
        .await;
        let token = v["token"].as_str().unwrap().to_owned();
        let (st, c) = post(
            &http,
            format!("{}/v1/me/optout-code", srv.base),
            Some(&token),
            json!({}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{db:?}: {c}");
        let code = c["code"].as_str().unwrap();
        let (st, done) = post(
            &http,
            format!("{}/v1/optout", srv.base),
            None,
            json!({ "code": code }),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{db:?}: {done}");
        until_rows(
            &t,
            db,
            "optout_jobs",
            0,
            "the opt-out worker never did the queued job",
        )
        .await;

        let (st, _) = post(
            &http,
            format!("{}/v1/members", srv.base),
            None,
            json!({"email": "never.confirmed@example.org", "passphrase": "correct horse battery"}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{db:?}");
        assert!(
            rows(&t, db, "sign_ups").await >= 1,
            "{db:?}: no sign-up row"
        );
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 3_000;
        let moved = match db {
            Db::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
                let r = sqlx::query("UPDATE sign_ups SET expires_at = $1")
                    .bind(soon)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                r.rows_affected()
            }
            Db::Postgres => {
                let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
                let r = sqlx::query("UPDATE sign_ups SET expires_at = $1")
                    .bind(soon)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                r.rows_affected()
            }
        };
        assert!(moved >= 1, "{db:?}");
        // No request from here on.
        until_rows(
            &t,
            db,
            "sign_ups",
            0,
            "the sweeper never deleted the sign-up past its end",
        )
        .await;
        let mut compacted = false;
        for _ in 0..600 {
            let now = compaction_mark(&t, db).await;
            if (db == Db::Sqlite && now == 0) || (db == Db::Postgres && now != before) {
                compacted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(compacted, "{db:?}: the compaction never ran");
        assert!(srv.term().success(), "{db:?}");
    }
}
