//! The audit log's `subject` column with the file alone (issue 13 item 4,
//! issue 12), on SQLite and a real PostgreSQL.
//!
//! The attack: `SELECT subject, seq FROM audit_log`, grouped by subject. With
//! one subject per member, every member's entries fell into one group: their
//! activity timeline (first entry, count, rhythm), named by zipping the
//! groups' first entries with the members' sign-up order. Now each entry's
//! subject is its own keyed tag (the member's audit subject and the entry's
//! number under it): no two rows share one, and the node still finds a
//! member's entries, in order, by enumerating their tags.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::{MemberId, OrgId};
use me2b_storage::*;
use me2b_testkit::Db;
use std::collections::HashMap;
use std::sync::Arc;

mod common;
use common::{member, stores, ts};

me2b_testkit::per_engine! {
    #[tokio::test] {
        grouping_the_subject_column_links_no_entries,
        an_older_nodes_shared_subjects_are_rekeyed_once,
    }
}

/// What the thief reads: every row's (subject, seq), in seq order.
async fn subject_column(db: Db, url: &str) -> Vec<(Option<Vec<u8>>, i64)> {
    let sql = "SELECT subject, seq FROM audit_log ORDER BY seq";
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let v = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let v = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
    }
}

/// The thief's grouping: the sizes of the groups of rows that share a
/// subject value (more than one row), largest first.
async fn shared_groups(db: Db, url: &str) -> Vec<usize> {
    let mut groups: HashMap<Vec<u8>, usize> = HashMap::new();
    for (subject, _) in subject_column(db, url).await {
        if let Some(s) = subject {
            *groups.entry(s).or_default() += 1;
        }
    }
    let mut sizes: Vec<usize> = groups.into_values().filter(|n| *n > 1).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

/// Sets one row's subject as an older node wrote it.
async fn set_subject(db: Db, url: &str, seq: u64, subject: &[u8]) {
    let sql = "UPDATE audit_log SET subject = $1 WHERE seq = $2";
    let seq = i64::try_from(seq).unwrap();
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let r = sqlx::query(sql)
                .bind(subject)
                .bind(seq)
                .execute(&pool)
                .await;
            pool.close().await;
            assert_eq!(r.unwrap().rows_affected(), 1);
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let r = sqlx::query(sql)
                .bind(subject)
                .bind(seq)
                .execute(&pool)
                .await;
            pool.close().await;
            assert_eq!(r.unwrap().rows_affected(), 1);
        }
    }
}

async fn delete_marker(db: Db, url: &str) {
    let sql = "DELETE FROM node_meta WHERE key = $1";
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql)
                .bind(REKEYED_AUDIT_TAGS)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql)
                .bind(REKEYED_AUDIT_TAGS)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

fn org(b: u8) -> OrgId {
    OrgId::from_slice(&[b; 16]).unwrap()
}

fn access(m: MemberId) -> AuditEvent {
    AuditEvent::new(Actor::Member(m), Action::ConsentGrant)
        .subject(m)
        .object("consent")
}

fn earn(l: MemberId) -> AuditEvent {
    AuditEvent::new(Actor::Organisation(org(0xa1)), Action::TrustLoyalty)
        .subject(l)
        .object("earn 10")
}

/// Appends, round by round, one entry per member and a loyalty earn (and,
/// in round 2, three entries of member 0 in one batch); returns each name's
/// seqs in order.
async fn write_rounds(
    s: &Arc<dyn Store>,
    members: &[MemberId],
    loyalty: MemberId,
) -> HashMap<MemberId, Vec<u64>> {
    let mut want: HashMap<MemberId, Vec<u64>> = HashMap::new();
    for round in 0..4i64 {
        let mut events: Vec<(MemberId, AuditEvent)> =
            members.iter().map(|m| (*m, access(*m))).collect();
        events.push((loyalty, earn(loyalty)));
        if round == 2 {
            events.extend((0..3).map(|_| (members[0], access(members[0]))));
        }
        // Unrelated entries between, as a node writes them.
        events.push((
            MemberId::from_slice(&[0; 16]).unwrap(),
            AuditEvent::new(Actor::Operator, Action::OrgCreate).object(org(0xc3)),
        ));
        let plain: Vec<AuditEvent> = events.iter().map(|(_, e)| e.clone()).collect();
        let written = s
            .append_audit(ts(3_600_000 * (round + 1)), &plain)
            .await
            .unwrap();
        for ((name, e), w) in events.iter().zip(&written) {
            if e.subject.is_some() {
                want.entry(*name).or_default().push(w.seq);
            }
        }
    }
    want
}

fn seqs(entries: &[me2b_domain::audit::AuditEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Every member's entries (and a loyalty subject's) come back in order,
/// whole and by page, from `s`.
async fn views_are_whole(
    db: Db,
    s: &Arc<dyn Store>,
    want: &HashMap<MemberId, Vec<u64>>,
    loyalty: MemberId,
) {
    for (m, w) in want {
        let of = seqs(&s.audit_entries_of(&[*m], 0, 1000).await.unwrap());
        assert_eq!(&of, w, "{db:?}: the view of {m}");
        if *m == loyalty {
            continue;
        }
        let for_ = seqs(&s.audit_entries_for(*m, 0, 1000).await.unwrap());
        assert_eq!(&for_, w, "{db:?}: the entries of {m}");
        let page = seqs(&s.audit_entries_of(&[*m], 1, 2).await.unwrap());
        assert_eq!(page, w[1..3].to_vec(), "{db:?}: a page");
        let after = seqs(&s.audit_entries_for(*m, w[1], 1000).await.unwrap());
        assert_eq!(after, w[2..].to_vec(), "{db:?}: after an entry");
    }
    // A member's view with their loyalty subject: both, merged in log order.
    let (m, _) = want.iter().find(|(m, _)| **m != loyalty).unwrap();
    let mut both = want[m].clone();
    both.extend(&want[&loyalty]);
    both.sort_unstable();
    let got = seqs(&s.audit_entries_of(&[*m, loyalty], 0, 1000).await.unwrap());
    assert_eq!(got, both, "{db:?}: member and loyalty merged");
}

/// The attack, then the node's own reading: after restarts, a second
/// store on the same database (two nodes) and an erasure.
async fn grouping_the_subject_column_links_no_entries(db: Db) {
    for (db, s, t) in stores(db).await {
        let members: Vec<MemberId> = (1..=6u8).map(|n| member(n).id).collect();
        for n in 1..=6u8 {
            s.insert_member(&member(n)).await.unwrap();
        }
        // The loyalty view's subject: a trust pseudonym with no account.
        let loyalty = MemberId::from_slice(&[0x5c; 16]).unwrap();
        let mut want = write_rounds(&s, &members, loyalty).await;
        assert!(want.values().all(|w| w.len() >= 4));

        let groups = shared_groups(db, &t.url).await;
        assert!(
            groups.is_empty(),
            "{db:?}: the thief groups the subject column into {} groups of entries, sizes {groups:?}",
            groups.len()
        );
        // adv9 (1f): entries about no one (a sign-up's) were the only ones
        // with no subject, so they marked where each member's run began.
        let unnamed = subject_column(db, &t.url)
            .await
            .iter()
            .filter(|(subject, _)| subject.is_none())
            .count();
        assert_eq!(unnamed, 0, "{db:?}: {unnamed} entries with no subject");
        views_are_whole(db, &s, &want, loyalty).await;

        // A second node on the database (a store with no cache): it finds
        // where each member's tags end, and the first node, whose cache is
        // now behind, does not reuse a tag.
        let other = open(&t.url).await.unwrap();
        other.set_metadata_keys(me2b_testkit::metadata_keys());
        for (store, at) in [(&other, 10), (&s, 11), (&other, 12)] {
            let w = store
                .append_audit(ts(3_600_000 * at), &[access(members[0]), earn(loyalty)])
                .await
                .unwrap();
            want.get_mut(&members[0]).unwrap().push(w[0].seq);
            want.get_mut(&loyalty).unwrap().push(w[1].seq);
        }
        let groups = shared_groups(db, &t.url).await;
        assert!(groups.is_empty(), "{db:?}: two nodes: {groups:?}");
        views_are_whole(db, &s, &want, loyalty).await;
        views_are_whole(db, &other, &want, loyalty).await;

        // Erasure deletes the salt: nothing finds the member's entries.
        let gone = members[1];
        s.delete_member_rows(gone).await.unwrap();
        assert!(s.audit_entries_for(gone, 0, 100).await.unwrap().is_empty());
        assert!(other
            .audit_entries_of(&[gone], 0, 100)
            .await
            .unwrap()
            .is_empty());
        let all = s.audit_entries(0, 1000).await.unwrap();
        assert!(all.iter().all(|e| e.recompute() == e.hash), "{db:?}");
        other.close().await;
        s.close().await;
    }
}

/// An older node wrote one subject per member (and, older still, the
/// member's id): the first start re-keys those rows to one tag per entry,
/// once, and the member's view still reads them all in order.
async fn an_older_nodes_shared_subjects_are_rekeyed_once(db: Db) {
    for (db, s, t) in stores(db).await {
        let members: Vec<MemberId> = (1..=4u8).map(|n| member(n).id).collect();
        for n in 1..=4u8 {
            s.insert_member(&member(n)).await.unwrap();
        }
        let loyalty = MemberId::from_slice(&[0x5c; 16]).unwrap();
        let want = write_rounds(&s, &members, loyalty).await;
        // The columns as an older node left them: each member's entries
        // under their audit subject, member 4's first two under their id;
        // the loyalty subject's under itself.
        for (m, w) in &want {
            let name = s.audit_subjects(&[*m]).await.unwrap()[0];
            for (i, seq) in w.iter().enumerate() {
                let old = if *m == members[3] && i < 2 { *m } else { name };
                set_subject(db, &t.url, *seq, old.as_bytes()).await;
            }
        }
        delete_marker(db, &t.url).await;
        s.close().await;
        let groups = shared_groups(db, &t.url).await;
        assert!(
            groups.len() >= 5 && groups.iter().all(|n| *n >= 2),
            "{db:?}: the older node's rows group: {groups:?}"
        );

        // The next start.
        let s = open(&t.url).await.unwrap();
        s.set_metadata_keys(me2b_testkit::metadata_keys());
        let rows: usize = want.values().map(Vec::len).sum();
        assert!(
            s.rekey_member_metadata().await.unwrap() >= rows as u64,
            "{db:?}"
        );
        assert_eq!(s.rekey_member_metadata().await.unwrap(), 0, "{db:?}: once");
        let groups = shared_groups(db, &t.url).await;
        assert!(groups.is_empty(), "{db:?}: after the re-keying: {groups:?}");
        views_are_whole(db, &s, &want, loyalty).await;

        // New entries follow the re-keyed ones.
        let mut want = want;
        let w = s
            .append_audit(ts(3_600_000 * 20), &[access(members[3])])
            .await
            .unwrap();
        want.get_mut(&members[3]).unwrap().push(w[0].seq);
        assert!(shared_groups(db, &t.url).await.is_empty(), "{db:?}");
        views_are_whole(db, &s, &want, loyalty).await;
        s.close().await;
    }
}
