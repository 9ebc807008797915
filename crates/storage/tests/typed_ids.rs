//! The typed ids of me2b-domain as sqlx values (its `sqlx` feature, which
//! this crate enables): bound and read back as the 16 raw bytes on SQLite
//! (BLOB) and PostgreSQL (BYTEA); a stored value of another length is a
//! decode error, which the store reports as corrupt data, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_domain::{MemberId, OrgId, TrustReceiptId};
use me2b_storage::StorageError;
use me2b_testkit::{fresh, Db};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::Row;
use std::str::FromStr;

me2b_testkit::per_engine! {
    #[tokio::test] {
        typed_ids_round_trip_and_other_lengths_do_not_decode,
    }
}

const MEMBER: [u8; 16] = [
    0x6f, 0x1c, 0x2a, 0x90, 0x5b, 0x33, 0x4d, 0x01, 0x8e, 0x77, 0x10, 0x42, 0xa5, 0x0d, 0xfe, 0x3c,
];

/// One body for both pools: `$blob` is the engine's byte-string type.
macro_rules! check {
    ($db:expr, $pool:expr, $blob:literal) => {{
        let pool = $pool;
        sqlx::query(concat!(
            "CREATE TABLE ids (n INTEGER NOT NULL, id ",
            $blob,
            ")"
        ))
        .execute(&pool)
        .await
        .unwrap();
        let member = MemberId::from_slice(&MEMBER).unwrap();
        let org = OrgId::from_slice(&[0xab; 16]).unwrap();
        sqlx::query("INSERT INTO ids (n, id) VALUES ($1, $2), ($3, $4), ($5, $6)")
            .bind(1_i32)
            .bind(member)
            .bind(2_i32)
            .bind(&org)
            .bind(3_i32)
            .bind(None::<TrustReceiptId>)
            .execute(&pool)
            .await
            .unwrap();
        for (n, bytes) in [(4_i32, vec![1u8; 15]), (5, vec![1u8; 17]), (6, Vec::new())] {
            sqlx::query("INSERT INTO ids (n, id) VALUES ($1, $2)")
                .bind(n)
                .bind(bytes)
                .execute(&pool)
                .await
                .unwrap();
        }

        // Stored as exactly the 16 raw bytes, and read back as the same id.
        let raw: Vec<u8> = sqlx::query_scalar("SELECT id FROM ids WHERE n = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(raw, MEMBER.to_vec(), "{:?}", $db);
        let back: MemberId = sqlx::query_scalar("SELECT id FROM ids WHERE n = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(back, member, "{:?}", $db);
        // Also from a simple query (PostgreSQL sends its values as text).
        let row = sqlx::raw_sql("SELECT id FROM ids WHERE n = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            row.try_get::<MemberId, _>("id").unwrap(),
            member,
            "{:?}",
            $db
        );
        let back: OrgId = sqlx::query_scalar("SELECT id FROM ids WHERE n = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(back, org, "{:?}", $db);
        // A typed id compares as a key, and NULL reads as None.
        let n: i32 = sqlx::query_scalar("SELECT n FROM ids WHERE id = $1")
            .bind(org)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 2, "{:?}", $db);
        let none: Option<TrustReceiptId> = sqlx::query_scalar("SELECT id FROM ids WHERE n = 3")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(none, None, "{:?}", $db);

        // Another length (15, 17 or no bytes) is a decode error that the
        // store reports as corrupt data, naming the column, not the value.
        for n in [4_i32, 5, 6] {
            let row = sqlx::query("SELECT n, id AS member_id FROM ids WHERE n = $1")
                .bind(n)
                .fetch_one(&pool)
                .await
                .unwrap();
            let err = match row.try_get::<MemberId, _>("member_id") {
                Err(e @ sqlx::Error::ColumnDecode { .. }) => e,
                other => panic!("{:?}: {n}: {other:?}", $db),
            };
            match StorageError::from(err) {
                StorageError::Corrupt(what) => {
                    assert_eq!(what, "column \"member_id\" does not decode", "{:?}", $db)
                }
                other => panic!("{:?}: {n}: {other:?}", $db),
            }
        }
        pool.close().await;
    }};
}

async fn typed_ids_round_trip_and_other_lengths_do_not_decode(db: Db) {
    let Some(t) = fresh(db).await.unwrap() else {
        return;
    };
    match db {
        Db::Sqlite => {
            let opts = SqliteConnectOptions::from_str(&t.url)
                .unwrap()
                .create_if_missing(true);
            check!(db, SqlitePool::connect_with(opts).await.unwrap(), "BLOB")
        }
        Db::Postgres => check!(db, PgPool::connect(&t.url).await.unwrap(), "BYTEA"),
    }
}
