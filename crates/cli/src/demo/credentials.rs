//! Section 11: credentials issued with one-time codes, presented unlinkably,
//! verified online and offline, revoked.

use super::*;

#[derive(Default)]
pub(super) struct CredentialReport {
    pub(super) issued: usize,
    pub(super) verified: usize,
}

/// Whether two hex strings share a run of 8 bytes (16 hex digits).
fn share_8_bytes(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.windows(16).any(|w| b.windows(16).any(|x| x == w))
}

/// The verifier makes a challenge (`ask`) and the member answers it with the
/// credential in vault record `id`: the challenge and the presentation.
async fn challenge_and_present(
    app: &axum::Router,
    verifier_key: &str,
    ask: serde_json::Value,
    member: &str,
    id: &str,
) -> anyhow::Result<(serde_json::Value, serde_json::Value)> {
    let (st, challenge) = call(
        app,
        Method::POST,
        "/v1/org/credentials/challenges",
        verifier_key,
        Some(ask),
    )
    .await?;
    ensure(
        st == StatusCode::CREATED,
        &format!("a challenge failed: {st} {challenge}"),
    )?;
    let (st, p) = call(
        app,
        Method::POST,
        &format!("/v1/me/credentials/{id}/present"),
        member,
        // The demo's co-ops have a handful of members, so every answer is
        // shared by fewer than the federation's threshold (10): the member
        // is told so (POST .../preview) and accepts.
        Some(serde_json::json!({"challenge": challenge, "accept_rare": true})),
    )
    .await?;
    ensure(
        st == StatusCode::OK,
        &format!("presenting failed: {st} {p}"),
    )?;
    Ok((challenge, p["presentation"].clone()))
}

pub(super) async fn credentials_story(
    node: &Node,
    app: &axum::Router,
    dir: &Path,
    made: &Made,
    grocer: &me2b_storage::OrgRow,
) -> anyhow::Result<CredentialReport> {
    use me2b_domain::audit::Actor;
    let t0 = Instant::now();
    let coop_key = node
        .orgs
        .create_key(
            Actor::Operator,
            grocer.id,
            Roles::try_from(vec![Role::Credentials])?,
        )
        .await?
        .secret
        .expose()
        .to_owned();
    let (market, market_key) = {
        let (row, key) = node
            .orgs
            .create(
                Label::try_from("Fair Market")?,
                OrgKind::Verifier,
                Roles::try_from(vec![Role::Credentials])?,
            )
            .await?;
        (row, key.secret.expose().to_owned())
    };
    // Three members who still have an account.
    let mut holders = Vec::new();
    for m in made {
        if holders.len() == 3 {
            break;
        }
        // An erased member's row waits (keyless, `erasing`) for its batch.
        if node.store.member(m.1).await?.is_some_and(|r| !r.erasing) {
            holders.push((NAMES[m.0 % NAMES.len()], m.2.expose().to_owned()));
        }
    }
    if holders.len() < 3 {
        out!("\n11. (the credentials walk-through needs 3 members)");
        return Ok(CredentialReport::default());
    }
    let g = &grocer.name;
    out!("\n11. Credentials. {g} vouches for its members with credentials they keep in their vaults and");
    out!("   show like a promo code: only what is asked, and unlinkably (BBS signatures, IETF CFRG draft).");

    // Codes, redeemed into the vaults.
    let tiers = ["founding", "member", "member"];
    let mut ids = Vec::new();
    let mut indexes = Vec::new();
    for (k, (name, token)) in holders.iter().enumerate() {
        let (st, code) = call(
            app,
            Method::POST,
            "/v1/org/credentials/codes",
            &coop_key,
            Some(
                serde_json::json!({"federation": "Fair Economy Federation", "tier": tiers[k],
                "region": "NL-NH", "member_since": 2010 + 5 * k, "interests": ["sports"]}),
            ),
        )
        .await?;
        ensure(
            st == StatusCode::CREATED,
            &format!("a code was refused: {st} {code}"),
        )?;
        let text = code["code"].as_str().unwrap_or_default().to_owned();
        indexes.push(code["status_index"].as_u64().unwrap_or_default());
        if k == 0 {
            out!(
                "\n11a. After its own membership check, {g} makes a one-time code per member (POST"
            );
            out!(
                "   /v1/org/credentials/codes → {st}): {}… for {name}. The node keeps only the code's SHA-256,",
                text.chars().take(9).collect::<String>()
            );
            out!("   the claims and a random entry in the federation's status list (of 1,048,576); it never tells");
            out!("   the co-op which vault redeemed it.");
        }
        let (st, held) = call(
            app,
            Method::POST,
            "/v1/me/credentials",
            token,
            Some(serde_json::json!({"code": text.to_lowercase()})),
        )
        .await?;
        ensure(
            st == StatusCode::CREATED,
            &format!("redeeming failed: {st} {held}"),
        )?;
        if k == 0 {
            let c = &held["claims"];
            out!(
                "   {name} redeems it (POST /v1/me/credentials → {st}); the vault now holds a {} credential:",
                c["credential_type"].as_str().unwrap_or("")
            );
            out!(
                "   {}, tier {}, {} since {}, valid until {}, signed with the federation's key ({}).",
                c["federation"].as_str().unwrap_or(""),
                c["tier"].as_str().unwrap_or(""),
                c["region"].as_str().unwrap_or(""),
                c["member_since"].as_str().unwrap_or(""),
                held["valid_until"]
                    .as_str()
                    .unwrap_or("")
                    .get(..10)
                    .unwrap_or(""),
                short(held["issuer_key_id"].as_str().unwrap_or(""))
            );
        }
        ids.push(held["id"].as_str().unwrap_or_default().to_owned());
    }
    out!("   {} more members redeem theirs.", holders.len() - 1);

    // Two visits to the marketplace.
    let ask = serde_json::json!({"federation": "Fair Economy Federation"});
    let (name, token) = &holders[0];
    let mut proofs = Vec::new();
    let mut verified = 0;
    let mut first = serde_json::Value::Null;
    let mut learned = String::new();
    let mut key = String::new();
    out!(
        "\n11b. {}, a marketplace, gives co-op members 10% off. At each visit it asks for a challenge",
        market.name
    );
    out!("   (POST /v1/org/credentials/challenges: a fresh nonce, its id, \"a valid co-op membership in the");
    out!("   Fair Economy Federation\"); {name} answers from the vault (POST /v1/me/credentials/{{id}}/present).");
    for visit in 1..=2 {
        let (_, p) = challenge_and_present(app, &market_key, ask.clone(), token, &ids[0]).await?;
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/org/credentials/verify",
            &market_key,
            Some(p.clone()),
        )
        .await?;
        ensure(
            st == StatusCode::OK && v["valid"] == true,
            &format!("a valid presentation was refused: {st} {v}"),
        )?;
        ensure(
            v["issuer"].is_null() && v["disclosed"].get("issuer").is_none(),
            &format!("a federation presentation named its co-op: {v}"),
        )?;
        verified += 1;
        learned = v["disclosed"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} = {}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        out!("   Visit {visit}: verify → {st}, VALID, a member of a co-op of the federation: discount granted.");
        key = v["issuer_key_id"].as_str().unwrap_or_default().to_owned();
        proofs.push(p["proof"].as_str().unwrap_or_default().to_owned());
        if visit == 1 {
            first = p.clone();
        }
    }
    ensure(
        proofs.len() == 2
            && proofs.iter().all(|p| p.len() > 100)
            && !share_8_bytes(&proofs[0], &proofs[1]),
        "two presentations are linkable",
    )?;
    out!("   What {} learned, both times: {learned}.", market.name);
    out!("   The key, {key}, is the federation's: it signs every co-op's credentials, so");
    out!("   the presentation names no co-op ({g} stays hidden). Not who, not the tier, region, year or");
    out!(
        "   interests; the two proofs ({} bytes each) share no run of 8 bytes,",
        proofs[0].len() / 2
    );
    out!("   so it cannot tell the two visits apart.");

    // Replay.
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/credentials/verify",
        &market_key,
        Some(first),
    )
    .await?;
    ensure(
        st == StatusCode::UNPROCESSABLE_ENTITY && err_code(&v) == "unknown_challenge",
        &format!("a replay was accepted: {st} {v}"),
    )?;
    out!("\n11c. Showing visit 1's presentation again (a replay) → {st} unknown_challenge: each nonce counts once.");

    // Offline.
    let (challenge, p) =
        challenge_and_present(app, &market_key, ask.clone(), &holders[1].1, &ids[1]).await?;
    let (_, issuers) = call(app, Method::GET, "/.well-known/me2b/issuers", "", None).await?;
    let off = dir.join("credential-offline");
    std::fs::create_dir_all(&off)?;
    let files = [
        ("challenge.json", &challenge),
        ("presentation.json", &p),
        ("issuers.json", &issuers),
    ];
    for (f, v) in files {
        std::fs::write(off.join(f), serde_json::to_vec_pretty(v)?)?;
    }
    let inputs = crate::credential_cmd::Inputs {
        challenge: &serde_json::to_vec(&challenge)?,
        presentation: &serde_json::to_vec(&p)?,
        issuers: &serde_json::to_vec(&issuers)?,
        status: None,
    };
    let offline = crate::credential_cmd::verify(&inputs, node.clock.now())?;
    ensure(
        offline.is_ok(),
        &format!("offline verification failed: {offline:?}"),
    )?;
    out!("\n11d. Offline, with no node: the till keeps GET /.well-known/me2b/issuers (the federation's public key)");
    out!("   and runs `me2b credential verify --challenge challenge.json --presentation presentation.json");
    out!(
        "   --issuers issuers.json` on {}'s presentation → VALID.",
        holders[1].0
    );
    out!(
        "   (The three files are in {}; keep them with --keep DIR.)",
        off.display()
    );
    verified += 1;

    // Revocation.
    let (name3, token3) = &holders[2];
    let (st, _) = call(
        app,
        Method::POST,
        "/v1/org/credentials/revoke",
        &coop_key,
        Some(serde_json::json!({"status_index": indexes[2]})),
    )
    .await?;
    ensure(st == StatusCode::NO_CONTENT, "revocation failed")?;
    let check = serde_json::json!({"federation": "Fair Economy Federation", "status_check": true});
    let (_, p) = challenge_and_present(app, &market_key, check, token3, &ids[2]).await?;
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/credentials/verify",
        &market_key,
        Some(p),
    )
    .await?;
    ensure(
        st == StatusCode::UNPROCESSABLE_ENTITY && err_code(&v) == "revoked",
        &format!("a revoked credential was accepted: {st} {v}"),
    )?;
    out!("\n11e. {name3} leaves the co-op, which revokes the credential's status entry (POST");
    out!("   /v1/org/credentials/revoke). A challenge that checks revocation makes the member disclose that");
    out!("   entry (a correlation handle, so it is off by default): {name3}'s presentation → {st} revoked.");
    out!("   ({:.1} s)", t0.elapsed().as_secs_f64());
    Ok(CredentialReport {
        issued: holders.len(),
        verified,
    })
}
