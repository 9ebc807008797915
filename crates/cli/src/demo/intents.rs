//! Section 13: intents. A member asks for a cargo bike within a budget,
//! under a one-time pseudonym; two co-ops and a brand answer; the member
//! compares the answers in the vault and accepts one; only that one receives
//! the contact the member chose, and the others see only "closed".

use super::*;
use me2b_domain::Clock;

/// What the intents walk-through did, for the report.
#[derive(Debug, Default)]
pub(super) struct IntentReport {
    pub(super) answers: usize,
    pub(super) disclosed: usize,
    pub(super) closed_for_others: usize,
}

async fn org(
    node: &Node,
    name: &str,
    kind: OrgKind,
) -> anyhow::Result<(me2b_storage::OrgRow, String)> {
    let (row, key) = node
        .orgs
        .create(
            Label::try_from(name)?,
            kind,
            Roles::try_from(vec![Role::Offers, Role::Consent])?,
        )
        .await?;
    Ok((row, key.secret.expose().to_owned()))
}

fn expect(
    st: StatusCode,
    want: StatusCode,
    v: &serde_json::Value,
    what: &str,
) -> anyhow::Result<()> {
    ensure(
        st == want,
        &format!("{what}: {st} {} {}", err_code(v), err_message(v)),
    )
}

pub(super) async fn intents_story(
    node: &Node,
    app: &axum::Router,
    made: &Made,
    clock: &setup::DemoClock,
) -> anyhow::Result<IntentReport> {
    // A member who still has an account.
    let mut member = None;
    for m in made {
        if node.store.member(m.1).await?.is_some() {
            member = Some((NAMES[m.0 % NAMES.len()], m.2.expose().to_owned()));
            break;
        }
    }
    let Some((name, token)) = member else {
        out!("\n13. (the intents walk-through needs a member)");
        return Ok(IntentReport::default());
    };
    out!("\n13. Intents. {name} asks for a cargo bike; co-ops and brands answer; contact only on accept.");
    let answerers = [
        org(node, "Fietscoop De Spaak", OrgKind::Coop).await?,
        org(node, "Bakfietsdelen Coöperatie", OrgKind::Coop).await?,
        org(node, "Lastenrad Brand BV", OrgKind::Brand).await?,
    ];
    for (_, key) in &answerers {
        let (st, v) = call(
            app,
            Method::PUT,
            "/v1/org/intents/subscription",
            key,
            Some(serde_json::json!({"topics": ["bicycles-and-accessories"], "regions": ["NL-UT"]})),
        )
        .await?;
        expect(st, StatusCode::OK, &v, "a subscription")?;
    }
    out!("   Two co-ops and a brand follow bicycles in NL-UT.");

    // The warning comes first: without acknowledging it, nothing is published.
    let mut ask = serde_json::json!({
        "topic": "bicycles-and-accessories",
        "text": "A cargo bike for two children, electric assist, for daily school runs.",
        "budget": {"min_cents": 200_000, "max_cents": 350_000, "currency": "EUR"},
        "region": "NL-UT", "deadline_days": 14, "audience": {"kind": "any"}
    });
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/me/intents",
        &token,
        Some(ask.clone()),
    )
    .await?;
    expect(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        &v,
        "an unwarned intent",
    )?;
    out!(
        "   Before publishing, {name} is told: \"{}\"",
        me2b_intents::FREE_TEXT_WARNING
    );
    ask["acknowledge_free_text_warning"] = serde_json::json!(true);
    let (st, v) = call(app, Method::POST, "/v1/me/intents", &token, Some(ask)).await?;
    expect(st, StatusCode::CREATED, &v, "the intent")?;
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    out!(
        "   {name} publishes: a cargo bike, EUR 2,000 to 3,500, NL-UT, 14 days; one-time pseudonym {}",
        short(&id)
    );

    // Not yet seen: new intents reach organisations in batches.
    let (st, feed) = call(app, Method::GET, "/v1/org/intents", &answerers[0].1, None).await?;
    expect(st, StatusCode::OK, &feed, "the feed")?;
    ensure(
        feed.as_array()
            .is_some_and(|a| a.iter().all(|i| i["id"] != id.as_str())),
        "an organisation saw an intent before its batch",
    )?;
    let b = node.governance.intents;
    out!(
        "   No organisation sees it yet: new intents go out in batches, at a whole hour once {} wait or the oldest waited {} hours, so a feed read every minute cannot tie two intents together by when they appeared. A quiet demo node: a day later, the batch goes.",
        b.min_batch,
        b.max_wait_hours
    );
    clock.skip_hours(i64::from(b.max_wait_hours));

    // What an organisation sees: no member, the batch's hour only.
    let (st, feed) = call(app, Method::GET, "/v1/org/intents", &answerers[0].1, None).await?;
    expect(st, StatusCode::OK, &feed, "the feed")?;
    let seen = feed
        .as_array()
        .and_then(|a| a.iter().find(|i| i["id"] == id.as_str()))
        .cloned()
        .unwrap_or_default();
    let published = seen["published_at"].as_i64().unwrap_or_default();
    ensure(
        published % me2b_intents::HOUR_MS == 0,
        "an organisation saw a time finer than the hour",
    )?;
    let keys: Vec<&str> = seen
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    out!(
        "   {} sees: {} (published {} — the hour only; nothing names {name})",
        answerers[0].0.name,
        keys.join(", "),
        Timestamp::from_unix_millis(published).to_rfc3339()
    );

    // Three answers, each made once.
    let valid = clock.now().unix_millis() + 30 * 86_400_000;
    let offers = [
        (
            279_900,
            "Electric cargo bike, two seats, 3 years' maintenance at the co-op.",
        ),
        (
            239_900,
            "Refurbished electric cargo bike, one year warranty, member discount.",
        ),
        (
            329_900,
            "New electric cargo bike with rain tent, delivered to your door.",
        ),
    ];
    let mut answer_ids = Vec::new();
    for ((row, key), (price, terms)) in answerers.iter().zip(offers) {
        let (st, v) = call(
            app,
            Method::POST,
            &format!("/v1/org/intents/{id}/answers"),
            key,
            Some(
                serde_json::json!({"price": {"amount_cents": price, "currency": "EUR"},
                "terms": terms, "valid_until": valid, "asks": ["email-address", "name"]}),
            ),
        )
        .await?;
        expect(st, StatusCode::CREATED, &v, "an answer")?;
        answer_ids.push(v["answer_id"].as_str().unwrap_or_default().to_owned());
        out!(
            "   {} answers: EUR {:.2}, \"{terms}\"",
            row.name,
            price as f64 / 100.0
        );
    }
    let (st, v) = call(
        app,
        Method::POST,
        &format!("/v1/org/intents/{id}/answers"),
        &answerers[2].1,
        Some(
            serde_json::json!({"price": {"amount_cents": 1, "currency": "EUR"},
            "terms": "A second try.", "valid_until": valid}),
        ),
    )
    .await?;
    expect(st, StatusCode::CONFLICT, &v, "a second answer")?;
    out!(
        "   A second answer from {} is refused ({}).",
        answerers[2].0.name,
        err_code(&v)
    );

    // The member compares in the vault and accepts the second co-op's.
    let (st, mine) = call(app, Method::GET, "/v1/me/intents", &token, None).await?;
    expect(st, StatusCode::OK, &mine, "the member's intents")?;
    let n = mine[0]["answers"].as_array().map_or(0, Vec::len);
    out!("   {name} compares {n} answers in the vault and accepts {}'s, sharing only an e-mail address.", answerers[1].0.name);
    let (st, acc) = call(
        app,
        Method::POST,
        &format!("/v1/me/intents/{id}/accept"),
        &token,
        Some(serde_json::json!({"answer_id": answer_ids[1], "disclose": ["email-address"]})),
    )
    .await?;
    expect(st, StatusCode::OK, &acc, "the accept")?;

    // The winner reads the contact through the consent flow.
    let (_, answers) = call(
        app,
        Method::GET,
        "/v1/org/intent-answers",
        &answerers[1].1,
        None,
    )
    .await?;
    let contact = answers[0]["contact"].clone();
    // Data access answers in the window after a release (`[consent_release]`).
    clock.skip_to_consent_release(node).await?;
    let (st, got) = call(
        app,
        Method::POST,
        "/v1/org/data-access",
        &answerers[1].1,
        Some(
            serde_json::json!({"request_id": contact["consent_request_id"],
            "purpose": "service-provision", "processing": "use"}),
        ),
    )
    .await?;
    expect(st, StatusCode::OK, &got, "the contact")?;
    let d: me2b_consent::service::Disclosure =
        serde_json::from_value(got["disclosures"][0].clone()).context("the disclosure")?;
    let data = me2b_consent::envelope::open_disclosure(&answerers[1].1, &d)?;
    let disclosed = data.len();
    ensure(
        disclosed == 1 && data.contains_key("email-address"),
        "the winner received more or less than the e-mail address",
    )?;
    out!(
        "   {} receives the e-mail address only, under {} (a pseudonym for this contact alone).",
        answerers[1].0.name,
        short(
            contact["subject"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("intent-contact-")
        )
    );

    // The others: open until the next whole hour, then "closed", nothing more.
    clock.skip_hours(1);
    let mut closed = 0;
    for i in [0, 2] {
        let (_, v) = call(
            app,
            Method::GET,
            "/v1/org/intent-answers",
            &answerers[i].1,
            None,
        )
        .await?;
        let status = v[0]["status"].as_str().unwrap_or_default().to_owned();
        ensure(
            status == "closed" && v[0].get("contact").is_none(),
            "a losing organisation saw more than closed",
        )?;
        closed += 1;
        out!(
            "   {} sees: status \"{status}\" (not who won, not when within the hour, no contact).",
            answerers[i].0.name
        );
    }
    Ok(IntentReport {
        answers: n,
        disclosed,
        closed_for_others: closed,
    })
}
