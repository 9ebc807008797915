//! The decision point and receipts: property tests over random histories,
//! receipt round trips and tampering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cloned_ref_to_slice_refs
)]

use me2b_consent::model::*;
use me2b_consent::pdp::{decide, AccessQuery, Decision, DenyReason};
use me2b_consent::receipt::{self, ReceiptClaims};
use me2b_consent::Vocabulary;
use me2b_crypto::{Keyring, MasterKey, SeededRandom};
use me2b_domain::{ConsentId, ConsentRequestId, MemberId, OrgId, Timestamp};
use proptest::prelude::*;

fn vocab() -> Vocabulary {
    Vocabulary::shipped().unwrap()
}

fn request(
    v: &Vocabulary,
    org: OrgId,
    basis: &str,
    categories: &[&str],
) -> Result<ConsentRequest, me2b_consent::ConsentError> {
    ConsentRequestInput {
        purposes: vec![
            "service-personalisation".into(),
            "direct-marketing".into(),
            "targeted-advertising".into(),
        ],
        categories: categories.iter().map(|c| c.to_string()).collect(),
        processing: vec!["use".into(), "analyse".into()],
        legal_basis: basis.into(),
        retention_days: 30,
        recipients: vec![],
        notice: "We use what you choose to share to send you offers that fit.".into(),
        notice_version: "2026-11".into(),
    }
    .validate(
        v,
        ConsentRequestId::generate(&SeededRandom::new(1)),
        org,
        Timestamp::from_unix_millis(0),
    )
}

fn ids() -> (OrgId, MemberId) {
    let r = SeededRandom::new(7);
    (OrgId::generate(&r), MemberId::generate(&r))
}

fn q<'a>(
    org: OrgId,
    member: MemberId,
    purpose: &'a str,
    category: &'a str,
    at: i64,
) -> AccessQuery<'a> {
    AccessQuery {
        org,
        member,
        purpose,
        category,
        processing: "use",
        at: Timestamp::from_unix_millis(at),
        cross_sell_from: None,
    }
}

const DAY: i64 = 86_400_000;

#[test]
fn requests_are_checked_against_the_vocabulary() {
    let v = vocab();
    let (org, _) = ids();
    assert!(request(&v, org, "consent", &["interest", "purchase"]).is_ok());
    assert!(matches!(
        request(&v, org, "consent", &["health"]),
        Err(me2b_consent::ConsentError::SpecialCategoryNeedsExplicitConsent { .. })
    ));
    assert!(request(&v, org, "explicitly-expressed-consent", &["health"]).is_ok());
    assert!(matches!(
        request(&v, org, "consent", &["shoe-size"]),
        Err(me2b_consent::ConsentError::UnknownTerm { .. })
    ));
    assert!(
        request(&v, org, "contract", &["interest"]).is_err(),
        "consent requests need a consent legal basis"
    );
}

#[test]
fn deny_by_default_and_specific_reasons() {
    let v = vocab();
    let (org, m) = ids();
    let other_org = OrgId::generate(&SeededRandom::new(99));
    let req = request(&v, org, "consent", &["preference", "purchase"]).unwrap();
    assert_eq!(
        decide(&v, &[], None, &q(org, m, "direct-marketing", "interest", 5)),
        Decision::Deny {
            reason: DenyReason::NoConsent
        }
    );
    let grant = GrantInput {
        purposes: Some(vec!["direct-marketing".into()]),
        categories: Some(vec!["preference".into()]),
    };
    let r = ConsentRecord::grant(
        ConsentId::generate(&SeededRandom::new(2)),
        &req,
        m,
        grant,
        Method::Api,
        Timestamp::from_unix_millis(10),
    )
    .unwrap();
    let recs = vec![r.clone()];
    // A child category of a granted one is covered.
    assert!(decide(
        &v,
        &recs,
        None,
        &q(org, m, "direct-marketing", "interest", 11)
    )
    .is_permit());
    assert_eq!(
        decide(
            &v,
            &recs,
            None,
            &q(org, m, "direct-marketing", "purchase", 11)
        ),
        Decision::Deny {
            reason: DenyReason::CategoryNotConsented
        }
    );
    assert_eq!(
        decide(
            &v,
            &recs,
            None,
            &q(org, m, "service-personalisation", "interest", 11)
        ),
        Decision::Deny {
            reason: DenyReason::PurposeNotConsented
        }
    );
    assert_eq!(
        decide(
            &v,
            &recs,
            None,
            &q(org, m, "direct-marketing", "interest", 9)
        ),
        Decision::Deny {
            reason: DenyReason::NoConsent
        }
    );
    assert_eq!(
        decide(
            &v,
            &recs,
            None,
            &q(org, m, "direct-marketing", "interest", 10 + 30 * DAY)
        ),
        Decision::Deny {
            reason: DenyReason::Expired
        }
    );
    assert_eq!(
        decide(
            &v,
            &recs,
            None,
            &q(other_org, m, "direct-marketing", "interest", 11)
        ),
        Decision::Deny {
            reason: DenyReason::NoConsent
        }
    );
    assert_eq!(
        decide(&v, &recs, None, &q(org, m, "no-such", "interest", 11)),
        Decision::Deny {
            reason: DenyReason::UnknownTerm
        }
    );
    let mut p = q(org, m, "direct-marketing", "interest", 11);
    p.processing = "share";
    assert_eq!(
        decide(&v, &recs, None, &p),
        Decision::Deny {
            reason: DenyReason::ProcessingNotConsented
        }
    );
    let mut w = r.clone();
    assert!(w.withdraw(Method::Api, Timestamp::from_unix_millis(20)));
    assert!(!w
        .clone()
        .withdraw(Method::Api, Timestamp::from_unix_millis(21)));
    assert!(decide(
        &v,
        &[w.clone()],
        None,
        &q(org, m, "direct-marketing", "interest", 19)
    )
    .is_permit());
    assert_eq!(
        decide(
            &v,
            &[w],
            None,
            &q(org, m, "direct-marketing", "interest", 20)
        ),
        Decision::Deny {
            reason: DenyReason::Withdrawn
        }
    );
}

#[test]
fn gpc_opts_out_of_advertising_given_before_it() {
    let v = vocab();
    let (org, m) = ids();
    let req = request(&v, org, "consent", &["interest"]).unwrap();
    let r = ConsentRecord::grant(
        ConsentId::generate(&SeededRandom::new(2)),
        &req,
        m,
        GrantInput::default(),
        Method::Web,
        Timestamp::from_unix_millis(10),
    )
    .unwrap();
    let gpc = Some(Timestamp::from_unix_millis(15));
    assert_eq!(
        decide(
            &v,
            &[r.clone()],
            gpc,
            &q(org, m, "targeted-advertising", "interest", 20)
        ),
        Decision::Deny {
            reason: DenyReason::GpcOptOut
        }
    );
    assert!(
        decide(
            &v,
            &[r.clone()],
            gpc,
            &q(org, m, "direct-marketing", "interest", 20)
        )
        .is_permit(),
        "first-party marketing is not covered by GPC"
    );
    let later = ConsentRecord::grant(
        ConsentId::generate(&SeededRandom::new(3)),
        &req,
        m,
        GrantInput::default(),
        Method::Web,
        Timestamp::from_unix_millis(16),
    )
    .unwrap();
    assert!(
        decide(
            &v,
            &[r, later],
            gpc,
            &q(org, m, "targeted-advertising", "interest", 20)
        )
        .is_permit(),
        "a later consent is the member's later word"
    );
}

/// A cross-selling consent (receipts from `from` to `org`) as a record: the
/// terms a broad ordinary consent would also carry.
fn cross_sell_record(
    v: &Vocabulary,
    org: OrgId,
    from: Option<OrgId>,
    m: MemberId,
    at: i64,
) -> ConsentRecord {
    let mut req = ConsentRequestInput {
        purposes: vec!["marketing".into()],
        categories: vec!["purchases-and-spending-habit".into()],
        processing: vec!["share".into()],
        legal_basis: "consent".into(),
        retention_days: 30,
        recipients: vec![],
        notice: "A may share your receipts with B.".into(),
        notice_version: "cross-sell/1".into(),
    }
    .validate(
        v,
        ConsentRequestId::generate(&SeededRandom::new(at as u64)),
        org,
        Timestamp::from_unix_millis(0),
    )
    .unwrap();
    req.cross_sell_from = from;
    ConsentRecord::grant(
        ConsentId::generate(&SeededRandom::new(at as u64 + 1)),
        &req,
        m,
        GrantInput::default(),
        Method::Api,
        Timestamp::from_unix_millis(at),
    )
    .unwrap()
}

#[test]
fn a_cross_selling_consent_permits_its_own_delivery_and_nothing_else() {
    let v = vocab();
    let (b, m) = ids();
    let r = SeededRandom::new(41);
    let (a, c) = (OrgId::generate(&r), OrgId::generate(&r));
    let delivery = |from: OrgId, at: i64| AccessQuery {
        processing: "share",
        cross_sell_from: Some(from),
        ..q(b, m, "marketing", "purchases-and-spending-habit", at)
    };
    let ordinary = AccessQuery {
        processing: "share",
        ..q(b, m, "marketing", "purchases-and-spending-habit", 20)
    };
    let xsell = cross_sell_record(&v, b, Some(a), m, 10);
    assert!(decide(&v, &[xsell.clone()], None, &delivery(a, 20)).is_permit());
    // B cannot use it as an ordinary consent to the same terms...
    assert_eq!(
        decide(&v, &[xsell.clone()], None, &ordinary),
        Decision::Deny {
            reason: DenyReason::NoConsent
        }
    );
    // ...nor to receive another co-op's receipts.
    assert!(!decide(&v, &[xsell.clone()], None, &delivery(c, 20)).is_permit());
    // And an ordinary consent to the same terms delivers nothing across co-ops.
    let broad = cross_sell_record(&v, b, None, m, 10);
    assert!(decide(&v, &[broad.clone()], None, &ordinary).is_permit());
    assert!(!decide(&v, &[broad], None, &delivery(a, 20)).is_permit());
    // GPC covers sharing: a delivery under a consent given before the signal
    // is refused; one given after it is the member's later word.
    let gpc = Some(Timestamp::from_unix_millis(15));
    assert_eq!(
        decide(&v, &[xsell.clone()], gpc, &delivery(a, 20)),
        Decision::Deny {
            reason: DenyReason::GpcOptOut
        }
    );
    let later = cross_sell_record(&v, b, Some(a), m, 16);
    assert!(decide(&v, &[xsell.clone(), later], gpc, &delivery(a, 20)).is_permit());
    // Withdrawn: nothing from then on.
    let mut w = xsell;
    assert!(w.withdraw(Method::Api, Timestamp::from_unix_millis(18)));
    assert_eq!(
        decide(&v, &[w], None, &delivery(a, 20)),
        Decision::Deny {
            reason: DenyReason::Withdrawn
        }
    );
}

#[test]
fn special_categories_need_explicit_consent_even_via_a_parent() {
    let v = vocab();
    let (org, m) = ids();
    let req = request(&v, org, "explicitly-expressed-consent", &["medical-health"]).unwrap();
    let r = ConsentRecord::grant(
        ConsentId::generate(&SeededRandom::new(2)),
        &req,
        m,
        GrantInput::default(),
        Method::Web,
        Timestamp::from_unix_millis(10),
    )
    .unwrap();
    assert!(decide(
        &v,
        &[r.clone()],
        None,
        &q(org, m, "direct-marketing", "mental-health", 11)
    )
    .is_permit());
    let mut weak = r;
    weak.legal_basis = "consent".into();
    assert_eq!(
        decide(
            &v,
            &[weak],
            None,
            &q(org, m, "direct-marketing", "mental-health", 11)
        ),
        Decision::Deny {
            reason: DenyReason::SpecialCategoryNeedsExplicitConsent
        }
    );
}

#[derive(Clone, Debug)]
enum Step {
    Grant { purpose_all: bool },
    Refuse,
    Withdraw,
    Wait { days: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(|purpose_all| Step::Grant { purpose_all }),
        Just(Step::Refuse),
        Just(Step::Withdraw),
        (0i64..40).prop_map(|days| Step::Wait { days }),
    ]
}

proptest! {
    /// Over any sequence of grants, refusals, withdrawals and waits (expiry), the
    /// decision always equals the latest state: permitted exactly when some grant
    /// covering the purpose is in force.
    #[test]
    fn the_decision_always_equals_the_latest_state(steps in proptest::collection::vec(step(), 1..30)) {
        let v = vocab();
        let (org, m) = ids();
        let req = request(&v, org, "consent", &["interest"]).unwrap();
        let rng = SeededRandom::new(5);
        let mut now = 1_000i64;
        let mut records: Vec<ConsentRecord> = Vec::new();
        for s in steps {
            now += 1;
            let t = Timestamp::from_unix_millis(now);
            match s {
                Step::Grant { purpose_all } => {
                    let g = if purpose_all { GrantInput::default() } else { GrantInput { purposes: Some(vec!["service-personalisation".into()]), categories: None } };
                    records.push(ConsentRecord::grant(ConsentId::generate(&rng), &req, m, g, Method::Api, t).unwrap());
                }
                Step::Refuse => records.push(ConsentRecord::refusal(ConsentId::generate(&rng), &req, m, Method::Api, t)),
                Step::Withdraw => {
                    for r in records.iter_mut() { r.withdraw(Method::Api, t); }
                }
                Step::Wait { days } => now += days * DAY,
            }
            let at = Timestamp::from_unix_millis(now);
            // The model: a grant that covers direct-marketing, not withdrawn, not expired.
            let expected = records.iter().any(|r| r.status == ConsentStatus::Given
                && r.purposes.iter().any(|p| p == "direct-marketing")
                && at < r.expires_at);
            let d = decide(&v, &records, None, &q(org, m, "direct-marketing", "interest", now));
            prop_assert_eq!(d.is_permit(), expected, "{:?}", d);
            if let Decision::Permit { consent } = d {
                let r = records.iter().find(|r| r.id == consent).unwrap();
                prop_assert!(r.in_force(at));
            }
        }
    }
}

fn keys(seed: u64) -> Keyring {
    Keyring::derive(&MasterKey::generate(&SeededRandom::new(seed)))
}

fn a_receipt(k: &Keyring) -> (String, ReceiptClaims) {
    let v = vocab();
    let (org, m) = ids();
    let req = request(&v, org, "consent", &["interest", "purchase"]).unwrap();
    let r = ConsentRecord::grant(
        ConsentId::generate(&SeededRandom::new(2)),
        &req,
        m,
        GrantInput::default(),
        Method::Web,
        Timestamp::from_unix_millis(10),
    )
    .unwrap();
    let claims = ReceiptClaims::for_record(
        &v,
        &r,
        "Corner Co-op",
        k.subject_pseudonym(&org, &m),
        "me2b node",
        Timestamp::from_unix_millis(11),
    );
    (receipt::sign(k, &claims), claims)
}

#[test]
fn receipts_round_trip_and_name_dpv_terms() {
    let k = keys(1);
    let (jws, claims) = a_receipt(&k);
    let back = receipt::verify(&jws, &k.verifying_key()).unwrap();
    assert_eq!(back, claims);
    assert!(back
        .purposes
        .iter()
        .all(|p| p.iri.starts_with("https://w3id.org/dpv")));
    assert!(back.subject.starts_with("sub_"));
}

#[test]
fn altered_or_forged_receipts_are_refused() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let k = keys(1);
    let (jws, claims) = a_receipt(&k);
    let parts: Vec<&str> = jws.split('.').collect();
    // Altered claims: widen the consent.
    let mut widened = claims.clone();
    widened.purposes.push(receipt::CitedTerm {
        id: "sell-data-to-third-parties".into(),
        iri: "https://w3id.org/dpv#SellDataToThirdParties".into(),
    });
    let p2 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).unwrap());
    let altered = format!("{}.{}.{}", parts[0], p2, parts[2]);
    assert!(matches!(
        receipt::verify(&altered, &k.verifying_key()),
        Err(me2b_consent::ConsentError::BadReceiptSignature)
    ));
    // Signed by another key.
    let other = keys(2);
    let (forged, _) = a_receipt(&other);
    assert!(receipt::verify(&forged, &k.verifying_key()).is_err());
    // Every single-character change anywhere is refused.
    for i in (0..jws.len()).step_by(7) {
        let mut b = jws.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let s = String::from_utf8(b).unwrap();
        if s != jws {
            assert!(
                receipt::verify(&s, &k.verifying_key()).is_err(),
                "change at {i} accepted"
            );
        }
    }
    // Garbage, truncation, oversize.
    for bad in ["", "a.b", "a.b.c.d", &jws[..jws.len() / 2]] {
        assert!(receipt::verify(bad, &k.verifying_key()).is_err());
    }
    assert!(receipt::verify(&"a".repeat(100_000), &k.verifying_key()).is_err());
}

proptest! {
    #[test]
    fn the_receipt_parser_never_panics(s in "\\PC{0,300}") {
        let k = keys(1);
        let _ = receipt::verify(&s, &k.verifying_key());
    }
}
