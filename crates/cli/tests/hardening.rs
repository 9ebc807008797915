//! Hardening (issue 14), against the real binary: a cut audit tail after
//! `kill -9` is caught; the integrity check is a command and a background
//! report, not a gate on start; slow, idle and piled-up connections cannot
//! keep the node from answering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod signup;

use me2b_testkit::{fresh, Db, TestDb};
use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    addr: String,
}

/// Starts `cmd` (a `serve`) and reads its listening line; stderr goes to `log`.
fn start(mut cmd: Command, log: &Path) -> Server {
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = cmd.stdout(Stdio::piped()).stderr(logf).spawn().unwrap();
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
        })
        .to_owned();
    Server {
        child,
        base: format!("http://{addr}"),
        addr,
    }
}

fn serve(t: &TestDb, db: Db, log: &Path, env: &[(&str, &str)]) -> Server {
    let mut cmd = me2b(t, db);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    start(cmd, log)
}

impl Server {
    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no shutdown, no final checkpoint
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

async fn sql(db: Db, url: &str, statements: &[&str]) {
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

async fn last_seq(db: Db, url: &str) -> i64 {
    let q = "SELECT MAX(seq) FROM audit_log";
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let n: i64 = sqlx::query_scalar(q).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let n: i64 = sqlx::query_scalar(q).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }
}

#[tokio::test]
async fn an_audit_tail_cut_after_kill_9_is_caught() {
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
            "tail@example.org",
            "correct horse battery",
        )
        .await;
        let token = v["token"].as_str().unwrap().to_owned();
        for i in 0..5 {
            let r = http
                .post(format!("{}/v1/vault/records", srv.base))
                .bearer_auth(&token)
                .json(&json!({"kind": "note", "text": format!("note {i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        // A crash: no graceful shutdown, so no final checkpoint.
        srv.kill9();
        let out = me2b(&t, db).args(["audit", "verify"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{db:?}: intact log: {text}");

        // Someone with write access to the database (not the node's key)
        // deletes the last three entries and every signature covering them.
        let n = last_seq(db, &t.url).await;
        let guard = match db {
            Db::Sqlite => "DROP TRIGGER audit_log_no_delete",
            Db::Postgres => "DROP TRIGGER audit_log_no_update_delete ON audit_log",
        };
        let cut = format!("DELETE FROM audit_log WHERE seq > {}", n - 3);
        let cps = format!("DELETE FROM audit_checkpoints WHERE seq > {}", n - 3);
        sql(db, &t.url, &[guard, &cut, &cps]).await;

        let out = me2b(&t, db).args(["audit", "verify"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{db:?}: the cut must be found: {text}"
        );
        assert!(
            text.contains(&format!("FAILED at entry #{}", n - 2)) && text.contains("were removed"),
            "{db:?}: {text}"
        );
        // Without the head file the cut cannot be seen, and the output says so.
        let out = me2b(&t, db)
            .args(["audit", "verify", "--no-head-file"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{db:?}: {text}");
        assert!(text.contains("NOT CHECKED"), "{db:?}: {text}");

        // A node refuses to append to the cut log (which would hide the cut).
        let out = me2b(&t, db).args(["org", "list"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{db:?}: a node started on a cut log");
        assert!(err.contains("were removed"), "{db:?}: {err}");
    }
}

/// Garbage over the root page of a table the node never reads at start.
async fn damage_a_page(t: &TestDb) {
    let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
    sqlx::query("CREATE TABLE filler (x BLOB)")
        .execute(&pool)
        .await
        .unwrap();
    for i in 0..200 {
        sqlx::query("INSERT INTO filler (x) VALUES ($1)")
            .bind(vec![i as u8; 2000])
            .execute(&pool)
            .await
            .unwrap();
    }
    let root: i64 = sqlx::query_scalar("SELECT rootpage FROM sqlite_master WHERE name = 'filler'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Every page in the main file (none left only in the WAL) before it is edited.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let path = t.data_dir.path().join("me2b.sqlite3");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = usize::try_from((root - 1) * page_size).unwrap();
    for (i, b) in bytes[at..at + 64].iter_mut().enumerate() {
        *b = 0x5A ^ (i as u8);
    }
    std::fs::write(&path, bytes).unwrap();
}

#[tokio::test]
async fn the_integrity_check_is_a_command_and_a_background_report() {
    let db = Db::Sqlite;
    let t = fresh(db).await.unwrap().unwrap();
    let out = me2b(&t, db).args(["org", "list"]).output().unwrap();
    assert!(out.status.success());
    let out = me2b(&t, db).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK: SQLite quick_check passed"), "{text}");

    damage_a_page(&t).await;
    for args in [&["check"][..], &["check", "--full"]] {
        let out = me2b(&t, db).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(
            text.contains("FAILED: SQLite")
                && text.contains("found 1 problem(s)")
                && text.contains("restore the database from a backup"),
            "{args:?}: {text}"
        );
    }

    // The node still starts and serves; the background check reports.
    let log = t.data_dir.path().join("server.log");
    let srv = serve(&t, db, &log, &[]);
    let r = reqwest::get(format!("{}/healthz", srv.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("integrity check FAILED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains("database integrity check FAILED"), "{text}");
    assert!(text.contains("me2b check"), "{text}");
    assert!(srv.term().success());
}

/// Reads until the server closes the connection; `None` if it is still open
/// at `within`.
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = within.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {} // e.g. a 408 before the close
        }
    }
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let db = Db::Sqlite;
    let t = fresh(db).await.unwrap().unwrap();
    let log = t.data_dir.path().join("server.log");
    let timeout = Duration::from_secs(2);
    let srv = serve(
        &t,
        db,
        &log,
        &[("ME2B_HEADER_TIMEOUT", "2"), ("ME2B_IDLE_TIMEOUT", "2")],
    );
    let bound = timeout * 3;

    // A connection that never sends a byte.
    let mut idle = tokio::net::TcpStream::connect(&srv.addr).await.unwrap();
    assert!(
        closed_within(&mut idle, bound).await.is_some(),
        "an idle connection was still open after {bound:?}"
    );

    // A kept-alive connection after its answer.
    let mut kept = tokio::net::TcpStream::connect(&srv.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: me2b\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(
        closed_within(&mut kept, bound).await.is_some(),
        "a kept-alive connection was still open after {bound:?} idle"
    );

    // Slowloris: a request line, then one header line every 300 ms, never done.
    let mut slow = tokio::net::TcpStream::connect(&srv.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: me2b\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut closed = false;
    while start.elapsed() < bound {
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut slow, Duration::from_millis(300))
            .await
            .is_some()
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a slowloris connection was still open after {bound:?}"
    );

    // And the node still answers.
    let r = reqwest::get(format!("{}/healthz", srv.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(srv.term().success());
}

#[tokio::test]
async fn healthz_answers_while_1100_idle_connections_are_open_under_ulimit_1024() {
    let db = Db::Sqlite;
    let t = fresh(db).await.unwrap().unwrap();
    let log = t.data_dir.path().join("server.log");
    // Only the child gets the low limit (soft and hard: it cannot raise it).
    // Long timeouts: the connection cap is what must keep /healthz answering.
    let mut cmd = Command::new("sh");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ME2B_HEADER_TIMEOUT", "600")
        .env("ME2B_IDLE_TIMEOUT", "600")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--data-dir")
        .arg(t.data_dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let srv = start(cmd, &log);

    let mut idle = Vec::new();
    for _ in 0..1100 {
        match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(&srv.addr),
        )
        .await
        {
            Ok(Ok(s)) => idle.push(s),
            other => panic!("connect {} failed: {other:?}", idle.len()),
        }
    }
    assert_eq!(idle.len(), 1100);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/healthz", srv.base))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "/healthz did not answer with 1,100 idle connections open: {e} (log: {})",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    assert_eq!(r.status(), StatusCode::OK);
    // The log says why fewer connections are served: 1024 - 128 reserved.
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("open-file limit is too low"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("1024") && line.contains("896"), "{line}");
    drop(idle);
    assert!(srv.term().success());
}
