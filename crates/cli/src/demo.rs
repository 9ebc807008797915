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
    /// Corner Co-op (grocer), Green Wheels (bikes), Fair Threads (second-hand).
    coops: [me2b_storage::OrgRow; 3],
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
        coops: [corner, green, threads],
    })
}

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

/// The receipts co-op `shop` holds about the `k`th member, under its card:
/// 1 to 3, timed to the second, in a province.
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
            serde_json::json!({"pseudonym": pseudonym, "at": at, "area": area, "items": items})
        })
        .collect()
}

fn eur(cents: i64) -> String {
    format!("€{}.{:02}", cents / 100, cents % 100)
}

/// A pseudonym as the demo prints it: the first 16 hex digits.
fn short(p: &str) -> String {
    format!("{}…", p.chars().take(16).collect::<String>())
}

/// "Green Wheels'", "Corner Co-op's".
fn poss(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

fn err_code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn err_message(v: &serde_json::Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("")
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

/// "ε 1.0 spent, 2.0 of 3.0 left" from an answer.
fn budget_line(v: &serde_json::Value) -> String {
    let b = &v["budget"];
    format!(
        "ε {} spent, {} of {} left",
        b["epsilon_spent_now"], b["remaining"], b["budget"]
    )
}

/// `GET /v1/me/trust/cards/{org}` as the member: that co-op's pseudonym.
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
    Ok(v["pseudonym"].as_str().unwrap_or("").to_owned())
}

/// What the trust section hands to the report.
#[derive(Default)]
struct TrustReport {
    receipts: usize,
    batches_refused: usize,
    answered: usize,
    refused: usize,
    shared: usize,
    transcryptions: usize,
}

async fn trust_story(
    node: &Node,
    app: &axum::Router,
    made: &Made,
    erased: MemberId,
    coops: &[me2b_storage::OrgRow; 3],
) -> anyhow::Result<TrustReport> {
    use me2b_domain::audit::Actor;
    let t0 = Instant::now();
    let trust = &node.trust;
    let mut keys = Vec::new();
    for c in coops {
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
    let names: Vec<&str> = coops.iter().map(|c| c.name.as_str()).collect();
    let (grocer, bikes) = (&coops[0], &coops[1]);
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
    out!("   each an API key with the `insights` role.");
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
        let org_ids = org_ids.clone();
        async move {
            let mut out: [Option<String>; 3] = Default::default();
            for c in at {
                out[c] = Some(card_of(&app, &token, org_ids[c]).await?);
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
    out!("   pseudonym for the member: the member's encrypted pseudonym, moved into the co-op's domain by");
    out!("   every transcryptor in turn.");
    // A member who shops at all three (k % 10 == 5), when there is one.
    let fk = if cohort.len() > 5 { 5 } else { 0 };
    let (_, fid, ftoken) = &cohort[fk];
    let fname = name_of(fk);
    let mut fcards = Vec::new();
    for id in &org_ids {
        fcards.push(card_of(app, ftoken, *id).await?);
    }
    out!("   The cards of {fname} (member {fid}):");
    for (n, c) in names.iter().zip(&fcards) {
        out!("     {n:<14} {}", short(c));
    }
    let again = card_of(app, ftoken, grocer.id).await?;
    ensure(again == fcards[0], "the same co-op got a different card")?;
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
        "   Asked again, {} gets {} again. All {} cards differ: no two co-ops",
        names[0],
        short(&again),
        all.len()
    );
    out!("   can match their customers by pseudonym.");

    // Receipts.
    out!("\n10c. Receipts. Each co-op submits its receipts under its cards (POST /v1/org/trust/receipts).");
    out!("   Refused, nothing stored (each a batch of 2, the 1st receipt valid):");
    let first_grocer = cards
        .iter()
        .find_map(|c| c[0].clone())
        .context("a grocer card")?;
    let ok_receipt = trust_receipts(0, 0, &first_grocer).remove(0);
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
        if sample.is_none() {
            sample = receipts.first().cloned();
        }
        let mut stored = 0;
        let mut status = StatusCode::CREATED;
        for chunk in receipts.chunks(me2b_trust::service::MAX_RECEIPTS) {
            let (st, v) = call(
                app,
                Method::POST,
                "/v1/org/trust/receipts",
                key,
                Some(serde_json::json!({"receipts": chunk})),
            )
            .await?;
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
            "   One receipt as {} sends it: pseudonym {},",
            names[0],
            short(s["pseudonym"].as_str().unwrap_or(""))
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

    // Questions.
    let count_where = |f: &dyn Fn(usize) -> bool| (0..cohort.len()).filter(|k| f(*k)).count();
    let overlap_true = count_where(&|k| shops_at(k)[0] && shops_at(k)[1]);
    let stored_overlap = node
        .store
        .trust_overlap(&grocer.id.to_string(), &bikes.id.to_string())
        .await?;
    ensure(
        stored_overlap as usize == overlap_true,
        "the trust's overlap differs from the receipts sent",
    )?;
    let g = trust.governance();
    out!(
        "\n10d. Questions (POST /v1/org/trust/insights). Each is charged to the co-op's ε budget ({:.1})",
        g.default_org_budget
    );
    out!(
        "   before noise is drawn (discrete Laplace, OpenDP); a noisy figure under {} is withheld.",
        g.min_cohort
    );
    let (mut answered, mut refused_q) = (0, 0);
    out!(
        "   {}: how many of our members also shop at {}? (overlap, ε 0.5)",
        names[0],
        names[1]
    );
    let (st, v) = insight(
        app,
        grocer_key,
        serde_json::json!({"question": {"kind": "overlap", "b": bikes.id}, "epsilon": 0.5}),
    )
    .await?;
    if st == StatusCode::OK {
        answered += 1;
        out!(
            "     → {} (noise scale {}; {})   (true value, known to the demo only: {overlap_true})",
            v["figure"]["value"],
            v["figure"]["noise_scale"],
            budget_line(&v)
        );
    } else {
        ensure(
            err_code(&v) == "below_threshold",
            &format!("overlap failed: {st} {v}"),
        )?;
        refused_q += 1;
        out!("     → {st} below_threshold   (true value, known to the demo only: {overlap_true})");
    }
    let (st, v) = insight(
        app,
        grocer_key,
        serde_json::json!({"question": {"kind": "histogram", "scope": "own", "by": "area"}, "epsilon": 1.0}),
    )
    .await?;
    ensure(st == StatusCode::OK, &format!("histogram failed: {st} {v}"))?;
    answered += 1;
    let bins = v["figure"]["bins"].as_array().cloned().unwrap_or_default();
    let true_bins: Vec<(String, u64)> = node
        .store
        .trust_bin_counts(&grocer.id.to_string(), me2b_storage::TrustDim::Area)
        .await?
        .into_iter()
        .map(|(a, n)| (me2b_storage::unpack_area(a), n))
        .collect();
    let true_of = |area: &str| true_bins.iter().find(|b| b.0 == area).map_or(0, |b| b.1);
    let shown: Vec<String> = bins
        .iter()
        .filter(|b| b["value"].is_i64())
        .map(|b| {
            let area = b["category"].as_str().unwrap_or("");
            format!(
                "{area} {}{}",
                b["value"],
                if true_of(area) == 0 {
                    " (noise alone: no receipts there)"
                } else {
                    ""
                }
            )
        })
        .collect();
    out!(
        "   {}: our members per province (histogram, ε 1.0; scale {}, as a member may be in {} bins)",
        names[0],
        v["figure"]["noise_scale"],
        g.max_values_per_member
    );
    out!(
        "     → {}{} of {} provinces withheld",
        if shown.is_empty() {
            String::new()
        } else {
            format!("{}; ", shown.join(", "))
        },
        bins.len() - shown.len(),
        bins.len(),
    );
    out!(
        "       {}   (true values, known to the demo only: {})",
        budget_line(&v),
        true_bins
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out!("   {}: our members' total spend? (sum, no bound)", names[0]);
    let (st, v) = insight(
        app,
        grocer_key,
        serde_json::json!({"question": {"kind": "sum", "scope": "own"}, "epsilon": 1.0}),
    )
    .await?;
    ensure(
        st == StatusCode::UNPROCESSABLE_ENTITY && err_code(&v) == "unbounded_sum",
        "an unbounded sum was answered",
    )?;
    refused_q += 1;
    out!("     → {st} unbounded_sum, nothing spent:");
    out!("       \"{}\"", err_message(&v));
    out!("   … each member's spend clamped to €100 (bounded sum, ε 1.0: half for the count, half for the sum)");
    let (st, v) = insight(
        app,
        grocer_key,
        serde_json::json!({"question": {"kind": "sum", "scope": "own", "upper_cents": 10_000}, "epsilon": 1.0}),
    )
    .await?;
    ensure(st == StatusCode::OK, &format!("sum failed: {st} {v}"))?;
    answered += 1;
    let f = &v["figure"];
    match (
        f["count"]["value"].as_i64(),
        f["sum"]["value"].as_i64(),
        f["mean"].as_f64(),
    ) {
        (Some(n), Some(s), Some(m)) => out!(
            "     → {n} members, {} in all, {} on average (noise scales {} members and {});\n       {}",
            eur(s),
            eur(m.round() as i64),
            f["count"]["noise_scale"],
            eur(f["sum"]["noise_scale"].as_f64().unwrap_or(0.0).round() as i64),
            budget_line(&v)
        ),
        _ => out!(
            "     → withheld: fewer than {} members; {}",
            g.min_cohort,
            budget_line(&v)
        ),
    }
    let plant_true = count_where(&|k| shops_at(k)[0] && k % 4 == 1);
    out!(
        "   {}: how many bought plant-based? (count, ε 0.25), asked again and again to average the",
        names[0]
    );
    out!("   noise away   (true value, known to the demo only: {plant_true})");
    let mut answers = Vec::new();
    let mut over = None;
    for _ in 0..16 {
        let (st, v) = insight(
            app,
            grocer_key,
            serde_json::json!({"question": {"kind": "count", "scope": "own", "category": "plant-based"}, "epsilon": 0.25}),
        )
        .await?;
        match (st, err_code(&v)) {
            (StatusCode::OK, _) => {
                answered += 1;
                answers.push(v["figure"]["value"].to_string());
            }
            (_, "below_threshold") => {
                refused_q += 1;
                answers.push("withheld".into());
            }
            (_, "over_budget") => {
                refused_q += 1;
                over = Some((st, err_message(&v).to_owned()));
                break;
            }
            _ => anyhow::bail!("a count failed: {st} {v}"),
        }
    }
    let (st, msg) = over.context("the budget never ran out")?;
    out!(
        "     → {}; then the budget is spent, and the next one",
        answers.join(", ")
    );
    out!("     → {st} over_budget:");
    out!("       \"{msg}\"");
    let (st, v) = call(app, Method::GET, "/v1/org/trust/budget", grocer_key, None).await?;
    ensure(st == StatusCode::OK, "budget failed")?;
    let own = format!("org:{}", grocer.id);
    let spent: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let who = b["requester"].as_str().unwrap_or("");
            format!(
                "{} {} of {}",
                if who == own { "its own" } else { who },
                b["spent"],
                b["budget"]
            )
        })
        .collect();
    out!("   GET /v1/org/trust/budget, ε spent: {}", spent.join("; "));
    let toys_true = count_where(&|k| shops_at(k)[2] && k % 50 == 7);
    out!(
        "   {}: how many bought toys? (count, ε 0.5)   (true value, known to the demo only: {toys_true})",
        names[2]
    );
    let (st, v) = insight(
        app,
        threads_key,
        serde_json::json!({"question": {"kind": "count", "scope": "own", "category": "toys"}, "epsilon": 0.5}),
    )
    .await?;
    if st == StatusCode::OK {
        // The threshold is on the noisy value: very rarely (about 1 in 2,000
        // at this cohort and scale) noise lifts a small cohort over it.
        answered += 1;
        out!(
            "     → {} (rare: the noise lifted a cohort of {toys_true} over the threshold; {})",
            v["figure"]["value"],
            budget_line(&v)
        );
    } else {
        ensure(
            st == StatusCode::UNPROCESSABLE_ENTITY && err_code(&v) == "below_threshold",
            &format!("the small-cohort count failed: {st} {v}"),
        )?;
        refused_q += 1;
        out!("     → {st} below_threshold; the ε is spent all the same:");
        out!("       \"{}\"", err_message(&v));
    }
    let research = g
        .research_budgets
        .get("social-purpose")
        .copied()
        .unwrap_or(0.0);
    out!(
        "   {}, for the trust's research purpose social-purpose (its own budget, {research:.1}, and it may ask",
        names[2]
    );
    out!("   about every co-op's members): how many members had something repaired, anywhere? (ε 1.0)");
    let (st, v) = insight(
        app,
        threads_key,
        serde_json::json!({"question": {"kind": "count", "scope": "all", "category": "repair"}, "epsilon": 1.0, "purpose": "social-purpose"}),
    )
    .await?;
    // The trust counts at most `max_values_per_member` categories per member
    // across all co-ops, in the order the receipts came: the true value is
    // the bounded one.
    let repairers = count_where(&|k| shops_at(k)[1] || (shops_at(k)[2] && k % 3 > 0));
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
        .trust_bin_counts("*", me2b_storage::TrustDim::Category)
        .await?
        .into_iter()
        .find(|b| b.0 == repair_id)
        .map_or(0, |b| b.1);
    let noted = format!("(true value, known to the demo only: {repair_true};");
    if st == StatusCode::OK {
        answered += 1;
        out!(
            "     → {} ({})   {noted}",
            v["figure"]["value"],
            budget_line(&v)
        );
    } else {
        ensure(
            err_code(&v) == "below_threshold",
            &format!("research count failed: {st} {v}"),
        )?;
        refused_q += 1;
        out!("     → {st} below_threshold   {noted}");
    }
    out!(
        "       {repairers} members had something repaired, but each adds at most {} categories to the trust)",
        g.max_values_per_member
    );

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
    let mut partner_cards = Vec::new();
    for k in &sharers {
        let pc = card_of(app, &cohort[*k].2, bikes.id).await?;
        ensure(
            got.iter().any(|m| m["pseudonym"] == pc.as_str()),
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
        "   {} card), never {}: the transcryptors moved each with a grant the node signed",
        names[1],
        poss(names[0])
    );
    // Someone other than the member whose cards were shown above.
    let ex = (0..sharers.len())
        .find(|x| name_of(sharers[*x]) != fname)
        .unwrap_or(0);
    if let (Some(k), Some(pc)) = (sharers.get(ex), partner_cards.get(ex)) {
        let m = got
            .iter()
            .find(|m| m["pseudonym"] == pc.as_str())
            .context("shared member")?;
        let rs = m["receipts"].as_array().cloned().unwrap_or_default();
        out!(
            "   for that consent. E.g. {}: {} knows them as {}, {}",
            name_of(*k),
            names[0],
            short(cards[*k][0].as_deref().unwrap_or("")),
            names[1]
        );
        out!(
            "   receives {} = their {} card, with {} receipt{}:",
            short(pc),
            names[1],
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
            Some(serde_json::json!({"pseudonym": pc, "points": 50})),
        )
        .await?;
        ensure(st == StatusCode::OK, &format!("earning failed: {st} {v}"))?;
        bonus.push(v["balance"].to_string());
    }
    bonus.dedup();
    out!(
        "   {} offers each a welcome discount: 50 bonus points on its own card for them",
        names[1]
    );
    out!(
        "   (POST /v1/org/trust/loyalty/earn → balance {}).",
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
    out!(
        "   {} withdraws (DELETE /v1/me/trust/sharing/{{id}} → {st}; GET /v1/me/trust shows it",
        name_of(wk)
    );
    out!(
        "   withdrawn): {} next read → {after} members.",
        poss(names[1])
    );

    // Loyalty.
    out!("\n10f. Loyalty across co-ops, under a third pseudonym that no co-op sees. For {fname}:");
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/trust/loyalty/earn",
        grocer_key,
        Some(serde_json::json!({"pseudonym": fcards[0], "points": 120})),
    )
    .await?;
    ensure(
        st == StatusCode::OK && v["balance"] == 120,
        &format!("earning failed: {st} {v}"),
    )?;
    out!(
        "   {} adds 120 points on its card (POST /v1/org/trust/loyalty/earn → balance {}).",
        names[0],
        v["balance"]
    );
    let (st, v) = call(app, Method::GET, "/v1/me/trust", ftoken, None).await?;
    ensure(
        st == StatusCode::OK && v["loyalty_points"] == 120,
        "the vault shows another balance",
    )?;
    out!(
        "   {} vault (GET /v1/me/trust): {} points, {} sharing consents.",
        poss(fname),
        v["loyalty_points"],
        v["sharing"].as_array().map_or(0, Vec::len)
    );
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/trust/loyalty/redeem",
        threads_key,
        Some(serde_json::json!({"pseudonym": fcards[2], "points": 100})),
    )
    .await?;
    ensure(
        st == StatusCode::OK && v["balance"] == 20,
        &format!("redeeming failed: {st} {v}"),
    )?;
    out!(
        "   {} takes 100 of them in payment, on its own card (POST …/loyalty/redeem → balance {});",
        names[2],
        v["balance"]
    );
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/trust/loyalty/redeem",
        threads_key,
        Some(serde_json::json!({"pseudonym": fcards[2], "points": 50})),
    )
    .await?;
    ensure(
        st == StatusCode::CONFLICT && err_code(&v) == "insufficient_points",
        &format!("an overdraft was allowed: {st} {v}"),
    )?;
    out!(
        "   50 more → {st} insufficient_points: \"{}\".",
        err_message(&v)
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
        ensure(st == StatusCode::NO_CONTENT, "an erasure failed")?;
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
            Some(serde_json::json!({"receipts": again})),
        )
        .await?;
        let dropped = v["erased"].as_array().map_or(0, Vec::len);
        ensure(
            st == StatusCode::CREATED && v["stored"] == 0 && dropped == again.len(),
            &format!("an erased member's card brought data back: {st} {v}"),
        )?;
        out!(
            "   {} still holds their card. Resubmitting its {}: {st}, stored 0; `erased` lists them",
            names[0],
            verb(again.len(), "receipt", "receipts")
        );
        out!("   ({dropped}), so the co-op can delete the card.");
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/org/trust/loyalty/earn",
            grocer_key,
            Some(serde_json::json!({"pseudonym": old_card, "points": 10})),
        )
        .await?;
        ensure(
            st == StatusCode::GONE && err_code(&v) == "member_erased",
            &format!("an erased member's card earned points: {st} {v}"),
        )?;
        out!("   Earning points on it: {st} member_erased.");
    }

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

#[derive(Default)]
struct CredentialReport {
    issued: usize,
    verified: usize,
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
        Some(serde_json::json!({"challenge": challenge})),
    )
    .await?;
    ensure(
        st == StatusCode::OK,
        &format!("presenting failed: {st} {p}"),
    )?;
    Ok((challenge, p["presentation"].clone()))
}

async fn credentials_story(
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
        if node.store.member(m.1).await?.is_some() {
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
                "region": "Noord-Holland", "member_since": 2016 + k, "interests": ["cycling"]}),
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

fn hex_preview(b: &[u8]) -> String {
    let shown: Vec<String> = b.iter().take(40).map(|x| format!("{x:02x}")).collect();
    format!("{}… ({} bytes)", shown.join(""), b.len())
}

pub async fn run(members: usize, keep: Option<PathBuf>) -> anyhow::Result<()> {
    ensure(members >= 3, "--members must be at least 3")?;
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
    let trust = trust_story(&node, &app, &made, erased, &offers.coops).await?;
    let creds = credentials_story(&node, &app, &dir, &made, &offers.coops[0]).await?;
    // Verify again, so the report counts the offer and trust events too.
    node.audit.checkpoint_now().await?;
    let report =
        me2b_audit::verify(node.store.as_ref(), &node.keys.verifying_key(), &|_| {}).await?;
    ensure(
        report.ok(),
        "audit log did not verify after the offers and the trust",
    )?;

    let remaining = node.store.count_members().await?;
    let mut at_rest = 0;
    for m in made.iter().filter(|m| m.1 != erased) {
        at_rest += node.store.count_records(m.1).await?;
    }
    node.shutdown().await;
    out!("\nReport");
    out!(
        "  members        {remaining} active, {} erased",
        (made.len() as u64).saturating_sub(remaining)
    );
    out!("  records        {at_rest} encrypted at rest, 0 readable without the member's key");
    out!("  organisations  4 co-ops, 0 member records reachable without consent");
    out!(
        "  offers         {} live, {} refused at publish; co-ops got noisy counts and {}",
        offers.live,
        offers.refused,
        verb(offers.leads, "consented lead", "consented leads")
    );
    out!(
        "  data trust     {} receipts under per-co-op pseudonyms ({} batches refused); {} DP answers, {} refused",
        trust.receipts,
        trust.batches_refused,
        trust.answered,
        trust.refused
    );
    out!(
        "                 {} members' receipts shared by consent; {} transcryptor requests audited",
        trust.shared,
        trust.transcryptions
    );
    out!(
        "  credentials    {} issued; {} presentations verified, unlinkable; a replay and a revoked one refused",
        creds.issued,
        creds.verified
    );
    out!(
        "  audit log      {} entries, chain and {} checkpoints OK",
        report.entries,
        report.checkpoints
    );
    out!("  took           {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
