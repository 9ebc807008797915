//! Section 5b: a co-op asks for consent; members grant, refuse, withdraw.

use super::*;
use std::collections::BTreeMap;

pub(super) async fn consent_story(
    node: &Node,
    coop: &me2b_storage::OrgRow,
    coop_key: &str,
    made: &Made,
    clock: &setup::DemoClock,
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
    for (i, member, token, _) in made.iter().skip(2) {
        // Each answer is given in the member's session: what a grant allows
        // is sealed for the co-op there and then.
        let session = node.vault.authenticate(token.expose()).await?;
        match i % 4 {
            0 => {
                let r = node
                    .consents
                    .grant(&session, req.id, GrantInput::default(), Method::Web)
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
                node.consents
                    .grant(&session, req.id, g, Method::Web)
                    .await?;
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
    // What the co-op sees of consents changes only at a release, with every
    // other change of the period: polling its list cannot time an answer.
    let listed = node.consents.consents_for(coop.id, req.id).await?.len();
    let (released, hours) = clock.skip_to_consent_release(node).await?;
    let listed_after = node.consents.consents_for(coop.id, req.id).await?.len();
    out!("   The co-op's list shows {listed} of these answers until the next release of consent changes");
    out!("   ({hours} h later, the demo's clock jumps): then {released} consent changes show together ({listed_after} listed).");
    let key = node.orgs.authenticate(coop_key).await?.key;
    let pers = node
        .consents
        .access(coop.id, key, req.id, "service-personalisation", "use")
        .await?;
    let mkt = node
        .consents
        .access(coop.id, key, req.id, "direct-marketing", "use")
        .await?;
    // The co-op opens the envelopes with its own API key; the node cannot.
    let open = |ds: &[me2b_consent::service::Disclosure]| {
        ds.iter()
            .map(|d| me2b_consent::envelope::open_disclosure(coop_key, d))
            .collect::<Result<Vec<_>, _>>()
    };
    let (pers_data, mkt_data) = (open(&pers)?, open(&mkt)?);
    let with_purchases = |ds: &[BTreeMap<String, Vec<serde_json::Value>>]| {
        ds.iter().filter(|d| d.contains_key("purchase")).count()
    };
    out!("   The co-op's data-access API (POST /v1/org/data-access) returns, per purpose:");
    out!(
        "     service personalisation: {} members ({} with purchases)",
        pers.len(),
        with_purchases(&pers_data)
    );
    out!(
        "     direct marketing:        {} members ({} with purchases)",
        mkt.len(),
        with_purchases(&mkt_data)
    );
    out!("   Members who refused, did not answer or withdrew are absent: the co-op cannot even count them.");
    if let (Some(d), Some(data)) = (mkt.first(), mkt_data.first()) {
        let cats: Vec<&str> = data.keys().map(String::as_str).collect();
        let sealed = d.envelopes.values().next().map_or(0, String::len);
        out!(
            "   One disclosure: member {} (a pseudonym only this co-op sees) → {}",
            d.subject,
            cats.join(", ")
        );
        out!("   Each category comes as an envelope ({sealed} base64 characters) sealed in the member's session");
        out!("   to the co-op's API key: the co-op opens it with its key; the node, holding only the key's");
        out!("   SHA-256, cannot. The decision point still decides at every read, and audits it first.");
    }
    ensure(
        pers.len() == all + part && mkt.len() == all,
        "disclosures do not match the decisions",
    )?;
    ensure(
        with_purchases(&pers_data) == all,
        "a partial grant disclosed purchases",
    )?;
    ensure(
        pers_data.iter().chain(&mkt_data).all(|d| {
            d.keys()
                .all(|c| ["region", "interest", "purchase"].contains(&c.as_str()))
        }),
        "an envelope held a category the co-op did not ask for",
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
