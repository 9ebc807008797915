//! What the storage test binaries share.
#![allow(clippy::unwrap_used, dead_code)]

use me2b_storage::{open, Store};
use me2b_testkit::{fresh, Db, TestDb};
use std::sync::Arc;

/// The store of one engine, with the test metadata keys: none when
/// PostgreSQL is not configured (the case is skipped; `fresh` says so).
pub async fn stores(db: Db) -> Vec<(Db, Arc<dyn Store>, TestDb)> {
    let Some(t) = fresh(db).await.unwrap() else {
        return Vec::new();
    };
    let s = open(&t.url).await.unwrap();
    s.set_metadata_keys(me2b_testkit::metadata_keys());
    vec![(db, s, t)]
}
