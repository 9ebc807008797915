//! Sign-up as a member does it against a running `me2b serve`: the request
//! (202 whatever the address), the token from the message in the node's
//! outbox (`DATA_DIR/outbox/*.eml`), the confirmation.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::path::Path;

/// The confirmation token of the latest message to `email` in `data_dir`'s outbox.
pub fn confirmation_token(data_dir: &Path, email: &str) -> Option<String> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("outbox"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let to = format!("To: {}", email.trim().to_lowercase());
    files
        .iter()
        .rev()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|text| text.lines().any(|l| l.trim() == to))
        .find_map(|m| me2b_vault::find_token(&m))
}

/// Signs `email` up on the node at `base` whose data directory is
/// `data_dir`; returns the confirmation's answer (`token`, `recovery_code`).
pub async fn sign_up(
    http: &reqwest::Client,
    base: &str,
    data_dir: &Path,
    email: &str,
    passphrase: &str,
) -> Value {
    let r = http
        .post(format!("{base}/v1/members"))
        .json(&json!({"email": email, "passphrase": passphrase}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    let token = confirmation_token(data_dir, email).expect("a confirmation in the outbox");
    let r = http
        .post(format!("{base}/v1/members/confirm"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    r.json().await.unwrap()
}
