//! Section 9: offers, matched inside the vaults, and what the co-ops see.

use super::*;

const DAY_MS: i64 = 86_400_000;
/// Members who open their app during the offers walk-through: enough for
/// counts above the minimum cohort, few enough to keep the demo quick.
const OFFER_COHORT: usize = 400;

/// `POST /v1/org/offers` that must succeed: the offer's id and status.
async fn publish(
    app: &axum::Router,
    key: &str,
    body: serde_json::Value,
) -> anyhow::Result<(String, String)> {
    let (status, v) = call(app, Method::POST, "/v1/org/offers", key, Some(body)).await?;
    ensure(
        status == StatusCode::CREATED,
        &format!("publishing failed: {status} {v}"),
    )?;
    Ok((
        v["offer"]["id"].as_str().unwrap_or("").to_owned(),
        v["status"].as_str().unwrap_or("").to_owned(),
    ))
}

/// `POST /v1/org/offers` that must be refused: prints why.
async fn refused(
    app: &axum::Router,
    who: &str,
    what: &str,
    key: &str,
    body: serde_json::Value,
) -> anyhow::Result<String> {
    let (status, v) = call(app, Method::POST, "/v1/org/offers", key, Some(body)).await?;
    ensure(
        status == StatusCode::UNPROCESSABLE_ENTITY,
        &format!("a bad offer was not refused: {status}"),
    )?;
    let e = &v["error"];
    let code = e["code"].as_str().unwrap_or("").to_owned();
    let at = match (
        e["position"]["line"].as_u64(),
        e["position"]["column"].as_u64(),
    ) {
        (Some(l), Some(c)) => format!(" at {l}:{c}"),
        _ => String::new(),
    };
    out!("     {who}, {what}: REFUSED, {status} {code}{at}");
    out!("       \"{}\"", e["message"].as_str().unwrap_or(""));
    Ok(code)
}

/// How a member answers one offer in the demo.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Choice {
    Accept { share: bool },
    Dismiss,
    NotRelevant,
    Silent,
}

/// What each party saw of one offer, counted across all vaults (the demo's
/// view only: no party ever holds these figures).
#[derive(Default)]
struct Tally {
    shown: usize,
    accepted: usize,
    shared: usize,
    dismissed: usize,
    not_relevant: usize,
    silent: usize,
}

/// What the offers section hands to the report.
pub(super) struct OffersReport {
    pub(super) live: usize,
    pub(super) refused: usize,
    pub(super) leads: usize,
    /// Copies published to average noise, which got no statistics.
    pub(super) copies: usize,
}

pub(super) async fn offers_story(
    node: &Node,
    app: &axum::Router,
    made: &Made,
    erased: MemberId,
    coops: &Coops,
    clock: &setup::DemoClock,
) -> anyhow::Result<OffersReport> {
    use me2b_consent::model::ConsentRequestInput;
    let t0 = Instant::now();
    let (green, green_key) = (&coops.green.0, &coops.green.1);
    let (corner, corner_key) = (&coops.corner.0, &coops.corner.1);
    let (threads, threads_key) = (&coops.threads.0, &coops.threads.1);
    out!(
        "\n9. Offers. Three more co-ops have the `offers` role: {} (bikes), {} (grocer)",
        green.name,
        corner.name
    );
    out!(
        "   and {} (second-hand clothes). Every offer goes into one catalogue that every vault",
        threads.name
    );
    out!("   receives alike; targeting rules (CEL) are checked at publish (POST /v1/org/offers).");

    let contact: ConsentRequestInput = serde_json::from_value(serde_json::json!({
        "purposes": ["direct-marketing"],
        "categories": ["email-address"],
        "processing": ["use"],
        "legal_basis": "consent",
        "retention_days": 180,
        "notice": "Green Wheels would like your e-mail address to book your free check-up and to send you our own offers. Nothing is sold or shared.",
        "notice_version": "2026-11"
    }))?;
    let contact = node.consents.create_request(green, contact).await?;
    let until =
        Timestamp::from_unix_millis(node.clock.now().unix_millis() + 30 * DAY_MS).to_rfc3339();

    out!("   Refused, nothing stored:");
    let mut n_refused = 0;
    let code = refused(
        app,
        "Green Wheels",
        "rule `region == 5`",
        green_key,
        serde_json::json!({
            "title": "Free bike check-up", "text": "x", "topics": ["cycling"],
            "rule": "region == 5", "valid_until": until,
        }),
    )
    .await?;
    ensure(
        code == "rule_type",
        "a mistyped rule was not refused as such",
    )?;
    n_refused += 1;
    let code = refused(
        app,
        "Corner Co-op",
        "topic pregnancy-and-maternity",
        corner_key,
        serde_json::json!({
            "title": "Baby box for expecting parents", "text": "Nappies, wipes and a cuddly toy.",
            "topics": ["pregnancy-and-maternity"], "valid_until": until,
        }),
    )
    .await?;
    ensure(
        code == "sensitive_topic",
        "a sensitive topic was not refused",
    )?;
    n_refused += 1;
    let code = refused(
        app,
        "Corner Co-op",
        "topic food, rule `\"diabetes\" in interests`",
        corner_key,
        serde_json::json!({
            "title": "Sugar-free week", "text": "Sugar-free sweets at half price.",
            "topics": ["food"], "rule": "\"diabetes\" in interests", "valid_until": until,
        }),
    )
    .await?;
    ensure(
        code == "rule_sensitive_topic",
        "a sensitive rule was not refused",
    )?;
    n_refused += 1;

    let cycling_rule =
        "region == \"Amsterdam\" || region == \"Utrecht\" || region == \"Rotterdam\"";
    let (bike, status) = publish(app, green_key, serde_json::json!({
        "title": "Free bike check-up and 20% off the repair",
        "text": "Bring your bike to a Green Wheels workshop in Amsterdam, Utrecht or Rotterdam: a free safety check, and 20% off the repair if it needs one.",
        "topics": ["cycling"],
        "rule": cycling_rule,
        "valid_until": until,
        "frequency_cap": {"impressions": 3, "per_days": 7},
        "contact_request": contact.id,
    }))
    .await?;
    out!("   Published:");
    out!("     Green Wheels, topic cycling, rule `{cycling_rule}`, and a contact request");
    out!("       (a consent request: direct marketing, e-mail address) → {status}");
    let (organic, status) = publish(app, corner_key, serde_json::json!({
        "title": "15% off the organic veg box",
        "text": "Seasonal organic vegetables from farms within 50 km, every Friday at Corner Co-op.",
        "topics": ["organic"],
        "valid_until": until,
    }))
    .await?;
    out!("     Corner Co-op, topic organic → {status}");
    let (bundle, status) = publish(app, corner_key, serde_json::json!({
        "title": "Zero-waste week",
        "text": "Bring your own jars: fair-trade coffee, tea and grains by weight at Corner Co-op.",
        "topics": ["fair-trade"],
        "valid_until": until,
        "coalition": [{
            "org": threads.id,
            "title": "A second-hand winter coat for €25",
            "text": "Any coat on the rail at Fair Threads, this week only.",
            "topics": ["second-hand"]
        }],
    }))
    .await?;
    ensure(
        status == "pending_partners",
        "a bundle went live before its partner endorsed it",
    )?;
    out!("     Corner Co-op, a coalition bundle with Fair Threads (fair-trade + second-hand) → {status}:");
    out!("       in no vault until the partner endorses its part");
    let (st, v) = call(
        app,
        Method::POST,
        &format!("/v1/org/offers/{bundle}/endorse"),
        threads_key,
        None,
    )
    .await?;
    let status = v["status"].as_str().unwrap_or("");
    ensure(
        st == StatusCode::OK && status == "active",
        "endorsing did not activate the bundle",
    )?;
    out!("     Fair Threads endorses it (POST /v1/org/offers/{{id}}/endorse → {st}) → {status}");
    let titles = [
        (
            bike.as_str(),
            "Green Wheels: Free bike check-up and 20% off the repair",
        ),
        (
            organic.as_str(),
            "Corner Co-op: 15% off the organic veg box",
        ),
        (
            bundle.as_str(),
            "Corner Co-op + Fair Threads: Zero-waste week",
        ),
    ];

    // Interest suggestions, inside the vault.
    let members: Vec<(usize, String)> = made
        .iter()
        .filter(|m| m.1 != erased)
        .take(OFFER_COHORT)
        .map(|m| (m.0, m.2.expose().to_owned()))
        .collect();
    let (first_i, first_token) = members.first().context("a member")?.clone();
    let first_id = made
        .iter()
        .find(|m| m.0 == first_i)
        .map(|m| m.1)
        .context("member")?;
    let (st, sugg) = call(
        app,
        Method::GET,
        "/v1/me/interest-suggestions",
        &first_token,
        None,
    )
    .await?;
    ensure(st == StatusCode::OK, "suggestions failed")?;
    let sugg = sugg.as_array().cloned().unwrap_or_default();
    let tax = node.offers.taxonomy();
    out!("\n9b. Member {first_id}'s vault suggests interests from their own receipts");
    out!("    (GET /v1/me/interest-suggestions, computed inside the vault, sent nowhere):");
    for s in &sugg {
        let topic = s["topic"].as_str().unwrap_or("");
        let sensitive = tax.by_slug(topic).is_some_and(|t| tax.is_sensitive(t));
        ensure(!sensitive, "a sensitive topic was suggested")?;
        let n = s["receipts"].as_u64().unwrap_or(0);
        out!(
            "      {:<14} {:<34} from {n} receipt{}",
            s["name"].as_str().unwrap_or(""),
            s["path"].as_str().unwrap_or(""),
            if n == 1 { "" } else { "s" }
        );
    }
    let nappies = tax
        .topic_for_category("baby.nappies")
        .context("baby.nappies maps to a topic")?;
    let nappies_slug = tax.slug(nappies).to_owned();
    ensure(
        tax.is_sensitive(nappies) && !sugg.iter().any(|s| s["topic"] == nappies_slug.as_str()),
        "nappies became a suggestion",
    )?;
    out!(
        "    Their {GROCER} receipt also lists baby.nappies → {} ({}, GDPR Art. 9):",
        tax.name(nappies),
        tax.sensitive_category(nappies)
            .unwrap_or("special category")
    );
    out!("    a sensitive topic is never suggested, whatever the receipts say.");
    ensure(
        sugg.iter().any(|s| s["topic"] == "organic"),
        "organic was not suggested",
    )?;
    let (st, _) = call(
        app,
        Method::POST,
        "/v1/me/interest-suggestions/organic/accept",
        &first_token,
        None,
    )
    .await?;
    ensure(
        st == StatusCode::NO_CONTENT,
        "accepting a suggestion failed",
    )?;
    out!("    They accept Organic (POST …/organic/accept → {st}): a new interest in their vault, \"from receipts\".");
    let shoppers: Vec<(usize, String)> = members
        .iter()
        .filter(|m| m.0.is_multiple_of(3) && m.0 != first_i)
        .cloned()
        .collect();
    let answered = in_parallel(shoppers, "suggestions answered", |(i, token)| {
        let app = app.clone();
        async move {
            let (st, s) = call(
                &app,
                Method::GET,
                "/v1/me/interest-suggestions",
                &token,
                None,
            )
            .await?;
            ensure(st == StatusCode::OK, "suggestions failed")?;
            let offered = s
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s["topic"] == "organic"));
            if !offered {
                return anyhow::Ok(None);
            }
            let accept = i.is_multiple_of(6);
            let verb = if accept { "accept" } else { "reject" };
            let (st, _) = call(
                &app,
                Method::POST,
                &format!("/v1/me/interest-suggestions/organic/{verb}"),
                &token,
                None,
            )
            .await?;
            ensure(
                st == StatusCode::NO_CONTENT,
                "answering a suggestion failed",
            )?;
            Ok(Some(accept))
        }
    })
    .await?;
    let acc = answered.iter().filter(|a| **a == Some(true)).count();
    let rej = answered.iter().filter(|a| **a == Some(false)).count();
    out!(
        "    {} members open the app today; of the others offered the same suggestion, {acc} accept it",
        members.len()
    );
    out!("    and {rej} reject it (a rejected suggestion never comes back).");

    // Matching, inside every vault.
    let feeds = in_parallel(members.clone(), "vaults matched", |(i, token)| {
        let app = app.clone();
        async move {
            let (st, v) = call(&app, Method::GET, "/v1/me/offers", &token, None).await?;
            ensure(st == StatusCode::OK, "matching failed")?;
            anyhow::Ok((i, token, v.as_array().cloned().unwrap_or_default()))
        }
    })
    .await?;
    out!("\n9c. Their vaults match the catalogue (GET /v1/me/offers): topics first, then the rule; each");
    out!("    offer comes with the reasons, from the member's own data. For example:");
    let bundle_viewer = feeds
        .iter()
        .find(|f| f.0 != first_i && f.2.iter().any(|m| m["offer_id"] == bundle.as_str()));
    for (i, _, matches) in feeds.iter().filter(|f| f.0 == first_i).chain(bundle_viewer) {
        let who = made
            .iter()
            .find(|m| m.0 == *i)
            .map(|m| m.1)
            .context("member")?;
        out!(
            "    member {who}: {} offer{}",
            matches.len(),
            if matches.len() == 1 { "" } else { "s" }
        );
        for m in matches {
            out!(
                "      • {}: {}",
                m["org_name"].as_str().unwrap_or(""),
                m["title"].as_str().unwrap_or("")
            );
            for p in m["bundle"].as_array().into_iter().flatten() {
                out!(
                    "        + {}: {}",
                    p["org_name"].as_str().unwrap_or(""),
                    p["title"].as_str().unwrap_or("")
                );
            }
            out!(
                "        why: {}",
                m["why"]["summary"].as_str().unwrap_or("")
            );
        }
    }
    let first_feed = feeds
        .iter()
        .find(|f| f.0 == first_i)
        .map(|f| &f.2)
        .context("feed")?;
    ensure(
        first_feed.iter().any(|m| {
            m["offer_id"] == organic.as_str()
                && m["why"]["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("suggested from your receipts"))
        }),
        "the accepted suggestion did not lead to the organic offer",
    )?;

    // Answers, inside every vault.
    let mut tallies: Vec<Tally> = titles.iter().map(|_| Tally::default()).collect();
    let mut plans = Vec::new();
    let mut not_relevant_member = None;
    for (i, token, matches) in &feeds {
        let mut plan = Vec::new();
        for m in matches {
            let id = m["offer_id"].as_str().unwrap_or("");
            let Some(o) = titles.iter().position(|t| t.0 == id) else {
                continue;
            };
            let t = &mut tallies[o];
            let k = t.shown;
            t.shown += 1;
            let choice = match o {
                0 => match k % 5 {
                    0 => Choice::Accept { share: true },
                    1 | 2 => Choice::Accept { share: false },
                    3 => Choice::Dismiss,
                    _ => Choice::Silent,
                },
                1 if k == 1 => Choice::NotRelevant,
                1 => match k % 4 {
                    0 => Choice::Accept { share: false },
                    2 => Choice::Dismiss,
                    _ => Choice::Silent,
                },
                _ if k < 2 => Choice::Accept { share: false },
                _ if k.is_multiple_of(3) => Choice::Dismiss,
                _ => Choice::Silent,
            };
            match choice {
                Choice::Accept { share } => {
                    t.accepted += 1;
                    t.shared += usize::from(share);
                }
                Choice::Dismiss => t.dismissed += 1,
                Choice::NotRelevant => {
                    t.not_relevant += 1;
                    not_relevant_member = Some((*i, token.clone(), matches.len()));
                }
                Choice::Silent => t.silent += 1,
            }
            if choice != Choice::Silent {
                plan.push((id.to_owned(), choice));
            }
        }
        if !plan.is_empty() {
            plans.push((token.clone(), plan));
        }
    }
    let told = in_parallel(plans, "members answered", |(token, plan)| {
        let app = app.clone();
        async move {
            let mut told = Vec::new();
            for (id, choice) in plan {
                let body = match choice {
                    Choice::Accept { share } => {
                        serde_json::json!({"answer": "accept", "share_contact": share})
                    }
                    Choice::Dismiss => serde_json::json!({"answer": "dismiss"}),
                    Choice::NotRelevant | Choice::Silent => {
                        serde_json::json!({"answer": "not_relevant"})
                    }
                };
                let (st, v) = call(
                    &app,
                    Method::POST,
                    &format!("/v1/me/offers/{id}/answer"),
                    &token,
                    Some(body),
                )
                .await?;
                ensure(st == StatusCode::OK, &format!("answering failed: {st} {v}"))?;
                if let Choice::Accept { share } = choice {
                    told.push((share, v["disclosed"].as_str().unwrap_or("").to_owned()));
                }
            }
            anyhow::Ok(told)
        }
    })
    .await?;
    let told: Vec<(bool, String)> = told.into_iter().flatten().collect();
    out!("\n9d. Members answer, each in their own vault (POST /v1/me/offers/{{id}}/answer). Across every");
    out!("    vault (the demo's view only: the co-ops never see these tallies, only the noisy counts in 9e):");
    for (t, (_, title)) in tallies.iter().zip(titles.iter()) {
        let mut parts = vec![verb(t.accepted, "accepts", "accept")];
        if t.shared > 0 {
            parts[0].push_str(&format!(
                " ({} their e-mail address)",
                verb(t.shared, "shares", "share")
            ));
        }
        if t.dismissed > 0 {
            parts.push(verb(t.dismissed, "dismisses", "dismiss"));
        }
        if t.not_relevant > 0 {
            parts.push(verb(
                t.not_relevant,
                "marks it not relevant",
                "mark it not relevant",
            ));
        }
        parts.push(verb(t.silent, "does not answer", "do not answer"));
        out!("      {title}");
        out!("        shown to {}: {}", t.shown, parts.join(", "));
    }
    if let Some((_, d)) = told.iter().find(|t| !t.0) {
        out!("    Accepting, a member is told what the co-op gets: \"{d}\"");
    }
    if let Some((_, d)) = told.iter().find(|t| t.0) {
        out!("    Accepting and sharing: \"{d}\"");
    }
    if let Some((i, token, before)) = not_relevant_member {
        let (st, v) = call(app, Method::GET, "/v1/me/offers", &token, None).await?;
        ensure(st == StatusCode::OK, "matching failed")?;
        let now: Vec<serde_json::Value> = v.as_array().cloned().unwrap_or_default();
        ensure(
            !now.iter().any(|m| m["offer_id"] == organic.as_str()),
            "an offer marked not relevant came back",
        )?;
        let who = made
            .iter()
            .find(|m| m.0 == i)
            .map(|m| m.1)
            .context("member")?;
        out!("    Member {who} marked the organic offer not relevant: their vault now leaves out");
        out!(
            "    offers on Organic ({before} offer{} before, {} now).",
            if before == 1 { "" } else { "s" },
            now.len()
        );
    }

    // What the co-ops see.
    let g = &node.governance;
    let days = g.offers.release_every_days;
    let audience = &g.privacy.pools.offers_audience;
    out!("\n9e. What the co-ops see: GET /v1/org/offers/{{id}}/stats. Figures are released on a schedule,");
    out!("    every {days} days and when the offer closes, never on request. Publishing charged each offer's");
    out!(
        "    statistics once, ε {} from the offers' audience pool ({} a month shared by every publisher, at",
        g.offers.epsilon_per_offer,
        audience.epsilon_per_period
    );
    out!(
        "    most {} for one), for all its releases. Read today:",
        audience.allowance
    );
    let stats = |id: &str, key: &str| {
        let path = format!("/v1/org/offers/{id}/stats");
        let key = key.to_owned();
        async move {
            let (st, v) = call(app, Method::GET, &path, &key, None).await?;
            ensure(st == StatusCode::OK, &format!("stats failed: {st} {v}"))?;
            anyhow::Ok(v)
        }
    };
    let keys = [green_key, corner_key, corner_key];
    let first = stats(titles[0].0, keys[0]).await?;
    ensure(
        first["releases"] == 0 && first["reached"].is_null(),
        "statistics were released before their time",
    )?;
    out!(
        "      {}: no release yet (the first is due {}).",
        titles[0].1,
        first["next_release_at"].as_str().unwrap_or("")
    );
    clock.skip_days(i64::from(days));
    out!("    A week passes (the demo moves its clock {days} days ahead). The first release:");
    let mut withheld = 0;
    let mut released = Vec::new();
    for ((id, title), key) in titles.iter().zip(keys) {
        let v = stats(id, key).await?;
        let min = v["min_cohort"].as_u64().unwrap_or(0);
        let fig = |x: &serde_json::Value| match x.as_u64() {
            Some(n) => n.to_string(),
            None => format!("withheld (< {min})"),
        };
        withheld += usize::from(v["reached"].is_null()) + usize::from(v["accepted"].is_null());
        out!("      {title}");
        out!(
            "        reached {:<22} accepted {:<22} (± {:.0}, one standard deviation)",
            fig(&v["reached"]),
            fig(&v["accepted"]),
            v["stddev"].as_f64().unwrap_or(0.0)
        );
        released.push(v);
    }
    if let Some(v) = released.first() {
        out!(
            "    {}, scale {} per release;",
            v["mechanism"].as_str().unwrap_or(""),
            v["noise_scale"]
        );
        out!(
            "    {withheld} figure{} withheld. The next release is due {}.",
            if withheld == 1 { " is" } else { "s are" },
            v["next_release_at"].as_str().unwrap_or("")
        );
    }
    // Polling: a member's visit never causes a release.
    let late = made
        .iter()
        .filter(|m| m.1 != erased)
        .nth(OFFER_COHORT)
        .or_else(|| made.iter().find(|m| m.1 != erased))
        .context("a member")?;
    let (st, _) = call(app, Method::GET, "/v1/me/offers", late.2.expose(), None).await?;
    ensure(st == StatusCode::OK, "a member's offers failed")?;
    let again = stats(titles[0].0, keys[0]).await?;
    ensure(
        again == released[0],
        "a member's visit changed the released statistics",
    )?;
    out!("    Green Wheels polls: it reads again right after another member opens their offers → the same");
    out!("    release, byte for byte: a visit never causes a release, so reading before and after one tells");
    out!("    nothing about that member.");
    let (_, a) = call(
        app,
        Method::GET,
        &format!("/v1/org/offers/{bundle}/stats"),
        corner_key,
        None,
    )
    .await?;
    let (st, b) = call(
        app,
        Method::GET,
        &format!("/v1/org/offers/{bundle}/stats"),
        threads_key,
        None,
    )
    .await?;
    ensure(
        st == StatusCode::OK && a == b,
        "the bundle's partner saw another release",
    )?;
    out!("    Fair Threads, the bundle's partner, reads the bundle's: the same figures.");
    // Copies: publishing the same offer again buys no new statistics.
    out!("    Corner Co-op publishes copies of its organic offer, hoping to average the noise of many releases:");
    let copy = serde_json::json!({
        "title": "15% off the organic veg box",
        "text": "Seasonal organic vegetables from farms within 50 km, every Friday at Corner Co-op.",
        "topics": ["organic"],
        "valid_until": until,
    });
    let mut copies = 0;
    let mut refusal = None;
    let mut note = String::new();
    for _ in 0..30 {
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/org/offers",
            corner_key,
            Some(copy.clone()),
        )
        .await?;
        if st == StatusCode::CREATED {
            ensure(
                v["statistics"]["released"] == false,
                "a copy got a statistics stream beyond the publisher's allowance",
            )?;
            copies += 1;
            note = v["statistics"]["note"].as_str().unwrap_or("").to_owned();
        } else {
            refusal = Some((st, err_code(&v).to_owned(), err_message(&v).to_owned()));
            break;
        }
    }
    let (st, code, msg) = refusal.context("copies were never refused")?;
    ensure(
        code == "too_many_live_offers",
        &format!("copies refused otherwise: {code}"),
    )?;
    out!("      {copies} copies go live, each without statistics: \"{note}\"");
    out!("      the next → {st} {code}: \"{msg}\"");
    out!("    Every offer's statistics read the same people, so they share one budget: copies add nothing.");
    let (st, v) = call(app, Method::GET, "/v1/me/offers", green_key, None).await?;
    ensure(
        st == StatusCode::FORBIDDEN,
        "a co-op reached a member's offers",
    )?;
    out!(
        "    Green Wheels asks for a member's matches with its key: GET /v1/me/offers → {st} {}",
        v["error"]["code"].as_str().unwrap_or("")
    );

    // The leads' consents show to Green Wheels at the next release.
    clock.skip_to_consent_release(node).await?;
    let green_key_id = node.orgs.authenticate(green_key).await?.key;
    let leads = node
        .consents
        .access(
            green.id,
            green_key_id,
            contact.id,
            "direct-marketing",
            "use",
        )
        .await?;
    let lead_data = leads
        .iter()
        .map(|d| me2b_consent::envelope::open_disclosure(green_key, d))
        .collect::<Result<Vec<_>, _>>()?;
    ensure(
        leads.len() == tallies[0].shared,
        "leads do not match the members who shared",
    )?;
    ensure(
        lead_data
            .iter()
            .all(|d| d.keys().all(|k| k == "email-address")),
        "a lead disclosed more than the e-mail address",
    )?;
    out!("    Accepted leads: Green Wheels reads its contact request through consent data access");
    out!(
        "    (POST /v1/org/data-access, direct marketing): {}, each under a pseudonym only",
        verb(leads.len(), "member", "members")
    );
    match leads.first() {
        Some(d) => out!(
            "    Green Wheels sees (e.g. {}), each with only an e-mail address; each can withdraw it any time.",
            d.subject
        ),
        None => out!("    Green Wheels sees; each can withdraw it any time."),
    }
    out!("    The co-ops did NOT learn who matched an offer, who was shown what, who dismissed an offer or");
    out!("    marked it not relevant, nor anyone's interests, receipts or suggestions: all of that stays in");
    out!("    each member's encrypted vault; the audit log records that matching ran, not what it found.");
    out!("    ({:.1} s)", t0.elapsed().as_secs_f64());
    Ok(OffersReport {
        live: titles.len(),
        refused: n_refused,
        leads: leads.len(),
        copies,
    })
}
