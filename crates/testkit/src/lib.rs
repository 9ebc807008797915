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

/// A fresh, empty database; SQLite files are removed on drop, and a
/// PostgreSQL database is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    /// The data directory to give a node (holds the SQLite file and master key).
    pub data_dir: tempfile::TempDir,
    /// PostgreSQL: the administrative URL and the database's name, to drop it.
    drop_pg: Option<(String, String)>,
}

impl TestDb {
    /// The same database with another data directory (a second node of
    /// one PostgreSQL); dropping it leaves the database to the first.
    pub fn sharing(&self, data_dir: tempfile::TempDir) -> TestDb {
        TestDb {
            url: self.url.clone(),
            data_dir,
            drop_pg: None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop_pg.take() else {
            return;
        };
        // On a thread of its own: a test drops this inside its runtime.
        // FORCE ends the connections a node's pool may still hold.
        let dropped = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// Turns each `async fn case(db: Db)` of a test file into one test per
/// engine, `sqlite::case` and `postgres::case`, so a failure names its
/// database (garage's one-suite, a-test-per-engine shape). Cases are listed
/// in groups under the test attribute they run with; a case not listed is
/// dead code, which the lints refuse. The PostgreSQL test is skipped by the
/// case itself when [`fresh`] returns `None`.
///
/// ```ignore
/// me2b_testkit::per_engine! {
///     #[tokio::test] { members_round_trip, sessions_expire }
///     #[tokio::test(flavor = "multi_thread", worker_threads = 4)] { counters_add_up }
/// }
/// ```
#[macro_export]
macro_rules! per_engine {
    ($( #[$attr:meta] { $($case:ident),* $(,)? } )*) => {
        /// The cases on SQLite.
        mod sqlite {
            $($(
                #[$attr]
                async fn $case() {
                    super::$case($crate::Db::Sqlite).await
                }
            )*)*
        }
        /// The cases on PostgreSQL (skipped without `ME2B_TEST_POSTGRES_URL`).
        mod postgres {
            $($(
                #[$attr]
                async fn $case() {
                    super::$case($crate::Db::Postgres).await
                }
            )*)*
        }
    };
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
            Ok(Some(TestDb {
                url,
                data_dir,
                drop_pg: None,
            }))
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
                drop_pg: Some((admin, name)),
            }))
        }
    }
}

/// The metadata keys a test gives a store it opens itself (a node sets its
/// own, from its master key): derived from a fixed test master key.
pub fn metadata_keys() -> std::sync::Arc<dyn me2b_domain::meta::MetadataKeys> {
    let keys = me2b_crypto::Keyring::derive(&me2b_crypto::MasterKey::from_bytes([42; 32]));
    std::sync::Arc::new(keys.metadata_keys(std::sync::Arc::new(me2b_crypto::OsRandom)))
}
