//! `me2b demo`: a throwaway node, a co-op, members with vaults, and what each
//! party sees. Every step goes through the same services and HTTP router the
//! server runs. One module per story: the vault, consent, offers, the data
//! trust, credentials, members' rights.

use crate::ensure;
use anyhow::Context;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use me2b_crypto::{OsRandom, PassphraseParams};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::record::RecordContent;
use me2b_domain::text::Label;
use me2b_domain::{MemberId, RecordId, SystemClock, Timestamp};
use me2b_node::{Node, NodeConfig};
use me2b_server::{AppState, ServerOptions};
use setup::Coops;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

mod consent;
mod credentials;
mod intents;
mod offers;
mod rights;
mod setup;
mod trust;
mod vault;

const MERCHANTS: [&str; 4] = [
    "Zuiderzee Food Co-op Amsterdam-Oost",
    "Fietsherstel Coöperatie De Spaak",
    "Kringloop Weggeefwinkel Utrecht",
    "Boerderijwinkel Het Groene Erf",
];
/// Where every third member also shops: its receipts feed interest suggestions.
const GROCER: &str = "Corner Co-op Haarlem-Noord";
const REGIONS: [&str; 4] = ["Amsterdam", "Utrecht", "Rotterdam", "Groningen"];
/// Declared interests: slugs of the shipped taxonomy (`GET /v1/taxonomy`).
const TOPICS: [&str; 5] = ["cycling", "organic", "fair-trade", "second-hand", "repair"];
const NAMES: [&str; 6] = ["Amara", "Bram", "Chiara", "Dewi", "Emre", "Femke"];

fn email(i: usize) -> String {
    format!("demo-member-{i:04}@members.example.org")
}

fn records_for(i: usize) -> anyhow::Result<Vec<RecordContent>> {
    let m = MERCHANTS[i % MERCHANTS.len()];
    let day = 1 + i % 28;
    let mut json = vec![
        serde_json::json!({"kind": "profile_attribute", "name": "given_name", "value": NAMES[i % NAMES.len()]}),
        serde_json::json!({"kind": "profile_attribute", "name": "region", "value": REGIONS[i % REGIONS.len()]}),
        serde_json::json!({"kind": "interest", "topic": TOPICS[i % TOPICS.len()]}),
        serde_json::json!({
            "kind": "receipt",
            "merchant": m,
            "items": [
                {"name": "Havermelk 1L", "category": "food.dairy-alternatives", "quantity": 2,
                 "unit_price": {"minor": 189, "currency": "EUR"}},
                {"name": "Volkorenbrood", "category": "food.bakery", "quantity": 1,
                 "unit_price": {"minor": 345 + (i % 50) as i64, "currency": "EUR"}}
            ],
            "total": {"minor": 378 + 345 + (i % 50) as i64, "currency": "EUR"},
            "purchased_at": format!("2026-11-{day:02}T17:{:02}:00Z", i % 60)
        }),
        serde_json::json!({"kind": "note", "text": format!("Private note of demo member {i:04}: bike lock code is not here.")}),
        serde_json::json!({"kind": "profile_attribute", "name": "email", "value": email(i)}),
    ];
    if i.is_multiple_of(3) {
        // Organic groceries, and nappies: a sensitive category that must never
        // become an interest suggestion.
        json.push(serde_json::json!({
            "kind": "receipt",
            "merchant": GROCER,
            "items": [
                {"name": "Biologische Elstar appels 1 kg", "category": "food.organic.apples", "quantity": 1,
                 "unit_price": {"minor": 349, "currency": "EUR"}},
                {"name": "Biologische wortelen 500 g", "category": "food.organic.vegetables", "quantity": 2,
                 "unit_price": {"minor": 129, "currency": "EUR"}},
                {"name": "Luiers maat 3 (44 st.)", "category": "baby.nappies", "quantity": 1,
                 "unit_price": {"minor": 1199, "currency": "EUR"}}
            ],
            "total": {"minor": 349 + 2 * 129 + 1199, "currency": "EUR"},
            "purchased_at": format!("2026-11-{day:02}T10:{:02}:00Z", i % 60)
        }));
    }
    json.iter()
        .map(|j| RecordContent::from_json(j.to_string().as_bytes()).context("demo record"))
        .collect()
}

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body)?).await?;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await?;
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)?
    };
    Ok((status, json))
}

fn files_containing(dir: &Path, needles: &[&[u8]]) -> anyhow::Result<(usize, u64, Vec<String>)> {
    let mut files = 0;
    let mut bytes = 0;
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let data = std::fs::read(&p)?;
            files += 1;
            bytes += data.len() as u64;
            for n in needles {
                if data.windows(n.len()).any(|w| w == *n) {
                    hits.push(format!(
                        "{} contains {:?}",
                        p.display(),
                        String::from_utf8_lossy(n)
                    ));
                }
            }
        }
    }
    Ok((files, bytes, hits))
}

type Made = Vec<(usize, MemberId, me2b_crypto::SecretToken, Vec<RecordId>)>;

fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "   {{bar:40}} {{pos}}/{{len}} {what}  {{elapsed}} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `f` over `items`, eight at a time, with a progress bar; results in
/// the order of `items`.
async fn in_parallel<T, R, F, Fut>(items: Vec<T>, what: &str, f: F) -> anyhow::Result<Vec<R>>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<R>> + Send + 'static,
    R: Send + 'static,
{
    let bar = progress(items.len(), what);
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, item) in items.into_iter().enumerate() {
        let fut = f(item);
        let sem = sem.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            anyhow::Ok((n, fut.await?))
        });
    }
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(r) = tasks.join_next().await {
        out.push(r??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.sort_by_key(|r| r.0);
    Ok(out.into_iter().map(|r| r.1).collect())
}

/// "1 accepts", "2 accept".
fn verb(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn err_code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn err_message(v: &serde_json::Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("")
}

/// A pseudonym as the demo prints it: the first 16 hex digits.
fn short(p: &str) -> String {
    format!("{}…", p.chars().take(16).collect::<String>())
}

fn hex_preview(b: &[u8]) -> String {
    let shown: Vec<String> = b.iter().take(40).map(|x| format!("{x:02x}")).collect();
    format!("{}… ({} bytes)", shown.join(""), b.len())
}

pub async fn run(
    members: usize,
    keep: Option<PathBuf>,
    serve_on: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    ensure(members >= 3, "--members must be at least 3")?;
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    let dir = keep.unwrap_or_else(|| tmp.path().join("node"));
    out!("me2b demo: a throwaway node in {}\n", dir.display());

    let clock = Arc::new(setup::DemoClock::default());
    let mailboxes = Arc::new(me2b_vault::MemoryOutbox::default());
    let (node, _cfg, coops) = setup::start(&dir, clock.clone(), mailboxes.clone()).await?;
    let app = me2b_server::router(
        AppState {
            node: node.clone().into(),
        },
        ServerOptions::default(),
    );
    let (made, erased) =
        vault::story(&node, &app, &coops, &dir, members, &mailboxes, &clock).await?;

    let offers = offers::offers_story(&node, &app, &made, erased, &coops, &clock).await?;
    let trust = trust::trust_story(&node, &app, &made, erased, &coops, &dir).await?;
    let creds = credentials::credentials_story(&node, &app, &dir, &made, &coops.corner.0).await?;
    let rights = rights::rights_story(&node, &app, &made, erased, &coops, &dir).await?;
    let intents = intents::intents_story(&node, &app, &made, &clock).await?;
    // Eight days on, the erasure's batch is released to organisations (the
    // node's sweeper does this every minute; the demo's clock jumps): the
    // account row and its audit salt go, and the co-ops see the erasure.
    clock.skip_days(8);
    let released = node.vault.release_erasures_due().await?;
    out!(
        "\nEight days later the erasure's batch is released: {} erased member(s) now visible to organisations,\n   whose erasure requests are waiting for them (GET /v1/org/erasure-requests).",
        released
    );
    // Verify again, so the report counts the offer and trust events too.
    node.audit.checkpoint_now().await?;
    let report =
        me2b_audit::verify(node.store.as_ref(), &node.keys.verifying_key(), &|_| {}).await?;
    ensure(
        report.ok(),
        "audit log did not verify after the offers and the trust",
    )?;

    let remaining = node.store.count_members().await?;
    let mut at_rest = 0;
    for m in made.iter().filter(|m| m.1 != erased) {
        at_rest += node.store.count_records(m.1).await?;
    }
    out!("\nReport");
    out!(
        "  members        {remaining} active, {} erased",
        (made.len() as u64).saturating_sub(remaining)
    );
    out!("  records        {at_rest} encrypted at rest, 0 readable without the member's key");
    out!("  organisations  4 co-ops, 0 member records reachable without consent");
    out!(
        "  offers         {} live (+{} copies without statistics), {} refused at publish; co-ops got noisy counts and {}",
        offers.live,
        offers.copies,
        offers.refused,
        verb(offers.leads, "consented lead", "consented leads")
    );
    out!(
        "  data trust     {} receipts under per-co-op pseudonyms ({} batches refused); {} DP answers, {} refused",
        trust.receipts,
        trust.batches_refused,
        trust.answered,
        trust.refused
    );
    out!(
        "                 {} members' receipts shared by consent; {} transcryptor requests audited",
        trust.shared,
        trust.transcryptions
    );
    out!(
        "  credentials    {} issued; {} presentations verified, unlinkable; a replay and a revoked one refused",
        creds.issued,
        creds.verified
    );
    out!(
        "  rights         {} withdrawn on paper at a till; a {} byte signed export; a breach report naming {}",
        verb(rights.withdrawn_on_paper, "marketing consent", "marketing consents"),
        rights.export_bytes,
        verb(rights.breach_members, "member", "members")
    );
    out!(
        "  intents        1 published under a one-time pseudonym; {} answers; {} category disclosed on accept; {} organisations saw only \"closed\"",
        intents.answers,
        intents.disclosed,
        intents.closed_for_others
    );
    out!(
        "  audit log      {} entries, chain and {} checkpoints OK",
        report.entries,
        report.checkpoints
    );
    out!("  took           {:.1} s", started.elapsed().as_secs_f64());
    match serve_on {
        Some(addr) => {
            let member = made
                .iter()
                .find(|m| m.1 != erased)
                .map(|m| m.0)
                .unwrap_or(2);
            serve(node, &dir, addr, member, &coops.food.1).await
        }
        None => {
            node.shutdown().await;
            Ok(())
        }
    }
}

/// `--serve`: the demo's node, its data and its clock, served until Ctrl-C.
async fn serve(
    node: me2b_node::Node,
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
    member: usize,
    coop_key: &str,
) -> anyhow::Result<()> {
    // New sign-ups' confirmations go to files now (the demo's members had
    // theirs in memory), as on any node.
    let outbox = me2b_node::outbox::FileOutbox::new(
        dir.join(me2b_node::outbox::OUTBOX_DIR),
        "me2b@localhost".into(),
        node.rng.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    node.vault.set_outbox(Arc::new(outbox));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    out!("\nThe demo's node is running at {url}/ (Ctrl-C stops it):");
    out!("  a member      {url}/login  e-mail {}", email(member));
    out!("                passphrase: demo passphrase for member {member} – not a real one");
    out!(
        "  a co-op       {url}/coop   API key {coop_key}  (Zuiderzee Food Co-op: consent, offers)"
    );
    out!(
        "  new members   sign up at {url}/signup; the confirmation is a file in {}",
        dir.join("outbox").display()
    );
    let state = me2b_server::AppState { node: node.into() };
    me2b_server::serve(listener, state, ServerOptions::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
