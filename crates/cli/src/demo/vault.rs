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
) -> anyhow::Result<(Made, MemberId)> {
    let (coop, coop_key) = (&coops.food.0, &coops.food.1);
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

    consent::consent_story(node, coop, &made).await?;

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
    ensure(status == StatusCode::NO_CONTENT, "erasure failed")?;
    let wrapped_left = node.store.member(erased).await?.is_some();
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
    Ok((made, erased))
}
