//! Fresh databases for tests, and fuzz bodies as property tests ([`fuzz`]).
//!
//! SQLite databases live in a temporary directory. PostgreSQL databases are
//! created in the server named by `ME2B_TEST_POSTGRES_URL` (an administrative URL;
//! `scripts/test.sh` starts a throwaway cluster and sets it). Without that
//! variable, PostgreSQL tests are skipped with a message, unless
//! `ME2B_REQUIRE_POSTGRES=1`, which turns a missing server into a failure (the
//! README's test command and CI set it).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

pub mod fuzz;

use sqlx::Connection;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub const ALL: [Db; 2] = [Db::Sqlite, Db::Postgres];
}

/// A fresh, empty database; SQLite files are removed on drop.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    /// The data directory to give a node (holds the SQLite file and master key).
    pub data_dir: tempfile::TempDir,
}

/// Errors setting up a test database.
#[derive(Debug)]
pub struct TestDbError(pub String);

impl std::fmt::Display for TestDbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    hex::encode(b)
}

/// A fresh database of kind `db`, or `Ok(None)` when PostgreSQL is not configured
/// and not required (the caller skips).
pub async fn fresh(db: Db) -> Result<Option<TestDb>, TestDbError> {
    let data_dir = tempfile::tempdir().map_err(|e| TestDbError(e.to_string()))?;
    match db {
        Db::Sqlite => {
            let url = format!(
                "sqlite://{}",
                data_dir.path().join("me2b.sqlite3").display()
            );
            Ok(Some(TestDb { url, data_dir }))
        }
        Db::Postgres => {
            let Ok(admin) = std::env::var("ME2B_TEST_POSTGRES_URL") else {
                if std::env::var("ME2B_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                    return Err(TestDbError(
                        "ME2B_REQUIRE_POSTGRES=1 but ME2B_TEST_POSTGRES_URL is not set".into(),
                    ));
                }
                println!("skipping PostgreSQL: set ME2B_TEST_POSTGRES_URL (scripts/test.sh does)");
                return Ok(None);
            };
            let name = format!("me2b_test_{}", random_suffix());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .map_err(|e| TestDbError(format!("cannot reach the test PostgreSQL: {e}")))?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .map_err(|e| TestDbError(format!("CREATE DATABASE failed: {e}")))?;
            let _ = conn.close().await;
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin.clone());
            Ok(Some(TestDb {
                url: format!("{base}/{name}"),
                data_dir,
            }))
        }
    }
}
