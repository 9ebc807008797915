//! `me2b demo`: a throwaway node, a co-op, members with vaults, and what each
//! party sees. Every step goes through the same services and HTTP router the
//! server runs.

use crate::ensure;
use anyhow::Context;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use me2b_crypto::{OsRandom, PassphraseParams};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::record::RecordContent;
use me2b_domain::text::Label;
use me2b_domain::{MemberId, RecordId, SystemClock};
use me2b_node::{Node, NodeConfig};
use me2b_server::{AppState, ServerOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

const MERCHANTS: [&str; 4] = [
    "Zuiderzee Food Co-op Amsterdam-Oost",
    "Fietsherstel Coöperatie De Spaak",
    "Kringloop Weggeefwinkel Utrecht",
    "Boerderijwinkel Het Groene Erf",
];
const REGIONS: [&str; 4] = ["Amsterdam", "Utrecht", "Rotterdam", "Groningen"];
const TOPICS: [&str; 5] = [
    "cycling",
    "organic-food",
    "fair-trade",
    "second-hand",
    "repair",
];
const NAMES: [&str; 6] = ["Amara", "Bram", "Chiara", "Dewi", "Emre", "Femke"];

fn email(i: usize) -> String {
    format!("demo-member-{i:04}@members.example.org")
}

fn records_for(i: usize) -> anyhow::Result<Vec<RecordContent>> {
    let m = MERCHANTS[i % MERCHANTS.len()];
    let day = 1 + i % 28;
    let json = [
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
    ];
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

async fn consent_story(
    node: &Node,
    coop: &me2b_storage::OrgRow,
    made: &Made,
) -> anyhow::Result<()> {
    use me2b_consent::model::{ConsentRequestInput, GrantInput, Method};
    let input: ConsentRequestInput = serde_json::from_value(serde_json::json!({
        "purposes": ["service-personalisation", "direct-marketing"],
        "categories": ["region", "interest", "purchase"],
        "processing": ["use"],
        "legal_basis": "consent",
        "retention_days": 90,
        "notice": "Zuiderzee Food Co-op would like to use your region, interests and purchases to personalise your member offers and to send you our own offers. Nothing is sold or shared.",
        "notice_version": "2026-11"
    }))?;
    let req = node.consents.create_request(coop, input).await?;
    out!("\n5b. Consent. The co-op asks every member, in plain language:");
    out!("   \"use your region, interest, purchase for service personalisation, direct marketing, for 90 days\"");
    let (mut all, mut part, mut refused, mut silent) = (0, 0, 0, 0);
    let mut withdrawn_member = None;
    let mut receipt = None;
    for (i, member, _, _) in made.iter().skip(2) {
        match i % 4 {
            0 => {
                let r = node
                    .consents
                    .grant(*member, req.id, GrantInput::default(), Method::Web)
                    .await?;
                receipt.get_or_insert_with(|| r.receipts[0].clone());
                if withdrawn_member.is_none() {
                    let w = node.consents.withdraw(*member, r.id, Method::Web).await?;
                    withdrawn_member = Some((*member, w.receipts.len()));
                } else {
                    all += 1;
                }
            }
            1 => {
                let g = GrantInput {
                    purposes: Some(vec!["service-personalisation".into()]),
                    categories: Some(vec!["region".into(), "interest".into()]),
                };
                node.consents.grant(*member, req.id, g, Method::Web).await?;
                part += 1;
            }
            2 => {
                node.consents.refuse(*member, req.id, Method::Web).await?;
                refused += 1;
            }
            _ => silent += 1,
        }
    }
    out!("   {all} grant everything, {part} grant only region + interest for personalisation,");
    out!("   {refused} refuse, {silent} do not answer, and 1 grants and then withdraws at once.");
    let pers = node
        .consents
        .access(coop.id, req.id, "service-personalisation", "use")
        .await?;
    let mkt = node
        .consents
        .access(coop.id, req.id, "direct-marketing", "use")
        .await?;
    let with_purchases = |ds: &[me2b_consent::service::Disclosure]| {
        ds.iter()
            .filter(|d| d.data.contains_key("purchase"))
            .count()
    };
    out!("   The co-op's data-access API (POST /v1/org/data-access) returns, per purpose:");
    out!(
        "     service personalisation: {} members ({} with purchases)",
        pers.len(),
        with_purchases(&pers)
    );
    out!(
        "     direct marketing:        {} members ({} with purchases)",
        mkt.len(),
        with_purchases(&mkt)
    );
    out!("   Members who refused, did not answer or withdrew are absent: the co-op cannot even count them.");
    if let Some(d) = mkt.first() {
        let cats: Vec<&str> = d.data.keys().map(String::as_str).collect();
        out!(
            "   One disclosure: member {} (a pseudonym only this co-op sees) → {}",
            d.subject,
            cats.join(", ")
        );
    }
    ensure(
        pers.len() == all + part && mkt.len() == all,
        "disclosures do not match the decisions",
    )?;
    ensure(
        with_purchases(&pers) == all,
        "a partial grant disclosed purchases",
    )?;
    if let Some(jws) = receipt {
        let claims = me2b_consent::receipt::verify(&jws, &node.keys.verifying_key())?;
        out!("   Each grant and withdrawal yields a receipt signed by the node (JWS, EdDSA) for both sides;");
        out!(
            "   one verifies offline (`me2b consent verify-receipt FILE`): {:?} by {}, {} bytes.",
            claims.event,
            claims.subject,
            jws.len()
        );
    }
    if let Some((m, n)) = withdrawn_member {
        let tr = node.consents.consents_of(m).await?;
        let status = tr.first().map(|(r, _)| r.status);
        ensure(
            status == Some(me2b_consent::ConsentStatus::Withdrawn),
            "withdrawal not recorded",
        )?;
        out!("   The member who withdrew holds {n} receipts (grant, withdrawal); the co-op reads nothing of theirs.");
    }
    Ok(())
}

fn hex_preview(b: &[u8]) -> String {
    let shown: Vec<String> = b.iter().take(40).map(|x| format!("{x:02x}")).collect();
    format!("{}… ({} bytes)", shown.join(""), b.len())
}

pub async fn run(members: usize, keep: Option<PathBuf>) -> anyhow::Result<()> {
    ensure(members >= 2, "--members must be at least 2")?;
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    let dir = keep.unwrap_or_else(|| tmp.path().join("node"));
    out!("me2b demo: a throwaway node in {}\n", dir.display());

    let mut cfg = NodeConfig::new(&dir);
    cfg.passphrase = PassphraseParams::RECOMMENDED;
    let node = Node::open(&cfg, Arc::new(SystemClock), Arc::new(OsRandom)).await?;
    out!(
        "1. Node started on {} (embedded SQLite). A new 256-bit master key was written to",
        node.database
    );
    out!(
        "   {} (mode 0600); node signing key {}.",
        cfg.master_key_path().display(),
        node.keys.verifying_key().key_id()
    );

    let roles = Roles::try_from(vec![Role::Admin, Role::Consent, Role::Offers])?;
    let (coop, key) = node
        .orgs
        .create(
            Label::try_from("Zuiderzee Food Co-op")?,
            OrgKind::Coop,
            roles,
        )
        .await?;
    let coop_key = key.secret.expose().to_owned();
    out!(
        "\n2. The operator registered the co-op \"{}\" ({}).",
        coop.name,
        coop.id
    );
    out!(
        "   Its API key {}… was shown once; only its SHA-256 is stored.",
        &coop_key[..12]
    );

    out!("\n3. {members} members sign up (Argon2id, 19 MiB, t=2) and fill their vaults:");
    let bar = indicatif::ProgressBar::new(members as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "   {bar:40} {pos}/{len} members  {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..members {
        let vault = node.vault.clone();
        let sem = sem.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let pass =
                Passphrase::parse(format!("demo passphrase for member {i} – not a real one"))?;
            let session = vault.sign_up(Email::parse(&email(i))?, pass).await?;
            let s = vault.authenticate(session.token.expose()).await?;
            let mut ids = Vec::new();
            for r in records_for(i)? {
                ids.push(vault.create_record(&s, r).await?.id);
            }
            anyhow::Ok((i, session.member, session.token, ids))
        });
    }
    let mut made: Vec<(usize, MemberId, me2b_crypto::SecretToken, Vec<RecordId>)> =
        Vec::with_capacity(members);
    while let Some(r) = tasks.join_next().await {
        made.push(r??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    made.sort_by_key(|m| m.0);
    let n_records: usize = made.iter().map(|m| m.3.len()).sum();
    out!(
        "   {members} members, {n_records} encrypted records in {:.1} s.",
        t0.elapsed().as_secs_f64()
    );

    let app = me2b_server::router(AppState { node: node.clone() }, ServerOptions::default());
    let (_, alice, alice_token, alice_records) = made.get(1).context("member 1")?;
    let receipt_id = alice_records[3];
    let stored = node
        .store
        .record(*alice, receipt_id)
        .await?
        .context("stored receipt")?;
    out!("\n4. One receipt of member {alice}:");
    out!("   as stored      {}", hex_preview(&stored.ciphertext));
    out!("                  XChaCha20-Poly1305 under the member's own data key; the associated data binds");
    out!(
        "                  member id, record id and format version {}.",
        stored.ciphertext.first().copied().unwrap_or(0)
    );
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("/v1/vault/records/{receipt_id}"),
        alice_token.expose(),
        None,
    )
    .await?;
    ensure(status == StatusCode::OK, "member could not read own record")?;
    let pretty = serde_json::to_string_pretty(&body["content"])?;
    out!("   as the member reads it (GET /v1/vault/records/{{id}} → {status}):");
    for line in pretty.lines() {
        out!("                  {line}");
    }

    let (status, body) = call(&app, Method::GET, "/v1/vault/records", &coop_key, None).await?;
    ensure(status == StatusCode::FORBIDDEN, "co-op reached member data")?;
    out!("\n5. The co-op tries the same with its API key: GET /v1/vault/records → {status}");
    out!(
        "   {}: {}",
        body["error"]["code"].as_str().unwrap_or(""),
        body["error"]["message"].as_str().unwrap_or("")
    );
    out!("   The attempt is in the audit log. An organisation reaches member data only through consent");
    out!("   that the member grants, purpose by purpose.");

    consent_story(&node, &coop, &made).await?;

    let needles: Vec<&[u8]> = vec![
        b"demo-member-",
        b"members.example.org",
        MERCHANTS[0].as_bytes(),
        MERCHANTS[1].as_bytes(),
        MERCHANTS[2].as_bytes(),
        MERCHANTS[3].as_bytes(),
        b"Private note of demo member",
        b"Havermelk",
    ];
    let (files, bytes, hits) = files_containing(&dir, &needles)?;
    out!("\n6. Privacy at rest: searched all {files} files of the data directory ({:.1} MB: database, WAL, key)", bytes as f64 / 1e6);
    out!(
        "   for the members' e-mail addresses, merchants, notes and items: {} found.",
        hits.len()
    );
    for h in &hits {
        out!("   !! {h}");
    }
    ensure(hits.is_empty(), "personal data found in plaintext at rest")?;

    let (erased, erased_token, erased_records) = (
        made[1].1,
        alice_token.expose().to_owned(),
        alice_records.clone(),
    );
    let pass = format!("demo passphrase for member {} – not a real one", 1);
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/v1/me",
        &erased_token,
        Some(serde_json::json!({"passphrase": pass})),
    )
    .await?;
    ensure(status == StatusCode::NO_CONTENT, "erasure failed")?;
    let wrapped_left = node.store.member(erased).await?.is_some();
    let mut rows_left = 0;
    for r in &erased_records {
        rows_left += usize::from(node.store.record(erased, *r).await?.is_some());
    }
    let (status_after, body_after) = call(
        &app,
        Method::GET,
        &format!("/v1/vault/records/{receipt_id}"),
        &erased_token,
        None,
    )
    .await?;
    out!("\n7. Member {erased} erases their account (DELETE /v1/me → 204):");
    out!("   the wrapped data key was destroyed first (crypto-shredding): the {} ciphertext bytes shown", stored.ciphertext.len());
    out!("   above, in any backup, can no longer be decrypted by anyone; then the rows went:");
    out!("   account row left: {}, records left: {rows_left} of {}; their old token → {status_after} {}",
        if wrapped_left { "yes" } else { "no" }, erased_records.len(), body_after["error"]["code"].as_str().unwrap_or(""));
    ensure(
        !wrapped_left && rows_left == 0 && status_after == StatusCode::UNAUTHORIZED,
        "erasure left data behind",
    )?;

    node.audit.checkpoint_now().await?;
    let report =
        me2b_audit::verify(node.store.as_ref(), &node.keys.verifying_key(), &|_| {}).await?;
    out!("\n8. Audit log verified (`me2b audit verify` does the same):");
    let mine = node.store.audit_entries_for(made[2].1, 0, 100).await?;
    out!(
        "   {} entries, {} signed checkpoints, {}.",
        report.entries,
        report.checkpoints,
        if report.ok() {
            "every hash links and matches its checkpoint"
        } else {
            "FAILED"
        }
    );
    out!(
        "   A member reads their own entries at GET /v1/me/audit, e.g. member {}:",
        made[2].1
    );
    for e in mine.iter().take(4) {
        let ev = serde_json::to_value(e.event()?)?;
        out!(
            "     #{:<6} {:<20} by {}",
            e.seq,
            ev["action"].as_str().unwrap_or(""),
            ev["actor"]["kind"].as_str().unwrap_or("")
        );
    }
    ensure(report.ok(), "audit log did not verify")?;

    let remaining = node.store.count_members().await?;
    node.shutdown().await;
    out!("\nReport");
    out!("  members        {remaining} active, 1 erased");
    out!(
        "  records        {} encrypted at rest, 0 readable without the member's key",
        n_records - erased_records.len()
    );
    out!("  organisations  1 co-op, 0 member records reachable without consent");
    out!(
        "  audit log      {} entries, chain and {} checkpoints OK",
        report.entries,
        report.checkpoints
    );
    out!("  took           {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
