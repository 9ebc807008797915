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
use me2b_domain::{MemberId, RecordId, SystemClock, Timestamp};
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
/// Where every third member also shops: its receipts feed interest suggestions.
const GROCER: &str = "Corner Co-op Haarlem-Noord";
const REGIONS: [&str; 4] = ["Amsterdam", "Utrecht", "Rotterdam", "Groningen"];
/// Declared interests: slugs of the shipped taxonomy (`GET /v1/taxonomy`).
const TOPICS: [&str; 5] = ["cycling", "organic", "fair-trade", "second-hand", "repair"];
const NAMES: [&str; 6] = ["Amara", "Bram", "Chiara", "Dewi", "Emre", "Femke"];

fn email(i: usize) -> String {
    format!("demo-member-{i:04}@members.example.org")
}

fn records_for(i: usize) -> anyhow::Result<Vec<RecordContent>> {
    let m = MERCHANTS[i % MERCHANTS.len()];
    let day = 1 + i % 28;
    let mut json = vec![
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
        serde_json::json!({"kind": "profile_attribute", "name": "email", "value": email(i)}),
    ];
    if i.is_multiple_of(3) {
        // Organic groceries, and nappies: a sensitive category that must never
        // become an interest suggestion.
        json.push(serde_json::json!({
            "kind": "receipt",
            "merchant": GROCER,
            "items": [
                {"name": "Biologische Elstar appels 1 kg", "category": "food.organic.apples", "quantity": 1,
                 "unit_price": {"minor": 349, "currency": "EUR"}},
                {"name": "Biologische wortelen 500 g", "category": "food.organic.vegetables", "quantity": 2,
                 "unit_price": {"minor": 129, "currency": "EUR"}},
                {"name": "Luiers maat 3 (44 st.)", "category": "baby.nappies", "quantity": 1,
                 "unit_price": {"minor": 1199, "currency": "EUR"}}
            ],
            "total": {"minor": 349 + 2 * 129 + 1199, "currency": "EUR"},
            "purchased_at": format!("2026-11-{day:02}T10:{:02}:00Z", i % 60)
        }));
    }
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

const DAY_MS: i64 = 86_400_000;
/// Members who open their app during the offers walk-through: enough for
/// counts above the minimum cohort, few enough to keep the demo quick.
const OFFER_COHORT: usize = 400;

fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "   {{bar:40}} {{pos}}/{{len}} {what}  {{elapsed}} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `f` over `items`, eight at a time, with a progress bar; results in
/// the order of `items`.
async fn in_parallel<T, R, F, Fut>(items: Vec<T>, what: &str, f: F) -> anyhow::Result<Vec<R>>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<R>> + Send + 'static,
    R: Send + 'static,
{
    let bar = progress(items.len(), what);
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, item) in items.into_iter().enumerate() {
        let fut = f(item);
        let sem = sem.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            anyhow::Ok((n, fut.await?))
        });
    }
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(r) = tasks.join_next().await {
        out.push(r??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.sort_by_key(|r| r.0);
    Ok(out.into_iter().map(|r| r.1).collect())
}

async fn coop(
    node: &Node,
    name: &str,
    roles: Vec<Role>,
) -> anyhow::Result<(me2b_storage::OrgRow, String)> {
    let (row, key) = node
        .orgs
        .create(
            Label::try_from(name)?,
            OrgKind::Coop,
            Roles::try_from(roles)?,
        )
        .await?;
    Ok((row, key.secret.expose().to_owned()))
}

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

/// "1 accepts", "2 accept".
fn verb(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
struct OffersReport {
    live: usize,
    refused: usize,
    leads: usize,
}

async fn offers_story(
    node: &Node,
    app: &axum::Router,
    made: &Made,
    erased: MemberId,
) -> anyhow::Result<OffersReport> {
    use me2b_consent::model::ConsentRequestInput;
    let t0 = Instant::now();
    let (green, green_key) = coop(node, "Green Wheels", vec![Role::Offers, Role::Consent]).await?;
    let (corner, corner_key) = coop(node, "Corner Co-op", vec![Role::Offers]).await?;
    let (threads, threads_key) = coop(node, "Fair Threads", vec![Role::Offers]).await?;
    out!(
        "\n9. Offers. Three more co-ops join with the `offers` role: {} (bikes), {} (grocer)",
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
    let contact = node.consents.create_request(&green, contact).await?;
    let until =
        Timestamp::from_unix_millis(node.clock.now().unix_millis() + 30 * DAY_MS).to_rfc3339();

    out!("   Refused, nothing stored:");
    let mut n_refused = 0;
    let code = refused(
        app,
        "Green Wheels",
        "rule `region == 5`",
        &green_key,
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
        &corner_key,
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
        &corner_key,
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
    let (bike, status) = publish(app, &green_key, serde_json::json!({
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
    let (organic, status) = publish(app, &corner_key, serde_json::json!({
        "title": "15% off the organic veg box",
        "text": "Seasonal organic vegetables from farms within 50 km, every Friday at Corner Co-op.",
        "topics": ["organic"],
        "valid_until": until,
    }))
    .await?;
    out!("     Corner Co-op, topic organic → {status}");
    let (bundle, status) = publish(app, &corner_key, serde_json::json!({
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
        &threads_key,
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
    out!("\n9e. What the co-ops see: GET /v1/org/offers/{{id}}/stats, members each counted once, with noise:");
    let keys = [&green_key, &corner_key, &corner_key];
    let mut first_stats = None;
    let mut withheld = 0;
    for ((id, title), key) in titles.iter().zip(keys) {
        let (st, v) = call(
            app,
            Method::GET,
            &format!("/v1/org/offers/{id}/stats"),
            key,
            None,
        )
        .await?;
        ensure(st == StatusCode::OK, "stats failed")?;
        let min = v["min_cohort"].as_u64().unwrap_or(0);
        let fig = |x: &serde_json::Value| match x.as_u64() {
            Some(n) => n.to_string(),
            None => format!("withheld: fewer than {min}"),
        };
        withheld += usize::from(v["reached"].is_null()) + usize::from(v["accepted"].is_null());
        out!("      {title}");
        out!(
            "        reached {:<28} accepted {}",
            fig(&v["reached"]),
            fig(&v["accepted"])
        );
        first_stats.get_or_insert(v);
    }
    if let Some(v) = &first_stats {
        out!(
            "    Noise: {}, scale {}; a count whose noisy value is below {} is withheld (null).",
            v["mechanism"].as_str().unwrap_or(""),
            v["noise_scale"],
            v["min_cohort"]
        );
    }
    out!("    {withheld} figure{} withheld. Each release is drawn once and stored: asking again returns the", if withheld == 1 { " is" } else { "s are" });
    let (_, a) = call(
        app,
        Method::GET,
        &format!("/v1/org/offers/{bundle}/stats"),
        &corner_key,
        None,
    )
    .await?;
    let (st, b) = call(
        app,
        Method::GET,
        &format!("/v1/org/offers/{bundle}/stats"),
        &threads_key,
        None,
    )
    .await?;
    ensure(
        st == StatusCode::OK && a["reached"] == b["reached"] && a["accepted"] == b["accepted"],
        "a second read drew fresh noise",
    )?;
    out!("    same figures (Fair Threads, the bundle's partner, reads the bundle's), so noise cannot be averaged away.");
    let (st, v) = call(app, Method::GET, "/v1/me/offers", &green_key, None).await?;
    ensure(
        st == StatusCode::FORBIDDEN,
        "a co-op reached a member's offers",
    )?;
    out!(
        "    Green Wheels asks for a member's matches with its key: GET /v1/me/offers → {st} {}",
        v["error"]["code"].as_str().unwrap_or("")
    );

    let leads = node
        .consents
        .access(green.id, contact.id, "direct-marketing", "use")
        .await?;
    ensure(
        leads.len() == tallies[0].shared,
        "leads do not match the members who shared",
    )?;
    ensure(
        leads
            .iter()
            .all(|d| d.data.keys().all(|k| k == "email-address")),
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
    })
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
        GROCER.as_bytes(),
        b"Private note of demo member",
        b"Havermelk",
        b"Luiers",
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

    let offers = offers_story(&node, &app, &made, erased).await?;
    // Verify again, so the report counts the offer events too.
    node.audit.checkpoint_now().await?;
    let report =
        me2b_audit::verify(node.store.as_ref(), &node.keys.verifying_key(), &|_| {}).await?;
    ensure(report.ok(), "audit log did not verify after the offers")?;

    let remaining = node.store.count_members().await?;
    let mut at_rest = 0;
    for m in made.iter().filter(|m| m.1 != erased) {
        at_rest += node.store.count_records(m.1).await?;
    }
    node.shutdown().await;
    out!("\nReport");
    out!("  members        {remaining} active, 1 erased");
    out!("  records        {at_rest} encrypted at rest, 0 readable without the member's key");
    out!("  organisations  4 co-ops, 0 member records reachable without consent");
    out!(
        "  offers         {} live, {} refused at publish; co-ops got noisy counts and {}",
        offers.live,
        offers.refused,
        verb(offers.leads, "consented lead", "consented leads")
    );
    out!(
        "  audit log      {} entries, chain and {} checkpoints OK",
        report.entries,
        report.checkpoints
    );
    out!("  took           {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
