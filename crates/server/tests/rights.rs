//! Member rights over the HTTP API (issue 15), on SQLite and PostgreSQL: the
//! one-click opt-out, the paper opt-out path end to end (the printed QR code
//! read back with a QR decoder), its throttle and audit, and the charter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::start;
use me2b_domain::org::Role;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn ask(purposes: &[&str]) -> Value {
    json!({"purposes": purposes, "categories": ["region", "interest"],
           "processing": ["use"], "legal_basis": "consent", "retention_days": 90,
           "recipients": [], "notice": "We use what you share.", "notice_version": "2026-11"})
}

fn until() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    me2b_domain::Timestamp::from_unix_millis(now + 60 * 86_400_000).to_rfc3339()
}

fn vault() -> Vec<Value> {
    vec![
        json!({"kind": "profile_attribute", "name": "region", "value": "Utrecht"}),
        json!({"kind": "interest", "topic": "cycling"}),
    ]
}

/// Asks for a consent with these purposes and has the member grant it; its id.
async fn granted(s: &common::Srv, key: &str, member: &str, purposes: &[&str]) -> String {
    let (st, req) = s
        .req(
            Method::POST,
            "/v1/org/consent-requests",
            Some(key),
            Some(ask(purposes)),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{req}");
    let rid = req["id"].as_str().unwrap();
    let (st, c) = s
        .req(
            Method::POST,
            &format!("/v1/me/consent-requests/{rid}/grant"),
            Some(member),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    c["consent_id"].as_str().unwrap().to_owned()
}

async fn consent_status(s: &common::Srv, member: &str, id: &str) -> String {
    let (_, list) = s
        .req(Method::GET, "/v1/me/consents", Some(member), None)
        .await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["consent_id"] == id)
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .unwrap()
}

async fn offers(s: &common::Srv, member: &str) -> usize {
    let (st, v) = s
        .req(Method::GET, "/v1/me/offers", Some(member), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().unwrap().len()
}

#[tokio::test]
async fn one_click_opt_out_withdraws_every_marketing_consent_and_stops_offers() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s
            .org_with("Corner Co-op", vec![Role::Consent, Role::Offers])
            .await;
        let (_, other) = s.org_with("Bike Co-op", vec![Role::Consent]).await;
        let ana = s.member_with("ana@example.org", &vault()).await;
        let direct = granted(&s, &key, &ana, &["direct-marketing"]).await;
        let ads = granted(&s, &other, &ana, &["personalised-advertising"]).await;
        let service = granted(&s, &key, &ana, &["service-provision"]).await;
        let offer = json!({"title": "10% off a bike check", "text": "For cyclists.", "topics": ["cycling"],
            "rule": "\"cycling\" in interests", "valid_until": until()});
        let (st, v) = s
            .req(Method::POST, "/v1/org/offers", Some(&key), Some(offer))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(offers(&s, &ana).await, 1);

        let (st, out) = s
            .req(Method::POST, "/v1/me/marketing-opt-out", Some(&ana), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{out}");
        let withdrawn = out["withdrawn"].as_array().unwrap();
        let mut ids: Vec<&str> = withdrawn
            .iter()
            .map(|w| w["consent_id"].as_str().unwrap())
            .collect();
        ids.sort();
        let mut want = vec![direct.as_str(), ads.as_str()];
        want.sort();
        assert_eq!(ids, want, "both marketing consents, nothing else");
        // Each withdrawal with its signed receipt.
        let node_key = s.node.keys.verifying_key();
        for w in withdrawn {
            let r =
                me2b_consent::receipt::verify(w["receipt"].as_str().unwrap(), &node_key).unwrap();
            assert_eq!(r.consent_id, w["consent_id"].as_str().unwrap());
            assert_eq!(r.consent_version, 2);
        }
        assert_eq!(consent_status(&s, &ana, &direct).await, "withdrawn");
        assert_eq!(consent_status(&s, &ana, &ads).await, "withdrawn");
        assert_eq!(consent_status(&s, &ana, &service).await, "given");
        // No offer is matched while opted out.
        assert_eq!(offers(&s, &ana).await, 0);
        let (_, t) = s
            .req(Method::GET, "/v1/me/transparency", Some(&ana), None)
            .await;
        assert!(t["marketing_opt_out_since"].is_string(), "{t}");
        // Twice is harmless: nothing more to withdraw.
        let (st, again) = s
            .req(Method::POST, "/v1/me/marketing-opt-out", Some(&ana), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(again["withdrawn"], json!([]));
        assert_eq!(again["opted_out_since"], out["opted_out_since"]);
        // Opting back in: offers again, consents stay withdrawn.
        let (st, v) = s
            .req(Method::DELETE, "/v1/me/marketing-opt-out", Some(&ana), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["opted_out_since"], Value::Null);
        assert_eq!(offers(&s, &ana).await, 1);
        assert_eq!(consent_status(&s, &ana, &direct).await, "withdrawn");
        // An organisation's key is refused on these routes.
        let (st, _) = s
            .req(Method::POST, "/v1/me/marketing-opt-out", Some(&key), None)
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
}

/// The QR code on a PDF card, read back with a QR decoder.
fn scan_pdf(pdf: &[u8]) -> String {
    let (w, h, img) = me2b_server::card::pdf_qr_image(pdf, 2).expect("a QR code on the card");
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img[y * w + x]);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

async fn new_code(s: &common::Srv, member: &str) -> Value {
    let (st, v) = s
        .req(Method::POST, "/v1/me/optout-code", Some(member), None)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

#[tokio::test]
async fn the_paper_opt_out_path_end_to_end() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
        let (desk_org, desk) = s
            .org_with("Corner Co-op Till", vec![Role::OptoutDesk])
            .await;
        let ana = s.member_with("ana@example.org", &vault()).await;
        let bo = s.member_with("bo@example.org", &vault()).await;
        let ana_direct = granted(&s, &key, &ana, &["direct-marketing"]).await;
        let bo_direct = granted(&s, &key, &bo, &["direct-marketing"]).await;
        let ana_service = granted(&s, &key, &ana, &["service-provision"]).await;

        // The card: the code printed, and its QR code decodes back to it.
        let v = new_code(&s, &ana).await;
        let code = v["code"].as_str().unwrap().to_owned();
        assert_eq!(code.len(), 24);
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(v["card_pdf"].as_str().unwrap())
            .unwrap();
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert_eq!(scan_pdf(&pdf), code);
        assert!(v["card_svg"].as_str().unwrap().contains(&code));
        // Never stored in clear.
        if db == Db::Sqlite {
            let dir = s.t.data_dir.path();
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    let data = std::fs::read(&p).unwrap();
                    for needle in [code.as_str(), &code.replace('-', "")] {
                        assert!(
                            !data.windows(needle.len()).any(|w| w == needle.as_bytes()),
                            "{} holds the code",
                            p.display()
                        );
                    }
                }
            }
        }

        // At the public page, without login: Ana's marketing consents go.
        let scanned = scan_pdf(&pdf);
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/optout",
                None,
                Some(json!({"code": scanned.to_lowercase()})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            v,
            json!({"status": "opted_out"}),
            "nothing about the member"
        );
        assert_eq!(consent_status(&s, &ana, &ana_direct).await, "withdrawn");
        assert_eq!(consent_status(&s, &ana, &ana_service).await, "given");
        assert_eq!(consent_status(&s, &bo, &bo_direct).await, "given");
        // Typed again (a replay): the same answer, nothing more happens.
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/optout",
                None,
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);

        // Mistyped (one character) and unknown codes are told apart.
        let mut typo = code.clone().into_bytes();
        typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/optout",
                None,
                Some(json!({"code": String::from_utf8(typo).unwrap()})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "optout_code_mistyped")
        );
        let unknown = me2b_crypto::OptOutCode::generate(&me2b_crypto::SeededRandom::new(999));
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/optout",
                None,
                Some(json!({"code": unknown.display()})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::NOT_FOUND, "unknown_optout_code")
        );

        // At a shop's desk: only a key with the optout-desk role.
        let bo_code = new_code(&s, &bo).await["code"].as_str().unwrap().to_owned();
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/optout",
                Some(&key),
                Some(json!({"code": bo_code})),
            )
            .await;
        assert_eq!((st, err(&v)), (StatusCode::FORBIDDEN, "role_required"));
        assert_eq!(consent_status(&s, &bo, &bo_direct).await, "given");
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/optout",
                Some(&desk),
                Some(json!({"code": bo_code})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(consent_status(&s, &bo, &bo_direct).await, "withdrawn");
        // The desk reads nothing: member routes refuse its key.
        let (st, _) = s
            .req(Method::GET, "/v1/me/consents", Some(&desk), None)
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        // Every use is in the member's audit trail, the desk named.
        let (_, audit) = s.req(Method::GET, "/v1/me/audit", Some(&bo), None).await;
        let entries = audit["entries"].as_array().unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == "rights.optout_code.use"
                    && e["actor"]["id"] == desk_org.to_string()),
            "{audit}"
        );
        assert!(entries
            .iter()
            .any(|e| e["action"] == "rights.marketing.opt_out"));

        // Replaced: the old code stops working, the new one works.
        let fresh = new_code(&s, &bo).await["code"].as_str().unwrap().to_owned();
        assert_ne!(fresh, bo_code);
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/optout",
                Some(&desk),
                Some(json!({"code": bo_code})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::NOT_FOUND, "unknown_optout_code")
        );
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/optout",
                Some(&desk),
                Some(json!({"code": fresh})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);

        // Erased: the code names no one any more.
        let (st, _) = s
            .req(
                Method::DELETE,
                "/v1/me",
                Some(&bo),
                Some(json!({"passphrase": "correct horse battery"})),
            )
            .await;
        assert!(st.is_success(), "{st}");
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/optout",
                Some(&desk),
                Some(json!({"code": fresh})),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::NOT_FOUND, "unknown_optout_code")
        );
    }
}

#[tokio::test]
async fn guessing_opt_out_codes_is_throttled_with_retry_after() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (_, desk) = s.org_with("Till", vec![Role::OptoutDesk]).await;
    let rng = me2b_crypto::SeededRandom::new(5);
    let mut limited = None;
    for i in 0..20 {
        let guess = me2b_crypto::OptOutCode::generate(&rng).display();
        let (st, v) = s
            .req_h(
                Method::POST,
                "/v1/optout",
                None,
                Some(json!({"code": guess})),
                &[],
            )
            .await;
        if st == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(err(&v), "too_many_requests");
            limited = Some(i);
            break;
        }
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
    assert_eq!(limited, Some(10), "the burst is 10 codes per address");
    // The answer carries Retry-After.
    let resp = s
        .http
        .post(format!("{}/v1/optout", s.base))
        .json(&json!({"code": "0000-0000-0000-0000-0000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    // After the wait, one more.
    s.clock.advance_seconds(6);
    let (st, _) = s
        .req(
            Method::POST,
            "/v1/optout",
            None,
            Some(json!({"code": me2b_crypto::OptOutCode::generate(&rng).display()})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A desk key has its own limit.
    for _ in 0..10 {
        let (st, _) = s
            .req(
                Method::POST,
                "/v1/org/optout",
                Some(&desk),
                Some(json!({"code": me2b_crypto::OptOutCode::generate(&rng).display()})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
    let (st, _) = s
        .req(
            Method::POST,
            "/v1/org/optout",
            Some(&desk),
            Some(json!({"code": me2b_crypto::OptOutCode::generate(&rng).display()})),
        )
        .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_charter_refuses_selling_and_special_category_inference() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s.org_with("Data Broker", vec![Role::Consent]).await;
        for purposes in [["sell-data-to-third-parties"], ["sell-insights-from-data"]] {
            let (st, v) = s
                .req(
                    Method::POST,
                    "/v1/org/consent-requests",
                    Some(&key),
                    Some(ask(&purposes)),
                )
                .await;
            assert_eq!(
                (st, err(&v)),
                (StatusCode::FORBIDDEN, "charter_forbids"),
                "{v}"
            );
        }
        let mut infer = ask(&["service-personalisation"]);
        infer["categories"] = json!(["health"]);
        infer["processing"] = json!(["infer"]);
        infer["legal_basis"] = json!("explicitly-expressed-consent");
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&key),
                Some(infer.clone()),
            )
            .await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::FORBIDDEN, "charter_forbids"),
            "{v}"
        );
        // Using (not inferring) a special category with explicit consent is not the charter's business.
        infer["processing"] = json!(["use"]);
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&key),
                Some(infer),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let ana = s.member("ana@example.org").await;
        let (_, t) = s
            .req(Method::GET, "/v1/me/transparency", Some(&ana), None)
            .await;
        assert!(
            t["charter"][0]
                .as_str()
                .unwrap()
                .contains("No organisation may ask to sell"),
            "{t}"
        );
    }
    // Only the operator relaxes it, in the governance file.
    let Some(s) = common::start_with(Db::Sqlite, Some("[charter]\nno_selling = false\n")).await
    else {
        return;
    };
    let (_, key) = s.org_with("Data Broker", vec![Role::Consent]).await;
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/consent-requests",
            Some(&key),
            Some(ask(&["sell-data-to-third-parties"])),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let ana = s.member("ana@example.org").await;
    let (_, t) = s
        .req(Method::GET, "/v1/me/transparency", Some(&ana), None)
        .await;
    assert!(t["charter"][0].as_str().unwrap().contains("allows"), "{t}");
}
