//! Section 10d: questions answered with differential privacy, every answer
//! charged to the pools of people it reads, and what stops co-ops that poll,
//! copy or collude.

use super::*;

/// Asks and prints one question; returns the answer (None when refused).
async fn ask(
    c: &Ctx<'_>,
    key: &str,
    body: serde_json::Value,
    tally: &mut (usize, usize),
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let (st, v) = insight(c.app, key, body).await?;
    if st == StatusCode::OK {
        tally.0 += 1;
    } else {
        tally.1 += 1;
    }
    Ok((st, v))
}

/// A count's answer as printed: its value, or withheld below the cohort
/// (the ε is spent all the same). Anything else is a failure.
fn shown(st: StatusCode, v: &serde_json::Value, what: &str) -> anyhow::Result<String> {
    match (st, err_code(v)) {
        (StatusCode::OK, _) => Ok(format!(
            "{} (noise scale {})",
            v["figure"]["value"],
            me2b_dp::governance::fmt_eps(v["figure"]["noise_scale"].as_f64().unwrap_or(0.0))
        )),
        (StatusCode::UNPROCESSABLE_ENTITY, "below_threshold") => {
            Ok("withheld: below the minimum cohort (the ε is spent all the same)".into())
        }
        _ => anyhow::bail!("{what} failed: {st} {v}"),
    }
}

/// 10d. Returns (answered, refused).
pub(super) async fn questions(c: &Ctx<'_>) -> anyhow::Result<(usize, usize)> {
    let (node, names) = (c.node, &c.names);
    let (grocer, bikes) = (&c.coops[0], &c.coops[1]);
    let (grocer_key, bikes_key, threads_key) = (&c.keys[0], &c.keys[1], &c.keys[2]);
    let count_where = |f: &dyn Fn(usize) -> bool| (0..c.cohort.len()).filter(|k| f(*k)).count();
    let overlap_true = count_where(&|k| shops_at(k)[0] && shops_at(k)[1]);
    let stored_overlap = node
        .store
        .trust_overlap(&grocer.id.to_string(), &bikes.id.to_string())
        .await?;
    ensure(
        stored_overlap as usize == overlap_true,
        "the trust's overlap differs from the receipts sent",
    )?;
    let p = &node.governance.privacy;
    out!("\n10d. Questions (POST /v1/org/trust/insights). Budgets belong to the people asked about, not to");
    out!("   the askers: before any noise is drawn, each answer is charged to the pool of every co-op's");
    out!(
        "   customers it reads, ε {} a month each, shared by everyone who asks about them ({} for the co-op",
        p.pools.trust_coop.epsilon_per_period,
        p.pools.trust_coop.epsilon_per_period
    );
    out!(
        "   itself, at most {} for any other). A noisy figure under {} is withheld as well, but the guarantee",
        p.pools.trust_coop.allowance,
        p.min_cohort
    );
    out!("   is the ε bound.");
    let mut t = (0, 0);

    // An overlap reads two pools and is charged to both.
    out!(
        "   {}: how many of our members also shop at {}? (overlap, ε 0.1)   (true, known to the",
        names[0],
        names[1]
    );
    out!("   demo only: {overlap_true})");
    let (st, v) = ask(
        c,
        grocer_key,
        serde_json::json!({"question": {"kind": "overlap", "b": bikes.id}, "epsilon": 0.1}),
        &mut t,
    )
    .await?;
    out!("     → {}", shown(st, &v, "overlap")?);
    if st == StatusCode::OK {
        out!("       {}", c.charged_line(&v));
    }
    out!(
        "   {} asks the same overlap, to average the noise away with {} answer:",
        names[1],
        poss(&names[0])
    );
    let (st, v) = ask(
        c,
        bikes_key,
        serde_json::json!({"question": {"kind": "overlap", "b": grocer.id}, "epsilon": 0.1}),
        &mut t,
    )
    .await?;
    out!("     → {}", shown(st, &v, "overlap")?);
    let (st, v) = ask(
        c,
        bikes_key,
        serde_json::json!({"question": {"kind": "overlap", "b": grocer.id}, "epsilon": 0.1}),
        &mut t,
    )
    .await?;
    ensure(
        st == StatusCode::FORBIDDEN && err_code(&v) == "over_budget",
        &format!("a third overlap was answered: {st} {v}"),
    )?;
    out!("     and again → {st} over_budget: \"{}\"", err_message(&v));
    out!(
        "     Together they spent ε 0.2 on each pool: all their answers about these members are bounded by"
    );
    out!("     the pools' budgets, however many co-ops ask.");

    // A histogram.
    let (st, v) = ask(
        c,
        grocer_key,
        serde_json::json!({"question": {"kind": "histogram", "scope": "own", "by": "area"}, "epsilon": 0.15}),
        &mut t,
    )
    .await?;
    ensure(st == StatusCode::OK, &format!("histogram failed: {st} {v}"))?;
    let bins = v["figure"]["bins"].as_array().cloned().unwrap_or_default();
    let true_bins: Vec<(String, u64)> = node
        .store
        .trust_bin_counts(&grocer.id.to_string(), me2b_storage::TrustDim::Area)
        .await?
        .into_iter()
        .map(|(a, n)| (me2b_storage::unpack_area(a), n))
        .collect();
    let shown: Vec<String> = bins
        .iter()
        .filter(|b| b["value"].is_i64())
        .map(|b| format!("{} {}", b["category"].as_str().unwrap_or(""), b["value"]))
        .collect();
    out!(
        "   {}: our members per province (histogram, ε 0.15; scale {}, as a member may be in {} bins)",
        names[0],
        me2b_dp::governance::fmt_eps(v["figure"]["noise_scale"].as_f64().unwrap_or(0.0)),
        node.trust.governance().max_values_per_member
    );
    out!(
        "     → {}{} of {} provinces withheld   (true: {})",
        if shown.is_empty() {
            String::new()
        } else {
            format!("{}; ", shown.join(", "))
        },
        bins.len() - shown.len(),
        bins.len(),
        true_bins
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Sums: unbounded refused for free, bounded answered.
    let (st, v) = ask(
        c,
        grocer_key,
        serde_json::json!({"question": {"kind": "sum", "scope": "own"}, "epsilon": 0.1}),
        &mut t,
    )
    .await?;
    ensure(
        st == StatusCode::UNPROCESSABLE_ENTITY && err_code(&v) == "unbounded_sum",
        "an unbounded sum was answered",
    )?;
    out!(
        "   {}: our members' total spend, no bound → {st} unbounded_sum, nothing spent.",
        names[0]
    );
    let (st, v) = ask(
        c,
        grocer_key,
        serde_json::json!({"question": {"kind": "sum", "scope": "own", "upper_cents": 10_000}, "epsilon": 0.1}),
        &mut t,
    )
    .await?;
    ensure(st == StatusCode::OK, &format!("sum failed: {st} {v}"))?;
    let f = &v["figure"];
    match (f["count"]["value"].as_i64(), f["sum"]["value"].as_i64()) {
        (Some(n), Some(s)) => out!(
            "   … each member's spend clamped to €100 (ε 0.1) → {n} members, {} in all (noise scale {})",
            eur(s),
            eur(f["sum"]["noise_scale"].as_f64().unwrap_or(0.0).round() as i64)
        ),
        _ => out!("   … each member's spend clamped to €100 (ε 0.1) → withheld: too few members"),
    }

    // Polling a count until the pool is spent.
    let plant_true = count_where(&|k| shops_at(k)[0] && k % 4 == 1);
    out!(
        "   {}: how many bought plant-based? (count, ε 0.02), asked again and again to average the noise",
        names[0]
    );
    out!("   away   (true: {plant_true})");
    let mut answers = Vec::new();
    let mut over = None;
    for _ in 0..40 {
        let (st, v) = ask(
            c,
            grocer_key,
            serde_json::json!({"question": {"kind": "count", "scope": "own", "category": "plant-based"}, "epsilon": 0.02}),
            &mut t,
        )
        .await?;
        match (st, err_code(&v)) {
            (StatusCode::OK, _) => answers.push(v["figure"]["value"].to_string()),
            (_, "below_threshold") => answers.push("withheld".into()),
            (_, "over_budget") => {
                over = Some((st, err_message(&v).to_owned()));
                break;
            }
            _ => anyhow::bail!("a count failed: {st} {v}"),
        }
    }
    let (st, msg) = over.context("the pool's budget never ran out")?;
    out!(
        "     → {} (each with noise of scale 50); then the pool is spent for the month:",
        answers.join(", ")
    );
    out!("     → {st} over_budget: \"{msg}\"");
    out!(
        "     All {} answers together are worth one count at ε {}: averaging them gains nothing.",
        answers.len(),
        me2b_dp::governance::fmt_eps(0.02 * answers.len() as f64)
    );
    let (st, v) = ask(
        c,
        bikes_key,
        serde_json::json!({"question": {"kind": "overlap", "b": grocer.id}, "epsilon": 0.01}),
        &mut t,
    )
    .await?;
    ensure(
        st == StatusCode::FORBIDDEN && err_code(&v) == "over_budget",
        &format!("a spent pool answered: {st} {v}"),
    )?;
    out!(
        "   {} asks an overlap with {} at ε 0.01 → {st} over_budget: the pool of {} customers",
        names[1],
        names[0],
        poss(&names[0])
    );
    out!("     is spent for everyone this month, not only for the co-op that spent it.");
    let (st, v) = call(c.app, Method::GET, "/v1/org/trust/budget", grocer_key, None).await?;
    ensure(st == StatusCode::OK, "budget failed")?;
    for b in v["pools"].as_array().into_iter().flatten() {
        out!(
            "   GET /v1/org/trust/budget ({}): {}: {} of {} spent in {}, {} of {} over its life.",
            names[0],
            c.pool_name(b["pool"].as_str().unwrap_or("")),
            b["spent"],
            b["budget"],
            b["period"].as_str().unwrap_or(""),
            b["lifetime_spent"],
            b["lifetime_cap"]
        );
    }

    // A small cohort.
    let toys_true = count_where(&|k| shops_at(k)[2] && k % 50 == 7);
    let (st, v) = ask(
        c,
        threads_key,
        serde_json::json!({"question": {"kind": "count", "scope": "own", "category": "toys"}, "epsilon": 0.1}),
        &mut t,
    )
    .await?;
    out!(
        "   {}: how many bought toys? (count, ε 0.1)   (true: {toys_true})",
        names[2]
    );
    if st == StatusCode::OK {
        // The threshold is on the noisy value: rarely, noise lifts a small
        // cohort over it.
        out!(
            "     → {} (rare: the noise lifted a cohort of {toys_true} over the threshold)",
            v["figure"]["value"]
        );
    } else {
        ensure(
            st == StatusCode::UNPROCESSABLE_ENTITY && err_code(&v) == "below_threshold",
            &format!("the small-cohort count failed: {st} {v}"),
        )?;
        out!("     → {st} below_threshold; the ε is spent all the same.");
    }

    // Research: only the requester governance names.
    let research = serde_json::json!({"question": {"kind": "count", "scope": "all", "category": "repair"}, "epsilon": 0.5, "purpose": "social-purpose"});
    let (st, v) = ask(c, grocer_key, research.clone(), &mut t).await?;
    ensure(
        st == StatusCode::FORBIDDEN && err_code(&v) == "forbidden",
        &format!("an unnamed co-op used the research purpose: {st} {v}"),
    )?;
    out!(
        "   {} tries the research purpose (all co-ops' receipts) → {st} forbidden: \"{}\"",
        names[0],
        err_message(&v)
    );
    let (st, v) = ask(c, threads_key, research, &mut t).await?;
    let repair_id = node
        .offers
        .taxonomy()
        .topics()
        .iter()
        .find(|t| t.slug == "repair")
        .map(|t| i64::from(t.id))
        .context("the taxonomy has repair")?;
    let repair_true = node
        .store
        .trust_pooled_bin_counts(
            me2b_storage::TrustDim::Category,
            node.trust.governance().max_values_per_member,
        )
        .await?
        .into_iter()
        .find(|b| b.0 == repair_id)
        .map_or(0, |b| b.1);
    out!(
        "   {}, named in governance.toml: how many members had something repaired, anywhere? (ε 0.5)",
        names[2]
    );
    if st == StatusCode::OK {
        out!(
            "     → {}; {}   (true: {repair_true}; each member adds at most {} categories)",
            v["figure"]["value"],
            c.charged_line(&v),
            node.trust.governance().max_values_per_member
        );
    } else {
        ensure(
            err_code(&v) == "below_threshold",
            &format!("research count failed: {st} {v}"),
        )?;
        out!("     → {st} below_threshold   (true: {repair_true})");
    }

    // What a member sees.
    let ftoken = &c.cohort[c.fk].2;
    let (st, v) = call(c.app, Method::GET, "/v1/me/transparency", ftoken, None).await?;
    ensure(st == StatusCode::OK, "transparency failed")?;
    let pb = &v["privacy_budget"];
    out!(
        "   {} sees it all at GET /v1/me/transparency, pool by pool, for {}:",
        c.name_of(c.fk),
        pb["period"].as_str().unwrap_or("")
    );
    for pool in pb["pools"].as_array().into_iter().flatten() {
        out!(
            "     {}: {}",
            c.pool_name(pool["pool"].as_str().unwrap_or("")),
            pool["in_words"].as_str().unwrap_or("")
        );
    }
    Ok(t)
}
