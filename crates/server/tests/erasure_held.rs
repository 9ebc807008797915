//! A held card (issue 12, attack 5e): after an erasure, until its batch is
//! released, a co-op's receipts on the erased member's card must cost what
//! they cost on a live card, or timing the answers names the card. A test
//! never times anything: it checks the work instead, as rows written to every
//! trust table, which must be the same for a held card as for a live one; and
//! that nothing of the held card's receipts is left after the release.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Srv;
use me2b_domain::org::Role;
use me2b_domain::OrgId;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Rows of every trust table, and the members counted in the bins' totals.
macro_rules! trust_rows {
    ($pool:expr, $tables:literal) => {{
        let pool = $pool;
        let tables: Vec<String> = sqlx::query_scalar($tables).fetch_all(&pool).await.unwrap();
        assert!(tables.len() > 5, "{tables:?}");
        let mut out = BTreeMap::new();
        for t in tables {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            out.insert(t, n);
        }
        let members: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(members), 0) AS BIGINT) FROM trust_bin_totals",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        out.insert("trust_bin_totals.members".to_owned(), members);
        pool.close().await;
        out
    }};
}

async fn rows(s: &Srv) -> BTreeMap<String, i64> {
    match s.db {
        Db::Sqlite => trust_rows!(
            sqlx::SqlitePool::connect(&s.t.url).await.unwrap(),
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'trust%'"
        ),
        Db::Postgres => trust_rows!(
            sqlx::PgPool::connect(&s.t.url).await.unwrap(),
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name LIKE 'trust%'"
        ),
    }
}

fn delta(from: &BTreeMap<String, i64>, to: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    to.iter()
        .map(|(t, n)| (t.clone(), n - from.get(t).copied().unwrap_or(0)))
        .filter(|(_, d)| *d != 0)
        .collect()
}

async fn submit(s: &Srv, org: OrgId, key: &str, card: &str) -> Value {
    let receipt = json!({"card": card, "day": "2026-12-01", "area": "NL-NH",
                         "items": [{"category": "organic", "amount_cents": 100}]});
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/trust/receipts",
            Some(key),
            Some(s.sealed(org, json!({ "receipts": [receipt] })).await),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    json!({"stored": v["stored"], "erased": v["erased"]})
}

#[tokio::test]
async fn a_receipt_on_a_held_card_does_the_work_of_a_live_one_and_goes_at_the_release() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, None, 90 * 24 * 3600).await else {
            continue;
        };
        let (org, key) = s.org_with("Co-op B", vec![Role::Insights]).await;
        let first = s.member("first@example.org").await;
        let live = s.member("live@example.org").await;
        let gone = s.member("gone@example.org").await;
        let first_card = s.pseudonym_at(&first, org).await;
        let live_card = s.pseudonym_at(&live, org).await;
        let gone_card = s.pseudonym_at(&gone, org).await;
        let (st, v) = s
            .req(
                Method::DELETE,
                "/v1/me",
                Some(&gone),
                Some(json!({ "passphrase": "correct horse battery" })),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");

        // The bins' totals exist from another member's receipt; then the
        // first receipt on each card: the same answer, the same rows.
        submit(&s, org, &key, &first_card).await;
        let before = rows(&s).await;
        let answer = submit(&s, org, &key, &live_card).await;
        assert_eq!(answer, json!({"stored": 1, "erased": []}));
        let after_live = rows(&s).await;
        assert_eq!(submit(&s, org, &key, &gone_card).await, answer, "{db:?}");
        let after_held = rows(&s).await;
        let live_work = delta(&before, &after_live);
        assert!(live_work.contains_key("trust_receipts"), "{live_work:?}");
        assert_eq!(
            delta(&after_live, &after_held),
            live_work,
            "{db:?}: a receipt on the held card wrote other rows than on a live card"
        );

        // At the release, everything the held card's receipt wrote goes:
        // what is left is what the live card's wrote, and the card is named
        // as erased from then on.
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        assert_eq!(
            submit(&s, org, &key, &gone_card).await,
            json!({"stored": 0, "erased": [0]}),
            "{db:?}"
        );
        let released = rows(&s).await;
        for t in [
            "trust_receipts",
            "trust_events",
            "trust_bins",
            "trust_members",
            "trust_bin_totals.members",
        ] {
            assert_eq!(released[t], after_live[t], "{db:?}: {t} after the release");
        }
    }
}
