//! Section 12: members' rights. A member opts out on paper at a till (the
//! till scans the card's QR code), another exports everything the node holds
//! about them, and the operator draws up a breach report.

use super::*;
use base64::Engine as _;

/// What the rights story showed, for the report.
pub(super) struct RightsOutcome {
    pub(super) withdrawn_on_paper: usize,
    pub(super) export_bytes: usize,
    pub(super) breach_members: usize,
}

/// The till's scanner: the QR code on the PDF card, read back with a decoder.
fn scan(pdf: &[u8]) -> anyhow::Result<String> {
    let (w, h, img) = me2b_server::card::pdf_qr_image(pdf, 2).context("no QR code on the card")?;
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        img.get(y * w + x).copied().unwrap_or(255)
    });
    let grids = prepared.detect_grids();
    let grid = grids.first().context("the till found no QR code")?;
    Ok(grid
        .decode()
        .context("the till could not read the QR code")?
        .1)
}

pub(super) async fn rights_story(
    node: &Node,
    app: &axum::Router,
    made: &Made,
    erased: MemberId,
    coops: &Coops,
    dir: &Path,
) -> anyhow::Result<RightsOutcome> {
    use me2b_consent::model::{ConsentRequestInput, GrantInput, Method as ConsentMethod};
    // Members still here (the trust's walk-through erases one more).
    let mut here = Vec::new();
    for m in made.iter().filter(|m| m.1 != erased) {
        if node.store.member(m.1).await?.is_some_and(|r| !r.erasing) {
            here.push(m);
        }
    }
    let mut left = here.into_iter();
    let (Some((pi, _, ptoken, _)), Some((ei, _, etoken, _))) = (left.next(), left.next()) else {
        out!("\n12. (the rights walk-through needs 2 members)");
        return Ok(RightsOutcome {
            withdrawn_on_paper: 0,
            export_bytes: 0,
            breach_members: 0,
        });
    };
    let since = node.clock.now();
    let food = &coops.food.0;
    let input: ConsentRequestInput = serde_json::from_value(serde_json::json!({
        "purposes": ["direct-marketing"], "categories": ["email-address"], "processing": ["use"],
        "legal_basis": "consent", "retention_days": 365,
        "notice": "Zuiderzee Food Co-op would like to e-mail you its weekly offers.",
        "notice_version": "2026-12"
    }))?;
    let req = node.consents.create_request(food, input).await?;
    let session = node.vault.authenticate(ptoken.expose()).await?;
    node.consents
        .grant(&session, req.id, GrantInput::default(), ConsentMethod::Web)
        .await?;

    out!("\n12. Member rights. Member {pi:04} prints their opt-out card (POST /v1/me/optout-code): a code");
    let (st, code) = call(
        app,
        Method::POST,
        "/v1/me/optout-code",
        ptoken.expose(),
        None,
    )
    .await?;
    ensure(st == StatusCode::CREATED, "no opt-out code")?;
    let shown = code["code"].as_str().unwrap_or_default().to_owned();
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(code["card_pdf"].as_str().unwrap_or_default())?;
    std::fs::write(dir.join("optout-card.pdf"), &pdf)?;
    std::fs::write(
        dir.join("optout-card.svg"),
        code["card_svg"].as_str().unwrap_or_default(),
    )?;
    out!("   of 95 random bits in five groups of four, the last character a Damm check digit, and as a");
    out!(
        "   QR code; the node keeps only its keyed hash. Card: {}",
        dir.join("optout-card.pdf").display()
    );
    out!("   {shown}");

    // The till: a key that can only type opt-out codes.
    let (_, till) = node
        .orgs
        .create(
            Label::try_from("Zuiderzee Food Co-op till")?,
            OrgKind::Coop,
            Roles::try_from(vec![Role::OptoutDesk])?,
        )
        .await?;
    let till = till.secret.expose().to_owned();
    let scanned = scan(&pdf)?;
    ensure(scanned == shown, "the till read another code")?;
    let before = node.consents.consents_of(session.member).await?;
    let (st, v) = call(
        app,
        Method::POST,
        "/v1/org/optout",
        &till,
        Some(serde_json::json!({"code": scanned})),
    )
    .await?;
    ensure(st == StatusCode::OK, "the till's opt-out failed")?;
    // The till's answer only queued the opt-out; the node's worker withdraws
    // (`me2b serve` runs it at once; here it is run by hand).
    node.consents.run_optout_jobs().await?;
    let after = node.consents.consents_of(session.member).await?;
    let withdrawn = before
        .iter()
        .zip(after.iter())
        .filter(|(b, a)| b.0.status != a.0.status)
        .count();
    out!("   At the till, the member hands over the card; the till scans the QR code and sends it");
    out!("   (POST /v1/org/optout, a key with only the optout-desk role) → {st} {v}");
    out!("   The answer only queued the opt-out, the same work whatever the member holds; the node's worker");
    out!(
        "   then withdrew {}, each with a signed receipt; the till learned nothing about the member.",
        verb(withdrawn, "marketing consent", "marketing consents")
    );
    let (_, offers) = call(app, Method::GET, "/v1/me/offers", ptoken.expose(), None).await?;
    out!(
        "   Their vault matches no offer until they opt back in: GET /v1/me/offers → {} offers.",
        offers.as_array().map_or(0, Vec::len)
    );
    let mut guesses = 0;
    let mut limited = None;
    for _ in 0..12 {
        let guess = me2b_crypto::OptOutCode::generate(&OsRandom).display();
        let (st, v) = call(
            app,
            Method::POST,
            "/v1/optout",
            "",
            Some(serde_json::json!({"code": guess})),
        )
        .await?;
        guesses += 1;
        if st == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(err_message(&v).to_owned());
            break;
        }
    }
    out!(
        "   Someone guessing codes at the public page (POST /v1/optout): {} answer unknown_optout_code,",
        guesses - 1
    );
    out!("   then 429: {}", limited.unwrap_or_default());

    out!("\n12b. Member {ei:04} takes their data elsewhere: GET /v1/me/export, one document signed by the node");
    let (st, export) = call(app, Method::GET, "/v1/me/export", etoken.expose(), None).await?;
    ensure(st == StatusCode::OK, "export failed")?;
    let bytes = serde_json::to_vec_pretty(&export)?;
    std::fs::write(dir.join("export.json"), &bytes)?;
    node.check_export(&bytes)?;
    let n = |sec: &str| export["vault"][sec].as_array().map_or(0, Vec::len);
    out!(
        "   ({} bytes, {}): {} profile attributes, {} interests, {} receipts, {} notes, {} credentials,",
        bytes.len(),
        dir.join("export.json").display(),
        n("profile_attributes"),
        n("interests"),
        n("receipts"),
        n("notes"),
        n("credentials")
    );
    out!(
        "   {} consents with their receipts, {} audit entries; as JSON-LD with DPV terms: ?format=jsonld.",
        export["consents"].as_array().map_or(0, Vec::len),
        export["audit"].as_array().map_or(0, Vec::len)
    );
    out!("   Another node that trusts this one ([portability] trusted_nodes) imports it (POST /v1/me/import):");
    out!(
        "   the vault comes back; consents and credentials only as history, never as live grants."
    );

    let to = node.clock.now();
    let detected = to;
    let report = me2b_audit::breach::report(
        node.store.as_ref(),
        &node.keys,
        since,
        to,
        Some("rights"),
        detected,
    )
    .await?;
    out!("\n12c. The operator suspects the rights component was reached since section 12 began:");
    out!(
        "   me2b breach report --from {} --to {} --component rights",
        since.to_rfc3339(),
        to.to_rfc3339()
    );
    out!(
        "   → {} audit entries, {} (pseudonymous ids, e.g. {}), data: {}",
        report.entries_examined,
        verb(
            report.members_affected,
            "member affected",
            "members affected"
        ),
        report.affected.first().map_or("-", String::as_str),
        report.data_exposed.join("; ")
    );
    out!("   notify the supervisory authority by {} (72 hours), with drafts for members and the authority:", report.notify_authority_by);
    for line in report.authority_notice.lines().take(3) {
        out!("     {line}");
    }
    Ok(RightsOutcome {
        withdrawn_on_paper: withdrawn,
        export_bytes: bytes.len(),
        breach_members: report.members_affected,
    })
}
