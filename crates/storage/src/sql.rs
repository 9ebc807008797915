//! The SQLite and PostgreSQL adapters. Both run the same SQL (positional `$n`
//! parameters, which SQLite accepts as named parameters bound in order), so one
//! macro writes both implementations; only connection set-up, the transaction that
//! appends to the audit log, and the migrations differ.

use crate::member_rows::Stage;
use crate::meta::MetadataStore;
use crate::*;
use me2b_domain::meta::MetaTable;
use me2b_domain::org::{OrgKind, Roles};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A store on one `sqlx` pool.
#[derive(Debug, Clone)]
pub struct SqlStore<P> {
    pool: P,
    /// The node's keys for member metadata (issue 13; `crate::meta`).
    pub(crate) meta: Arc<crate::meta::MetaState>,
    /// An erasure's log checkpoint did not complete (SQLite; `scrub_deleted`).
    scrub_pending: Arc<std::sync::atomic::AtomicBool>,
    /// What the last scheduled compaction saw (`crate::compaction`).
    pub(crate) compaction: Arc<tokio::sync::Mutex<crate::compaction::Compaction>>,
}

impl<P> SqlStore<P> {
    pub(crate) fn pool(&self) -> &P {
        &self.pool
    }
    fn new(pool: P) -> Self {
        Self {
            pool,
            meta: Arc::default(),
            scrub_pending: Arc::default(),
            compaction: Arc::default(),
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long an SQLite statement waits on a lock another connection holds.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl SqlStore<SqlitePool> {
    /// After an erasure's delete: the write-ahead log still holds the page
    /// images from before it (the account's wraps, its e-mail), and the
    /// main file the old page until a checkpoint (adversary 5, 3c). A
    /// TRUNCATE checkpoint copies the new pages (zeroed by `secure_delete`)
    /// into the file and empties the log. This inline attempt does not wait
    /// on the busy handler: a reader (a backup tool, another process) would
    /// otherwise hold the erasure for the whole busy timeout, and every
    /// writer with it. If it cannot finish, the sweeper retries it
    /// (`finish_scrub`, every few seconds) until it completes; the delete
    /// itself is committed either way.
    pub(crate) async fn scrub_deleted(&self) {
        self.checkpoint_log(false).await;
    }

    /// The sweeper's retry (`finish_scrub`, every few seconds): does not
    /// wait on the busy handler either, so a reader holding the file never
    /// holds every writer behind the retry.
    pub(crate) async fn finish_scrub_now(&self) {
        self.checkpoint_log(false).await;
    }

    /// `Store::trim_log`: a TRUNCATE checkpoint that does not wait; a
    /// reader holding the log makes it a partial one, tried again at the
    /// next sweep (nothing is pending, nothing is said).
    pub(crate) async fn trim_log_now(&self) {
        if let Err(e) = self.try_checkpoint_log(false).await {
            tracing::debug!(error = %e, "the write-ahead log was not trimmed");
        }
    }

    /// `Store::compact`: every page rewritten in key order, then the log
    /// (which holds the old pages until then) emptied.
    pub(crate) async fn vacuum(&self) -> Result<()> {
        sqlx::query("VACUUM").execute(&self.pool).await?;
        self.checkpoint_log(true).await;
        Ok(())
    }

    /// A compaction's checkpoint did not empty the log (a reader held it):
    /// the sweeper retries it as it does an erasure's (`finish_scrub`).
    pub(crate) fn log_not_emptied(&self) {
        if !self.scrub_pending.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                "the write-ahead log was not emptied after a compaction (a reader holds it); retried until it completes"
            );
        }
    }

    /// A TRUNCATE checkpoint of the write-ahead log; `wait`: through the
    /// busy handler (the start, a compaction), else at once or not
    /// at all (it then proceeds as a PASSIVE one and reports busy).
    async fn checkpoint_log(&self, wait: bool) {
        let r = self.try_checkpoint_log(wait).await;
        if matches!(r, Ok(true)) {
            self.scrub_pending.store(false, Ordering::SeqCst);
            return;
        }
        // Said once, when the retries start (they run every few seconds).
        if self.scrub_pending.swap(true, Ordering::SeqCst) {
            return;
        }
        match r {
            Err(e) => tracing::warn!(
                error = %e,
                "the write-ahead log checkpoint after an erasure failed; retried until it completes"
            ),
            Ok(_) => tracing::warn!(
                "the write-ahead log was not emptied after an erasure (a reader holds it); retried until it completes"
            ),
        }
    }

    async fn try_checkpoint_log(&self, wait: bool) -> Result<bool> {
        const CHECKPOINT: &str = "PRAGMA wal_checkpoint(TRUNCATE)";
        if wait {
            let (busy, _, _) = sqlx::query_as::<_, (i64, i64, i64)>(CHECKPOINT)
                .fetch_one(&self.pool)
                .await?;
            return Ok(busy == 0);
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut *conn)
            .await?;
        let done = sqlx::query_as::<_, (i64, i64, i64)>(CHECKPOINT)
            .fetch_one(&mut *conn)
            .await;
        let restore = format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis());
        if sqlx::query(&restore).execute(&mut *conn).await.is_err() {
            // Never hand a connection that does not wait back to the pool.
            conn.close_on_drop();
        }
        Ok(done?.0 == 0)
    }
}

impl SqlStore<PgPool> {
    /// PostgreSQL keeps dead rows until VACUUM and its WAL until recycled:
    /// ARCHITECTURE ("Erasure, as organisations see it") says what remains.
    pub(crate) async fn scrub_deleted(&self) {}
    pub(crate) async fn finish_scrub_now(&self) {}
    pub(crate) async fn trim_log_now(&self) {}
    /// `Store::compact`: the member tables rewritten in key order
    /// (`CLUSTER`, `crate::compaction`).
    pub(crate) async fn vacuum(&self) -> Result<()> {
        self.cluster().await
    }
}

/// Opens (creating if needed) and migrates the database at `url`:
/// `sqlite://PATH` or `postgres://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    let location = redact_url(url);
    let open_err = |source| StorageError::Open {
        location: location.clone(),
        source,
    };
    if url.starts_with("sqlite:") {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged commit survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // Overwrite deleted content instead of leaving it in free pages.
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A local file cannot drop off the network: skip the ping that would
            // otherwise cost a worker-thread round trip on every query.
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        // No integrity check here: `PRAGMA quick_check` reads the whole file
        // (about a minute for 3 GB), so it runs as `me2b check` and as a
        // background task of `me2b serve`, never as a gate on opening. A file
        // SQLite cannot read at all (a truncated one: its header names more
        // pages than the file holds) still fails here, in the migrations.
        SQLITE_MIGRATIONS.run(&pool).await?;
        let store = SqlStore::new(pool);
        // A log an erasure could not empty (busy readers, a crash) is
        // emptied at start.
        store.checkpoint_log(true).await;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(open_err)?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(Arc::new(SqlStore::new(pool)))
    } else {
        Err(StorageError::UnsupportedUrl)
    }
}

/// A database URL fit for messages: the password is dropped.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A time the `members` row keeps, floored to the day (issue 13): an exact
/// sign-up or login time would match the audit entry written at that
/// moment and tie the entry's subject to the member id.
pub(crate) fn member_day(t: Timestamp) -> i64 {
    t.unix_millis().div_euclid(DAY_MS) * DAY_MS
}

/// A member's row's time as stored (issue 13, "metadata at rest"): the
/// whole hour, so that rows of one member do not line up with each other,
/// with the audit log or with what co-ops saw. Where the exact time matters
/// (a session's expiry) it is sealed beside it.
pub(crate) fn hour_ms(t: Timestamp) -> i64 {
    t.hour().unix_millis()
}

/// The end of the hour `t` is in (`t` itself if it is a whole hour): a
/// stored expiry a sweep may use, never before the exact one.
pub(crate) fn hour_up_ms(t: Timestamp) -> i64 {
    let h = t.hour().unix_millis();
    if h == t.unix_millis() {
        h
    } else {
        h.saturating_add(HOUR_MS)
    }
}

pub(crate) fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_owned())
}

pub(crate) fn hash32(v: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| corrupt(what))
}

pub(crate) fn seq_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt("audit_log.seq"))
}

fn seq_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| corrupt("audit_log.seq"))
}

fn status_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(what))
}

pub(crate) fn retryable(e: &StorageError) -> bool {
    match e {
        StorageError::Conflict => true,
        StorageError::Database(sqlx::Error::Database(db)) => {
            // SQLite busy/locked, PostgreSQL serialization failure or deadlock.
            let code = db.code().unwrap_or_default();
            matches!(code.as_ref(), "5" | "6" | "517" | "40001" | "40P01")
        }
        _ => false,
    }
}

const AUDIT_APPEND_ATTEMPTS: u32 = 50;
/// Rows per multi-row INSERT (6 parameters each; SQLite allows 32,766).
const AUDIT_INSERT_CHUNK: usize = 256;
/// Vault records per multi-row INSERT (6 parameters each).
const RECORD_INSERT_CHUNK: usize = 256;
/// Record ids per `IN` list of a coalesced read (padded to a power of two,
/// so a handful of statement shapes are prepared and cached).
const RECORD_READ_CHUNK: usize = 64;

macro_rules! impl_store {
    ($pool:ty, $backend:expr, $begin:ident) => {
        impl SqlStore<$pool> {
            fn member_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<MemberRow> {
                Ok(MemberRow {
                    id: row.try_get::<MemberId, _>("member_id")?,
                    email_ct: row.try_get("email_ct")?,
                    passphrase_hash: row.try_get("passphrase_hash")?,
                    wrapped_dek: row.try_get("wrapped_dek")?,
                    passphrase_wrap: row.try_get("passphrase_wrap")?,
                    recovery_wrap: row.try_get("recovery_wrap")?,
                    last_login_at: row.try_get::<Option<i64>, _>("last_login_at")?.map(Timestamp::from_unix_millis),
                    legacy_warned_at: row.try_get::<Option<i64>, _>("legacy_warned_at")?.map(Timestamp::from_unix_millis),
                    erasing: row.try_get::<String, _>("state")? == "erasing",
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                })
            }

            /// A record row: its member is the one the query was scoped by
            /// (the table holds only the member's locator).
            fn record_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row, member: MemberId) -> Result<StoredRecord> {
                Ok(StoredRecord {
                    id: row.try_get::<RecordId, _>("record_id")?,
                    member,
                    revision: row.try_get("revision")?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
                    ciphertext: row.try_get("ciphertext")?,
                })
            }

            /// Refuses rows for members with no active account, as the
            /// foreign keys on the member id did before issue 13 (the id is
            /// a parameter here, never stored beside the row).
            async fn require_members(
                conn: &mut <<$pool as PoolDb>::Db as sqlx::Database>::Connection,
                members: &[MemberId],
            ) -> Result<()> {
                let mut seen = std::collections::HashSet::new();
                for m in members.iter().filter(|m| seen.insert(**m)) {
                    let found: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM members WHERE member_id = $1 AND state = 'active'",
                    )
                    .bind(m)
                    .fetch_one(&mut *conn)
                    .await?;
                    if found == 0 {
                        return Err(StorageError::NoSuchMember);
                    }
                }
                Ok(())
            }

            fn org_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<OrgRow> {
                Ok(OrgRow {
                    id: row.try_get::<OrgId, _>("org_id")?,
                    name: row.try_get("name")?,
                    kind: OrgKind::from_str(&row.try_get::<String, _>("kind")?)
                        .map_err(|_| corrupt("organisations.kind"))?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    deleted_at: row
                        .try_get::<Option<i64>, _>("deleted_at")?
                        .map(Timestamp::from_unix_millis),
                })
            }

            fn key_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<ApiKeyRow> {
                Ok(ApiKeyRow {
                    id: row.try_get::<ApiKeyId, _>("key_id")?,
                    org: row.try_get::<OrgId, _>("org_id")?,
                    key_hash: hash32(row.try_get("key_hash")?, "org_api_keys.key_hash")?,
                    roles: Roles::from_stored(&row.try_get::<String, _>("roles")?)
                        .map_err(|_| corrupt("org_api_keys.roles"))?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    revoked_at: row
                        .try_get::<Option<i64>, _>("revoked_at")?
                        .map(Timestamp::from_unix_millis),
                    envelope_pk: row.try_get("envelope_pk")?,
                })
            }

            fn consent_request_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<ConsentRequestRow> {
                Ok(ConsentRequestRow {
                    id: row.try_get::<ConsentRequestId, _>("request_id")?,
                    org: row.try_get::<OrgId, _>("org_id")?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    body: row.try_get("body")?,
                })
            }

            pub(crate) fn consent_row(&self, row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<ConsentRow> {
                let cid: ConsentId = row.try_get("consent_id")?;
                let legacy: Option<Vec<u8>> = row.try_get("legacy_member_id")?;
                let legacy_body = legacy.is_some();
                Ok(ConsentRow {
                    id: cid,
                    request: row.try_get::<ConsentRequestId, _>("request_id")?,
                    org: row.try_get::<OrgId, _>("org_id")?,
                    member: self.open_member(MetaTable::Consents, cid.as_bytes(), row.try_get("member_ct")?, legacy)?,
                    status: row.try_get("status")?,
                    version: row.try_get("version")?,
                    given_at: Timestamp::from_unix_millis(row.try_get("given_at")?),
                    expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
                    withdrawn_at: row.try_get::<Option<i64>, _>("withdrawn_at")?.map(Timestamp::from_unix_millis),
                    body: self.open_body(MetaTable::Consents, cid.as_bytes(), row.try_get("body")?, legacy_body)?,
                })
            }

            fn offer_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<OfferRow> {
                Ok(OfferRow {
                    id: row.try_get::<OfferId, _>("offer_id")?,
                    org: row.try_get::<OrgId, _>("org_id")?,
                    status: row.try_get("status")?,
                    version: row.try_get("version")?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
                    valid_until: Timestamp::from_unix_millis(row.try_get("valid_until")?),
                    body: row.try_get("body")?,
                })
            }

            pub(crate) fn sharing_row(&self, row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<TrustSharingRow> {
                let sid: SharingId = row.try_get("sharing_id")?;
                Ok(TrustSharingRow {
                    id: sid,
                    member: self.open_member(
                        MetaTable::TrustSharing,
                        sid.as_bytes(),
                        row.try_get("member_ct")?,
                        row.try_get("legacy_member_id")?,
                    )?,
                    from_org: row.try_get::<OrgId, _>("from_org")?,
                    to_org: row.try_get::<OrgId, _>("to_org")?,
                    purpose: row.try_get("purpose")?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
                    withdrawn_at: row.try_get::<Option<i64>, _>("withdrawn_at")?.map(Timestamp::from_unix_millis),
                    research_tag: row
                        .try_get::<Option<Vec<u8>>, _>("research_tag")?
                        .map(|t| hash32(t, "trust_sharing.research_tag"))
                        .transpose()?,
                })
            }

            fn issuer_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<CredentialIssuerRow> {
                Ok(CredentialIssuerRow {
                    key_id: row.try_get("key_id")?,
                    public_key: row.try_get("public_key")?,
                    sealed_secret: row.try_get("sealed_secret")?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                })
            }

            fn credential_code_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<CredentialCodeRow> {
                Ok(CredentialCodeRow {
                    code_hash: hash32(row.try_get("code_hash")?, "credential_codes.code_hash")?,
                    org_id: row.try_get::<OrgId, _>("org_id")?,
                    claims_json: row.try_get("claims_json")?,
                    status_index: status_u32(row.try_get("status_index")?, "credential_codes.status_index")?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
                    redeemed_at: row.try_get::<Option<i64>, _>("redeemed_at")?.map(Timestamp::from_unix_millis),
                })
            }

            fn challenge_row(row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<CredentialChallengeRow> {
                Ok(CredentialChallengeRow {
                    nonce: hash32(row.try_get("nonce")?, "credential_challenges.nonce")?,
                    org_id: row.try_get::<OrgId, _>("org_id")?,
                    challenge_json: row.try_get("challenge_json")?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
                })
            }

            /// An entry as read: its event opened if sealed (`stored_event`).
            fn audit_row(&self, row: &<<$pool as PoolDb>::Db as sqlx::Database>::Row) -> Result<AuditEntry> {
                let seq = seq_u64(row.try_get("seq")?)?;
                let (event_json, stored) = self.stored_event(seq, row.try_get("event")?);
                Ok(AuditEntry {
                    seq,
                    at: Timestamp::from_unix_millis(row.try_get("at")?),
                    event_json,
                    stored,
                    prev_hash: hash32(row.try_get("prev_hash")?, "audit_log.prev_hash")?,
                    hash: hash32(row.try_get("hash")?, "audit_log.hash")?,
                })
            }

            async fn try_append_audit(
                &self,
                at: Timestamp,
                events: &[AuditEvent],
                sign: Option<&HeadSigner<'_>>,
            ) -> Result<Vec<AuditEntry>> {
                let mut tx = $begin(&self.pool).await?;
                let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
                let mut prev = match head {
                    Some(row) => Some((
                        seq_u64(row.try_get("seq")?)?,
                        hash32(row.try_get("hash")?, "audit_log.hash")?,
                    )),
                    None => None,
                };
                // Issue 13: the log names a member with an account by their
                // audit subject, never by id. A value with no account stays
                // as it is: a trust pseudonym shaped like a member id (the
                // loyalty view's subject).
                let mut names = std::collections::HashMap::new();
                for m in events.iter().flat_map(AuditEvent::members) {
                    if let std::collections::hash_map::Entry::Vacant(v) = names.entry(m) {
                        if let Some(name) = self.audit_subject_in(&mut *tx, m, true).await? {
                            v.insert(name);
                        }
                    }
                }
                // adv7 (A, D): every event sealed at rest, hashed as sealed;
                // a store without the node's keys (a test's) writes it plain.
                let seal = self.keys().is_ok();
                let stored: Vec<AuditEvent> = events
                    .iter()
                    .map(|e| e.renamed(|m| names.get(&m).copied().unwrap_or(m)))
                    .collect();
                // Issue 13 item 4: the `subject` column holds one tag per
                // entry (`crate::audit_tags`), the k-th under its name; the
                // sealed event keeps the name.
                let mut next = if seal {
                    let named: Vec<MemberId> = stored.iter().filter_map(|e| e.subject).collect();
                    self.next_tags_in(&mut *tx, &named).await?
                } else {
                    std::collections::HashMap::new()
                };
                let mut out = Vec::with_capacity(events.len());
                for stored in &stored {
                    let mut entry = AuditEntry::link(prev, at, stored);
                    if seal {
                        let sealed = self.seal_event(entry.seq, &entry.event_json)?;
                        entry = entry.stored_as(sealed);
                    }
                    prev = Some((entry.seq, entry.hash));
                    let column = match stored.subject {
                        Some(name) if seal => {
                            let k = next.entry(name).or_insert(0);
                            let tag = self.entry_tag(name, *k)?;
                            *k += 1;
                            Some(tag)
                        }
                        // adv9 (1f): entries about no member (a sign-up's,
                        // before there is an account) were the only ones
                        // with no subject, so they marked where each
                        // member's run of entries began. They get a tag
                        // too, of the sequence number under a name no
                        // member has: as unlinkable as the others, found by
                        // no member's view.
                        None if seal => Some(self.entry_tag(crate::audit_tags::UNNAMED, entry.seq)?),
                        other => other,
                    };
                    out.push((entry, column));
                }
                // The batch's signed head rides on its last entry, in this
                // transaction: no commit is ever left without one.
                let head_sig = match (sign, out.last()) {
                    (Some(sign), Some((last, _))) => Some(sign(last.seq, &last.hash, at)),
                    _ => None,
                };
                let last_seq = out.last().map(|(e, _)| e.seq);
                // Multi-row inserts: one round trip per chunk, not per entry.
                for chunk in out.chunks(AUDIT_INSERT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<<$pool as PoolDb>::Db>::new(
                        "INSERT INTO audit_log (seq, at, subject, event, prev_hash, hash, head_sig) ",
                    );
                    let mut rows = Vec::with_capacity(chunk.len());
                    for (entry, subject) in chunk {
                        rows.push((
                            seq_i64(entry.seq)?,
                            *subject,
                            entry.hashed_bytes().to_vec(),
                            entry.prev_hash.to_vec(),
                            entry.hash.to_vec(),
                            if Some(entry.seq) == last_seq { head_sig.clone() } else { None },
                        ));
                    }
                    qb.push_values(rows, |mut b, (seq, subject, event, prev_hash, hash, sig)| {
                        b.push_bind(seq)
                            .push_bind(at.unix_millis())
                            .push_bind(subject)
                            .push_bind(event)
                            .push_bind(prev_hash)
                            .push_bind(hash)
                            .push_bind(sig);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                let out = out.into_iter().map(|(e, _)| e).collect();
                tx.commit().await?;
                self.remember_next_tags(&next);
                Ok(out)
            }

            async fn append_audit_with(
                &self,
                at: Timestamp,
                events: &[AuditEvent],
                sign: Option<&HeadSigner<'_>>,
            ) -> Result<Vec<AuditEntry>> {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match self.try_append_audit(at, events, sign).await {
                        Err(e) if retryable(&e) && attempt < AUDIT_APPEND_ATTEMPTS => {
                            tracing::debug!(attempt, "audit append raced another writer; retrying");
                            tokio::time::sleep(Duration::from_millis(u64::from(attempt))).await;
                        }
                        Err(e) if retryable(&e) => {
                            return Err(StorageError::AuditContention { attempts: attempt })
                        }
                        other => return other,
                    }
                }
            }
        }

        #[async_trait]
        impl NodeMetaStore for SqlStore<$pool> {
            async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
                Ok(sqlx::query_scalar("SELECT value FROM node_meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }
            async fn put_meta_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
                let r = sqlx::query("INSERT INTO node_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl MemberStore for SqlStore<$pool> {
            async fn insert_member(&self, m: &NewMember) -> Result<()> {
                sqlx::query(
                    "INSERT INTO members (member_id, email_index, email_ct, passphrase_wrap, recovery_wrap, state, created_at, last_login_at) \
                     VALUES ($1, $2, $3, $4, $5, 'active', $6, $6)",
                )
                .bind(m.id)
                .bind(m.email_index.to_vec())
                .bind(&m.email_ct)
                .bind(&m.passphrase_wrap)
                .bind(&m.recovery_wrap)
                .bind(member_day(m.created_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }
            async fn member(&self, id: MemberId) -> Result<Option<MemberRow>> {
                sqlx::query("SELECT * FROM members WHERE member_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::member_row)
                    .transpose()
            }
            async fn member_by_email_index(&self, index: &[u8; 32]) -> Result<Option<MemberRow>> {
                sqlx::query("SELECT * FROM members WHERE email_index = $1")
                    .bind(index.to_vec())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::member_row)
                    .transpose()
            }
            async fn shred_member(&self, id: MemberId) -> Result<bool> {
                // Every wrap of the data key goes in one transaction: the
                // member's own (passphrase, recovery code), an older node's
                // (master key), each session's, and the envelopes sealed for
                // organisations.
                let mut tx = self.pool.begin().await?;
                let r = sqlx::query(
                    "UPDATE members SET wrapped_dek = NULL, email_index = NULL, email_ct = NULL, \
                     passphrase_hash = NULL, passphrase_wrap = NULL, recovery_wrap = NULL, \
                     state = 'erasing' WHERE member_id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM sessions WHERE member_loc = $1")
                    .bind(self.loc(MetaTable::Sessions, id)?)
                    .execute(&mut *tx)
                    .await?;
                let orgs: Vec<Vec<u8>> = sqlx::query_scalar(crate::meta::CONSENT_ORGS)
                    .fetch_all(&mut *tx)
                    .await?;
                for loc in self.consent_locs(id, &orgs)? {
                    for table in ["consent_envelopes", "consent_envelopes_pending"] {
                        sqlx::query(&format!(
                            "DELETE FROM {table} WHERE consent_id IN \
                             (SELECT consent_id FROM consents WHERE member_loc = $1)"
                        ))
                        .bind(loc.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                self.scrub_deleted().await;
                Ok(r.rows_affected() == 1)
            }
            async fn finish_scrub(&self) {
                if self.scrub_pending.load(Ordering::SeqCst) {
                    self.finish_scrub_now().await;
                }
            }
            async fn trim_log(&self) {
                self.trim_log_now().await;
            }
            async fn compact(&self) -> Result<()> {
                self.vacuum().await
            }
            async fn compact_if_written(&self) -> Result<bool> {
                self.scheduled_compaction().await
            }
            async fn delete_member_rows(&self, id: MemberId) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                // Every table of a member's rows (member_rows.rs), by
                // locator, and by id for rows an older node wrote and no
                // start has re-keyed yet; the audit salt goes with the
                // account row.
                self.erase_member_intents(&mut *tx, id, None).await?;
                let orgs: Vec<Vec<u8>> = sqlx::query_scalar(crate::meta::CONSENT_ORGS)
                    .fetch_all(&mut *tx)
                    .await?;
                for (sql, binds) in self.member_deletes(id, &[Stage::Hold, Stage::Release], &orgs)? {
                    let mut q = sqlx::query(sql);
                    for b in binds {
                        q = q.bind(b);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                self.forget_subject(id);
                self.scrub_deleted().await;
                Ok(())
            }
            async fn members_pending_erasure(&self) -> Result<Vec<MemberId>> {
                let ids: Vec<MemberId> =
                    sqlx::query_scalar(
                        "SELECT member_id FROM members WHERE state = 'erasing' AND erased_at IS NULL",
                    )
                        .fetch_all(&self.pool)
                        .await?;
                Ok(ids)
            }
            async fn count_members(&self) -> Result<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE state = 'active'")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }

        #[async_trait]
        impl SessionStore for SqlStore<$pool> {
            async fn insert_session(&self, s: &SessionRow) -> Result<()> {
                sqlx::query("INSERT INTO sessions (token_hash, member_loc, member_ct, created_at, expires_at, wrapped_dek, expires_ct) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(s.token_hash.to_vec())
                    .bind(self.loc(MetaTable::Sessions, s.member)?)
                    .bind(self.seal_member(MetaTable::Sessions, &s.token_hash, s.member)?)
                    .bind(hour_ms(s.created_at))
                    .bind(hour_up_ms(s.expires_at))
                    .bind(&s.wrapped_dek)
                    .bind(self.seal_expiry(&s.token_hash, s.expires_at)?)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionWithKey>> {
                // Erasure deletes a member's sessions in the write that
                // marks them erasing: a session row is an active member's.
                let row = sqlx::query(
                    "SELECT member_ct, expires_at, wrapped_dek, expires_ct FROM sessions WHERE token_hash = $1",
                )
                .bind(token_hash.to_vec())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok(SessionWithKey {
                        member: self.open_member(MetaTable::Sessions, token_hash, row.try_get("member_ct")?, None)?,
                        expires_at: self.open_expiry(token_hash, row.try_get("expires_ct")?, row.try_get("expires_at")?)?,
                        wrapped_dek: row.try_get("wrapped_dek")?,
                    })
                })
                .transpose()
            }
            async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<bool> {
                let r = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash.to_vec())
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
                let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now.unix_millis())
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }
        }

        #[async_trait]
        impl VaultStore for SqlStore<$pool> {
            async fn insert_record(&self, r: &StoredRecord) -> Result<()> {
                let mut tx = $begin(&self.pool).await?;
                Self::require_members(&mut *tx, &[r.member]).await?;
                sqlx::query(
                    "INSERT INTO vault_records (record_id, member_loc, revision, created_at, updated_at, ciphertext, ord) \
                     VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(ord), 0) + 1 FROM vault_records WHERE member_loc = $2))",
                )
                .bind(r.id)
                .bind(self.loc(MetaTable::VaultRecords, r.member)?)
                .bind(r.revision)
                .bind(r.created_at.unix_millis())
                .bind(r.updated_at.unix_millis())
                .bind(&r.ciphertext)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
            async fn record(&self, member: MemberId, id: RecordId) -> Result<Option<StoredRecord>> {
                sqlx::query("SELECT * FROM vault_records WHERE member_loc = $1 AND record_id = $2")
                    .bind(self.loc(MetaTable::VaultRecords, member)?)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(|r| Self::record_row(r, member))
                    .transpose()
            }
            async fn records(&self, wanted: &[(MemberId, RecordId)]) -> Result<Vec<Option<StoredRecord>>> {
                let mut ids: Vec<Vec<u8>> = wanted.iter().map(|(_, id)| id.as_bytes().to_vec()).collect();
                ids.sort_unstable();
                ids.dedup();
                let mut rows = std::collections::HashMap::with_capacity(ids.len());
                for chunk in ids.chunks(RECORD_READ_CHUNK) {
                    let Some(last) = chunk.last() else { continue };
                    let mut qb = sqlx::QueryBuilder::<<$pool as PoolDb>::Db>::new(
                        "SELECT * FROM vault_records WHERE record_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in chunk.iter().chain(std::iter::repeat(last)).take(chunk.len().next_power_of_two()) {
                        list.push_bind(id.clone());
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(&self.pool).await? {
                        rows.insert(row.try_get::<Vec<u8>, _>("record_id")?, row);
                    }
                }
                // A record is only ever answered to the member it belongs to.
                wanted
                    .iter()
                    .map(|(member, id)| match rows.get(id.as_bytes().as_slice()) {
                        Some(row) if row.try_get::<Vec<u8>, _>("member_loc")? == self.loc(MetaTable::VaultRecords, *member)? => {
                            Self::record_row(row, *member).map(Some)
                        }
                        _ => Ok(None),
                    })
                    .collect()
            }
            async fn list_records(&self, member: MemberId, offset: u64, limit: u64) -> Result<Vec<StoredRecord>> {
                sqlx::query(
                    "SELECT * FROM vault_records WHERE member_loc = $1 \
                     ORDER BY created_at, ord, record_id LIMIT $2 OFFSET $3",
                )
                .bind(self.loc(MetaTable::VaultRecords, member)?)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Self::record_row(r, member))
                .collect()
            }
            async fn update_record(&self, r: &StoredRecord, expected_revision: i64) -> Result<bool> {
                let res = sqlx::query(
                    "UPDATE vault_records SET revision = $1, updated_at = $2, ciphertext = $3 \
                     WHERE record_id = $4 AND member_loc = $5 AND revision = $6",
                )
                .bind(r.revision)
                .bind(r.updated_at.unix_millis())
                .bind(&r.ciphertext)
                .bind(r.id)
                .bind(self.loc(MetaTable::VaultRecords, r.member)?)
                .bind(expected_revision)
                .execute(&self.pool)
                .await?;
                Ok(res.rows_affected() == 1)
            }
            async fn delete_record(&self, member: MemberId, id: RecordId) -> Result<bool> {
                let r = sqlx::query("DELETE FROM vault_records WHERE member_loc = $1 AND record_id = $2")
                    .bind(self.loc(MetaTable::VaultRecords, member)?)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn count_records(&self, member: MemberId) -> Result<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vault_records WHERE member_loc = $1")
                    .bind(self.loc(MetaTable::VaultRecords, member)?)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
            async fn apply_record_writes(&self, writes: &[RecordWrite]) -> Result<Vec<bool>> {
                // One transaction (one fsync on SQLite, one commit on PostgreSQL)
                // for the whole batch; a run of inserts is one multi-row INSERT.
                let mut tx = $begin(&self.pool).await?;
                let mut changed = Vec::with_capacity(writes.len());
                let mut rest = writes;
                while let Some(w) = rest.first() {
                    let done = match w {
                        RecordWrite::Insert(_) => {
                            let run: Vec<&StoredRecord> = rest
                                .iter()
                                .take(RECORD_INSERT_CHUNK)
                                .map_while(|w| match w {
                                    RecordWrite::Insert(r) => Some(r),
                                    _ => None,
                                })
                                .collect();
                            let owners: Vec<MemberId> = run.iter().map(|r| r.member).collect();
                            Self::require_members(&mut *tx, &owners).await?;
                            let locs = run
                                .iter()
                                .map(|r| self.loc(MetaTable::VaultRecords, r.member))
                                .collect::<Result<Vec<_>>>()?;
                            let mut qb = sqlx::QueryBuilder::<<$pool as PoolDb>::Db>::new(
                                "INSERT INTO vault_records (record_id, member_loc, revision, created_at, updated_at, ciphertext, ord) ",
                            );
                            // A member's records in the order written (their
                            // times are hours, issue 13): the k-th of the
                            // member's in this statement comes after the
                            // member's last.
                            let mut nth = std::collections::HashMap::new();
                            let ks: Vec<i64> = locs
                                .iter()
                                .map(|l| {
                                    let k = nth.entry(l.clone()).or_insert(0i64);
                                    *k += 1;
                                    *k
                                })
                                .collect();
                            qb.push_values(run.iter().zip(locs).zip(ks), |mut b, ((r, loc), k)| {
                                b.push_bind(r.id)
                                    .push_bind(loc.clone())
                                    .push_bind(r.revision)
                                    .push_bind(r.created_at.unix_millis())
                                    .push_bind(r.updated_at.unix_millis())
                                    .push_bind(r.ciphertext.clone())
                                    .push("(SELECT COALESCE(MAX(ord), 0) + ")
                                    .push_bind_unseparated(k)
                                    .push_unseparated(" FROM vault_records WHERE member_loc = ")
                                    .push_bind_unseparated(loc)
                                    .push_unseparated(")");
                            });
                            qb.build().execute(&mut *tx).await?;
                            changed.extend(run.iter().map(|_| true));
                            run.len()
                        }
                        RecordWrite::Update { record: r, expected_revision } => {
                            let res = sqlx::query(
                                "UPDATE vault_records SET revision = $1, updated_at = $2, ciphertext = $3 \
                                 WHERE record_id = $4 AND member_loc = $5 AND revision = $6",
                            )
                            .bind(r.revision)
                            .bind(r.updated_at.unix_millis())
                            .bind(&r.ciphertext)
                            .bind(r.id)
                            .bind(self.loc(MetaTable::VaultRecords, r.member)?)
                            .bind(*expected_revision)
                            .execute(&mut *tx)
                            .await?;
                            changed.push(res.rows_affected() == 1);
                            1
                        }
                        RecordWrite::Delete { member, id } => {
                            let res = sqlx::query("DELETE FROM vault_records WHERE member_loc = $1 AND record_id = $2")
                                .bind(self.loc(MetaTable::VaultRecords, *member)?)
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                            changed.push(res.rows_affected() == 1);
                            1
                        }
                    };
                    rest = rest.get(done..).unwrap_or_default();
                }
                tx.commit().await?;
                Ok(changed)
            }
        }

        #[async_trait]
        impl OrgStore for SqlStore<$pool> {
            async fn insert_org(&self, org: &OrgRow) -> Result<()> {
                sqlx::query("INSERT INTO organisations (org_id, name, kind, created_at, deleted_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(org.id)
                    .bind(&org.name)
                    .bind(org.kind.as_str())
                    .bind(org.created_at.unix_millis())
                    .bind(org.deleted_at.map(Timestamp::unix_millis))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn org(&self, id: OrgId) -> Result<Option<OrgRow>> {
                sqlx::query("SELECT * FROM organisations WHERE org_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::org_row)
                    .transpose()
            }
            async fn list_orgs(&self) -> Result<Vec<OrgRow>> {
                sqlx::query("SELECT * FROM organisations ORDER BY created_at, name")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(Self::org_row)
                    .collect()
            }
            async fn delete_org(&self, id: OrgId, at: Timestamp) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let r = sqlx::query("UPDATE organisations SET deleted_at = $1 WHERE org_id = $2 AND deleted_at IS NULL")
                    .bind(at.unix_millis())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE org_api_keys SET revoked_at = $1 WHERE org_id = $2 AND revoked_at IS NULL")
                    .bind(at.unix_millis())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            }
            async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO org_api_keys (key_id, org_id, key_hash, roles, created_at, revoked_at, envelope_pk) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(key.id)
                .bind(key.org)
                .bind(key.key_hash.to_vec())
                .bind(key.roles.to_stored())
                .bind(key.created_at.unix_millis())
                .bind(key.revoked_at.map(Timestamp::unix_millis))
                .bind(key.envelope_pk.clone())
                .execute(&self.pool)
                .await?;
                Ok(())
            }
            async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKeyRow, OrgRow)>> {
                let Some(row) = sqlx::query("SELECT * FROM org_api_keys WHERE key_hash = $1")
                    .bind(hash.to_vec())
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let key = Self::key_row(&row)?;
                let org = self.org(key.org).await?.ok_or_else(|| corrupt("org_api_keys.org_id"))?;
                Ok(Some((key, org)))
            }
            async fn api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyRow>> {
                sqlx::query("SELECT * FROM org_api_keys WHERE key_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::key_row)
                    .transpose()
            }
        }

        #[async_trait]
        impl AuditStore for SqlStore<$pool> {
            async fn append_audit(&self, at: Timestamp, events: &[AuditEvent]) -> Result<Vec<AuditEntry>> {
                self.append_audit_with(at, events, None).await
            }
            async fn append_audit_signed(
                &self,
                at: Timestamp,
                events: &[AuditEvent],
                sign: &HeadSigner<'_>,
            ) -> Result<Vec<AuditEntry>> {
                self.append_audit_with(at, events, Some(sign)).await
            }
            async fn audit_signed_heads(&self, after: u64, upto: u64) -> Result<Vec<Checkpoint>> {
                sqlx::query("SELECT seq, hash, at, head_sig FROM audit_log WHERE seq > $1 AND seq <= $2 AND head_sig IS NOT NULL ORDER BY seq")
                    .bind(seq_i64(after)?)
                    .bind(i64::try_from(upto).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(Checkpoint {
                            seq: seq_u64(row.try_get("seq")?)?,
                            head: hash32(row.try_get("hash")?, "audit_log.hash")?,
                            at: Timestamp::from_unix_millis(row.try_get("at")?),
                            signature: row.try_get("head_sig")?,
                        })
                    })
                    .collect()
            }
            async fn audit_head(&self) -> Result<Option<(u64, ChainHash)>> {
                let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row| {
                    Ok((
                        seq_u64(row.try_get("seq")?)?,
                        hash32(row.try_get("hash")?, "audit_log.hash")?,
                    ))
                })
                .transpose()
            }
            async fn audit_entries(&self, after: u64, limit: u64) -> Result<Vec<AuditEntry>> {
                sqlx::query("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(seq_i64(after)?)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| self.audit_row(row))
                    .collect()
            }
            async fn audit_entries_for(&self, member: MemberId, after: u64, limit: u64) -> Result<Vec<AuditEntry>> {
                // Under the tags of the member's audit subject, or (entries
                // an older node wrote) that subject or their id.
                let names = self.audit_subjects(&[member]).await?;
                let seqs: Vec<u64> = self
                    .tagged_seqs(&names)
                    .await?
                    .into_iter()
                    .filter(|s| *s > after)
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    .collect();
                let mut out = Vec::with_capacity(seqs.len());
                for chunk in seqs.chunks(crate::audit_tags::IN_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<<$pool as PoolDb>::Db>::new(
                        "SELECT * FROM audit_log WHERE seq IN (",
                    );
                    let mut sep = q.separated(", ");
                    for s in chunk {
                        sep.push_bind(seq_i64(*s)?);
                    }
                    q.push(") ORDER BY seq");
                    for row in q.build().fetch_all(&self.pool).await? {
                        out.push(self.opened_objects(self.audit_row(&row)?));
                    }
                }
                Ok(out)
            }
            async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<()> {
                sqlx::query("INSERT INTO audit_checkpoints (seq, head_hash, at, signature) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING")
                    .bind(seq_i64(cp.seq)?)
                    .bind(cp.head.to_vec())
                    .bind(cp.at.unix_millis())
                    .bind(&cp.signature)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
                sqlx::query("SELECT * FROM audit_checkpoints ORDER BY seq")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(Checkpoint {
                            seq: seq_u64(row.try_get("seq")?)?,
                            head: hash32(row.try_get("head_hash")?, "audit_checkpoints.head_hash")?,
                            at: Timestamp::from_unix_millis(row.try_get("at")?),
                            signature: row.try_get("signature")?,
                        })
                    })
                    .collect()
            }
        }

        #[async_trait]
        impl ConsentStore for SqlStore<$pool> {
            async fn insert_consent_request(&self, r: &ConsentRequestRow) -> Result<()> {
                sqlx::query("INSERT INTO consent_requests (request_id, org_id, created_at, body) VALUES ($1, $2, $3, $4)")
                    .bind(r.id)
                    .bind(r.org)
                    .bind(r.created_at.unix_millis())
                    .bind(&r.body)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn consent_request(&self, id: ConsentRequestId) -> Result<Option<ConsentRequestRow>> {
                sqlx::query("SELECT * FROM consent_requests WHERE request_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::consent_request_row)
                    .transpose()
            }
            async fn consent_requests(&self, org: Option<OrgId>) -> Result<Vec<ConsentRequestRow>> {
                let rows = match org {
                    Some(o) => sqlx::query("SELECT * FROM consent_requests WHERE org_id = $1 ORDER BY created_at, request_id")
                        .bind(o)
                        .fetch_all(&self.pool)
                        .await?,
                    None => sqlx::query("SELECT * FROM consent_requests ORDER BY created_at, request_id")
                        .fetch_all(&self.pool)
                        .await?,
                };
                rows.iter().map(Self::consent_request_row).collect()
            }
            async fn insert_consent(&self, c: &ConsentRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO consents (consent_id, request_id, org_id, member_loc, member_ct, status, version, given_at, expires_at, withdrawn_at, body, loc_scoped, slot) \
                     VALUES ($1, $2, $3, $4, $11, $5, $6, $7, $8, $9, $10, 1, $12)",
                )
                .bind(c.id)
                .bind(c.request)
                .bind(c.org)
                .bind(self.consent_loc(c.member, c.org)?)
                .bind(&c.status)
                .bind(c.version)
                // The row's times to the hour (issue 13); the exact ones are
                // in the sealed body, which decisions read.
                .bind(hour_ms(c.given_at))
                .bind(hour_ms(c.expires_at))
                .bind(c.withdrawn_at.map(hour_ms))
                .bind(self.seal_body(MetaTable::Consents, c.id.as_bytes(), &c.body)?)
                .bind(self.seal_member(MetaTable::Consents, c.id.as_bytes(), c.member)?)
                .bind(consent_slot(c.id))
                .execute(&self.pool)
                .await?;
                Ok(())
            }
            async fn update_consent(&self, c: &ConsentRow, expected_version: i64) -> Result<bool> {
                // A consent no longer given loses its envelopes in the same
                // durable write.
                let mut tx = self.pool.begin().await?;
                let r = sqlx::query(
                    "UPDATE consents SET status = $1, version = $2, withdrawn_at = $3, body = $4, \
                     member_loc = $7, member_ct = $8, legacy_member_id = NULL, loc_scoped = 1 \
                     WHERE consent_id = $5 AND version = $6",
                )
                .bind(&c.status)
                .bind(c.version)
                .bind(c.withdrawn_at.map(hour_ms))
                .bind(self.seal_body(MetaTable::Consents, c.id.as_bytes(), &c.body)?)
                .bind(c.id)
                .bind(expected_version)
                .bind(self.consent_loc(c.member, c.org)?)
                .bind(self.seal_member(MetaTable::Consents, c.id.as_bytes(), c.member)?)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if c.status != "given" {
                    // Pending ones too (a change not yet released).
                    for table in ["consent_envelopes", "consent_envelopes_pending"] {
                        sqlx::query(&format!("DELETE FROM {table} WHERE consent_id = $1"))
                            .bind(c.id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(true)
            }
            async fn consent(&self, id: ConsentId) -> Result<Option<ConsentRow>> {
                sqlx::query("SELECT * FROM consents WHERE consent_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(|r| self.consent_row(r))
                    .transpose()
            }
            async fn consents_between(&self, org: OrgId, member: MemberId) -> Result<Vec<ConsentRow>> {
                sqlx::query("SELECT * FROM consents WHERE org_id = $1 AND member_loc = $2")
                    .bind(org)
                    .bind(self.consent_loc(member, org)?)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| self.consent_row(r))
                    .collect()
            }
            async fn consents_of_member(&self, member: MemberId) -> Result<Vec<ConsentRow>> {
                // Located per organisation: each organisation's in turn.
                let orgs: Vec<Vec<u8>> = sqlx::query_scalar(crate::meta::CONSENT_ORGS)
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::new();
                for loc in self.consent_locs(member, &orgs)? {
                    for r in sqlx::query("SELECT * FROM consents WHERE member_loc = $1")
                        .bind(loc)
                        .fetch_all(&self.pool)
                        .await?
                    {
                        out.push(self.consent_row(&r)?);
                    }
                }
                out.sort_by(|a: &ConsentRow, b: &ConsentRow| {
                    (a.given_at, a.id.as_bytes()).cmp(&(b.given_at, b.id.as_bytes()))
                });
                Ok(out)
            }
            async fn consents_for_request(&self, request: ConsentRequestId) -> Result<Vec<ConsentRow>> {
                sqlx::query("SELECT * FROM consents WHERE request_id = $1 AND status IN ('given', 'withdrawn') ORDER BY given_at, consent_id")
                    .bind(request)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| self.consent_row(r))
                    .collect()
            }
            async fn record_gpc(&self, member: MemberId, at: Timestamp) -> Result<Timestamp> {
                // The hour in clear, the exact time sealed to the row (the
                // decisions compare it with the consents' exact times).
                let loc = self.loc(MetaTable::MemberGpc, member)?;
                sqlx::query("INSERT INTO member_gpc (member_loc, since, since_ct) VALUES ($1, $2, $3) ON CONFLICT (member_loc) DO NOTHING")
                    .bind(loc.clone())
                    .bind(hour_ms(at))
                    .bind(self.seal_time(MetaTable::MemberGpc, &loc, at)?)
                    .execute(&self.pool)
                    .await?;
                Ok(self.gpc_since(member).await?.unwrap_or(at))
            }
            async fn gpc_since(&self, member: MemberId) -> Result<Option<Timestamp>> {
                let loc = self.loc(MetaTable::MemberGpc, member)?;
                let row = sqlx::query("SELECT since, since_ct FROM member_gpc WHERE member_loc = $1")
                    .bind(loc.clone())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| self.open_time(MetaTable::MemberGpc, &loc, r.try_get("since_ct")?, r.try_get("since")?))
                    .transpose()
            }
        }

        #[async_trait]
        impl OfferStore for SqlStore<$pool> {
            async fn insert_offer(&self, o: &OfferRow) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO offers (offer_id, org_id, status, version, created_at, updated_at, valid_until, body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(o.id)
                .bind(o.org)
                .bind(&o.status)
                .bind(o.version)
                .bind(o.created_at.unix_millis())
                .bind(o.updated_at.unix_millis())
                .bind(o.valid_until.unix_millis())
                .bind(&o.body)
                .execute(&mut *tx)
                .await?;
                // Each count starts at its mask (issue 13): no true count in clear.
                let (masks, sealed) = self.fresh_counter_masks(o.id.as_bytes())?;
                sqlx::query("INSERT INTO offer_counters (offer_id, reached, accepted, released, counts_ct) VALUES ($1, $2, $3, NULL, $4)")
                    .bind(o.id)
                    .bind(masks[0])
                    .bind(masks[1])
                    .bind(sealed)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
            async fn offer(&self, id: OfferId) -> Result<Option<OfferRow>> {
                sqlx::query("SELECT * FROM offers WHERE offer_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::offer_row)
                    .transpose()
            }
            async fn update_offer(&self, o: &OfferRow, expected_version: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE offers SET status = $1, version = $2, updated_at = $3, valid_until = $4, body = $5 \
                     WHERE offer_id = $6 AND version = $7",
                )
                .bind(&o.status)
                .bind(o.version)
                .bind(o.updated_at.unix_millis())
                .bind(o.valid_until.unix_millis())
                .bind(&o.body)
                .bind(o.id)
                .bind(expected_version)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn offers_by_org(&self, org: OrgId) -> Result<Vec<OfferRow>> {
                sqlx::query("SELECT * FROM offers WHERE org_id = $1 ORDER BY created_at, offer_id")
                    .bind(org)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(Self::offer_row)
                    .collect()
            }
            async fn active_offers(&self, now: Timestamp) -> Result<Vec<OfferRow>> {
                sqlx::query(
                    "SELECT o.* FROM offers o JOIN organisations g ON g.org_id = o.org_id \
                     WHERE o.status = 'active' AND o.valid_until > $1 AND g.deleted_at IS NULL \
                     ORDER BY o.created_at, o.offer_id",
                )
                .bind(now.unix_millis())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Self::offer_row)
                .collect()
            }
            async fn offers_stamp(&self) -> Result<(u64, Timestamp)> {
                let row = sqlx::query("SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) + (SELECT COUNT(*) FROM organisations WHERE deleted_at IS NOT NULL) AS n, COALESCE(MAX(updated_at), 0) AS latest FROM offers")
                    .fetch_one(&self.pool)
                    .await?;
                Ok((
                    seq_u64(row.try_get("n")?)?,
                    Timestamp::from_unix_millis(row.try_get("latest")?),
                ))
            }
            async fn count_offer_events(&self, offer: OfferId, reached: u64, accepted: u64) -> Result<()> {
                sqlx::query("UPDATE offer_counters SET reached = reached + $1, accepted = accepted + $2 WHERE offer_id = $3")
                    .bind(seq_i64(reached)?)
                    .bind(seq_i64(accepted)?)
                    .bind(offer)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn offer_counters(&self, offer: OfferId) -> Result<Option<OfferCounters>> {
                let row = sqlx::query("SELECT reached, accepted, released, release_seq, release_due, counts_ct FROM offer_counters WHERE offer_id = $1")
                    .bind(offer)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row| {
                    // Masked and sealed (issue 13), or an older node's row in clear.
                    let sealed: Option<Vec<u8>> = row.try_get("counts_ct")?;
                    let masks = match &sealed {
                        Some(ct) => self.open_counter_masks(offer.as_bytes(), ct)?,
                        None => [0, 0],
                    };
                    let count = |col: &str, mask: i64| -> Result<u64> {
                        let v: i64 = row.try_get(col)?;
                        seq_u64(v.checked_sub(mask).ok_or_else(|| corrupt("offer_counters"))?)
                    };
                    let released: Option<Vec<u8>> = row.try_get("released")?;
                    Ok(OfferCounters {
                        reached: count("reached", masks[0])?,
                        accepted: count("accepted", masks[1])?,
                        released: match (released, sealed.is_some()) {
                            (Some(r), true) => Some(self.open_released(offer.as_bytes(), &r)?),
                            (r, _) => r,
                        },
                        release_seq: row.try_get("release_seq")?,
                        release_due: row
                            .try_get::<Option<i64>, _>("release_due")?
                            .map(Timestamp::from_unix_millis),
                    })
                })
                .transpose()
            }
            async fn replace_offer_release(
                &self,
                offer: OfferId,
                expected_seq: i64,
                released: &[u8],
                due: Option<Timestamp>,
            ) -> Result<bool> {
                // Sealed, unless the row is an older node's not yet sealed.
                let r = sqlx::query(
                    "UPDATE offer_counters SET released = CASE WHEN counts_ct IS NULL THEN $1 ELSE $5 END, \
                     release_due = $2, release_seq = release_seq + 1 \
                     WHERE offer_id = $3 AND release_seq = $4",
                )
                .bind(released)
                .bind(due.map(Timestamp::unix_millis))
                .bind(offer)
                .bind(expected_seq)
                .bind(self.seal_released(offer.as_bytes(), released)?)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn offers_release_due(&self, now: Timestamp) -> Result<Vec<OfferId>> {
                let rows = sqlx::query(
                    "SELECT offer_id FROM offer_counters WHERE release_due IS NOT NULL AND release_due <= $1 ORDER BY release_due, offer_id",
                )
                .bind(now.unix_millis())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(r.try_get::<OfferId, _>("offer_id")?)
                    })
                    .collect()
            }
            async fn count_live_offers(&self, org: OrgId, now: Timestamp) -> Result<u64> {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n FROM offers WHERE org_id = $1 AND status IN ('active', 'pending_partners') AND valid_until > $2",
                )
                .bind(org)
                .bind(now.unix_millis())
                .fetch_one(&self.pool)
                .await?;
                seq_u64(row.try_get("n")?)
            }
        }

        #[async_trait]
        impl CredentialStore for SqlStore<$pool> {
            async fn ensure_federation_issuer(&self, row: &CredentialIssuerRow) -> Result<CredentialIssuerRow> {
                sqlx::query(
                    "INSERT INTO credential_federation_issuer (slot, key_id, public_key, sealed_secret, created_at) \
                     VALUES (1, $1, $2, $3, $4) ON CONFLICT (slot) DO NOTHING",
                )
                .bind(&row.key_id)
                .bind(&row.public_key)
                .bind(&row.sealed_secret)
                .bind(row.created_at.unix_millis())
                .execute(&self.pool)
                .await?;
                self.federation_issuer().await?.ok_or_else(|| corrupt("credential_federation_issuer"))
            }
            async fn federation_issuer(&self) -> Result<Option<CredentialIssuerRow>> {
                sqlx::query("SELECT key_id, public_key, sealed_secret, created_at FROM credential_federation_issuer WHERE slot = 1")
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::issuer_row)
                    .transpose()
            }
            async fn insert_credential_code(&self, row: &CredentialCodeRow) -> Result<bool> {
                let mut tx = $begin(&self.pool).await?;
                let reserved = sqlx::query(
                    "INSERT INTO credential_status (org_id, status_index, revoked_at) VALUES ($1, $2, NULL) \
                     ON CONFLICT (status_index) DO NOTHING",
                )
                .bind(row.org_id)
                .bind(i64::from(row.status_index))
                .execute(&mut *tx)
                .await?;
                if reserved.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO credential_codes (code_hash, org_id, claims_json, status_index, created_at, expires_at, redeemed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(row.code_hash.to_vec())
                .bind(row.org_id)
                .bind(&row.claims_json)
                .bind(i64::from(row.status_index))
                .bind(row.created_at.unix_millis())
                .bind(row.expires_at.unix_millis())
                .bind(row.redeemed_at.map(Timestamp::unix_millis))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
            async fn redeem_credential_code(&self, code_hash: &[u8; 32], now: Timestamp) -> Result<Option<CredentialCodeRow>> {
                // One conditional UPDATE: of concurrent redemptions, only the
                // first to write matches `redeemed_at IS NULL`.
                sqlx::query(
                    "UPDATE credential_codes SET redeemed_at = $2 \
                     WHERE code_hash = $1 AND redeemed_at IS NULL AND expires_at > $2 \
                     AND NOT EXISTS (SELECT 1 FROM credential_status s \
                     WHERE s.status_index = credential_codes.status_index AND s.revoked_at IS NOT NULL) \
                     RETURNING *",
                )
                .bind(code_hash.to_vec())
                .bind(now.unix_millis())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(Self::credential_code_row)
                .transpose()
            }
            async fn release_credential_code(&self, code_hash: &[u8; 32]) -> Result<bool> {
                let r = sqlx::query("UPDATE credential_codes SET redeemed_at = NULL WHERE code_hash = $1 AND redeemed_at IS NOT NULL")
                    .bind(code_hash.to_vec())
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn forget_credential_claims(&self, code_hash: &[u8; 32]) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE credential_codes SET claims_json = $2 WHERE code_hash = $1 AND redeemed_at IS NOT NULL",
                )
                .bind(code_hash.to_vec())
                .bind(Vec::<u8>::new())
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn revoke_credential(&self, org: OrgId, index: u32, at: Timestamp) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE credential_status SET revoked_at = COALESCE(revoked_at, $3) WHERE org_id = $1 AND status_index = $2",
                )
                .bind(org)
                .bind(i64::from(index))
                .bind(at.unix_millis())
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn revoked_credentials(&self) -> Result<Vec<u32>> {
                let indexes: Vec<i64> = sqlx::query_scalar(
                    "SELECT status_index FROM credential_status WHERE revoked_at IS NOT NULL ORDER BY status_index",
                )
                .fetch_all(&self.pool)
                .await?;
                indexes
                    .into_iter()
                    .map(|i| status_u32(i, "credential_status.status_index"))
                    .collect()
            }
            async fn credential_issuing_orgs(&self) -> Result<Vec<OrgId>> {
                let ids: Vec<OrgId> = sqlx::query_scalar(
                    "SELECT g.org_id FROM organisations g WHERE g.deleted_at IS NULL \
                     AND EXISTS (SELECT 1 FROM credential_status s WHERE s.org_id = g.org_id) ORDER BY g.org_id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(ids)
            }
            async fn insert_credential_challenge(&self, row: &CredentialChallengeRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO credential_challenges (nonce, org_id, challenge_json, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(row.nonce.to_vec())
                .bind(row.org_id)
                .bind(&row.challenge_json)
                .bind(row.created_at.unix_millis())
                .bind(row.expires_at.unix_millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }
            async fn take_credential_challenge(
                &self,
                org: OrgId,
                nonce: &[u8; 32],
                now: Timestamp,
            ) -> Result<Option<CredentialChallengeRow>> {
                // One DELETE … RETURNING: of concurrent takers, only one gets
                // the row; an expired challenge goes too, but is not returned.
                let taken = sqlx::query("DELETE FROM credential_challenges WHERE nonce = $1 AND org_id = $2 RETURNING *")
                    .bind(nonce.to_vec())
                    .bind(org)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::challenge_row)
                    .transpose()?;
                Ok(taken.filter(|c| c.expires_at > now))
            }
            async fn open_credential_challenge(
                &self,
                nonce: &[u8; 32],
                now: Timestamp,
            ) -> Result<Option<CredentialChallengeRow>> {
                let row = sqlx::query("SELECT * FROM credential_challenges WHERE nonce = $1")
                    .bind(nonce.to_vec())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::challenge_row)
                    .transpose()?;
                Ok(row.filter(|c| c.expires_at > now))
            }
            async fn purge_expired_credentials(&self, now: Timestamp) -> Result<u64> {
                let mut n = 0;
                for sql in [
                    "DELETE FROM credential_challenges WHERE expires_at <= $1",
                    "DELETE FROM credential_codes WHERE expires_at <= $1",
                ] {
                    n += sqlx::query(sql).bind(now.unix_millis()).execute(&self.pool).await?.rows_affected();
                }
                Ok(n)
            }
        }

        #[async_trait]
        impl Store for SqlStore<$pool> {
            fn backend(&self) -> Backend {
                $backend
            }
            async fn check_integrity(&self, level: IntegrityLevel) -> Result<()> {
                integrity_check(&self.pool, level).await
            }
            async fn close(&self) {
                self.close_compaction().await;
                self.pool.close().await;
            }
        }
    };
}

/// Maps a pool type to its database, so the macro can name row types.
/// A consent row's place in the file (SQLite's rowid, migration 0035): the
/// low 60 bits of its random id, so consents sit in random order, not in the
/// order written (a member's grants at two co-ops are not neighbours).
pub(crate) fn consent_slot(id: ConsentId) -> i64 {
    let b = id.as_bytes();
    let low = u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    i64::try_from(low & 0x0FFF_FFFF_FFFF_FFFF).unwrap_or(0)
}

pub trait PoolDb {
    type Db: sqlx::Database;
}
impl PoolDb for SqlitePool {
    type Db = sqlx::Sqlite;
}
impl PoolDb for PgPool {
    type Db = sqlx::Postgres;
}

pub(crate) async fn begin_sqlite(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    // IMMEDIATE takes the write lock up front, so the head read and the appends
    // form one serialised step even with another process on the same file.
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

pub(crate) async fn begin_postgres(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    Ok(pool.begin().await?)
}

async fn integrity_check<P: IntegrityCheck>(pool: &P, level: IntegrityLevel) -> Result<()> {
    pool.integrity_check(level).await
}

trait IntegrityCheck {
    async fn integrity_check(&self, level: IntegrityLevel) -> Result<()>;
}

impl IntegrityCheck for SqlitePool {
    async fn integrity_check(&self, level: IntegrityLevel) -> Result<()> {
        use sqlx::{ConnectOptions, Connection};
        // A connection of its own, not one of the pool's: the check reads the
        // whole file, and closing the pool (at shutdown) must not wait for it.
        // In WAL mode it is one long read transaction: writers go on.
        let mut conn = self.connect_options().connect().await?;
        let pragma = match level {
            IntegrityLevel::Quick => "PRAGMA quick_check",
            IntegrityLevel::Full => "PRAGMA integrity_check",
        };
        let rows: Vec<String> = sqlx::query_scalar(pragma).fetch_all(&mut conn).await?;
        let _ = conn.close().await;
        if rows.len() == 1 && rows[0] == "ok" {
            Ok(())
        } else {
            // The rows name pages and tables, never stored values; only their
            // number goes into the message.
            Err(StorageError::Corrupt(format!(
                "SQLite {} found {} problem(s); restore the database from a backup",
                &pragma[7..],
                rows.len()
            )))
        }
    }
}

impl IntegrityCheck for PgPool {
    async fn integrity_check(&self, _level: IntegrityLevel) -> Result<()> {
        // PostgreSQL checks its own pages (data checksums; `pg_amcheck` for a
        // full check): here, only that the server answers.
        sqlx::query("SELECT 1").execute(self).await?;
        Ok(())
    }
}

impl_store!(SqlitePool, Backend::Sqlite, begin_sqlite);
impl_store!(PgPool, Backend::Postgres, begin_postgres);
