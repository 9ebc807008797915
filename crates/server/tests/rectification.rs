//! Rectification that reaches every recipient (issue 15, item 3; GDPR
//! Art. 16 and 19), over the HTTP API on SQLite and PostgreSQL, as a
//! recipient and as an adversary would try it: a member corrects a record;
//! the co-op that received its category gets a signed notice only after the
//! batch is released, fetches the new value through data access and
//! confirms (once); a co-op that received another category, or none, gets
//! nothing; the notice carries no member id, e-mail or value; another
//! organisation's notice is 404 to it. The node's clock is moved by hand:
//! no timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{opened, verify_jws, Srv};
use me2b_domain::org::Role;
use me2b_domain::Clock as _;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A co-op with the `consent` role and a consent request for `categories`;
/// (key, request id).
async fn coop(s: &Srv, name: &str, categories: &[&str]) -> (me2b_domain::OrgId, String, String) {
    let (id, key) = s.org_with(name, vec![Role::Consent]).await;
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/consent-requests",
            Some(&key),
            Some(json!({
                "purposes": ["service-personalisation"],
                "categories": categories,
                "processing": ["use"],
                "legal_basis": "consent",
                "retention_days": 30,
                "notice": "We tailor the shop to you.",
                "notice_version": "1",
                "recipients": []
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (id, key, v["id"].as_str().unwrap().to_owned())
}

async fn notices(s: &Srv, key: &str) -> Vec<Value> {
    let (st, v) = s
        .req(
            Method::GET,
            "/v1/org/rectification-notices",
            Some(key),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["notices"].as_array().unwrap().clone()
}

async fn mine(s: &Srv, member: &str) -> Vec<(String, String, String)> {
    let (st, v) = s
        .req(Method::GET, "/v1/me/rectifications", Some(member), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["rectifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recipient"].as_str().unwrap().to_owned(),
                r["category"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(recipient: &str, category: &str, status: &str) -> (String, String, String) {
    (recipient.into(), category.into(), status.into())
}

async fn put(s: &Srv, member: &str, id: &str, content: Value) {
    let (st, v) = s
        .req(
            Method::PUT,
            &format!("/v1/vault/records/{id}"),
            Some(member),
            Some(content),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

async fn create(s: &Srv, member: &str, content: Value) -> String {
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/vault/records",
            Some(member),
            Some(content),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn grant(s: &Srv, member: &str, request: &str) {
    let (st, v) = s
        .req(
            Method::POST,
            &format!("/v1/me/consent-requests/{request}/grant"),
            Some(member),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

fn region(value: &str) -> Value {
    json!({"kind": "profile_attribute", "name": "region", "value": value})
}

#[tokio::test]
async fn a_correction_reaches_each_recipient_of_its_category_after_the_release() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, None, 90 * 24 * 3600).await else {
            continue;
        };
        let key = s.published_key().await;
        let (a, a_key, a_req) = coop(&s, "Co-op A", &["region"]).await;
        let (_b, b_key, b_req) = coop(&s, "Co-op B", &["purchase"]).await;
        let (_c, c_key, _c_req) = coop(&s, "Co-op C", &["region"]).await;

        let ana = s.member("ana@example.org").await;
        let (_, me) = s.req(Method::GET, "/v1/me", Some(&ana), None).await;
        let member_id = me["member_id"].as_str().unwrap().to_owned();
        let home = create(&s, &ana, region("Utrecht")).await;
        let diary = create(&s, &ana, json!({"kind": "note", "text": "secret diary"})).await;
        let hobby = create(&s, &ana, json!({"kind": "interest", "topic": "cycling"})).await;
        grant(&s, &ana, &a_req).await;
        grant(&s, &ana, &b_req).await;
        // The co-ops see the grants at a release of consent changes, and
        // read data in the window after it.
        assert_eq!(s.release_and_open_window().await, 2, "{db:?}");
        let access =
            json!({"request_id": a_req, "purpose": "service-personalisation", "processing": "use"});
        let (st, got) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(&a_key),
                Some(access.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{got}");
        let got = opened(&a_key, &got);
        assert!(got.to_string().contains("Utrecht"), "{got}");
        let subject = got["disclosures"][0]["subject"]
            .as_str()
            .unwrap()
            .to_owned();

        // Ana corrects her region; a note and an interest nobody received
        // send nothing.
        put(&s, &ana, &home, region("Amsterdam")).await;
        put(&s, &ana, &diary, json!({"kind": "note", "text": "another"})).await;
        put(
            &s,
            &ana,
            &hobby,
            json!({"kind": "interest", "topic": "bicycles-and-accessories"}),
        )
        .await;

        // Before the release nothing shows to anyone; Ana sees it waiting.
        for k in [&a_key, &b_key, &c_key] {
            assert!(notices(&s, k).await.is_empty(), "{db:?}");
        }
        assert_eq!(
            mine(&s, &ana).await,
            vec![row("Co-op A", "region", "waiting")]
        );
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());

        // After it: A's notice, signed, in A's terms, holding nothing else.
        let got = notices(&s, &a_key).await;
        assert_eq!(got.len(), 1, "{db:?}");
        let n = &got[0];
        let (_, claims) = verify_jws(
            &key,
            n["signed"].as_str().unwrap(),
            &["me2b-rectification-notice+jws"],
        )
        .expect("a valid signature of the rectification typ");
        assert!(
            verify_jws(
                &key,
                n["signed"].as_str().unwrap(),
                &["me2b-erasure-request+jws"]
            )
            .is_none(),
            "never mistaken for an erasure request"
        );
        assert_eq!(claims["recipient"], json!(a));
        assert_eq!(claims["subject"], json!(subject));
        assert_eq!(n["subject"], json!(subject));
        assert_eq!(claims["category"], "region");
        assert_eq!(claims["notice_id"], n["id"]);
        let consent_of_a = claims["consent_id"].as_str().unwrap().to_owned();
        assert_eq!(n["consent_id"], json!(consent_of_a));
        let whole = format!("{n} {claims}");
        for secret in [
            member_id.as_str(),
            "ana@example.org",
            "Utrecht",
            "Amsterdam",
            "bicycles-and-accessories",
            "another",
        ] {
            assert!(!whole.contains(secret), "{secret} leaked: {whole}");
        }
        // B received purchases only, C nothing: neither is told.
        assert!(notices(&s, &b_key).await.is_empty(), "{db:?}");
        assert!(notices(&s, &c_key).await.is_empty(), "{db:?}");
        assert_eq!(
            mine(&s, &ana).await,
            vec![row("Co-op A", "region", "pending")]
        );
        // Nor can they confirm it, or guess one: 404 either way.
        let id = n["id"].as_str().unwrap().to_owned();
        for (k, id) in [
            (&b_key, id.as_str()),
            (&c_key, id.as_str()),
            (&a_key, "00000000000000000000000000000000"),
            (&a_key, "not-an-id"),
        ] {
            let (st, v) = s
                .req(
                    Method::POST,
                    &format!("/v1/org/rectification-notices/{id}/confirm"),
                    Some(k),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
            assert_eq!(v["error"]["code"], "rectification_notice_not_found");
        }

        // A fetches the corrected value under its consent (in the next
        // data-access window, where the correction's envelope is released),
        // then confirms once.
        s.release_and_open_window().await;
        let (st, got) = s
            .req(
                Method::POST,
                "/v1/org/data-access",
                Some(&a_key),
                Some(access),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{got}");
        let got = opened(&a_key, &got);
        assert!(got.to_string().contains("Amsterdam"), "{got}");
        let confirm = format!("/v1/org/rectification-notices/{id}/confirm");
        let (st, v) = s.req(Method::POST, &confirm, Some(&a_key), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["id"], json!(id));
        let (st, v) = s.req(Method::POST, &confirm, Some(&a_key), None).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["error"]["code"], "rectification_already_confirmed");
        assert!(notices(&s, &a_key).await.is_empty());
        assert_eq!(
            mine(&s, &ana).await,
            vec![row("Co-op A", "region", "confirmed")]
        );

        // A second correction A never confirms turns overdue for Ana.
        put(&s, &ana, &home, region("Rotterdam")).await;
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        assert_eq!(notices(&s, &a_key).await.len(), 1);
        s.clock.advance_seconds(31 * 24 * 3600);
        let got = notices(&s, &a_key).await;
        assert_eq!(got[0]["overdue"], true);
        assert_eq!(
            mine(&s, &ana).await,
            vec![
                row("Co-op A", "region", "overdue"),
                row("Co-op A", "region", "confirmed")
            ]
        );
        // Another member sees none of Ana's.
        let bo = s.member("bo@example.org").await;
        assert!(mine(&s, &bo).await.is_empty());
    }
}

/// Reads of notices decide each period boundary's release once (the
/// erasures' release gate): after the first read past a boundary, the
/// others run no release work until the next. Shown with a notice stored
/// behind the decision's back, old enough to be due: a read that still
/// decided the release would hand it out at once.
#[tokio::test]
async fn a_boundary_is_decided_once_and_later_reads_release_nothing() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, None, 90 * 24 * 3600).await else {
            continue;
        };
        let (a, a_key, _) = coop(&s, "Co-op A", &["region"]).await;
        let batch = s.node.vault.erasure_schedule().batch;
        // The first read past this boundary decides it: nothing waits.
        assert!(notices(&s, &a_key).await.is_empty(), "{db:?}");
        let boundary = batch.boundary(s.clock.now());
        let row = me2b_storage::RectificationRow {
            id: [9; 16],
            org: a,
            subject: "sub_late".into(),
            consent: me2b_domain::ConsentId::from_slice(&[7; 16]).unwrap(),
            category: "region".into(),
            member: me2b_domain::MemberId::from_slice(&[3; 16]).unwrap(),
            created_at: batch.waited_by(boundary),
            released_at: None,
            confirmed_at: None,
        };
        assert_eq!(s.node.store.rectification_add(&[row]).await.unwrap(), 1);
        assert!(
            batch.due(boundary, 1, Some(batch.waited_by(boundary))),
            "due at this boundary, had it been decided now"
        );
        for _ in 0..3 {
            assert!(notices(&s, &a_key).await.is_empty(), "{db:?}");
        }
        // The next boundary's decision releases it.
        s.clock.advance_seconds(batch.period_seconds);
        let got = notices(&s, &a_key).await;
        assert_eq!(got.len(), 1, "{db:?}");
        assert_eq!(got[0]["subject"], "sub_late");
    }
}

/// `[consent_release]` held back (attack 2b of adv5): daily releases of at
/// least three members.
const HELD: &str = "[consent_release]\nrelease_period_hours = 24\nmin_batch = 3\n\
     max_delay_hours = 72\naccess_window_minutes = 15\n";

/// A notice only concerns a consent already released to its organisation:
/// L's grant, still held back from A's consent list and data access, is not
/// told to A by a notice (its subject and consent id) on the notices'
/// schedule, while the five members released before get theirs.
#[tokio::test]
async fn a_notice_never_names_a_consent_still_held_back() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, Some(HELD), 90 * 24 * 3600).await else {
            continue;
        };
        let (_a, a_key, a_req) = coop(&s, "Co-op A", &["region"]).await;
        let mut members = Vec::new();
        for i in 0..5 {
            let m = s.member(&format!("m{i}@example.org")).await;
            let home = create(&s, &m, region("Utrecht")).await;
            grant(&s, &m, &a_req).await;
            members.push((m, home));
        }
        // The five grants are released at the next boundary.
        s.clock.advance_seconds(24 * 3600);
        let listed = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|c| c["consent_id"].as_str().unwrap().to_owned())
                .collect()
        };
        let list = format!("/v1/org/consent-requests/{a_req}/consents");
        let (st, v) = s.req(Method::GET, &list, Some(&a_key), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let shown_before = listed(&v);
        assert_eq!(shown_before.len(), 5, "{db:?} {v}");
        // L grants alone: held back (fewer than three waiting).
        let l = s.member("late@example.org").await;
        let l_home = create(&s, &l, region("Utrecht")).await;
        grant(&s, &l, &a_req).await;
        members.push((l, l_home));
        // All six correct while L's grant is still held back (A's list
        // shows five): no notice is made for L's consent. At the next
        // boundary the notices' batch is released, and L's grant with the
        // five members' corrected envelopes (env12: an envelope change
        // counts toward the consent batch).
        let (st, v) = s.req(Method::GET, &list, Some(&a_key), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(listed(&v), shown_before, "L's grant still held: {db:?} {v}");
        for (m, home) in &members {
            put(&s, m, home, region("Amsterdam")).await;
        }
        s.clock.advance_seconds(24 * 3600);
        let got = notices(&s, &a_key).await;
        for n in &got {
            let c = n["consent_id"].as_str().unwrap();
            assert!(
                shown_before.iter().any(|r| r == c),
                "a notice names a consent A had not been shown when corrected: {db:?} {n}"
            );
        }
        assert_eq!(got.len(), 5, "{db:?}");
    }
}

/// Every column of every row of `rectification_notices`, as text, with the
/// row's organisation first (what a thief with a copy of the file reads).
async fn notice_rows(s: &Srv) -> Vec<Vec<Option<String>>> {
    match s.db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&s.t.url).await.unwrap();
            let cols: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info('rectification_notices')")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let all = cols
                .iter()
                .map(|c| format!("hex(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(", ");
            let rows = sqlx::query(&format!(
                "SELECT hex(org_id), {all} FROM rectification_notices"
            ))
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows.iter()
                .map(|r| {
                    (0..=cols.len())
                        .map(|i| sqlx::Row::try_get::<Option<String>, _>(r, i).unwrap())
                        .collect()
                })
                .collect()
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&s.t.url).await.unwrap();
            let cols: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'rectification_notices'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let all = cols
                .iter()
                .map(|c| format!("CAST(\"{c}\" AS TEXT)"))
                .collect::<Vec<_>>()
                .join(", ");
            let rows = sqlx::query(&format!(
                "SELECT CAST(org_id AS TEXT), {all} FROM rectification_notices"
            ))
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows.iter()
                .map(|r| {
                    (0..=cols.len())
                        .map(|i| sqlx::Row::try_get::<Option<String>, _>(r, i).unwrap())
                        .collect()
                })
                .collect()
        }
    }
}

/// Attack 3a of adv5 (issue 13): from the file alone, group the notices by
/// every column; a value some but not all rows share, held by notices to
/// two co-ops, pairs a member's pseudonyms there. Four members, each
/// consented to A and B, correct a minute apart; no column links them. An
/// erased member's notices go with the erasure's release.
#[tokio::test]
async fn the_notices_file_pairs_no_members_pseudonyms_across_coops() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, None, 90 * 24 * 3600).await else {
            continue;
        };
        let (_a, _a_key, a_req) = coop(&s, "Co-op A", &["region"]).await;
        let (_b, _b_key, b_req) = coop(&s, "Co-op B", &["region"]).await;
        let mut members = Vec::new();
        for i in 0..4 {
            let m = s.member(&format!("t{i}@example.org")).await;
            let home = create(&s, &m, region("Utrecht")).await;
            grant(&s, &m, &a_req).await;
            grant(&s, &m, &b_req).await;
            members.push((m, home));
        }
        // A notice only concerns a consent released to its organisation.
        s.release_and_open_window().await;
        for (m, home) in &members {
            s.clock.advance_seconds(60);
            put(&s, m, home, region("Amsterdam")).await;
        }
        let rows = notice_rows(&s).await;
        assert_eq!(rows.len(), 8, "{db:?}");
        let width = rows[0].len();
        for col in 1..width {
            let mut groups: std::collections::BTreeMap<Option<String>, Vec<usize>> =
                Default::default();
            for (i, r) in rows.iter().enumerate() {
                groups.entry(r[col].clone()).or_default().push(i);
            }
            for (value, group) in groups {
                let orgs: std::collections::BTreeSet<_> =
                    group.iter().map(|&i| rows[i][0].clone()).collect();
                assert!(
                    orgs.len() < 2 || group.len() == rows.len(),
                    "{db:?}: column {col} value {value:?} links notices {group:?} across co-ops"
                );
            }
        }
    }
}
