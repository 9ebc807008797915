//! Section 10: the data trust: cards, receipts, questions with differential
//! privacy, cross-selling with consent, loyalty, forwarding and erasure.

use super::*;

/// Members who hand their cards to the co-ops in the trust walk-through:
/// enough for figures above the minimum cohort, few enough to stay quick.
const TRUST_COHORT: usize = 300;
/// What the three trust co-ops sell, in the order of `OffersReport::coops`.
const TRUST_SHOPS: [&str; 3] = ["grocer", "bikes", "second-hand"];

/// Where the `k`th member of the trust cohort shops: 60% at the grocer, 40%
/// at the bike co-op (30% at both), 30% at the second-hand co-op.
fn shops_at(k: usize) -> [bool; 3] {
    let d = k % 10;
    [d < 6, (3..=6).contains(&d), matches!(d, 5 | 7 | 8)]
}

/// The receipts co-op `shop` holds about the `k`th member, under its
/// pseudonym for them (the co-op seals it afresh as a card to send, see
/// [`Ctx::sealed`]): 1 to 3, timed to the second, in a province.
fn trust_receipts(shop: usize, k: usize, pseudonym: &str) -> Vec<serde_json::Value> {
    (0..1 + k % 3)
        .map(|r| {
            let day = 1 + (k * 7 + r * 11) % 28;
            let at = format!(
                "2026-11-{day:02}T{:02}:{:02}:{:02}+01:00",
                8 + (k + r) % 12,
                (k * 13 + r) % 60,
                (k * 31 + r * 17) % 60
            );
            let v = |base: usize, span: usize| (base + (k * 37 + r * 53) % span) as i64;
            let (area, items) = match shop {
                0 => {
                    let mut items = vec![("organic", v(249, 900))];
                    if (k + r).is_multiple_of(2) {
                        items.push(("fair-trade", v(399, 600)));
                    }
                    if k % 4 == 1 {
                        items.push(("plant-based", v(189, 400)));
                    }
                    if r % 2 == 1 {
                        items.push(("dairy-and-eggs", v(129, 300)));
                    }
                    if k.is_multiple_of(5) {
                        items.push(("refill-and-zero-waste", v(299, 500)));
                    }
                    (
                        if k.is_multiple_of(3) {
                            "NL-UT"
                        } else {
                            "NL-NH"
                        },
                        items,
                    )
                }
                1 => {
                    let items = if r == 0 {
                        vec![
                            ("repair", v(1_500, 3_000)),
                            ("bicycles-and-accessories", v(1_200, 1_800)),
                        ]
                    } else {
                        vec![("cycling", v(2_000, 6_000))]
                    };
                    (["NL-UT", "NL-ZH", "NL-NH"][k % 3], items)
                }
                _ => {
                    let mut items = vec![("second-hand", v(500, 3_500))];
                    items.push(if k % 50 == 7 {
                        ("toys", v(300, 1_200))
                    } else if k.is_multiple_of(3) {
                        ("books-and-literature", v(200, 800))
                    } else {
                        ("apparel", v(800, 2_500))
                    });
                    if r == 1 {
                        items.push(("repair", v(500, 1_500)));
                    }
                    (["NL-UT", "NL-ZH"][k % 2], items)
                }
            };
            let items: Vec<serde_json::Value> = items
                .into_iter()
                .map(|(c, a)| serde_json::json!({"category": c, "amount_cents": a}))
                .collect();
            serde_json::json!({"card": pseudonym, "at": at, "area": area, "items": items})
        })
        .collect()
}

fn eur(cents: i64) -> String {
    format!("€{}.{:02}", cents / 100, cents % 100)
}

/// "Green Wheels'", "Corner Co-op's".
fn poss(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// Items as "organic €2.49, fair-trade €3.99".
fn items_line(r: &serde_json::Value) -> String {
    r["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            format!(
                "{} {}",
                i["category"].as_str().unwrap_or(""),
                eur(i["amount_cents"].as_i64().unwrap_or(0))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `POST /v1/org/trust/insights`.
async fn insight(
    app: &axum::Router,
    key: &str,
    body: serde_json::Value,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    call(app, Method::POST, "/v1/org/trust/insights", key, Some(body)).await
}

/// `GET /v1/me/trust/cards/{org}` as the member: the card, a ciphertext
/// only that co-op opens.
async fn card_of(
    app: &axum::Router,
    token: &str,
    org: me2b_domain::OrgId,
) -> anyhow::Result<String> {
    let (st, v) = call(
        app,
        Method::GET,
        &format!("/v1/me/trust/cards/{org}"),
        token,
        None,
    )
    .await?;
    ensure(st == StatusCode::OK, &format!("card failed: {st} {v}"))?;
    Ok(v["card"].as_str().unwrap_or("").to_owned())
}

/// A member shows their card at the co-op, which opens it with its own keys:
/// the co-op's pseudonym for them.
async fn shown_to(
    app: &axum::Router,
    token: &str,
    keys: &me2b_coop::CoopKeys,
) -> anyhow::Result<String> {
    let card = card_of(app, token, keys.org()).await?;
    Ok(keys.open_card(&card)?)
}

/// `POST /v1/org/trust/keys` with the co-op's API key: its own domain's keys
/// (the embedded trust's transcryptors give them; a distributed trust's
/// transcryptors each give their share directly).
async fn coop_keys(
    app: &axum::Router,
    key: &str,
    org: me2b_domain::OrgId,
) -> anyhow::Result<me2b_coop::CoopKeys> {
    let (st, v) = call(app, Method::POST, "/v1/org/trust/keys", key, None).await?;
    ensure(st == StatusCode::OK, &format!("the co-op's keys: {st} {v}"))?;
    let material = serde_json::from_value(v).context("the co-op's key material")?;
    Ok(me2b_coop::CoopKeys::from_material(org, &material)?)
}

mod loyalty;
mod questions;
mod sharing;
mod till;

/// What every part of the trust walk-through shares.
pub(super) struct Ctx<'a> {
    pub(super) node: &'a Node,
    pub(super) app: &'a axum::Router,
    /// Corner Co-op (grocer), Green Wheels (bikes), Fair Threads (second-hand).
    pub(super) coops: &'a [me2b_storage::OrgRow; 3],
    pub(super) names: Vec<String>,
    /// Each co-op's API key with the `insights` role.
    pub(super) keys: Vec<String>,
    /// Each co-op's own domain keys (the node holds none).
    pub(super) coop_keys: std::sync::Arc<Vec<me2b_coop::CoopKeys>>,
    /// (member index, member id, session token) of the members in the walk-through.
    pub(super) cohort: Vec<(usize, MemberId, String)>,
    /// Each cohort member's pseudonym at each co-op they shop at, as the
    /// co-op opened their card.
    pub(super) cards: Vec<[Option<String>; 3]>,
    /// The cohort member whose cards are shown (shops at all three).
    pub(super) fk: usize,
    pub(super) fcards: Vec<String>,
    /// The node's data directory (the demo writes a redemption token's QR code there).
    pub(super) dir: &'a std::path::Path,
}

/// `body` as co-op `c` sends it: each `card` (its pseudonym for a member)
/// sealed afresh with its keys, at the top or in `receipts`.
fn sealed(
    keys: &me2b_coop::CoopKeys,
    mut body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let seal = |v: &mut serde_json::Value| -> anyhow::Result<()> {
        if let Some(p) = v["card"].as_str() {
            v["card"] = keys.seal(p, &OsRandom)?.into();
        }
        Ok(())
    };
    seal(&mut body)?;
    if let Some(rs) = body.get_mut("receipts").and_then(|r| r.as_array_mut()) {
        for r in rs {
            seal(r)?;
        }
    }
    Ok(body)
}

impl Ctx<'_> {
    /// `body` as co-op `c` sends it, its pseudonyms sealed afresh as cards.
    pub(super) fn sealed(
        &self,
        c: usize,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        sealed(&self.coop_keys[c], body)
    }

    pub(super) fn name_of(&self, k: usize) -> &'static str {
        NAMES[self.cohort[k].0 % NAMES.len()]
    }

    /// A pool as people read it: "Corner Co-op's customers", "the pooled receipts".
    pub(super) fn pool_name(&self, pool: &str) -> String {
        match pool {
            "trust:research" => return "the pooled receipts (research)".into(),
            "offers:audience" => return "every offer's audience".into(),
            _ => {}
        }
        self.coops
            .iter()
            .zip(&self.names)
            .find(|(c, _)| pool == format!("trust:coop:{}", c.id))
            .map_or_else(
                || pool.to_owned(),
                |(_, n)| format!("{} customers", poss(n)),
            )
    }

    /// What an answer cost: "ε 0.1 to Corner Co-op's customers (0.1 of 0.5
    /// spent in 2026-12)".
    pub(super) fn charged_line(&self, v: &serde_json::Value) -> String {
        let c = &v["charged"];
        let pools: Vec<String> = c["pools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{} ({} of {} spent in {})",
                    self.pool_name(p["pool"].as_str().unwrap_or("")),
                    p["spent"],
                    p["budget"],
                    p["period"].as_str().unwrap_or("")
                )
            })
            .collect();
        format!("ε {} to {}", c["epsilon"], pools.join(" and "))
    }
}

/// What the trust section hands to the report.
#[derive(Default)]
pub(super) struct TrustReport {
    pub(super) receipts: usize,
    pub(super) batches_refused: usize,
    pub(super) answered: usize,
    pub(super) refused: usize,
    pub(super) shared: usize,
    pub(super) transcryptions: usize,
}

pub(super) async fn trust_story(
    node: &Node,
    app: &axum::Router,
    made: &Made,
    erased: MemberId,
    coops: &Coops,
    dir: &std::path::Path,
) -> anyhow::Result<TrustReport> {
    let coops = [
        coops.corner.0.clone(),
        coops.green.0.clone(),
        coops.threads.0.clone(),
    ];
    use me2b_domain::audit::Actor;
    let t0 = Instant::now();
    let trust = &node.trust;
    let mut keys = Vec::new();
    for c in &coops {
        let k = node
            .orgs
            .create_key(
                Actor::Operator,
                c.id,
                Roles::try_from(vec![Role::Insights])?,
            )
            .await?;
        keys.push(k.secret.expose().to_owned());
    }
    let mut ck = Vec::new();
    for (c, key) in coops.iter().zip(&keys) {
        ck.push(coop_keys(app, key, c.id).await?);
    }
    let coop_keys = std::sync::Arc::new(ck);
    let names: Vec<&str> = coops.iter().map(|c| c.name.as_str()).collect();
    let grocer = &coops[0];
    let (grocer_key, bikes_key, threads_key) = (&keys[0], &keys[1], &keys[2]);
    out!("\n10. The data trust. Co-ops pool receipts under pseudonyms; the trust answers their questions");
    out!("   with differential privacy and links a member across co-ops only with the member's consent.");
    if trust.single_party() {
        out!(
            "   Here it is single-party: {} transcryptors run in this process, so one operator holds every",
            trust.transcryptors()
        );
        out!("   secret. Distributed, each transcryptor is its own party: `me2b trust init --transcryptors 3");
        out!("   --out DIR --grant-key NODE_KEY`, then `me2b transcryptor --config DIR/transcryptor-I.json`");
        out!("   on each party's host (each with its own data directory), and ME2B_TRUST_DIR=DIR for the node.");
    } else {
        out!(
            "   It is distributed over {} transcryptor processes.",
            trust.transcryptors()
        );
    }
    out!(
        "   The operator gives {} ({}), {} ({}) and {} ({})",
        names[0],
        TRUST_SHOPS[0],
        names[1],
        TRUST_SHOPS[1],
        names[2],
        TRUST_SHOPS[2]
    );
    out!("   each an API key with the `insights` role. Each co-op fetches its own domain's keys");
    out!(
        "   (POST /v1/org/trust/keys; distributed, from every transcryptor with `me2b coop keys`):"
    );
    out!(
        "   the node holds no co-op's keys, so it cannot tell which co-op card is which member's."
    );
    let cohort: Vec<(usize, MemberId, String)> = made
        .iter()
        .filter(|m| m.1 != erased)
        .take(TRUST_COHORT)
        .map(|m| (m.0, m.1, m.2.expose().to_owned()))
        .collect();
    if cohort.len() < 2 {
        out!("   (the rest of the walk-through needs at least 3 members)");
        return Ok(TrustReport::default());
    }
    let name_of = |k: usize| NAMES[cohort[k].0 % NAMES.len()];

    // Cards.
    let org_ids: Vec<me2b_domain::OrgId> = coops.iter().map(|c| c.id).collect();
    let wanted: Vec<(String, Vec<usize>)> = cohort
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let s = shops_at(k);
            (m.2.clone(), (0..3).filter(|c| s[*c]).collect())
        })
        .collect();
    let cards: Vec<[Option<String>; 3]> = in_parallel(wanted, "cards shown", |(token, at)| {
        let app = app.clone();
        let keys = coop_keys.clone();
        async move {
            let mut out: [Option<String>; 3] = Default::default();
            for c in at {
                out[c] = Some(shown_to(&app, &token, &keys[c]).await?);
            }
            anyhow::Ok(out)
        }
    })
    .await?;
    let at: Vec<usize> = (0..3)
        .map(|c| cards.iter().filter(|x| x[c].is_some()).count())
        .collect();
    out!(
        "\n10b. Cards. {} members each show a card (GET /v1/me/trust/cards/{{org}}) at the co-ops they",
        cohort.len()
    );
    out!(
        "   shop at: {} at {}, {} at {}, {} at {}. A card is that co-op's own",
        at[0],
        names[0],
        at[1],
        names[1],
        at[2],
        names[2]
    );
    out!("   pseudonym for the member, encrypted to the co-op: the member's encrypted pseudonym, moved");
    out!("   into the co-op's domain by every transcryptor in turn at the member's request. The co-op");
    out!("   opens it with its own keys (`me2b coop open-card`); the node cannot.");
    // A member who shops at all three (k % 10 == 5), when there is one.
    let fk = if cohort.len() > 5 { 5 } else { 0 };
    let (_, fid, ftoken) = &cohort[fk];
    let fname = name_of(fk);
    let mut fcards = Vec::new();
    out!("   The cards of {fname} (member {fid}), as shown and as each co-op opens them:");
    for (n, (id, keys)) in names.iter().zip(org_ids.iter().zip(coop_keys.iter())) {
        let card = card_of(app, ftoken, *id).await?;
        let p = keys.open_card(&card)?;
        out!("     {n:<14} {}  →  {}", short(&card), short(&p));
        fcards.push(p);
    }
    let shown = card_of(app, ftoken, grocer.id).await?;
    let again = coop_keys[0].open_card(&shown)?;
    ensure(
        again == fcards[0],
        "the same co-op got a different pseudonym",
    )?;
    ensure(
        coop_keys[1].open_card(&shown)? != fcards[0],
        "another co-op opened the grocer's card",
    )?;
    ensure(
        fcards[0] != fcards[1] && fcards[1] != fcards[2] && fcards[0] != fcards[2],
        "two co-ops got the same pseudonym",
    )?;
    let all: std::collections::BTreeSet<&String> = cards.iter().flatten().flatten().collect();
    ensure(
        all.len() == at.iter().sum::<usize>(),
        "two cards in the cohort are equal",
    )?;
    out!(
        "   Shown again, the card is a new ciphertext ({}), which {} opens to {} again;",
        short(&shown),
        names[0],
        short(&again)
    );
    out!(
        "   {} opening it gets noise. All {} pseudonyms differ: no two co-ops can match their customers.",
        names[1],
        all.len()
    );

    // Receipts.
    out!("\n10c. Receipts. Each co-op submits its receipts under its cards (POST /v1/org/trust/receipts).");
    out!("   Refused, nothing stored (each a batch of 2, the 1st receipt valid):");
    let first_grocer = cards
        .iter()
        .find_map(|c| c[0].clone())
        .context("a grocer card")?;
    let ok_receipt = sealed(&coop_keys[0], trust_receipts(0, 0, &first_grocer).remove(0))?;
    let mut postcode = ok_receipt.clone();
    postcode["area"] = "2011 AB".into();
    let mut pharmacy = ok_receipt.clone();
    pharmacy["items"] =
        serde_json::json!([{"category": "pharmacy-and-medicines", "amount_cents": 795}]);
    let mut n_refused = 0;
    for (what, bad, code) in [
        ("area \"2011 AB\" (a postcode)", postcode, "unknown_area"),
        (
            "an item in pharmacy-and-medicines",
            pharmacy,
            "sensitive_category",
        ),
    ] {
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/org/trust/receipts",
            grocer_key,
            Some(serde_json::json!({"receipts": [ok_receipt.clone(), bad]})),
        )
        .await?;
        ensure(
            st == StatusCode::UNPROCESSABLE_ENTITY && err_code(&v) == code,
            &format!("a bad receipt was not refused: {st} {v}"),
        )?;
        n_refused += 1;
        out!("     {}, {what}: REFUSED, {st} {code}", names[0]);
        out!("       \"{}\"", err_message(&v));
    }
    let kept = node
        .store
        .trust_member_count(&grocer.id.to_string())
        .await?;
    ensure(kept == 0, "a refused batch was partly stored")?;
    out!(
        "     All or nothing: the valid receipts went too (the trust holds {kept} {} members).",
        names[0]
    );
    out!("   Accepted:");
    let mut n_receipts = 0;
    let mut sample = None;
    for (c, key) in [grocer_key, bikes_key, threads_key].into_iter().enumerate() {
        let receipts: Vec<serde_json::Value> = cards
            .iter()
            .enumerate()
            .filter_map(|(k, x)| x[c].as_ref().map(|p| trust_receipts(c, k, p)))
            .flatten()
            .collect();
        let mut cats: Vec<String> = Vec::new();
        let mut areas = std::collections::BTreeSet::new();
        for r in &receipts {
            areas.insert(r["area"].as_str().unwrap_or("").to_owned());
            for i in r["items"].as_array().into_iter().flatten() {
                let cat = i["category"].as_str().unwrap_or("").to_owned();
                if !cats.contains(&cat) {
                    cats.push(cat);
                }
            }
        }
        let mut stored = 0;
        let mut status = StatusCode::CREATED;
        for chunk in receipts.chunks(me2b_trust::service::MAX_RECEIPTS) {
            let body = sealed(&coop_keys[c], serde_json::json!({"receipts": chunk}))?;
            if sample.is_none() {
                sample = body["receipts"].get(0).cloned();
            }
            let (st, v) =
                call(app, Method::POST, "/v1/org/trust/receipts", key, Some(body)).await?;
            ensure(
                st == StatusCode::CREATED,
                &format!("receipts refused: {st} {v}"),
            )?;
            status = st;
            stored += v["stored"].as_u64().unwrap_or(0) as usize;
        }
        ensure(stored == receipts.len(), "not every receipt was stored")?;
        n_receipts += stored;
        out!(
            "     {} ({}): {} receipts → {status}, {stored} stored; in {}",
            names[c],
            TRUST_SHOPS[c],
            receipts.len(),
            areas.into_iter().collect::<Vec<_>>().join(", ")
        );
        out!("       {}", cats.join(", "));
    }
    if let Some(s) = sample {
        out!(
            "   One receipt as {} sends it: card {} (its pseudonym for the member, sealed afresh),",
            names[0],
            short(s["card"].as_str().unwrap_or(""))
        );
        out!(
            "     at {}, area {},",
            s["at"].as_str().unwrap_or(""),
            s["area"].as_str().unwrap_or("")
        );
        out!("     {}", items_line(&s));
        out!(
            "   As the trust keeps it: day {}, area {}, the same items; the member only as a keyed hash",
            s["at"].as_str().unwrap_or("").get(..10).unwrap_or(""),
            s["area"].as_str().unwrap_or("")
        );
        out!("   of their research-domain pseudonym, next to ciphertexts only the transcryptors can move.");
    }

    let c = Ctx {
        node,
        app,
        coops: &coops,
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        keys: keys.clone(),
        coop_keys: coop_keys.clone(),
        cohort: cohort.clone(),
        cards: cards.clone(),
        fk,
        fcards: fcards.clone(),
        dir,
    };
    let (answered, refused_q) = questions::questions(&c).await?;
    let (after, partner_cards) = sharing::cross_selling(&c).await?;
    loyalty::loyalty_forwarding_erasure(&c).await?;

    // The audit log.
    let entries = node.store.audit_entries(0, u64::MAX >> 1).await?;
    let (mut queries, mut transcripts, mut denied) = (0, 0, 0);
    let mut log = String::new();
    for e in &entries {
        let ev: serde_json::Value = serde_json::from_slice(&e.event_json)?;
        match ev["action"].as_str() {
            Some("trust.query") => queries += 1,
            Some("trust.transcrypt") => {
                transcripts += 1;
                denied += usize::from(ev["outcome"] == "denied");
            }
            _ => {}
        }
        log.push_str(std::str::from_utf8(&e.event_json).unwrap_or(""));
    }
    let leaked = all.iter().filter(|p| log.contains(p.as_str())).count()
        + partner_cards
            .iter()
            .filter(|p| log.contains(p.as_str()))
            .count();
    ensure(leaked == 0, "a pseudonym is in the audit log")?;
    ensure(
        queries == answered + refused_q && denied >= 1,
        "the audit log misses trust requests",
    )?;
    out!("\n10i. What no co-op learned: another co-op's pseudonyms, an exact count, or a receipt without");
    out!("   the member's consent. The audit log holds every question with its ε or why it was refused");
    out!(
        "   ({queries} trust.query entries) and every transcryptor request ({transcripts} trust.transcrypt entries,"
    );
    out!("   {denied} denied); none holds a pseudonym.");
    out!("   ({:.1} s)", t0.elapsed().as_secs_f64());
    Ok(TrustReport {
        receipts: n_receipts,
        answered,
        refused: refused_q,
        batches_refused: n_refused,
        shared: after,
        transcryptions: transcripts,
    })
}
