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
        let direct = s.granted(&key, &ana, ask(&["direct-marketing"])).await;
        let ads = s
            .granted(&other, &ana, ask(&["personalised-advertising"]))
            .await;
        let service = s.granted(&key, &ana, ask(&["service-provision"])).await;
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
        let ana_direct = s.granted(&key, &ana, ask(&["direct-marketing"])).await;
        let bo_direct = s.granted(&key, &bo, ask(&["direct-marketing"])).await;
        let ana_service = s.granted(&key, &ana, ask(&["service-provision"])).await;

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
        // The answer queued the opt-out; the node's worker withdraws
        // (optout_queue.rs: nothing is withdrawn before it runs).
        s.node.consents.run_optout_jobs().await.unwrap();
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
        s.node.consents.run_optout_jobs().await.unwrap();
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

async fn record_count(s: &common::Srv, member: &str) -> usize {
    let (st, v) = s
        .req(
            Method::GET,
            "/v1/vault/records?limit=1000",
            Some(member),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["records"].as_array().unwrap().len()
}

async fn import(s: &common::Srv, member: &str, body: Vec<u8>) -> (StatusCode, Value) {
    s.raw(
        Method::POST,
        "/v1/me/import",
        Some(member),
        Some("application/json"),
        body,
    )
    .await
}

/// Signs a document as node `s` does its exports (to build validly signed bad ones).
fn resign(s: &common::Srv, mut doc: Value) -> Vec<u8> {
    doc.as_object_mut().unwrap().remove("signature");
    let mut msg = b"me2b/export/v1\0".to_vec();
    msg.extend_from_slice(&me2b_node::portability::canonical(&doc));
    let sig = s.node.keys.sign(&msg);
    doc["signature"] = json!({"alg": "EdDSA",
        "public_key": hex::encode(s.node.keys.verifying_key().to_bytes()),
        "value": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)});
    serde_json::to_vec(&doc).unwrap()
}

/// A node with a master key of its own (test nodes share one otherwise).
async fn other_node(db: Db, seed: u64, governance: Option<String>) -> Option<common::Srv> {
    common::start_custom(db, common::test_options(), move |cfg| {
        let key = cfg.data_dir.join("other-master.key");
        me2b_crypto::MasterKey::load_or_create(&key, &me2b_crypto::SeededRandom::new(seed))
            .unwrap();
        cfg.master_key_file = Some(key);
        if let Some(g) = governance {
            let path = cfg.data_dir.join("other-governance.toml");
            std::fs::write(&path, g).unwrap();
            cfg.governance = Some(path);
        }
    })
    .await
}

#[tokio::test]
async fn export_then_import_into_another_node_and_every_bad_import_is_refused_whole() {
    for db in Db::ALL {
        let Some(a) = start(db).await else { continue };
        let (_, key) = a
            .org_with(
                "Corner Co-op",
                vec![Role::Consent, Role::Offers, Role::Credentials],
            )
            .await;
        let mut records = vault();
        records.push(json!({"kind": "receipt", "merchant": "Corner Co-op", "items": [{"name": "Bread", "category": "food.bakery", "quantity": 1,
            "unit_price": {"minor": 300, "currency": "EUR"}}], "total": {"minor": 300, "currency": "EUR"}, "purchased_at": "2026-11-01T10:00:00Z"}));
        records.push(json!({"kind": "note", "text": "a private note"}));
        let ana = a.member_with("ana@example.org", &records).await;
        a.granted(&key, &ana, ask(&["direct-marketing"])).await;
        let (st, issued) = a
            .req(
                Method::POST,
                "/v1/org/credentials/codes",
                Some(&key),
                Some(json!({"tier": "founding", "region": "NL-NH", "member_since": 2020})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{issued}");
        let (st, v) = a
            .req(
                Method::POST,
                "/v1/me/credentials",
                Some(&ana),
                Some(json!({"code": issued["code"]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let offer = json!({"title": "Bike check", "text": "For cyclists.", "topics": ["cycling"],
            "rule": "\"cycling\" in interests", "valid_until": until()});
        a.req(Method::POST, "/v1/org/offers", Some(&key), Some(offer))
            .await;
        assert_eq!(offers(&a, &ana).await, 1);

        // The export holds every kind of record, the consents with their
        // receipts and the member's audit entries, signed by the node.
        let (st, export) = a.req(Method::GET, "/v1/me/export", Some(&ana), None).await;
        assert_eq!(st, StatusCode::OK, "{export}");
        assert_eq!(
            (export["format"].as_str(), export["version"].as_u64()),
            (Some("me2b-export"), Some(1))
        );
        for sec in [
            "profile_attributes",
            "interests",
            "receipts",
            "notes",
            "credentials",
            "offer_history",
        ] {
            assert!(
                !export["vault"][sec].as_array().unwrap().is_empty(),
                "no {sec}: {export}"
            );
        }
        assert_eq!(export["member"]["email"], "ana@example.org");
        assert!(!export["consents"][0]["receipts"]
            .as_array()
            .unwrap()
            .is_empty());
        assert!(export["audit"].as_array().unwrap().len() > 3);
        a.node
            .check_export(&serde_json::to_vec(&export).unwrap())
            .unwrap();
        let (st, ld) = a
            .req(Method::GET, "/v1/me/export?format=jsonld", Some(&ana), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{ld}");
        assert_eq!(ld["@context"]["dpv"], "https://w3id.org/dpv#");
        assert_eq!(
            ld["me2b:consents"][0]["dpv:hasPurpose"][0]["@id"],
            "https://w3id.org/dpv#DirectMarketing"
        );
        assert!(ld["signature"]["value"].is_string());
        let (st, _) = a
            .req(Method::GET, "/v1/me/export?format=xml", Some(&ana), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);

        // Node B trusts node A's key; node C trusts no one.
        let a_key = hex::encode(a.node.keys.verifying_key().to_bytes());
        let gov = format!("[portability]\ntrusted_nodes = [\"{a_key}\"]\n");
        let Some(b) = other_node(db, 2, Some(gov)).await else {
            continue;
        };
        assert_ne!(hex::encode(b.node.keys.verifying_key().to_bytes()), a_key);
        let bo = b.member("bo@example.org").await;
        let bytes = serde_json::to_vec(&export).unwrap();

        // Every bad import is refused with a clear code, and nothing is applied.
        let mut newer = export.clone();
        newer["version"] = json!(2);
        let mut tampered = export.clone();
        tampered["vault"]["notes"][0]["content"]["text"] = json!("changed");
        let mut unknown = export.clone();
        unknown["signature"]["public_key"] = json!(hex::encode([7u8; 32]));
        let mut bad_record = export.clone();
        bad_record["vault"]["interests"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "x", "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z",
                "revision": 1, "content": {"kind": "interest", "topic": "no-such-topic"}}));
        let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
            (
                b"{not json".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "import_malformed",
            ),
            (
                b"{\"format\": \"other\"}".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "import_malformed",
            ),
            (
                serde_json::to_vec(&newer).unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "import_newer_format",
            ),
            (
                serde_json::to_vec(&tampered).unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "import_signature_invalid",
            ),
            (
                serde_json::to_vec(&unknown).unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "import_unknown_signer",
            ),
            (
                resign(&a, bad_record),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                vec![b' '; 33 * 1024 * 1024],
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
        ];
        for (body, status, code) in cases {
            let (st, v) = import(&b, &bo, body).await;
            assert_eq!((st, err(&v)), (status, code), "{v}");
            assert_eq!(record_count(&b, &bo).await, 0, "{code}: nothing applied");
        }
        // Node C does not trust A.
        let Some(c) = other_node(db, 3, None).await else {
            continue;
        };
        let cy = c.member("cy@example.org").await;
        let (st, v) = import(&c, &cy, bytes.clone()).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "import_unknown_signer")
        );

        // The round trip: the vault comes back (credentials only as history),
        // consents as history, never as live grants.
        let (st, v) = import(&b, &bo, bytes.clone()).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let want = [
            "profile_attributes",
            "interests",
            "receipts",
            "notes",
            "offer_history",
        ]
        .iter()
        .map(|s| export["vault"][s].as_array().unwrap().len())
        .sum::<usize>();
        assert_eq!(v["records"], want);
        assert_eq!(record_count(&b, &bo).await, want);
        let (_, list) = b
            .req(Method::GET, "/v1/vault/records?limit=1000", Some(&bo), None)
            .await;
        let texts: Vec<&Value> = list["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["content"])
            .collect();
        assert!(texts.iter().any(|c| c["text"] == "a private note"));
        assert!(texts.iter().all(|c| c["kind"] != "credential"));
        let (_, consents) = b.req(Method::GET, "/v1/me/consents", Some(&bo), None).await;
        assert_eq!(consents, json!([]), "no live grant");
        let (_, creds) = b
            .req(Method::GET, "/v1/me/credentials", Some(&bo), None)
            .await;
        assert!(creds.as_array().is_none_or(|a| a.is_empty()), "{creds}");
        // Twice: refused.
        let (st, v) = import(&b, &bo, bytes).await;
        assert_eq!(
            (st, err(&v)),
            (StatusCode::CONFLICT, "import_already_applied")
        );
        // B's own export carries A's consents and credentials as history.
        let (_, again) = b.req(Method::GET, "/v1/me/export", Some(&bo), None).await;
        let h = &again["imported_history"][0];
        assert_eq!(h["origin_node"], a_key);
        assert_eq!(h["consents"], export["consents"]);
        assert_eq!(h["credentials"], export["vault"]["credentials"]);
        assert_eq!(h["audit"], export["audit"]);
    }
}
