//! Section 10e: cross-selling with the member's consent.

use super::*;

/// 10e: cross-selling, refused without consent and given by members.
pub(super) async fn cross_selling(c: &Ctx<'_>) -> anyhow::Result<(usize, Vec<String>)> {
    let node = c.node;
    let app = c.app;
    let trust = &c.node.trust;
    let names: Vec<&str> = c.names.iter().map(String::as_str).collect();
    let grocer = &c.coops[0];
    let bikes = &c.coops[1];
    let bikes_key = &c.keys[1];
    let cohort = &c.cohort;
    let cards = &c.cards;
    let fk = c.fk;
    let fname = c.name_of(c.fk);
    let name_of = |k: usize| c.name_of(k);
    // Cross-selling.
    out!(
        "\n10e. Cross-selling. {} would like to reach {} customers.",
        names[1],
        poss(names[0])
    );
    let shared_path = format!("/v1/org/trust/shared/{}", grocer.id);
    let (st, v) = call(app, Method::GET, &shared_path, bikes_key, None).await?;
    let n0 = v.as_array().map_or(0, Vec::len);
    ensure(st == StatusCode::OK && n0 == 0, "shared without consent")?;
    out!(
        "   GET /v1/org/trust/shared/{{{}}} → {st}, {n0} members: no one has consented.",
        names[0]
    );
    let e = trust
        .transcrypt_without_consent(grocer.id, bikes.id)
        .await
        .err()
        .context("the transcryptors moved pseudonyms without consent")?;
    ensure(
        matches!(e, me2b_trust::TrustError::TranscryptionRefused { .. }),
        &format!("transcription failed otherwise: {e}"),
    )?;
    out!(
        "   The trust asks its transcryptors to move {} pseudonyms into {} domain",
        poss(names[0]),
        poss(names[1])
    );
    out!(
        "   anyway, without a consent grant → {}:",
        me2b_trust::error_code(&e)
    );
    out!("     \"{e}\"");
    // Grocer customers who do not shop at the bike co-op yet.
    let sharers: Vec<usize> = (0..cohort.len())
        .filter(|k| *k != fk && shops_at(*k)[0] && !shops_at(*k)[1])
        .take(5)
        .collect();
    let mut grants = Vec::new();
    let mut receipts = Vec::new();
    for k in &sharers {
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/me/trust/sharing",
            &cohort[*k].2,
            Some(serde_json::json!({
                "from": grocer.id.to_string(), "to": bikes.id.to_string(),
                "purpose": me2b_trust::service::CROSS_SELL, "days": 30
            })),
        )
        .await?;
        ensure(
            st == StatusCode::CREATED,
            &format!("sharing consent failed: {st} {v}"),
        )?;
        grants.push((*k, v["id"].as_str().unwrap_or("").to_owned()));
        receipts.push(v["receipt"].as_str().unwrap_or("").to_owned());
    }
    out!(
        "   {} {} customers who do not shop at {} consent (POST /v1/me/trust/sharing",
        sharers.len(),
        names[0],
        names[1]
    );
    out!(
        "   {{from: {}, to: {}, purpose: cross-sell, days: 30}} → 201 Created).",
        names[0],
        names[1]
    );
    let key = node.keys.verifying_key();
    let checked = receipts
        .iter()
        .filter(|r| me2b_consent::receipt::verify(r, &key).is_ok())
        .count();
    ensure(
        checked == receipts.len(),
        "a sharing receipt does not verify",
    )?;
    out!(
        "   Each gets a signed consent receipt, like every consent: {checked} of {} verify offline with the node's key.",
        receipts.len()
    );
    let (st, v) = call(app, Method::GET, &shared_path, bikes_key, None).await?;
    ensure(st == StatusCode::OK, "shared failed")?;
    let got = v.as_array().cloned().unwrap_or_default();
    ensure(
        got.len() == sharers.len(),
        "not every consenting member was shared",
    )?;
    // The partner opens each delivered card with its own keys.
    let bikes_keys = &c.coop_keys[1];
    let opened: Vec<String> = got
        .iter()
        .map(|m| bikes_keys.open_card(m["card"].as_str().unwrap_or("")))
        .collect::<Result<_, _>>()?;
    let mut partner_cards = Vec::new();
    for k in &sharers {
        let pc = shown_to(app, &cohort[*k].2, bikes_keys).await?;
        ensure(
            opened.contains(&pc),
            "a shared member is not under the partner's pseudonym",
        )?;
        ensure(
            cards[*k][0].as_deref() != Some(pc.as_str()),
            "the partner received the grocer's pseudonym",
        )?;
        partner_cards.push(pc);
    }
    out!(
        "   {} reads again → {} members, each under {} OWN pseudonym for them (their",
        names[1],
        got.len(),
        poss(names[1])
    );
    out!(
        "   {} card, sealed to it), never {}: the transcryptors moved each with a grant the node signed",
        names[1],
        poss(names[0])
    );
    // Someone other than the member whose cards were shown above.
    let ex = (0..sharers.len())
        .find(|x| name_of(sharers[*x]) != fname)
        .unwrap_or(0);
    if let (Some(k), Some(pc)) = (sharers.get(ex), partner_cards.get(ex)) {
        let at = opened
            .iter()
            .position(|p| p == pc)
            .context("shared member")?;
        let m = &got[at];
        let rs = m["receipts"].as_array().cloned().unwrap_or_default();
        out!(
            "   for that consent. E.g. {}: {} knows them as {}, {}",
            name_of(*k),
            names[0],
            short(cards[*k][0].as_deref().unwrap_or("")),
            names[1]
        );
        out!(
            "   opens what it receives to {} = its pseudonym for them, with {} receipt{}:",
            short(pc),
            rs.len(),
            if rs.len() == 1 { "" } else { "s" }
        );
        for r in &rs {
            out!(
                "     {} {}  {}",
                r["day"].as_str().unwrap_or(""),
                r["area"].as_str().unwrap_or(""),
                items_line(r)
            );
        }
    }
    let mut bonus = Vec::new();
    for pc in &partner_cards {
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/org/trust/loyalty/earn",
            bikes_key,
            Some(c.sealed(1, serde_json::json!({"card": pc, "points": 50}))?),
        )
        .await?;
        ensure(
            st == StatusCode::ACCEPTED,
            &format!("earning failed: {st} {v}"),
        )?;
        bonus.push(v["status"].as_str().unwrap_or("").to_owned());
    }
    bonus.dedup();
    out!(
        "   {} offers each a welcome discount: 50 bonus points on its own card for them",
        names[1]
    );
    out!(
        "   (POST /v1/org/trust/loyalty/earn → {}: the co-op never sees a balance).",
        bonus.join(", ")
    );
    // Someone else again withdraws.
    let (wk, wid) = grants
        .iter()
        .rev()
        .find(|(k, _)| name_of(*k) != fname && Some(k) != sharers.get(ex))
        .or(grants.last())
        .cloned()
        .context("a sharing consent")?;
    let (st, _) = call(
        app,
        Method::DELETE,
        &format!("/v1/me/trust/sharing/{wid}"),
        &cohort[wk].2,
        None,
    )
    .await?;
    ensure(st == StatusCode::NO_CONTENT, "withdrawal failed")?;
    let (_, v) = call(app, Method::GET, &shared_path, bikes_key, None).await?;
    let after = v.as_array().map_or(0, Vec::len);
    ensure(
        after + 1 == got.len(),
        "a withdrawn member was still shared",
    )?;
    let (_, mv) = call(app, Method::GET, "/v1/me/trust", &cohort[wk].2, None).await?;
    let withdrawn = mv["sharing"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["withdrawn"] == true);
    ensure(withdrawn, "the member's vault does not show the withdrawal")?;
    // The sharing consent is one of the member's consent records.
    let (_, list) = call(app, Method::GET, "/v1/me/consents", &cohort[wk].2, None).await?;
    let record = list
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["consent_id"].as_str() == Some(wid.as_str()))
        .cloned()
        .context("the sharing consent among the member's consents")?;
    let versions = record["receipts"].as_array().map_or(0, Vec::len);
    ensure(
        versions == 2 && record["status"] == "withdrawn",
        "the sharing consent's record lacks its withdrawal",
    )?;
    out!(
        "   It is one of their consents (GET /v1/me/consents: \"{}\",",
        record["summary"].as_str().unwrap_or("")
    );
    out!("   {versions} signed receipts: given, withdrawn); the decision point decides each delivery.");
    out!(
        "   {} withdraws (DELETE /v1/me/trust/sharing/{{id}} → {st}; GET /v1/me/trust shows it",
        name_of(wk)
    );
    out!(
        "   withdrawn): {} next read → {after} members.",
        poss(names[1])
    );

    Ok((after, partner_cards))
}
