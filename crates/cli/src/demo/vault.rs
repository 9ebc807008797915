//! Sections 3 to 8: members sign up and fill their vaults; what is stored, what the co-op cannot reach, consent,
//! privacy at rest, erasure and the audit log.

use super::*;

/// Runs sections 3 to 8; returns the members made and the one who erased.
pub(super) async fn story(
    node: &Node,
    app: &axum::Router,
    coops: &Coops,
    dir: &Path,
    members: usize,
    mailboxes: &Arc<me2b_vault::MemoryOutbox>,
    clock: &setup::DemoClock,
) -> anyhow::Result<(Made, MemberId)> {
    let (coop, coop_key) = (&coops.food.0, &coops.food.1);
    out!("\n3. {members} members sign up (Argon2id, 19 MiB, t=2), confirm their address and fill their vaults:");
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
        let mailboxes = mailboxes.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let pass =
                Passphrase::parse(format!("demo passphrase for member {i} – not a real one"))?;
            // POST /v1/members, then the token from the message to the
            // address, then POST /v1/members/confirm.
            let done = mailboxes
                .sign_up(&vault, Email::parse(&email(i))?, pass)
                .await?;
            let session = done.session;
            let s = vault.authenticate(session.token.expose()).await?;
            let mut ids = Vec::new();
            for r in records_for(i)? {
                ids.push(vault.create_record(&s, r).await?.id);
            }
            anyhow::Ok((i, session.member, session.token, ids, done.recovery_code))
        });
    }
    let mut signed: Vec<_> = Vec::with_capacity(members);
    while let Some(r) = tasks.join_next().await {
        signed.push(r??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    signed.sort_by_key(|m| m.0);
    let code0 = signed.first().map(|m| m.4.display()).unwrap_or_default();
    let mut made: Made = signed
        .into_iter()
        .map(|(i, m, t, ids, _)| (i, m, t, ids))
        .collect();
    let n_records: usize = made.iter().map(|m| m.3.len()).sum();
    out!(
        "   {members} members, {n_records} encrypted records in {:.1} s.",
        t0.elapsed().as_secs_f64()
    );
    sign_up_privacy(node, mailboxes, &code0).await?;

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
        app,
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

    let (status, body) = call(app, Method::GET, "/v1/vault/records", coop_key, None).await?;
    ensure(status == StatusCode::FORBIDDEN, "co-op reached member data")?;
    out!("\n5. The co-op tries the same with its API key: GET /v1/vault/records → {status}");
    out!(
        "   {}: {}",
        body["error"]["code"].as_str().unwrap_or(""),
        body["error"]["message"].as_str().unwrap_or("")
    );
    out!("   The attempt is in the audit log. An organisation reaches member data only through consent");
    out!("   that the member grants, purpose by purpose.");

    consent::consent_story(node, coop, coop_key, &made, clock).await?;

    let needles: Vec<&[u8]> = vec![
        b"demo-member-",
        b"members.example.org",
        MERCHANTS[0].as_bytes(),
        MERCHANTS[1].as_bytes(),
        MERCHANTS[2].as_bytes(),
        MERCHANTS[3].as_bytes(),
        GROCER.as_bytes(),
        b"Private note of demo member",
        b"Havermelk",
        b"Luiers",
    ];
    let (files, bytes, hits) = files_containing(dir, &needles)?;
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
        app,
        Method::DELETE,
        "/v1/me",
        &erased_token,
        Some(serde_json::json!({"passphrase": pass})),
    )
    .await?;
    ensure(status == StatusCode::OK, "erasure failed")?;
    // The account row waits (with no key, address or wrap) for the
    // erasure's batch to be released to organisations.
    let wrapped_left = node.store.member(erased).await?.is_some_and(|r| {
        r.wrapped_dek.is_some()
            || r.passphrase_wrap.is_some()
            || r.recovery_wrap.is_some()
            || r.email_ct.is_some()
    });
    let mut rows_left = 0;
    for r in &erased_records {
        rows_left += usize::from(node.store.record(erased, *r).await?.is_some());
    }
    let (status_after, body_after) = call(
        app,
        Method::GET,
        &format!("/v1/vault/records/{receipt_id}"),
        &erased_token,
        None,
    )
    .await?;
    out!("\n7. Member {erased} erases their account (DELETE /v1/me → 200, an erasure receipt):");
    out!("   the wrapped data key was destroyed first (crypto-shredding): the {} ciphertext bytes shown", stored.ciphertext.len());
    out!("   above, in any backup, can no longer be decrypted by anyone; then the rows went:");
    out!("   a key or address left: {}, records left: {rows_left} of {}; their old token → {status_after} {}",
        if wrapped_left { "yes" } else { "no" }, erased_records.len(), body_after["error"]["code"].as_str().unwrap_or(""));
    ensure(
        !wrapped_left && rows_left == 0 && status_after == StatusCode::UNAUTHORIZED,
        "erasure left data behind",
    )?;

    operator_at_rest(node, dir, &mut made).await?;

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
    Ok((made, erased))
}

/// What sign-up tells, and what it does not: the same answer whether or not
/// the address has an account; the recovery code, once.
async fn sign_up_privacy(
    node: &Node,
    mailboxes: &me2b_vault::MemoryOutbox,
    code0: &str,
) -> anyhow::Result<()> {
    let taken = Email::parse(&email(0))?;
    let fresh = Email::parse("demo-newcomer@members.example.org")?;
    for e in [&taken, &fresh] {
        node.vault
            .request_sign_up(
                e.clone(),
                Passphrase::parse("someone else's passphrase".into())?,
            )
            .await?;
    }
    let last = |e: &Email| mailboxes.subjects_to(e).last().copied().unwrap_or("");
    out!("   Each got a message with a one-time token, confirmed, and was shown a recovery code once,");
    out!("   e.g. {code0}, with these words:");
    out!("   \"{}\"", me2b_vault::RECOVERY_NOTICE);
    out!("   Signing up an address that has an account answers exactly as for a new one (202, the same");
    out!(
        "   Argon2id work and writes); only the message differs: \"{}\" vs \"{}\".",
        last(&taken),
        last(&fresh)
    );
    ensure(
        mailboxes.confirmation_token(&fresh).is_some()
            && mailboxes
                .bodies_to(&taken)
                .last()
                .is_some_and(|b| !b.contains(me2b_vault::CONFIRM_PREFIX)),
        "a taken address got a confirmation token",
    )?;
    Ok(())
}

/// Members log out; the operator, holding the database and the master key,
/// tries every table for something that opens their vaults.
async fn operator_at_rest(node: &Node, dir: &Path, made: &mut Made) -> anyhow::Result<()> {
    use sqlx::{Column, Row, TypeInfo};
    let out_members: Vec<usize> = (2..made.len().min(6)).collect();
    for &k in &out_members {
        let s = node.vault.authenticate(made[k].2.expose()).await?;
        node.vault.log_out(&s, made[k].2.expose()).await?;
    }
    let file = dir.join(me2b_node::SQLITE_FILE);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", file.display())).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&pool)
    .await?;
    let mut values: Vec<Vec<u8>> = Vec::new();
    for t in &tables {
        for row in sqlx::query(&format!("SELECT * FROM \"{t}\""))
            .fetch_all(&pool)
            .await?
        {
            for (i, c) in row.columns().iter().enumerate() {
                let v = match c.type_info().name() {
                    "BLOB" => row.try_get::<Option<Vec<u8>>, _>(i).ok().flatten(),
                    "TEXT" => row
                        .try_get::<Option<String>, _>(i)
                        .ok()
                        .flatten()
                        .map(String::into_bytes),
                    _ => None,
                };
                values.extend(v);
            }
        }
    }
    pool.close().await;
    // Every value as a data key wrapped under the master key, for each member.
    let mut keys = Vec::new();
    for &k in &out_members {
        let m = made[k].1;
        keys.extend(
            values
                .iter()
                .filter_map(|v| node.keys.legacy_unwrap(m, v).ok())
                .map(|d| (m, d)),
        );
    }
    let mut readable = 0;
    let mut records = 0;
    for &k in &out_members {
        for r in &made[k].3 {
            records += 1;
            if let Some(stored) = node.store.record(made[k].1, *r).await? {
                readable += usize::from(keys.iter().any(|(m, d)| {
                    *m == made[k].1
                        && d.open(&me2b_crypto::Aad::record(*m, *r), &stored.ciphertext)
                            .is_ok()
                }));
            }
        }
    }
    out!(
        "\n7b. Members {} log out. The operator opens the database with master.key and tries every",
        out_members
            .iter()
            .map(|k| made[*k].0.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    out!(
        "   value of its {} tables ({} values) as their data key wrapped under the master key:",
        tables.len(),
        values.len()
    );
    out!("   {} data keys open; {readable} of their {records} records readable. Their keys are wrapped only under", keys.len());
    out!("   their passphrases, recovery codes and (while logged in) session tokens, none of which the node keeps.");
    ensure(
        keys.is_empty() && readable == 0,
        "the operator opened a logged-out member's vault",
    )?;
    for &k in &out_members {
        let i = made[k].0;
        let pass = Passphrase::parse(format!("demo passphrase for member {i} – not a real one"))?;
        let l = node.vault.log_in(Email::parse(&email(i))?, pass).await?;
        made[k].2 = l.session.token;
    }
    out!("   They log in again (their passphrase opens the key) and the story goes on.");
    Ok(())
}
