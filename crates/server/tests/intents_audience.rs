//! Intents that only holders of a credential may see and answer (issue 17,
//! item 1), over the HTTP API on SQLite and PostgreSQL, written as the
//! adversary first: an organisation without the credential, a replayed
//! presentation, one lent by another organisation, one for another claim,
//! one from an unknown issuer, one bound to another challenge, and an
//! expired validity epoch. Then what a member may name as an audience.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start_ttl, Srv};
use me2b_credentials::{
    default_bbs, BbsPublicKey, ClaimName, ClaimText, Epoch, IssuerKeyId, IssuerKeyPair, OrgClaims,
    OrgCredential,
};
use me2b_credentials::{Nonce, VerifierId};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::{Clock, OrgId, Random};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const HOUR: i64 = 3_600_000;
const BATCH_OF_ONE: &str = "[intents]\nmin_batch = 1\n";

fn release(s: &Srv) {
    let now = s.clock.now().unix_millis();
    s.clock
        .advance_seconds((HOUR - now.rem_euclid(HOUR)) / 1000);
}

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn intent(text: &str, audience: Value) -> Value {
    json!({"topic": "bicycles-and-accessories", "text": text,
           "budget": {"min_cents": 100_000, "max_cents": 300_000, "currency": "EUR"},
           "region": "NL-UT", "deadline_days": 7, "audience": audience,
           "acknowledge_free_text_warning": true})
}

fn fair_trade(issuer: Option<OrgId>) -> Value {
    match issuer {
        Some(i) => {
            json!({"kind": "credential", "claim": "certification", "value": "fair-trade", "issuer": i.to_string()})
        }
        None => json!({"kind": "credential", "claim": "certification", "value": "fair-trade"}),
    }
}

fn proposal(s: &Srv) -> Value {
    let valid = s.clock.now().unix_millis() + 3 * 86_400_000;
    json!({"price": {"amount_cents": 249_900, "currency": "EUR"},
           "terms": "Fair-trade cargo bike.", "valid_until": valid, "asks": []})
}

async fn org(s: &Srv, name: &str, kind: OrgKind, roles: Vec<Role>) -> (OrgId, String) {
    let follows = roles.contains(&Role::Offers);
    let (o, key) = s
        .node
        .orgs
        .create(
            Label::try_from(name).unwrap(),
            kind,
            Roles::try_from(roles).unwrap(),
        )
        .await
        .unwrap();
    let key = key.secret.expose().to_owned();
    if !follows {
        return (o.id, key);
    }
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/org/intents/subscription",
            Some(&key),
            Some(json!({"topics": ["bicycles-and-accessories"], "regions": []})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    (o.id, key)
}

/// `issuer` vouches for `subject`; returns the credential's id.
async fn vouch(s: &Srv, issuer: &str, subject: OrgId, certification: &str) -> String {
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/attestations",
            Some(issuer),
            Some(json!({"organisation": subject.to_string(), "certification": certification})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(
        v.get("credential").is_none(),
        "the issuer gets no signature"
    );
    v["id"].as_str().unwrap().to_owned()
}

async fn challenge(s: &Srv, key: &str, value: &str, issuer: Option<OrgId>) -> Value {
    let mut body = json!({"claim": "certification", "value": value});
    if let Some(i) = issuer {
        body["issuer"] = json!(i.to_string());
    }
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/intent-audience/challenges",
            Some(key),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn present(s: &Srv, key: &str, id: &str, challenge: &Value) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        &format!("/v1/org/attestations/{id}/present"),
        Some(key),
        Some(json!({"challenge": challenge})),
    )
    .await
}

async fn prove(s: &Srv, key: &str, presentation: &Value) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/org/intent-audience/proofs",
        Some(key),
        Some(presentation.clone()),
    )
    .await
}

/// A fresh challenge answered with the organisation's credential, proved.
async fn prove_fresh(s: &Srv, key: &str, cred: &str, issuer: Option<OrgId>) -> Value {
    let c = challenge(s, key, "fair-trade", issuer).await;
    let (st, p) = present(s, key, cred, &c).await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let (st, v) = prove(s, key, &p).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn feed_ids(s: &Srv, key: &str) -> BTreeSet<String> {
    let (st, v) = s.req(Method::GET, "/v1/org/intents", Some(key), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// What an organisation learns of `id` by reading and answering it.
async fn probe(s: &Srv, key: &str, id: &str) -> Vec<(StatusCode, Value)> {
    let (a, b) = s
        .req(
            Method::GET,
            &format!("/v1/org/intents/{id}"),
            Some(key),
            None,
        )
        .await;
    let (c, d) = s
        .req(
            Method::POST,
            &format!("/v1/org/intents/{id}/answers"),
            Some(key),
            Some(proposal(s)),
        )
        .await;
    vec![(a, b), (c, d)]
}

#[derive(Debug)]
struct Counter(std::sync::atomic::AtomicU64);
impl Random for Counter {
    fn fill(&self, buf: &mut [u8]) {
        let v = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (v as u8)
                .wrapping_mul(37)
                .wrapping_add(i as u8)
                .wrapping_add(11);
        }
    }
}

async fn held(s: &Srv, key: &str) -> Vec<Value> {
    let (st, v) = s
        .req(Method::GET, "/v1/org/attestations", Some(key), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

/// The federation's key, as published for offline verifiers.
async fn federation_key(s: &Srv) -> BbsPublicKey {
    let (_, v) = s
        .req(Method::GET, "/.well-known/me2b/issuers", None, None)
        .await;
    BbsPublicKey::from_hex(v["issuers"][0]["public_key"].as_str().unwrap()).unwrap()
}

/// A presentation of `credential` for `challenge`, made offline by whoever
/// holds the credential's JSON.
fn offline(credential: &OrgCredential, key: &BbsPublicKey, challenge: &Value) -> Value {
    let c = me2b_credentials::Challenge::parse(challenge.to_string().as_bytes()).unwrap();
    let p = credential
        .present(
            default_bbs(),
            key,
            c.nonce(),
            c.verifier_id(),
            &c.claims_to_disclose(),
            &Counter(Default::default()),
        )
        .unwrap();
    serde_json::from_str(&p.to_json()).unwrap()
}

#[tokio::test]
async fn only_organisations_that_proved_the_claim_see_and_answer() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
            continue;
        };
        let (certifier, cert_key) = org(
            &s,
            "Fair Trade Keurmerk",
            OrgKind::Brand,
            vec![Role::Certifier],
        )
        .await;
        let (other_cert, other_key) =
            org(&s, "Eerlijk Label", OrgKind::Brand, vec![Role::Certifier]).await;
        let (fair, fair_key) = org(&s, "Fietscoop", OrgKind::Coop, vec![Role::Offers]).await;
        let (_, brand) = org(&s, "Bakfiets BV", OrgKind::Brand, vec![Role::Offers]).await;
        let (by_other, by_other_key) = org(&s, "Wielwerk", OrgKind::Coop, vec![Role::Offers]).await;
        let cred = vouch(&s, &cert_key, fair, "fair-trade").await;
        let cred_other = vouch(&s, &other_key, by_other, "fair-trade").await;

        let ana = s.member("ana@example.org").await;
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/intents",
                Some(&ana),
                Some(intent("A fair-trade cargo bike.", fair_trade(None))),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let any_issuer = v["id"].as_str().unwrap().to_owned();
        assert_eq!(v["audience"], fair_trade(None));
        let (_, v) = s
            .req(
                Method::POST,
                "/v1/me/intents",
                Some(&ana),
                Some(intent(
                    "A certified cargo bike.",
                    fair_trade(Some(certifier)),
                )),
            )
            .await;
        let by_certifier = v["id"].as_str().unwrap().to_owned();
        let (_, v) = s
            .req(
                Method::POST,
                "/v1/me/intents",
                Some(&ana),
                Some(intent("Any cargo bike.", json!({"kind": "any"}))),
            )
            .await;
        let open_to_all = v["id"].as_str().unwrap().to_owned();
        release(&s);

        // Without a proof: neither intent exists for anyone, and reading or
        // answering one answers exactly what an id that never existed does.
        let never = "0123456789abcdef0123456789abcdef";
        for key in [&brand, &fair_key, &by_other_key] {
            assert_eq!(
                feed_ids(&s, key).await,
                BTreeSet::from([open_to_all.clone()]),
                "{db:?}"
            );
            let unknown = probe(&s, key, never).await;
            assert_eq!(unknown[0].0, StatusCode::NOT_FOUND);
            assert_eq!(err(&unknown[0].1), "intent_not_found");
            for id in [&any_issuer, &by_certifier] {
                assert_eq!(probe(&s, key, id).await, unknown, "{db:?}");
            }
        }

        // The certified co-op proves its claim: both intents open to it.
        let proven = prove_fresh(&s, &fair_key, &cred, None).await;
        assert_eq!(proven["issuer"], json!(certifier.to_string()));
        assert_eq!(proven["claim"], "certification");
        assert_eq!(proven["value"], "fair-trade");
        let until = proven["valid_until"].as_i64().unwrap();
        assert_eq!(until % HOUR, 0);
        assert!(until <= s.clock.now().unix_millis() + 24 * HOUR);
        let (_, list) = s
            .req(
                Method::GET,
                "/v1/org/intent-audience/proofs",
                Some(&fair_key),
                None,
            )
            .await;
        assert_eq!(list, json!([proven]));
        assert_eq!(
            feed_ids(&s, &fair_key).await,
            BTreeSet::from([
                any_issuer.clone(),
                by_certifier.clone(),
                open_to_all.clone()
            ])
        );
        let (st, v) = s
            .req(
                Method::GET,
                &format!("/v1/org/intents/{any_issuer}"),
                Some(&fair_key),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["may_answer"], true);
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/org/intents/{by_certifier}/answers"),
                Some(&fair_key),
                Some(proposal(&s)),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");

        // Certified fair-trade by another issuer: the intent that names the
        // certifier stays unknown to it.
        prove_fresh(&s, &by_other_key, &cred_other, None).await;
        assert_eq!(
            feed_ids(&s, &by_other_key).await,
            BTreeSet::from([any_issuer.clone(), open_to_all.clone()])
        );
        assert_eq!(
            probe(&s, &by_other_key, &by_certifier).await,
            probe(&s, &by_other_key, never).await
        );
        // Asking for the certifier's credential with another's fails.
        let c = challenge(&s, &by_other_key, "fair-trade", Some(certifier)).await;
        let (st, v) = present(&s, &by_other_key, &cred_other, &c).await;
        if st == StatusCode::OK {
            let (st2, v2) = prove(&s, &by_other_key, &v).await;
            assert_eq!(
                (st2, err(&v2)),
                (StatusCode::UNPROCESSABLE_ENTITY, "claim_mismatch")
            );
        } else {
            assert_eq!(err(&v), "claim_mismatch", "{v}");
        }

        // The proof opens the feed for a session: 24 hours at most.
        s.clock.advance_seconds(25 * 3600);
        assert_eq!(
            feed_ids(&s, &fair_key).await,
            BTreeSet::from([open_to_all.clone()])
        );
        assert_eq!(
            probe(&s, &fair_key, &any_issuer).await,
            probe(&s, &fair_key, never).await
        );

        // The member reads her audience back, in the vault.
        let (_, mine) = s.req(Method::GET, "/v1/me/intents", Some(&ana), None).await;
        assert!(mine
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["audience"] == fair_trade(Some(certifier))));
        let _ = other_cert;
    }
}

#[tokio::test]
async fn forged_replayed_lent_and_expired_proofs_are_refused() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
            continue;
        };
        let (_, cert_key) = org(
            &s,
            "Fair Trade Keurmerk",
            OrgKind::Brand,
            vec![Role::Certifier],
        )
        .await;
        let (fair, fair_key) = org(&s, "Fietscoop", OrgKind::Coop, vec![Role::Offers]).await;
        let (organic, organic_key) = org(&s, "Biofiets", OrgKind::Coop, vec![Role::Offers]).await;
        let cred = vouch(&s, &cert_key, fair, "fair-trade").await;
        let organic_cred = vouch(&s, &cert_key, organic, "organic").await;
        let refused = |st: StatusCode, v: &Value, code: &str| {
            assert_eq!(
                (st, err(v)),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{db:?} {v}"
            );
        };
        let nothing_proven = |key: String| {
            let s = &s;
            async move {
                let (_, v) = s
                    .req(
                        Method::GET,
                        "/v1/org/intent-audience/proofs",
                        Some(&key),
                        None,
                    )
                    .await;
                assert_eq!(v, json!([]), "{db:?}");
            }
        };

        // Replayed: a valid presentation, posted a second time.
        let c = challenge(&s, &fair_key, "fair-trade", None).await;
        let (_, p) = present(&s, &fair_key, &cred, &c).await;
        let (st, v) = prove(&s, &fair_key, &p).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let (st, v) = prove(&s, &fair_key, &p).await;
        refused(st, &v, "unknown_challenge");

        // Lent: the certified co-op's fresh presentation, posted by another
        // organisation; and its credential, presented by another for its own
        // challenge (the subject is not the other organisation).
        let c = challenge(&s, &fair_key, "fair-trade", None).await;
        let (_, p) = present(&s, &fair_key, &cred, &c).await;
        let (st, v) = prove(&s, &organic_key, &p).await;
        refused(st, &v, "unknown_challenge");
        let lent: OrgCredential =
            serde_json::from_value(held(&s, &fair_key).await[0]["credential"].clone()).unwrap();
        let key = federation_key(&s).await;
        let theirs = challenge(&s, &organic_key, "fair-trade", None).await;
        let (st, v) = prove(&s, &organic_key, &offline(&lent, &key, &theirs)).await;
        refused(st, &v, "claim_mismatch");
        // The presentation was made by the rightful holder, so it is still
        // good for the holder's challenge.
        let (st, v) = prove(&s, &fair_key, &p).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");

        // Another claim: certified organic, asked for fair-trade.
        let c = challenge(&s, &organic_key, "fair-trade", None).await;
        let (st, v) = present(&s, &organic_key, &organic_cred, &c).await;
        if st == StatusCode::OK {
            let (st, v) = prove(&s, &organic_key, &v).await;
            refused(st, &v, "claim_mismatch");
        } else {
            refused(st, &v, "claim_mismatch");
        }
        let mine: OrgCredential =
            serde_json::from_value(held(&s, &organic_key).await[0]["credential"].clone()).unwrap();
        let c = challenge(&s, &organic_key, "fair-trade", None).await;
        let (st, v) = prove(&s, &organic_key, &offline(&mine, &key, &c)).await;
        refused(st, &v, "claim_mismatch");

        // An unknown issuer: a credential the organisation signed itself,
        // with every claim the challenge asks for.
        let rng = Counter(Default::default());
        let forger = IssuerKeyPair::generate(
            default_bbs(),
            IssuerKeyId::new("federation-bbs-0123456789abcdef").unwrap(),
            &rng,
        )
        .unwrap();
        let forged = forger
            .issue_org(
                default_bbs(),
                OrgClaims {
                    issuer: fair,
                    federation: ClaimText::default_federation(),
                    subject: organic,
                    validity_epoch: Epoch::containing(s.clock.now()).plus(8),
                    certification: Some(ClaimText::new("fair-trade").unwrap()),
                    federation_member: true,
                },
            )
            .unwrap();
        let c = challenge(&s, &organic_key, "fair-trade", None).await;
        let (st, v) = prove(&s, &organic_key, &offline(&forged, forger.public_key(), &c)).await;
        refused(st, &v, "unknown_issuer");
        // The same, under the federation's key id: the proof fails.
        let mut under_federation = forged.clone();
        under_federation.issuer_key_id = mine.issuer_key_id.clone();
        let c = challenge(&s, &organic_key, "fair-trade", None).await;
        let (st, v) = prove(
            &s,
            &organic_key,
            &offline(&under_federation, forger.public_key(), &c),
        )
        .await;
        refused(st, &v, "proof_invalid");

        // Bound to another challenge: made for one, its nonce rewritten to
        // another open challenge of the same organisation.
        let first = challenge(&s, &fair_key, "fair-trade", None).await;
        let second = challenge(&s, &fair_key, "fair-trade", None).await;
        let (_, mut p) = present(&s, &fair_key, &cred, &first).await;
        p["nonce"] = second["nonce"].clone();
        let (st, v) = prove(&s, &fair_key, &p).await;
        refused(st, &v, "proof_invalid");
        // And made for another verifier (its id) with an open challenge's
        // nonce: the proof is bound to the other verifier.
        let third = challenge(&s, &fair_key, "fair-trade", None).await;
        let c = me2b_credentials::Challenge::with_nonce(
            Nonce::from_hex(third["nonce"].as_str().unwrap()).unwrap(),
            VerifierId::new(&fair.to_string()).unwrap(),
        );
        let p = lent
            .present(
                default_bbs(),
                &key,
                c.nonce(),
                c.verifier_id(),
                &BTreeSet::from([
                    ClaimName::Certification,
                    ClaimName::Subject,
                    ClaimName::Issuer,
                    ClaimName::ValidityEpoch,
                ]),
                &rng,
            )
            .unwrap();
        let (st, v) = prove(&s, &fair_key, &serde_json::from_str(&p.to_json()).unwrap()).await;
        refused(st, &v, "wrong_challenge");

        nothing_proven(organic_key.clone()).await;

        // Expired: past the credential's validity epoch (the federation's
        // period: four to eight weeks), its presentation proves nothing.
        s.clock.advance_seconds(9 * 7 * 86_400);
        let c = challenge(&s, &fair_key, "fair-trade", None).await;
        let (st, v) = present(&s, &fair_key, &cred, &c).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, v) = prove(&s, &fair_key, &v).await;
        refused(st, &v, "expired");
        nothing_proven(fair_key.clone()).await;
    }
}

#[tokio::test]
async fn an_audience_names_only_organisations_claims_and_never_a_special_category() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
            continue;
        };
        let ana = s.member("ana@example.org").await;
        let secret = "zq-unique-value";
        for (audience, status, code) in [
            (
                json!({"kind": "credential", "claim": "certification", "value": "halal"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "sensitive_claim",
            ),
            (
                json!({"kind": "credential", "claim": "certification", "value": "kosher"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "sensitive_claim",
            ),
            (
                json!({"kind": "credential", "claim": "certification", "value": secret}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_claim",
            ),
            (
                json!({"kind": "credential", "claim": "tier", "value": "gold"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_claim",
            ),
            (
                json!({"kind": "credential", "claim": "federation_member", "value": "false"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_claim",
            ),
            (
                json!({"kind": "credential", "claim": "certification", "value": "organic",
                       "issuer": "67e55044-10b1-426f-9247-bb680e5fe0c8"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_intent",
            ),
        ] {
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/me/intents",
                    Some(&ana),
                    Some(intent("A bike.", audience.clone())),
                )
                .await;
            assert_eq!((st, err(&v)), (status, code), "{db:?} {audience}: {v}");
            assert!(!v.to_string().contains(secret));
        }
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/intents",
                Some(&ana),
                Some(intent(
                    "A bike.",
                    json!({"kind": "credential", "claim": "federation_member", "value": "true"}),
                )),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        // Nothing was published by the refusals: one intent.
        let (_, mine) = s.req(Method::GET, "/v1/me/intents", Some(&ana), None).await;
        assert_eq!(mine.as_array().unwrap().len(), 1);

        // Issuing: a certification only with the certifier role, federation
        // membership only with the credentials role, never for itself, only
        // the federation's certifications.
        let (cert, cert_key) = org(
            &s,
            "Keurmerk",
            OrgKind::Brand,
            vec![Role::Certifier, Role::Credentials],
        )
        .await;
        let (shop, shop_key) = org(&s, "Fietsshop", OrgKind::Brand, vec![Role::Offers]).await;
        for (key, body, status) in [
            (
                &shop_key,
                json!({"organisation": cert.to_string(), "certification": "organic"}),
                StatusCode::FORBIDDEN,
            ),
            (
                &cert_key,
                json!({"organisation": cert.to_string(), "certification": "organic"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                &cert_key,
                json!({"organisation": shop.to_string(), "certification": secret}),
                StatusCode::BAD_REQUEST,
            ),
            (
                &cert_key,
                json!({"organisation": shop.to_string()}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (st, v) = s
                .req(Method::POST, "/v1/org/attestations", Some(key), Some(body))
                .await;
            assert_eq!(st, status, "{v}");
            assert!(!v.to_string().contains(secret));
        }
        assert!(held(&s, &shop_key).await.is_empty());
    }
}

/// Adversary 5, 1a: a co-op holding the `credentials` role (as every co-op
/// that issues membership credentials does), even with `admin`, vouched that
/// a brand is fair-trade with no check, and the brand then saw and answered
/// an intent meant for certified organisations only. A certification is the
/// word of an organisation the operator named a certifier; a co-op still
/// vouches for federation membership.
#[tokio::test]
async fn a_coop_with_the_credentials_role_cannot_certify() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, Some(BATCH_OF_ONE), 30 * 86_400).await else {
            continue;
        };
        let (_, coop_key) = org(
            &s,
            "Coop D",
            OrgKind::Coop,
            vec![Role::Admin, Role::Credentials],
        )
        .await;
        let (brand, brand_key) = org(&s, "Brand E", OrgKind::Brand, vec![Role::Offers]).await;
        let ana = s.member("ana@example.org").await;
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/me/intents",
                Some(&ana),
                Some(intent("A fair trade bicycle.", fair_trade(None))),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let wanted = v["id"].as_str().unwrap().to_owned();
        release(&s);

        for certification in ["fair-trade", "halal"] {
            for federation_member in [false, true] {
                let (st, v) = s
                    .req(
                        Method::POST,
                        "/v1/org/attestations",
                        Some(&coop_key),
                        Some(json!({"organisation": brand.to_string(),
                                    "certification": certification,
                                    "federation_member": federation_member})),
                    )
                    .await;
                assert_eq!(
                    (st, err(&v)),
                    (StatusCode::FORBIDDEN, "role_required"),
                    "{db:?} {certification}: {v}"
                );
            }
        }
        assert!(held(&s, &brand_key).await.is_empty(), "{db:?}");
        assert!(!feed_ids(&s, &brand_key).await.contains(&wanted));
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/org/intents/{wanted}/answers"),
                Some(&brand_key),
                Some(proposal(&s)),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

        // A certifier named by the operator certifies, and only that.
        let (_, certifier_key) = org(&s, "Keurmerk F", OrgKind::Brand, vec![Role::Certifier]).await;
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/attestations",
                Some(&certifier_key),
                Some(json!({"organisation": brand.to_string(), "federation_member": true})),
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::FORBIDDEN, "role_required"));

        // Federation membership stays the co-op's word.
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/attestations",
                Some(&coop_key),
                Some(json!({"organisation": brand.to_string(), "federation_member": true})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{db:?} {v}");
        let held = held(&s, &brand_key).await;
        assert_eq!(held.len(), 1);
        let (_, mine) = s.req(Method::GET, "/v1/me/intents", Some(&ana), None).await;
        assert!(!mine.to_string().contains("Brand E"), "{db:?}");
    }
}
