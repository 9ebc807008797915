//! What the storage test binaries share.
#![allow(clippy::unwrap_used, dead_code)]

use me2b_domain::{MemberId, Timestamp};
use me2b_storage::{open, NewMember, Store};
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

/// A time, in milliseconds since the epoch.
pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

/// A member row whose every byte derives from `n`.
pub fn member(n: u8) -> NewMember {
    NewMember {
        id: MemberId::from_slice(&[n; 16]).unwrap(),
        email_index: [n; 32],
        email_ct: vec![1, 2, 3, n],
        passphrase_wrap: vec![9; 73],
        recovery_wrap: vec![8; 73],
        created_at: ts(86_400_000),
    }
}
