//! The authenticated vault read's round trips (issues 13 and 14: "reads
//! unchanged"). On 2 cores a read's cost is the hand-off of each query to
//! the database's thread and back, not the query (BENCHMARKS.md), so this
//! pins the number of record queries, never a time: reads that arrive
//! together share one query, and a record still goes only to its member.
//!
//! The count comes from sqlx's own statement events (target `sqlx::query`),
//! caught by a process-wide subscriber: this file holds one test, so no
//! other test's queries are counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use me2b_testkit::Db;
use me2b_vault::VaultError;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{span, Event, Metadata, Subscriber};

/// Queries of `vault_records` by record id since the last reset.
static RECORD_READS: AtomicUsize = AtomicUsize::new(0);

/// Counts sqlx's statement events that read records by id.
struct CountRecordReads;

fn is_sqlx_query(m: &Metadata<'_>) -> bool {
    m.target() == "sqlx::query"
}

impl Subscriber for CountRecordReads {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if is_sqlx_query(m) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        is_sqlx_query(m)
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut s = Statement(String::new());
        e.record(&mut s);
        let sql = s.0.trim();
        if sql.starts_with("SELECT * FROM vault_records WHERE")
            && sql.contains("record_id")
            && !sql.contains("ORDER BY")
        {
            RECORD_READS.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// The full statement of one sqlx event.
struct Statement(String);

impl Visit for Statement {
    fn record_str(&mut self, f: &Field, v: &str) {
        if f.name() == "db.statement" {
            v.clone_into(&mut self.0);
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        if f.name() == "db.statement" && self.0.is_empty() {
            self.0 = format!("{v:?}")
                .replace("\\n", "\n")
                .trim_matches('"')
                .to_owned();
        }
    }
}

fn receipt() -> Value {
    json!({"kind": "receipt", "merchant": "Corner Co-op", "items": [{"name": "Oat milk", "category": "food.dairy-alternatives",
        "quantity": 2, "unit_price": {"minor": 189, "currency": "EUR"}}], "total": {"minor": 378, "currency": "EUR"},
        "purchased_at": "2026-11-20T17:03:00Z"})
}

/// Eight reads of a member's records, one of another member's record by
/// the first member and one by its owner, all asked at once (the test's
/// runtime has one thread: every read is asked before any is answered).
/// Before the reads were coalesced this took ten queries; now one, and the
/// record asked for by someone else is still not found for them.
#[tokio::test]
async fn reads_asked_together_share_one_query_and_stay_each_members_own() {
    let _ = tracing::subscriber::set_global_default(CountRecordReads);
    for db in Db::ALL {
        let Some(srv) = common::start(db).await else {
            continue;
        };
        let token = srv
            .member_with("reader@example.org", &vec![receipt(); 8])
            .await;
        let other = srv.member_with("other@example.org", &[receipt()]).await;
        let v = &srv.node.vault;
        let me = v.authenticate(&token).await.unwrap();
        let them = v.authenticate(&other).await.unwrap();
        let mine: Vec<_> = v
            .list_records(&me, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(mine.len(), 8, "{db:?}");
        let theirs = v.list_records(&them, 0, 100).await.unwrap()[0].id;

        RECORD_READS.store(0, Ordering::SeqCst);
        let (r0, r1, r2, r3, r4, r5, r6, r7, stolen, own) = tokio::join!(
            v.read_record(&me, mine[0]),
            v.read_record(&me, mine[1]),
            v.read_record(&me, mine[2]),
            v.read_record(&me, mine[3]),
            v.read_record(&me, mine[4]),
            v.read_record(&me, mine[5]),
            v.read_record(&me, mine[6]),
            v.read_record(&me, mine[7]),
            v.read_record(&me, theirs),
            v.read_record(&them, theirs),
        );
        let queries = RECORD_READS.load(Ordering::SeqCst);
        for (i, r) in [r0, r1, r2, r3, r4, r5, r6, r7].into_iter().enumerate() {
            assert_eq!(r.unwrap().id, mine[i], "{db:?}");
        }
        assert!(
            matches!(stolen, Err(VaultError::RecordNotFound)),
            "{db:?}: another member's record in the same batch: {stolen:?}"
        );
        assert_eq!(own.unwrap().id, theirs, "{db:?}");
        assert_eq!(
            queries, 1,
            "{db:?}: ten reads asked together took {queries} queries of vault_records"
        );

        // One read alone is still one query, and answered at once.
        RECORD_READS.store(0, Ordering::SeqCst);
        v.read_record(&me, mine[0]).await.unwrap();
        assert_eq!(RECORD_READS.load(Ordering::SeqCst), 1, "{db:?}");
    }
}
