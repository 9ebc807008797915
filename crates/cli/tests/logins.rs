//! A flood of logins against the real binary (issue 14): 300 concurrent
//! wrong logins and sign-ups from one client, with the recommended Argon2id
//! parameters (19 MiB each), keep `me2b serve`'s peak resident memory bounded
//! (it went from 37 MB to 16.3 GB before the bound on concurrent Argon2).
//! Logins open member-held key wraps and sign-ups make them, both through
//! `PassphraseHasher::derive_key`, so the flood covers that path too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod signup;

use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_me2b");

/// The peak resident set (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_keeps_the_node_s_memory_bounded() {
    if !Path::new("/proc/self/status").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("me2b.toml");
    // Throttling wide open, so every request reaches Argon2: this tests the
    // bound, not the throttle. Two at once.
    std::fs::write(
        &config,
        "login_account_burst = 100000\nlogin_ip_burst = 100000\nsignup_burst = 100000\nargon2_max_concurrent = 2\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log)
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
        .unwrap_or_else(|| panic!("no listening line: {line:?}"))
        .to_owned();
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let data_dir = dir.path().join("data");
    signup::sign_up(
        &http,
        &base,
        &data_dir,
        "victim@example.org",
        "correct horse battery",
    )
    .await;
    let before = peak_rss_kib(child.id());
    let mut tasks = Vec::new();
    for i in 0..300 {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            // A wrong passphrase for an account (its wrap is opened), for no
            // account (the same Argon2id work, burnt), or a sign-up (a wrap
            // made for a new address).
            let (path, email, expected) = match i % 3 {
                0 => (
                    "sessions",
                    "victim@example.org".to_owned(),
                    StatusCode::UNAUTHORIZED,
                ),
                1 => (
                    "sessions",
                    format!("nobody{i}@example.org"),
                    StatusCode::UNAUTHORIZED,
                ),
                _ => (
                    "members",
                    format!("new{i}@example.org"),
                    StatusCode::ACCEPTED,
                ),
            };
            let status = http
                .post(format!("{base}/v1/{path}"))
                .json(&json!({"email": email, "passphrase": "a wrong passphrase"}))
                .send()
                .await
                .unwrap()
                .status();
            (status, expected)
        }));
    }
    for t in tasks {
        let (status, expected) = t.await.unwrap();
        assert_eq!(status, expected);
    }
    let peak = peak_rss_kib(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    println!(
        "me2b serve peak RSS: {} MiB before the flood, {} MiB after 300 concurrent logins and sign-ups",
        before / 1024,
        peak / 1024
    );
    // Two Argon2id buffers of 19 MiB, plus the node (about 80 MiB measured).
    // Unbounded, 300 at once need about 5.7 GiB; bounded on tokio's blocking
    // pool, 611 MiB; on two threads that allocated per computation, 289 MiB.
    assert!(peak < 160 * 1024, "peak RSS {} MiB", peak / 1024);
}
