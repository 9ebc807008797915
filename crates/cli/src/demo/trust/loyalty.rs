//! Sections 10f to 10h: loyalty points across co-ops, a member forwarding
//! their own receipts, and erasure reaching the trust.

use super::*;

/// 10f to 10h: loyalty across co-ops, a member forwarding their receipts,
/// and erasure reaching the trust.
pub(super) async fn loyalty_forwarding_erasure(c: &Ctx<'_>) -> anyhow::Result<()> {
    let node = c.node;
    let app = c.app;
    let names: Vec<&str> = c.names.iter().map(String::as_str).collect();
    let grocer = &c.coops[0];
    let grocer_key = &c.keys[0];
    let threads_key = &c.keys[2];
    // `c.coops` and `names` follow the same order.
    let cohort = &c.cohort;
    let cards = &c.cards;
    let fk = c.fk;
    let ftoken = &c.cohort[c.fk].2;
    let fname = c.name_of(c.fk);
    let fcards = &c.fcards;
    let name_of = |k: usize| c.name_of(k);
    // Loyalty, with the member present.
    out!("\n10f. Loyalty across co-ops, under a third pseudonym that no co-op sees; co-ops never see a balance. For {fname}:");
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/trust/loyalty/earn",
        grocer_key,
        Some(c.sealed(0, serde_json::json!({"card": fcards[0], "points": 120}))?),
    )
    .await?;
    ensure(
        st == StatusCode::ACCEPTED && v == serde_json::json!({"status": "accepted"}),
        &format!("earning failed: {st} {v}"),
    )?;
    out!(
        "   {} adds 120 points on its card (POST /v1/org/trust/loyalty/earn → {} {v}): nothing more.",
        names[0],
        st.as_u16()
    );
    // Another co-op replays the grocer's card, hoping for a ledger that
    // follows the member.
    let replay = c.sealed(0, serde_json::json!({"card": fcards[0], "points": 1}))?;
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/trust/loyalty/earn",
        threads_key,
        Some(replay),
    )
    .await?;
    ensure(
        st == StatusCode::NOT_FOUND && err_code(&v) == "unknown_card",
        &format!("another co-op's card earned points: {st} {v}"),
    )?;
    out!(
        "   {} replays {}'s card for {fname} → {st} unknown_card, nothing recorded: the same answer as",
        names[2],
        names[0]
    );
    out!("   for a made-up card, so it learns neither a balance nor that the card is a member's.");
    let (st, v) = call(app, Method::GET, "/v1/me/trust", ftoken, None).await?;
    ensure(
        st == StatusCode::OK && v["loyalty_points"] == 120,
        "the vault shows another balance",
    )?;
    out!(
        "   {} vault (GET /v1/me/trust): {} points, {} sharing consents; only {fname} sees the balance.",
        poss(fname),
        v["loyalty_points"],
        v["sharing"].as_array().map_or(0, Vec::len)
    );
    // The member approves one amount at one co-op: a one-time token.
    let threads = &c.coops[2];
    let (st, t) = call(
        app,
        Method::POST,
        "/v1/me/trust/loyalty/tokens",
        ftoken,
        Some(serde_json::json!({"org": threads.id, "points": 100})),
    )
    .await?;
    ensure(
        st == StatusCode::CREATED,
        &format!("no redemption token: {st} {t}"),
    )?;
    let token = t["token"].as_str().unwrap_or("").to_owned();
    let svg = t["qr_svg"].as_str().unwrap_or("");
    let qr = c.dir.join("loyalty-token.svg");
    std::fs::write(&qr, svg)?;
    out!(
        "   At {}'s till, {fname} approves 100 points in their vault (POST /v1/me/trust/loyalty/tokens):",
        names[2]
    );
    out!(
        "   a one-time token for 100 points at {} only, valid 5 minutes: {token}",
        names[2]
    );
    let grid = super::till::modules(svg)
        .ok_or_else(|| anyhow::anyhow!("the token's QR code is not drawn as expected"))?;
    out!(
        "   {} screen shows it as text and as a QR code (also in {}):",
        poss(fname),
        qr.display()
    );
    for line in super::till::draw(&grid) {
        out!("      {line}");
    }
    let scanned = super::till::scan(&grid).unwrap_or_default();
    ensure(
        scanned == token,
        &format!("the till read another token: {scanned:?}"),
    )?;
    out!(
        "   {}'s till scans the code: {scanned} (a till without a scanner types the text),",
        names[2]
    );
    let token = scanned;
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/trust/loyalty/redeem",
        threads_key,
        Some(serde_json::json!({"token": token, "points": 100})),
    )
    .await?;
    ensure(
        st == StatusCode::OK && v == serde_json::json!({"status": "redeemed", "points": 100}),
        &format!("redeeming failed: {st} {v}"),
    )?;
    out!(
        "   and sends it (POST …/loyalty/redeem {{token, points}} → {} {}): all {} learns.",
        v["status"].as_str().unwrap_or(""),
        v["points"],
        names[2]
    );
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/trust/loyalty/redeem",
        threads_key,
        Some(serde_json::json!({"token": token, "points": 100})),
    )
    .await?;
    ensure(
        st == StatusCode::CONFLICT && err_code(&v) == "redemption_refused",
        &format!("a token worked twice: {st} {v}"),
    )?;
    out!("   Scanning it again → {st} redemption_refused, the one answer for a used, expired, unknown,");
    out!("   another co-op's or another amount's token: it never depends on the balance.");
    let mut answers = Vec::new();
    for points in [1, 500] {
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/org/trust/loyalty/redeem",
            grocer_key,
            Some(serde_json::json!({"token": fcards[0], "points": points})),
        )
        .await?;
        ensure(
            st == StatusCode::CONFLICT && err_code(&v) == "redemption_refused",
            &format!("a co-op redeemed without the member: {st} {v}"),
        )?;
        answers.push(v);
    }
    ensure(
        answers.windows(2).all(|w| w[0] == w[1]),
        "a co-op's refusals differ by amount",
    )?;
    out!(
        "   {} cannot take points without {fname}: its card as a token, for 1 point or for 500,",
        names[0]
    );
    out!("   → 409 redemption_refused both times, word for word: no balance to probe.");
    let (st, v) = call(app, Method::GET, "/v1/me/trust", ftoken, None).await?;
    ensure(
        st == StatusCode::OK && v["loyalty_points"] == 20,
        &format!("the vault shows another balance: {v}"),
    )?;
    let history: Vec<String> = v["loyalty_history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|d| {
                    let org = d["org"].as_str().unwrap_or("");
                    let name = c
                        .coops
                        .iter()
                        .zip(&names)
                        .find(|(o, _)| o.id.to_string() == org)
                        .map_or("?", |(_, n)| *n);
                    format!("{name} +{} −{}", d["earned"], d["redeemed"])
                })
                .collect()
        })
        .unwrap_or_default();
    out!(
        "   {} vault: {} points left; history per co-op and day: {}.",
        poss(fname),
        v["loyalty_points"],
        history.join(", ")
    );

    // A member forwards their own receipts.
    out!("\n10g. {fname} forwards their own vault receipts to the trust, as {}'s (POST /v1/me/trust/forward", names[0]);
    out!("   {{org, area: \"NL-NH\"}}): their consent is the request itself.");
    let body = serde_json::json!({"org": grocer.id, "area": "NL-NH"});
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/me/trust/forward",
        ftoken,
        Some(body.clone()),
    )
    .await?;
    ensure(
        st == StatusCode::OK,
        &format!("forwarding failed: {st} {v}"),
    )?;
    out!(
        "   → {} forwarded; {} in the vault (special categories, such as nappies,",
        verb(
            v["forwarded"].as_u64().unwrap_or(0) as usize,
            "receipt",
            "receipts"
        ),
        verb(
            v["items_left_out"].as_u64().unwrap_or(0) as usize,
            "item stayed",
            "items stayed"
        )
    );
    out!("     and categories outside the taxonomy never leave it).");
    let (st, again) = call(
        app,
        Method::POST,
        "/v1/me/trust/forward",
        ftoken,
        Some(body),
    )
    .await?;
    ensure(
        st == StatusCode::OK && again["forwarded"] == 0 && again["already"] == v["forwarded"],
        &format!("a receipt was stored twice: {again}"),
    )?;
    out!(
        "   Forwarding again stores nothing: {} already there.",
        again["already"]
    );

    // Erasure reaches the trust, and an old card brings nothing back.
    if let Some(k) = (0..cohort.len())
        .rev()
        .find(|k| *k != fk && cards[*k][0].is_some())
    {
        let (i, _, token) = &cohort[k];
        let name = name_of(k);
        let scope = grocer.id.to_string();
        let before = node.store.trust_member_count(&scope).await?;
        let pass = format!("demo passphrase for member {i} – not a real one");
        let (st, _) = call(
            app,
            Method::DELETE,
            "/v1/me",
            token,
            Some(serde_json::json!({"passphrase": pass})),
        )
        .await?;
        ensure(st == StatusCode::OK, "an erasure failed")?;
        let now = node.store.trust_member_count(&scope).await?;
        ensure(now + 1 == before, "erasure did not reach the trust")?;
        out!(
            "\n10h. {name} erases their account (DELETE /v1/me → {st}). Erasure reaches the trust: their"
        );
        out!(
            "   receipts, their place in every aggregate and their points are gone ({} members in {}'s",
            before,
            names[0]
        );
        out!("   pool → {now}). The list of erased members keeps only keyed hashes of their pseudonyms.");
        let old_card = cards[k][0].clone().unwrap_or_default();
        let again = trust_receipts(0, k, &old_card);
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/org/trust/receipts",
            grocer_key,
            Some(c.sealed(0, serde_json::json!({"receipts": again}))?),
        )
        .await?;
        let dropped = v["erased"].as_array().map_or(0, Vec::len);
        let pool = node.store.trust_member_count(&scope).await?;
        ensure(
            st == StatusCode::CREATED
                && v["stored"] == again.len()
                && dropped == 0
                && pool == before,
            &format!(
                "an erased member's card brought data back, or told the erasure early: {st} {v}"
            ),
        )?;
        out!(
            "   {} still holds their card. Resubmitting its {}: {st}, answered as before and stored",
            names[0],
            verb(again.len(), "receipt", "receipts")
        );
        out!("   like a live card's (pool {pool}: the same work, so timing the answer names no card), until");
        out!("   the erasure's release deletes them. Co-ops learn of erasures in batches at period boundaries");
        out!("   (then `erased` lists the receipts and earning answers 410 member_erased), so two co-ops");
        out!("   cannot link their cards by the instant one changes (ARCHITECTURE.md: Erasure).");
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/org/trust/loyalty/earn",
            grocer_key,
            Some(c.sealed(0, serde_json::json!({"card": old_card, "points": 10}))?),
        )
        .await?;
        ensure(
            st == StatusCode::ACCEPTED,
            &format!("an erased member's card told the erasure early: {st} {v}"),
        )?;
        out!("   Earning points on it: {st}, recorded like a live card's and deleted at the release.");
    }

    Ok(())
}
