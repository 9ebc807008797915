//! The audit writer and verifier against SQLite and PostgreSQL, including
//! tampering done directly in the database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_audit::{verify, verify_with, AuditLog, ExpectedHead};
use me2b_crypto::{Keyring, MasterKey, SeededRandom};
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::{FixedClock, MemberId, Timestamp};
use me2b_testkit::{fresh, Db};
use std::sync::Arc;

async fn setup(
    db: Db,
) -> Option<(
    Arc<dyn me2b_storage::Store>,
    AuditLog,
    Arc<Keyring>,
    me2b_testkit::TestDb,
)> {
    let t = fresh(db).await.unwrap()?;
    let store = me2b_storage::open(&t.url).await.unwrap();
    let rng = SeededRandom::new(1);
    let keys = Arc::new(Keyring::derive(&MasterKey::generate(&rng)));
    let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
        1_700_000_000_000,
    )));
    let log = AuditLog::start(store.clone(), clock, keys.clone(), 25)
        .await
        .unwrap();
    Some((store, log, keys, t))
}

async fn tamper(db: Db, url: &str, sql: &str) {
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    }
}

#[tokio::test]
async fn concurrent_records_form_one_verified_chain() {
    for db in Db::ALL {
        let Some((store, log, keys, _t)) = setup(db).await else {
            continue;
        };
        let rng = SeededRandom::new(2);
        let m = MemberId::generate(&rng);
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                log.record(AuditEvent::new(Actor::Member(m), Action::RecordRead).subject(m))
                    .await
            }));
        }
        let mut seqs: Vec<u64> = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap().unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (1..=200).collect::<Vec<_>>(),
            "{db:?}: every caller got its own durable seq"
        );
        log.checkpoint_now().await.unwrap();
        let report = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
            .await
            .unwrap();
        assert!(report.ok(), "{db:?}: {report:?}");
        assert_eq!(report.entries, 200);
        assert!(report.checkpoints >= 1, "{report:?}");
    }
}

#[tokio::test]
async fn verify_names_the_first_bad_entry() {
    for db in Db::ALL {
        let Some((store, log, keys, t)) = setup(db).await else {
            continue;
        };
        for _ in 0..60 {
            log.record(AuditEvent::new(Actor::Operator, Action::OrgCreate))
                .await
                .unwrap();
        }
        log.checkpoint_now().await.unwrap();
        // Someone with database access drops the append-only guard and edits entry 17.
        let (drop_guard, edit) = match db {
            Db::Sqlite => ("DROP TRIGGER audit_log_no_update", "UPDATE audit_log SET event = CAST('{\"actor\":{\"kind\":\"node\"},\"action\":\"org.create\",\"outcome\":\"ok\"}' AS BLOB) WHERE seq = 17"),
            Db::Postgres => ("DROP TRIGGER audit_log_no_update_delete ON audit_log", "UPDATE audit_log SET event = convert_to('{\"actor\":{\"kind\":\"node\"},\"action\":\"org.create\",\"outcome\":\"ok\"}', 'UTF8') WHERE seq = 17"),
        };
        tamper(db, &t.url, drop_guard).await;
        tamper(db, &t.url, edit).await;
        let report = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
            .await
            .unwrap();
        let f = report.first_failure.expect("tampering must be found");
        assert_eq!(f.seq, 17, "{db:?}: {}", f.reason);
        assert!(f.reason.contains("altered"), "{}", f.reason);
    }
}

#[tokio::test]
async fn a_consistent_rewrite_is_caught_by_the_signed_checkpoint() {
    // An attacker rewrites entry 5 and recomputes every later hash: the chain is
    // self-consistent, but the node's signed checkpoint no longer matches.
    let Some((store, log, keys, t)) = setup(Db::Sqlite).await else {
        return;
    };
    for _ in 0..30 {
        log.record(AuditEvent::new(Actor::Operator, Action::OrgCreate))
            .await
            .unwrap();
    }
    log.checkpoint_now().await.unwrap();
    let mut entries = store.audit_entries(0, 100).await.unwrap();
    entries[4].event_json = AuditEvent::new(Actor::Node, Action::OrgCreate).canonical_json();
    for i in 4..entries.len() {
        if i > 0 {
            entries[i].prev_hash = entries[i - 1].hash;
        }
        entries[i].hash = entries[i].recompute();
    }
    let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&pool)
        .await
        .unwrap();
    for e in &entries[4..] {
        sqlx::query("UPDATE audit_log SET event = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&e.event_json)
            .bind(e.prev_hash.to_vec())
            .bind(e.hash.to_vec())
            .bind(e.seq as i64)
            .execute(&pool)
            .await
            .unwrap();
    }
    let report = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
        .await
        .unwrap();
    // Entry 5 was a batch of its own: its signed head no longer verifies (the
    // checkpoint at 30 would fail too, further on).
    let f = report.first_failure.expect("rewrite must be found");
    assert_eq!(f.seq, 5, "{}", f.reason);
    assert!(f.reason.contains("signed head"), "{}", f.reason);

    // And a checkpoint signed by another key is refused outright.
    let other = Keyring::derive(&MasterKey::generate(&SeededRandom::new(99)));
    let report = verify(store.as_ref(), &other.verifying_key(), &|_| {})
        .await
        .unwrap();
    assert!(report.first_failure.unwrap().reason.contains("signature"));
}

#[tokio::test]
async fn removing_the_tail_is_caught() {
    let Some((store, log, keys, t)) = setup(Db::Sqlite).await else {
        return;
    };
    for _ in 0..30 {
        log.record(AuditEvent::new(Actor::Operator, Action::OrgCreate))
            .await
            .unwrap();
    }
    log.checkpoint_now().await.unwrap();
    tamper(Db::Sqlite, &t.url, "DROP TRIGGER audit_log_no_delete").await;
    tamper(Db::Sqlite, &t.url, "DELETE FROM audit_log WHERE seq > 27").await;
    let report = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
        .await
        .unwrap();
    let f = report.first_failure.expect("truncation must be found");
    assert_eq!(f.seq, 28, "{}", f.reason);
}

async fn drop_guards(db: Db, url: &str) {
    match db {
        Db::Sqlite => {
            tamper(db, url, "DROP TRIGGER audit_log_no_update").await;
            tamper(db, url, "DROP TRIGGER audit_log_no_delete").await;
        }
        Db::Postgres => {
            tamper(
                db,
                url,
                "DROP TRIGGER audit_log_no_update_delete ON audit_log",
            )
            .await;
        }
    }
}

#[tokio::test]
async fn a_tail_cut_after_a_crash_is_caught_by_the_head_file() {
    for db in Db::ALL {
        let Some(t) = fresh(db).await.unwrap() else {
            continue;
        };
        let store = me2b_storage::open(&t.url).await.unwrap();
        let keys = Arc::new(Keyring::derive(&MasterKey::generate(&SeededRandom::new(1))));
        let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
            1_700_000_000_000,
        )));
        let head_path = t.data_dir.path().join(me2b_audit::HEAD_FILE);
        let log = AuditLog::start_with_head_file(
            store.clone(),
            clock.clone(),
            keys.clone(),
            1000,
            &head_path,
        )
        .await
        .unwrap();
        for _ in 0..30 {
            log.record(AuditEvent::new(Actor::Operator, Action::OrgCreate))
                .await
                .unwrap();
        }
        // A crash: no shutdown, so no final checkpoint (and none every 1,000).
        drop(log);
        assert!(store.checkpoints().await.unwrap().is_empty());
        let before = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
            .await
            .unwrap();
        assert!(before.ok(), "{db:?}: {before:?}");
        assert_eq!(before.signed_heads, 30, "{db:?}: one signed head per batch");

        // Someone with write access to the database removes the last five
        // entries, and with them the signed heads they carry.
        drop_guards(db, &t.url).await;
        tamper(db, &t.url, "DELETE FROM audit_log WHERE seq > 25").await;

        // Inside the database the shorter log is consistent…
        let inside = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
            .await
            .unwrap();
        assert!(inside.ok(), "{db:?}: {inside:?}");
        // …but the head file outside it names entry 30.
        let head = me2b_audit::head::read(&head_path).unwrap().unwrap();
        assert_eq!(head.seq, 30);
        let expected = ExpectedHead {
            head,
            source: "the head file".into(),
        };
        let report = verify_with(
            store.as_ref(),
            &keys.verifying_key(),
            Some(&expected),
            &|_| {},
        )
        .await
        .unwrap();
        let f = report.first_failure.expect("the cut tail must be found");
        assert_eq!(f.seq, 26, "{db:?}: {}", f.reason);
        assert!(
            f.reason.contains("26..=30 were removed"),
            "{db:?}: {}",
            f.reason
        );

        // And a node refuses to append to it (which would hide the cut).
        let err = AuditLog::start_with_head_file(store.clone(), clock, keys, 1000, &head_path)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                me2b_audit::AuditError::TailRemoved {
                    log_end: 25,
                    head_seq: 30,
                    ..
                }
            ),
            "{db:?}: {err}"
        );
    }
}

#[tokio::test]
async fn entries_added_behind_the_writer_and_rewritten_heads_are_caught() {
    for db in Db::ALL {
        let Some((store, log, keys, t)) = setup(db).await else {
            continue;
        };
        for _ in 0..10 {
            log.record(AuditEvent::new(Actor::Operator, Action::OrgCreate))
                .await
                .unwrap();
        }
        // Appended straight into the database (correctly chained, unsigned).
        store
            .append_audit(
                Timestamp::from_unix_millis(1_700_000_000_001),
                &[AuditEvent::new(Actor::Operator, Action::OrgDelete)],
            )
            .await
            .unwrap();
        let report = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
            .await
            .unwrap();
        let f = report
            .first_failure
            .expect("the forged entry must be found");
        assert_eq!(f.seq, 11, "{db:?}: {}", f.reason);
        assert!(f.reason.contains("no signed head"), "{db:?}: {}", f.reason);

        // A batch head re-signed by another key does not verify either.
        drop_guards(db, &t.url).await;
        tamper(db, &t.url, "DELETE FROM audit_log WHERE seq = 11").await;
        let other = Keyring::derive(&MasterKey::generate(&SeededRandom::new(99)));
        let msg = me2b_domain::audit::Checkpoint::signed_message;
        let e5 = store.audit_entries(4, 1).await.unwrap().remove(0);
        let forged = hex::encode(other.sign(&msg(5, &e5.hash, e5.at)));
        let sql = match db {
            Db::Sqlite => format!("UPDATE audit_log SET head_sig = X'{forged}' WHERE seq = 5"),
            Db::Postgres => {
                format!("UPDATE audit_log SET head_sig = decode('{forged}', 'hex') WHERE seq = 5")
            }
        };
        tamper(db, &t.url, &sql).await;
        let report = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
            .await
            .unwrap();
        let f = report.first_failure.expect("the forged head must be found");
        assert_eq!(f.seq, 5, "{db:?}: {}", f.reason);
        assert!(f.reason.contains("signed head"), "{db:?}: {}", f.reason);
    }
}

#[tokio::test]
async fn every_entry_keeps_the_hour_only_and_the_chain_verifies() {
    for db in Db::ALL {
        let Some((store, log, keys, _t)) = setup(db).await else {
            continue;
        };
        let m = MemberId::generate(&SeededRandom::new(3));
        let fine = log
            .record(AuditEvent::new(Actor::Member(m), Action::RecordRead).subject(m))
            .await
            .unwrap();
        let hourly = log
            .record_hourly(AuditEvent::new(Actor::Member(m), Action::IntentPublish).subject(m))
            .await
            .unwrap();
        let after = log
            .record(AuditEvent::new(Actor::Member(m), Action::RecordRead).subject(m))
            .await
            .unwrap();
        let entries = store.audit_entries(0, 10).await.unwrap();
        let at = |seq: u64| {
            entries
                .iter()
                .find(|e| e.seq == seq)
                .unwrap()
                .at
                .unix_millis()
        };
        // The clock is at 1,700,000,000,000 ms, not a whole hour: every
        // entry keeps its hour only (issue 13), and the chain orders them.
        let hour = 1_700_000_000_000 / 3_600_000 * 3_600_000;
        for seq in [fine, hourly, after] {
            assert_eq!(at(seq), hour, "{db:?}");
        }
        assert!(fine < hourly && hourly < after, "{db:?}");
        log.checkpoint_now().await.unwrap();
        let report = verify(store.as_ref(), &keys.verifying_key(), &|_| {})
            .await
            .unwrap();
        assert!(report.ok(), "{db:?}: {report:?}");
        assert_eq!(report.entries, 3);
        let cps = store.checkpoints().await.unwrap();
        assert!(
            cps.iter().all(|c| c.at.unix_millis() == hour),
            "{db:?}: a checkpoint keeps an exact time"
        );
    }
}
