//! Paper opt-outs through a durable queue (issue 15, finding 5 of adv4), on
//! SQLite and PostgreSQL. The desk that types a member's code timed its
//! answer (0 marketing consents: 10-13 ms ... 12: 183-269 ms) and so learned
//! how many marketing relationships the member has. No clock here: the test
//! checks the structure that made the timing, which work runs before the
//! answer. The answer is given after one queued job, the same bytes whatever
//! the member holds; the withdrawals run in the node's worker, survive a
//! restart (and a worker killed half-way), and happen once each. And the
//! withdrawal receipts the organisations get do not say how the member
//! withdrew (the `method` field singled paper opt-outs out of a batch).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::start;
use me2b_domain::org::Role;
use me2b_domain::Clock as _;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ask(purposes: &[&str]) -> Value {
    json!({"purposes": purposes, "categories": ["region"],
           "processing": ["use"], "legal_basis": "consent", "retention_days": 90,
           "recipients": [], "notice": "We use what you share.", "notice_version": "2026-11"})
}

fn vault() -> Vec<Value> {
    vec![json!({"kind": "profile_attribute", "name": "region", "value": "Utrecht"})]
}

/// The member's consents: id -> status.
async fn statuses(s: &common::Srv, member: &str) -> Vec<(String, String)> {
    let (_, list) = s
        .req(Method::GET, "/v1/me/consents", Some(member), None)
        .await;
    let mut out: Vec<_> = list
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|c| {
            (
                c["consent_id"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn code_of(s: &common::Srv, member: &str) -> String {
    let (st, v) = s
        .req(Method::POST, "/v1/me/optout-code", Some(member), None)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["code"].as_str().unwrap().to_owned()
}

/// Everything the desk gets back: status, content type and body bytes.
async fn typed(
    s: &common::Srv,
    path: &str,
    key: Option<&str>,
    code: &str,
) -> (u16, String, Vec<u8>) {
    let mut r = s
        .http
        .post(format!("{}{path}", s.base))
        .json(&json!({"code": code}));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.send().await.unwrap();
    let st = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (st, ct, resp.bytes().await.unwrap().to_vec())
}

/// The claims of a receipt (compact JWS), as the organisation reads them.
fn claims(jws: &str) -> Value {
    let p = jws.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .unwrap(),
    )
    .unwrap()
}

/// The receipts an organisation holds for one consent.
async fn org_receipts(s: &common::Srv, key: &str, consent: &str) -> Vec<Value> {
    // Organisations see consent changes at the release ([consent_release]).
    s.release_and_open_window().await;
    let (st, v) = s
        .req(
            Method::GET,
            &format!("/v1/org/consents/{consent}/receipts"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| claims(r.as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_typed_code_is_answered_before_any_withdrawal_whatever_the_member_holds() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
        let (_, desk) = s
            .org_with("Corner Co-op Till", vec![Role::OptoutDesk])
            .await;
        // Ana holds no marketing consent, Bo three (and one that is not
        // marketing), Cy one.
        let ana = s.member_with("ana@example.org", &vault()).await;
        let bo = s.member_with("bo@example.org", &vault()).await;
        let cy = s.member_with("cy@example.org", &vault()).await;
        let ana_service = s.granted(&key, &ana, ask(&["service-provision"])).await;
        let mut bo_marketing = Vec::new();
        for p in ["direct-marketing", "marketing", "advertising"] {
            bo_marketing.push(s.granted(&key, &bo, ask(&[p])).await);
        }
        let bo_service = s.granted(&key, &bo, ask(&["service-provision"])).await;
        let cy_marketing = s.granted(&key, &cy, ask(&["direct-marketing"])).await;
        let (ana_code, bo_code, cy_code) = (
            code_of(&s, &ana).await,
            code_of(&s, &bo).await,
            code_of(&s, &cy).await,
        );
        let before = (
            statuses(&s, &ana).await,
            statuses(&s, &bo).await,
            statuses(&s, &cy).await,
        );

        // The desk types Ana's and Bo's codes, a visitor Cy's at the public
        // page: the same bytes for every member, whatever they hold.
        let a = typed(&s, "/v1/org/optout", Some(&desk), &ana_code).await;
        let b = typed(&s, "/v1/org/optout", Some(&desk), &bo_code).await;
        assert_eq!(a.0, 200, "{db:?}: {}", String::from_utf8_lossy(&a.2));
        assert_eq!(a, b, "{db:?}: the desk's answer tells the members apart");
        let c = typed(&s, "/v1/optout", None, &cy_code).await;
        assert_eq!(c, a, "{db:?}: the public page's answer differs");

        // When the answer came, nothing was withdrawn yet: the request only
        // queued one job per code (finding 5: the withdrawals ran before
        // the answer, one per marketing consent).
        let after = (
            statuses(&s, &ana).await,
            statuses(&s, &bo).await,
            statuses(&s, &cy).await,
        );
        assert_eq!(
            after, before,
            "{db:?}: consents were withdrawn before the answer"
        );
        assert_eq!(s.node.store.optout_jobs_pending().await.unwrap(), 3);
        assert_eq!(
            s.node
                .consents
                .marketing_opted_out_since(s.node.vault.authenticate(&bo).await.unwrap().member)
                .await
                .unwrap(),
            None,
            "{db:?}: the opt-out itself is the worker's"
        );

        // Unknown codes: one fixed answer, which echoes nothing typed.
        let u1 = me2b_crypto::OptOutCode::generate(&me2b_crypto::SeededRandom::new(991));
        let u2 = me2b_crypto::OptOutCode::generate(&me2b_crypto::SeededRandom::new(992));
        let x1 = typed(&s, "/v1/org/optout", Some(&desk), &u1.display()).await;
        let x2 = typed(&s, "/v1/org/optout", Some(&desk), &u2.display()).await;
        assert_eq!(x1.0, 404);
        assert_eq!(x1, x2, "{db:?}: unknown codes are answered apart");
        assert_eq!(s.node.store.optout_jobs_pending().await.unwrap(), 3);

        // The worker: every marketing consent withdrawn, with its receipt;
        // the others untouched; the queue empty.
        assert_eq!(s.node.consents.run_optout_jobs().await.unwrap(), 3);
        assert_eq!(s.node.store.optout_jobs_pending().await.unwrap(), 0);
        let bo_now = statuses(&s, &bo).await;
        for id in &bo_marketing {
            assert!(bo_now.contains(&(id.clone(), "withdrawn".into())), "{db:?}");
        }
        assert!(bo_now.contains(&(bo_service.clone(), "given".into())));
        assert_eq!(
            statuses(&s, &ana).await,
            vec![(ana_service.clone(), "given".into())]
        );
        assert_eq!(
            statuses(&s, &cy).await,
            vec![(cy_marketing.clone(), "withdrawn".into())]
        );
        // Once: a second pass finds nothing, and each consent has exactly
        // one withdrawal receipt.
        assert_eq!(s.node.consents.run_optout_jobs().await.unwrap(), 0);
        for id in bo_marketing.iter().chain([&cy_marketing]) {
            let r = org_receipts(&s, &key, id).await;
            let events: Vec<_> = r.iter().map(|c| c["event"].clone()).collect();
            assert_eq!(events, vec![json!("given"), json!("withdrawn")], "{db:?}");
            // Finding 2: the organisation's receipt of a withdrawal does not
            // say it was on paper (nor any other way).
            assert!(r[1].get("method").is_none(), "{db:?}: {}", r[1]);
            assert_eq!(r[0]["method"], "api", "{db:?}: a grant's keeps it");
        }
        // The member still sees how they withdrew, in their own trail.
        let (_, mine) = s.req(Method::GET, "/v1/me/audit", Some(&cy), None).await;
        assert!(
            mine["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "rights.marketing.opt_out"
                    && e.to_string().contains("paper")),
            "{db:?}: {mine}"
        );
    }
}

/// A one-click opt-out (the member's own, synchronous) and a paper one make
/// withdrawal receipts the organisation cannot tell apart but by content
/// it already knows.
#[tokio::test]
async fn withdrawal_receipts_do_not_tell_paper_from_one_click() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
        let (_, desk) = s
            .org_with("Corner Co-op Till", vec![Role::OptoutDesk])
            .await;
        let ana = s.member_with("ana@example.org", &vault()).await;
        let bo = s.member_with("bo@example.org", &vault()).await;
        let ana_c = s.granted(&key, &ana, ask(&["direct-marketing"])).await;
        let bo_c = s.granted(&key, &bo, ask(&["direct-marketing"])).await;
        let (st, _) = s
            .req(Method::POST, "/v1/me/marketing-opt-out", Some(&ana), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let code = code_of(&s, &bo).await;
        assert_eq!(typed(&s, "/v1/org/optout", Some(&desk), &code).await.0, 200);
        s.node.consents.run_optout_jobs().await.unwrap();
        let strip = |mut v: Value| {
            let o = v.as_object_mut().unwrap();
            for k in ["receipt_id", "consent_id", "subject"] {
                o.remove(k);
            }
            v
        };
        let a = strip(org_receipts(&s, &key, &ana_c).await[1].clone());
        let b = strip(org_receipts(&s, &key, &bo_c).await[1].clone());
        assert_eq!(a, b, "{db:?}: the receipts tell how each withdrew");
    }
}

/// A job a node left (stopped before its worker ran, or killed while its
/// worker held the job) is done after a restart, and only once.
#[tokio::test]
async fn a_job_left_by_a_killed_node_is_done_after_restart() {
    for db in Db::ALL {
        // Sessions outlive the dead worker's lease (the clock moves 2 h).
        let Some(mut s) = common::start_ttl(db, None, 86_400).await else {
            continue;
        };
        let (_, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
        let (_, desk) = s
            .org_with("Corner Co-op Till", vec![Role::OptoutDesk])
            .await;
        let ana = s.member_with("ana@example.org", &vault()).await;
        let bo = s.member_with("bo@example.org", &vault()).await;
        let ana_c = s.granted(&key, &ana, ask(&["direct-marketing"])).await;
        let bo_a = s.granted(&key, &bo, ask(&["direct-marketing"])).await;
        let bo_b = s.granted(&key, &bo, ask(&["advertising"])).await;
        let bo_member = s.node.vault.authenticate(&bo).await.unwrap().member;

        // Bo's code: a worker takes the job, withdraws one consent, and the
        // node is killed (the job is never finished).
        let code = code_of(&s, &bo).await;
        assert_eq!(typed(&s, "/v1/org/optout", Some(&desk), &code).await.0, 200);
        let now = s.clock.now();
        let lease = me2b_domain::Timestamp::from_unix_millis(now.unix_millis() + 600_000);
        let held = s
            .node
            .store
            .claim_optout_jobs(now, lease, 16)
            .await
            .unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].1, bo_member);
        // Held: no other worker takes it.
        assert!(s
            .node
            .store
            .claim_optout_jobs(now, lease, 16)
            .await
            .unwrap()
            .is_empty());
        s.node
            .consents
            .withdraw(
                bo_member,
                bo_a.parse().unwrap(),
                me2b_consent::model::Method::Paper,
            )
            .await
            .unwrap();
        // Ana's code: queued, and the node stops before any worker ran.
        let code = code_of(&s, &ana).await;
        assert_eq!(typed(&s, "/v1/org/optout", Some(&desk), &code).await.0, 200);
        assert_eq!(s.node.store.optout_jobs_pending().await.unwrap(), 2);

        // The restart: the worker the node spawns does Ana's job at once.
        s.reopen(None).await;
        let worker = s.node.spawn_optout_worker();
        for _ in 0..200 {
            if s.node.store.optout_jobs_pending().await.unwrap() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        worker.abort();
        assert_eq!(
            s.node.store.optout_jobs_pending().await.unwrap(),
            1,
            "{db:?}"
        );
        assert_eq!(
            statuses(&s, &ana).await,
            vec![(ana_c.clone(), "withdrawn".into())]
        );
        // Bo's waits for the dead worker's lease, then is finished: the
        // consent withdrawn before is not withdrawn again.
        assert_eq!(s.node.consents.run_optout_jobs().await.unwrap(), 0);
        s.clock.advance_seconds(2 * 3600);
        assert_eq!(s.node.consents.run_optout_jobs().await.unwrap(), 1);
        assert_eq!(s.node.store.optout_jobs_pending().await.unwrap(), 0);
        let mut want = vec![
            (bo_a.clone(), "withdrawn".to_owned()),
            (bo_b.clone(), "withdrawn".to_owned()),
        ];
        want.sort();
        assert_eq!(statuses(&s, &bo).await, want, "{db:?}");
        for id in [&bo_a, &bo_b] {
            assert_eq!(org_receipts(&s, &key, id).await.len(), 2, "{db:?}");
        }
        assert!(s
            .node
            .consents
            .marketing_opted_out_since(bo_member)
            .await
            .unwrap()
            .is_some());
    }
}
