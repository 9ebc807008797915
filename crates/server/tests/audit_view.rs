//! A member's audit view carries no node-wide counter (issue 12), on SQLite
//! and PostgreSQL: a member account run by a co-op watches its own view while
//! another member refuses a consent request, or stays silent; the two views
//! must be the same. Entries are numbered per member, timed to the minute,
//! and a page's statement verifies under the node key and against the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, Srv};
use me2b_audit::member::{check_statement, verify_statement, Statement, StatementProblem};
use me2b_domain::org::Role;
use me2b_domain::{MemberId, Timestamp};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ask() -> Value {
    json!({"purposes": ["service-personalisation"], "categories": ["region"],
           "processing": ["use"], "legal_basis": "consent", "retention_days": 90,
           "recipients": [], "notice": "We use your region to send offers that fit you.", "notice_version": "2026-11"})
}

/// What the member can read in their view, without the one-way commitments
/// (`leaf`, `coverage`, and on the old view `hash`: hashes over the log that
/// a member cannot open, different in every run).
fn readable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("coverage");
    }
    if let Some(es) = v["entries"].as_array_mut() {
        for e in es {
            if let Some(o) = e.as_object_mut() {
                o.remove("leaf");
                o.remove("hash");
            }
        }
    }
    v
}

/// One run of the attack: the co-op's own member account acts (an entry
/// about it), the target refuses (or not), the account acts again and reads
/// its audit view. With the log's counters, the gap between its two entries
/// is the number of entries others caused in between: one more for a
/// refusal.
async fn attack(db: Db, refuse: bool) -> Option<Value> {
    let s = start(db).await?;
    let (_, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
    let spy = s.member("spy@example.org").await;
    let target = s.member("target@example.org").await;
    let (st, req) = s
        .req(
            Method::POST,
            "/v1/org/consent-requests",
            Some(&key),
            Some(ask()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{req}");
    let act = || async {
        let (st, v) = s
            .req(Method::GET, "/v1/vault/records", Some(&spy), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    };
    act().await;
    if refuse {
        let rid = req["id"].as_str().unwrap();
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{rid}/refuse"),
                Some(&target),
                Some(json!({})),
            )
            .await;
        assert!(st.is_success(), "{st} {v}");
    }
    act().await;
    let (st, view) = s.req(Method::GET, "/v1/me/audit", Some(&spy), None).await;
    assert_eq!(st, StatusCode::OK, "{view}");
    Some(view)
}

#[tokio::test]
async fn a_coop_member_account_cannot_tell_a_refusal_from_silence() {
    for db in Db::ALL {
        let Some(silent) = attack(db, false).await else {
            continue;
        };
        let refused = attack(db, true).await.unwrap();
        // The spy's arithmetic: the gap between the numbers of its last two
        // entries.
        let gap = |v: &Value| {
            let es = v["entries"].as_array().unwrap();
            let n = |e: &Value| e["number"].as_u64().or(e["seq"].as_u64()).unwrap();
            n(&es[es.len() - 1]) - n(&es[es.len() - 2])
        };
        assert_eq!(gap(&silent), 1, "{db:?}");
        assert_eq!(gap(&refused), 1, "{db:?}: the refusal showed in the gap");
        assert_eq!(
            readable(&silent),
            readable(&refused),
            "{db:?}: the spy's view differs when another member refused"
        );
        // Nothing in a page names the log's own counters.
        let text = silent.to_string();
        for field in ["\"seq\"", "\"hash\"", "prev_hash"] {
            assert!(!text.contains(field), "{db:?}: {field} in {text}");
        }
    }
}

async fn page(s: &Srv, token: &str, query: &str) -> Value {
    let (st, v) = s
        .req(
            Method::GET,
            &format!("/v1/me/audit{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

fn statement_of(member: MemberId, v: &Value) -> Statement {
    let entries = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["number"].as_u64().unwrap(),
                Timestamp::parse_rfc3339(e["at"].as_str().unwrap()).unwrap(),
                <[u8; 32]>::try_from(hex::decode(e["leaf"].as_str().unwrap()).unwrap()).unwrap(),
            )
        })
        .collect();
    let c = &v["coverage"];
    Statement {
        member,
        entries,
        anchor: c["anchor"]
            .as_str()
            .map(|a| <[u8; 32]>::try_from(hex::decode(a).unwrap()).unwrap()),
        signature: hex::decode(c["signature"].as_str().unwrap()).unwrap(),
    }
}

#[tokio::test]
async fn entries_are_numbered_per_member_to_the_minute_and_signed() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let v = s.sign_up("ana@example.org", "correct horse battery").await;
        let ana = v["token"].as_str().unwrap().to_owned();
        let ana_id: MemberId = v["member_id"].as_str().unwrap().parse().unwrap();
        let _bo = s.member("bo@example.org").await;
        // Entries at 20 s past the minute (the test clock), interleaved with
        // other members'.
        for i in 0..5 {
            s.clock.advance_seconds(61);
            let _ = s.member(&format!("other{i}@example.org")).await;
            let (st, _) = s
                .req(Method::GET, "/v1/vault/records", Some(&ana), None)
                .await;
            assert_eq!(st, StatusCode::OK);
        }
        let all = page(&s, &ana, "").await;
        let es = all["entries"].as_array().unwrap();
        let numbers: Vec<u64> = es.iter().map(|e| e["number"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (1..=es.len() as u64).collect::<Vec<_>>(), "{db:?}");
        for e in es {
            let at = e["at"].as_str().unwrap();
            assert!(
                at.ends_with(":00Z") || at.ends_with(":00.000Z") || at.ends_with(":00+00:00"),
                "{db:?}: {at} is finer than a minute"
            );
        }
        // Paging by the member's own numbers.
        let p = page(&s, &ana, "?after=2&limit=2").await;
        let got: Vec<u64> = p["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["number"].as_u64().unwrap())
            .collect();
        assert_eq!(got, vec![3, 4], "{db:?}");
        assert_eq!(p["next_after"], 4);
        // The member checks the node's signature over what they were shown.
        let vk = s.node.keys.verifying_key();
        let st = statement_of(ana_id, &p);
        assert!(verify_statement(&vk, &st), "{db:?}");
        let mut forged = st.clone();
        forged.entries[0].0 = 9;
        assert!(!verify_statement(&vk, &forged));
        // An auditor with the log finds each leaf, about Ana, in order,
        // covered by a signed head.
        let whole = statement_of(ana_id, &all);
        assert!(whole.anchor.is_some());
        assert_eq!(
            check_statement(s.node.store.as_ref(), &vk, &[ana_id], &whole)
                .await
                .unwrap(),
            Ok(()),
            "{db:?}"
        );
        // Someone else's subject, or a forged leaf, does not pass.
        let other: MemberId = "6f1c1e2a-0000-4000-8000-000000000009".parse().unwrap();
        assert_eq!(
            check_statement(s.node.store.as_ref(), &vk, &[other], &whole)
                .await
                .unwrap(),
            Err(StatementProblem::Mismatch(1)),
            "the entries are Ana's"
        );
        let mut missing = whole.clone();
        missing.entries[1].2 = [1; 32];
        let keys = s.node.keys.clone();
        missing.signature = keys.sign(&missing.message());
        assert_eq!(
            check_statement(s.node.store.as_ref(), &vk, &[ana_id], &missing)
                .await
                .unwrap(),
            Err(StatementProblem::Missing(2))
        );
    }
}
