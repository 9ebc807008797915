//! Section 5b: a co-op asks for consent; members grant, refuse, withdraw.

use super::*;

pub(super) async fn consent_story(
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
