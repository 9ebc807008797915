//! The vault: each member's personal data store.
//!
//! Members sign up (confirming their address), log in with a passphrase
//! (Argon2id, within the passphrase hasher's bound) and hold their own keys ([`keys`]): each
//! member has a random data key, stored only wrapped under their passphrase,
//! their recovery code and, while they are logged in, each session token;
//! every record and the login e-mail are sealed under it with associated data
//! binding member id, object id and format version. Erasure destroys every
//! wrap first (crypto-shredding), then deletes the rows.
//!
//! Every operation writes an audit entry before it answers; reads are logged
//! before any content is returned. Record writes are group-committed by one
//! writer task (`writer`), each answered once it and its audit entry are durable.
//! Record reads that arrive together go to the database as one query
//! (`reader`): one round trip per batch, nothing cached.
#![forbid(unsafe_code)]

mod erasure;
pub mod failed_logins;
pub mod keys;
pub mod mail;
mod memory_outbox;
mod reader;
mod records;
mod writer;

pub use erasure::{ErasureSchedule, ERASURE_RECEIPT_PREFIX};
pub use keys::{LegacyReport, LoggedIn, SignedUp, CONFIRM_PREFIX, RECOVERY_NOTICE};
pub use mail::{Mail, Outbox};
pub use memory_outbox::{find_token, MemoryOutbox};
pub use records::padded;

use me2b_audit::{AuditError, AuditLog};
use me2b_crypto::{Aad, CryptoError, DataKey, Keyring, PassphraseHasher, SecretToken};
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::record::RecordContent;
use me2b_domain::{Clock, MemberId, OrgId, Random, RecordId, Timestamp};
use me2b_storage::{RecordWrite, StorageError, Store, StoredRecord};
use std::sync::Arc;

/// Prefix of member session tokens.
pub const SESSION_PREFIX: &str = "me2b_s_";
/// Largest page of records or audit entries returned at once.
pub const MAX_PAGE: u64 = 1000;

/// Vault errors. None carries personal data.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    #[error("this confirmation token is unknown, was used already or has expired; sign up again")]
    UnknownConfirmation,
    #[error(transparent)]
    RecoveryCode(CryptoError),
    #[error("e-mail address or passphrase is wrong")]
    InvalidCredentials,
    #[error("the session token is not valid")]
    InvalidSession,
    #[error("the session has expired; log in again")]
    SessionExpired,
    #[error("no such record")]
    RecordNotFound,
    #[error("the record changed since revision {expected}; read it again")]
    RevisionConflict { expected: i64 },
    /// Well-formed content the node does not accept, e.g. an interest in a
    /// topic outside the taxonomy. The message names the field, not the value.
    #[error("{field}: {reason}")]
    InvalidContent {
        field: &'static str,
        reason: &'static str,
    },
    #[error(
        "stored data failed authentication ({what}): it is corrupted or the master key is wrong"
    )]
    Integrity { what: &'static str },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Another capability holding data about members, told to forget one when the
/// member is erased. It runs after the member's key is destroyed and before
/// their rows are deleted; if it fails, the erasure stays pending (the
/// member's data is already unreadable) and is retried at the next start.
#[async_trait::async_trait]
pub trait ErasureHook: Send + Sync + std::fmt::Debug {
    /// Forgets the member. The error is a message fit for the operator's log.
    async fn forget(&self, member: MemberId) -> Result<(), String>;
}

/// The organisations that received a member's data (GDPR Art. 19), asked
/// when the member is erased, after their key is destroyed and before their
/// consent records go: each with its own pseudonym for the member, never an
/// identifier another organisation knows. If it fails the erasure stays
/// pending, like a failed [`ErasureHook`].
#[async_trait::async_trait]
pub trait RecipientRegister: Send + Sync + std::fmt::Debug {
    /// (organisation, its pseudonym for the member), one per organisation.
    async fn recipients(&self, member: MemberId) -> Result<Vec<(OrgId, String)>, String>;
}

/// Work that runs for a member in their session (the consent service keeps
/// the envelopes of their consents up to date): told when a record changes
/// and when the member logs in. Errors are messages for the operator's log;
/// they never undo the member's write.
#[async_trait::async_trait]
pub trait SessionHook: Send + Sync + std::fmt::Debug {
    /// A record was created (`old` None), updated, or deleted (`new` None).
    async fn record_changed(
        &self,
        s: &MemberSession,
        old: Option<&RecordContent>,
        new: Option<&RecordContent>,
    ) -> Result<(), String>;
    /// The member logged in (or recovered): their key is at hand.
    async fn logged_in(&self, s: &MemberSession) -> Result<(), String>;
}

/// Checks a record's content against what the node knows beyond the record's
/// own shape, e.g. that an interest's topic is in the taxonomy (which lives
/// with the offers, not here). Runs before every create and update.
pub trait ContentCheck: Send + Sync + std::fmt::Debug {
    /// `Err` is [`VaultError::InvalidContent`], never echoing the value.
    fn check(&self, content: &RecordContent) -> Result<(), VaultError>;
}

/// An authenticated member, holding their unwrapped data key for this request.
#[derive(Debug)]
pub struct MemberSession {
    pub member: MemberId,
    pub expires_at: Timestamp,
    key: DataKey,
}

/// A record's times as stored and shown: the whole hour (issue 13,
/// "metadata at rest"). An exact time would line the record up with the
/// member's other rows and with what co-ops saw; storage lists a member's
/// records in the order they were written.
pub fn record_time(t: Timestamp) -> Timestamp {
    t.hour()
}

impl MemberSession {
    /// A digest of `data` keyed by the member's data key (see
    /// [`DataKey::keyed_digest`]): lets the node tell whether what it would
    /// seal again equals what it sealed before, without anyone who lacks the
    /// member's key being able to test guesses against it.
    pub fn keyed_digest(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        self.key.keyed_digest(purpose, data)
    }
}

/// A decrypted record, as its member reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordView {
    pub id: RecordId,
    pub revision: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub content: RecordContent,
}

/// The member's own account.
#[derive(Clone, Debug)]
pub struct MemberView {
    pub member: MemberId,
    pub email: Email,
    pub created_at: Timestamp,
    pub records: u64,
}

/// A new login session. The token is shown once.
#[derive(Debug)]
pub struct NewSession {
    pub member: MemberId,
    pub token: SecretToken,
    pub expires_at: Timestamp,
}

/// How long a session looked up in the database is trusted from memory. Logout
/// and erasure on this node take effect at once; on another node sharing the
/// database (PostgreSQL), within this window.
pub const SESSION_CACHE_SECONDS: i64 = 10;
const SESSION_CACHE_MAX: usize = 100_000;

#[derive(Clone)]
struct CachedSession {
    member: MemberId,
    expires_at: Timestamp,
    wrapped_dek: Vec<u8>,
    fetched_at: Timestamp,
}

/// Recently authenticated sessions, by token hash, so that a request does not
/// need a database round trip to authenticate. Holds keys wrapped for their
/// session tokens only (the token unwraps on each request).
#[derive(Default)]
struct SessionCache(std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedSession>>);

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCache")
    }
}

impl SessionCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], CachedSession>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
    fn get(&self, hash: &[u8; 32], now: Timestamp) -> Option<CachedSession> {
        let c = self.lock().get(hash).cloned()?;
        (now.unix_millis() - c.fetched_at.unix_millis() < SESSION_CACHE_SECONDS * 1000).then_some(c)
    }
    fn put(&self, hash: [u8; 32], c: CachedSession) {
        let mut m = self.lock();
        if m.len() >= SESSION_CACHE_MAX {
            m.clear();
        }
        m.insert(hash, c);
    }
    fn remove(&self, hash: &[u8; 32]) {
        self.lock().remove(hash);
    }
    fn remove_member(&self, member: MemberId) {
        self.lock().retain(|_, c| c.member != member);
    }
}

/// The vault service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Vault {
    sessions: Arc<SessionCache>,
    /// Failed logins not yet written to the audit log (one entry per account
    /// per minute).
    failed_logins: Arc<failed_logins::FailedLogins>,
    /// What else holds the member's data and must forget them on erasure
    /// (the data trust); set once, after the capabilities are built.
    erasure_hook: Arc<std::sync::OnceLock<Arc<dyn ErasureHook>>>,
    /// Who received the member's data: told to erase it (set once).
    recipients: Arc<std::sync::OnceLock<Arc<dyn RecipientRegister>>>,
    /// When erasures are released to organisations, and the lock every
    /// erasure and release takes (erasure.rs).
    releases: Arc<erasure::Releases>,
    /// Where sign-up confirmations and warnings go (set once by the node).
    outbox: Arc<std::sync::OnceLock<Arc<dyn Outbox>>>,
    /// What runs in members' sessions (the consent service's envelopes).
    session_hook: Arc<std::sync::OnceLock<Arc<dyn SessionHook>>>,
    /// What record content must also satisfy; set once, when the node is wired.
    content_check: Arc<std::sync::OnceLock<Arc<dyn ContentCheck>>>,
    /// The group-commit writer for records, started at the first write.
    writer: Arc<std::sync::OnceLock<writer::RecordWriter>>,
    /// The coalescing reader for records, started at the first read.
    reader: Arc<std::sync::OnceLock<reader::RecordReader>>,
    store: Arc<dyn Store>,
    keys: Arc<Keyring>,
    audit: AuditLog,
    hasher: Arc<PassphraseHasher>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    session_ttl_seconds: i64,
}

fn failed_login_event(due: failed_logins::Due) -> AuditEvent {
    let mut ev = AuditEvent::new(Actor::Anonymous, Action::MemberLoginFailed)
        .outcome(Outcome::Denied)
        .count(due.count);
    if let Some(m) = due.subject {
        ev = ev.subject(m);
    }
    ev
}

async fn flush_failed(
    tallies: &failed_logins::FailedLogins,
    audit: &AuditLog,
    now_ms: i64,
    all: bool,
) -> Result<usize, AuditError> {
    let due = tallies.due(now_ms, all);
    let n = due.len();
    if n > 0 {
        audit
            .record_all(due.into_iter().map(failed_login_event).collect())
            .await?;
    }
    Ok(n)
}

fn member_read_event(m: MemberId) -> AuditEvent {
    AuditEvent::new(Actor::Member(m), Action::MemberRead).subject(m)
}

impl Vault {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<Keyring>,
        audit: AuditLog,
        hasher: Arc<PassphraseHasher>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
        session_ttl_seconds: i64,
    ) -> Self {
        Self {
            sessions: Arc::default(),
            failed_logins: Arc::default(),
            erasure_hook: Arc::default(),
            recipients: Arc::default(),
            releases: Arc::default(),
            outbox: Arc::default(),
            session_hook: Arc::default(),
            content_check: Arc::default(),
            writer: Arc::default(),
            reader: Arc::default(),
            store,
            keys,
            audit,
            hasher,
            clock,
            rng,
            session_ttl_seconds,
        }
    }

    /// The passphrase hasher: its bound on concurrent Argon2 computations and
    /// their counters.
    pub fn passphrase_hasher(&self) -> &PassphraseHasher {
        &self.hasher
    }

    /// Sets where messages to members go (once; later calls are ignored).
    pub fn set_outbox(&self, outbox: Arc<dyn Outbox>) {
        let _ = self.outbox.set(outbox);
    }

    /// Sets what runs in members' sessions (once; later calls are ignored).
    pub fn set_session_hook(&self, hook: Arc<dyn SessionHook>) {
        let _ = self.session_hook.set(hook);
    }

    /// Resolves a presented session token.
    pub async fn authenticate(&self, token: &str) -> Result<MemberSession, VaultError> {
        if !token.starts_with(SESSION_PREFIX) || token.len() > 128 {
            return Err(VaultError::InvalidSession);
        }
        let hash = me2b_crypto::hash_token(token);
        let now = self.clock.now();
        let s = match self.sessions.get(&hash, now) {
            Some(c) => c,
            None => {
                let s = self
                    .store
                    .session(&hash)
                    .await?
                    .ok_or(VaultError::InvalidSession)?;
                // A session an older node opened carries no key: log in again.
                let c = CachedSession {
                    member: s.member,
                    expires_at: s.expires_at,
                    wrapped_dek: s.wrapped_dek.ok_or(VaultError::InvalidSession)?,
                    fetched_at: now,
                };
                self.sessions.put(hash, c.clone());
                c
            }
        };
        if s.expires_at <= now {
            self.sessions.remove(&hash);
            self.store.delete_session(&hash).await?;
            return Err(VaultError::SessionExpired);
        }
        let key = me2b_crypto::member_key::unwrap_for_session(token, s.member, &s.wrapped_dek)
            .map_err(|_| VaultError::Integrity { what: "data key" })?;
        Ok(MemberSession {
            member: s.member,
            expires_at: s.expires_at,
            key,
        })
    }

    /// Ends the session of `token`.
    pub async fn log_out(&self, session: &MemberSession, token: &str) -> Result<(), VaultError> {
        let hash = me2b_crypto::hash_token(token);
        self.sessions.remove(&hash);
        self.store.delete_session(&hash).await?;
        self.audit
            .record(
                AuditEvent::new(Actor::Member(session.member), Action::MemberLogout)
                    .subject(session.member),
            )
            .await?;
        Ok(())
    }

    /// The member's own account details, decrypted.
    #[tracing::instrument(skip_all)]
    pub async fn me(&self, s: &MemberSession) -> Result<MemberView, VaultError> {
        self.audit.record(member_read_event(s.member)).await?;
        let row = self
            .store
            .member(s.member)
            .await?
            .ok_or(VaultError::InvalidSession)?;
        let ct = row.email_ct.ok_or(VaultError::InvalidSession)?;
        let email = s
            .key
            .open(&Aad::email(s.member), &ct)
            .map_err(|_| VaultError::Integrity { what: "e-mail" })
            .and_then(|b| {
                String::from_utf8(b)
                    .ok()
                    .and_then(|t| Email::parse(&t).ok())
                    .ok_or(VaultError::Integrity { what: "e-mail" })
            })?;
        Ok(MemberView {
            member: s.member,
            email,
            created_at: row.created_at,
            records: self.store.count_records(s.member).await?,
        })
    }

    /// A page of the member's own audit view, oldest first: their entries
    /// (under their member id and the `also` subjects, their trust
    /// pseudonyms) numbered per member from `skip + 1`, to the minute, with
    /// a statement signed by the node (`me2b_audit::member`). Nothing in it
    /// moves when another member acts.
    pub async fn audit_view(
        &self,
        s: &MemberSession,
        also: &[MemberId],
        skip: u64,
        limit: u64,
    ) -> Result<me2b_audit::member::MemberView, VaultError> {
        let mut subjects = vec![s.member];
        subjects.extend_from_slice(also);
        let keys = self.keys.clone();
        let view = me2b_audit::member::member_view(
            self.store.as_ref(),
            &move |m: &[u8]| keys.sign(m),
            s.member,
            &subjects,
            skip,
            limit.min(MAX_PAGE),
        )
        .await?;
        self.audit
            .record(AuditEvent::new(Actor::Member(s.member), Action::AuditRead).subject(s.member))
            .await?;
        Ok(view)
    }

    /// Erases the member: re-checks the passphrase, destroys the wrapped data key
    /// (after which nothing of theirs can be decrypted, from this database or any
    /// backup of it), then deletes the rows.
    #[tracing::instrument(skip_all)]
    pub async fn erase(
        &self,
        s: &MemberSession,
        passphrase: Passphrase,
    ) -> Result<Option<SecretToken>, VaultError> {
        let row = self
            .store
            .member(s.member)
            .await?
            .ok_or(VaultError::InvalidSession)?;
        if !self.passphrase_matches(&row, passphrase).await? {
            self.audit
                .record(
                    AuditEvent::new(Actor::Member(s.member), Action::MemberErase)
                        .subject(s.member)
                        .outcome(Outcome::Denied),
                )
                .await?;
            return Err(VaultError::InvalidCredentials);
        }
        self.erase_member(Actor::Member(s.member), s.member).await
    }

    /// Erasure without a passphrase check: for the operator and for resuming an
    /// erasure interrupted by a crash.
    ///
    /// In steps, under the release lock (erasure.rs): the batch of the
    /// period before is settled first; then (1) every wrap of the member's
    /// data key, their address and their consent envelopes are destroyed in
    /// one write, after which nothing of theirs can be read or served; (2)
    /// the erasure hook runs (the trust forgets them); (3) their remaining
    /// rows go, except what organisations observe, which waits for the next
    /// release. A crash after (1) is finished by `resume_erasures`.
    pub async fn erase_member(
        &self,
        actor: Actor,
        member: MemberId,
    ) -> Result<Option<SecretToken>, VaultError> {
        let _one = self.releases.lock.lock().await;
        self.release_locked().await?;
        self.audit
            .record_all(vec![
                AuditEvent::new(actor, Action::MemberErase).subject(member),
                AuditEvent::new(Actor::Node, Action::DataKeyDestroy).subject(member),
            ])
            .await?;
        self.sessions.remove_member(member);
        self.store.shred_member(member).await?;
        let receipt = self.finish_erasure(member).await?;
        self.sessions.remove_member(member);
        Ok(receipt)
    }

    /// Steps (2) and (3) of an erasure, under the release lock: the other
    /// capabilities forget the member, the recipients' erasure requests are
    /// made, and the rows go but those organisations observe. The erasure
    /// receipt (None when a step failed: the erasure stays pending).
    async fn finish_erasure(&self, member: MemberId) -> Result<Option<SecretToken>, VaultError> {
        if !self.forget_elsewhere(member).await {
            return Ok(None);
        }
        let recipients = match self.recipients.get() {
            None => Vec::new(),
            Some(r) => match r.recipients(member).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "an erasure's recipients could not be listed; it stays pending and is retried at the next start");
                    return Ok(None);
                }
            },
        };
        let receipt = SecretToken::generate(ERASURE_RECEIPT_PREFIX, self.rng.as_ref());
        let mut requests = Vec::with_capacity(recipients.len());
        for (i, (org, subject)) in recipients.into_iter().enumerate() {
            let mut id = [0u8; 16];
            self.rng.fill(&mut id);
            requests.push(me2b_storage::ErasureRequestRow {
                id,
                org,
                subject,
                receipt_tag: me2b_crypto::receipt_tag(
                    receipt.expose(),
                    u32::try_from(i).unwrap_or(u32::MAX),
                ),
                released_at: None,
                confirmed_at: None,
            });
        }
        let held = self
            .store
            .erasure_hold(member, self.clock.now(), &requests, &receipt.hash())
            .await?;
        Ok(held.then_some(receipt))
    }

    /// Sets who is told to erase an erased member's data (once).
    pub fn set_recipient_register(&self, r: Arc<dyn RecipientRegister>) {
        let _ = self.recipients.set(r);
    }

    /// Sets what else must forget an erased member (once; later calls are ignored).
    pub fn set_erasure_hook(&self, hook: Arc<dyn ErasureHook>) {
        let _ = self.erasure_hook.set(hook);
    }

    /// Sets the check every created or updated record's content must pass.
    pub fn set_content_check(&self, check: Arc<dyn ContentCheck>) {
        let _ = self.content_check.set(check);
    }

    fn writer(&self) -> &writer::RecordWriter {
        self.writer
            .get_or_init(|| writer::RecordWriter::start(self.store.clone(), self.audit.clone()))
    }

    fn reader(&self) -> &reader::RecordReader {
        self.reader
            .get_or_init(|| reader::RecordReader::start(self.store.clone()))
    }

    fn check_content(&self, content: &RecordContent) -> Result<(), VaultError> {
        match self.content_check.get() {
            Some(c) => c.check(content),
            None => Ok(()),
        }
    }

    /// Runs the erasure hook; false when it failed and the erasure must stay
    /// pending (the member can no longer log in or be read either way).
    async fn forget_elsewhere(&self, member: MemberId) -> bool {
        let Some(hook) = self.erasure_hook.get() else {
            return true;
        };
        match hook.forget(member).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "an erasure could not reach the data trust; it stays pending and is retried at the next start");
                false
            }
        }
    }

    /// Writes the failed-login counts whose minute is over (with `all`, every
    /// count: at shutdown). Returns how many entries were written.
    pub async fn flush_failed_logins(&self, all: bool) -> Result<usize, VaultError> {
        let now = self.clock.now().unix_millis();
        Ok(flush_failed(&self.failed_logins, &self.audit, now, all).await?)
    }

    /// Starts the task that writes held-back failed-login counts every
    /// [`failed_logins::FLUSH_SECONDS`]; it ends when the vault is dropped.
    pub fn start_failed_login_flusher(&self) {
        let tallies = Arc::downgrade(&self.failed_logins);
        let audit = self.audit.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(std::time::Duration::from_secs(failed_logins::FLUSH_SECONDS));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(tallies) = tallies.upgrade() else {
                    return;
                };
                let now = clock.now().unix_millis();
                if let Err(e) = flush_failed(&tallies, &audit, now, false).await {
                    tracing::warn!(error = %e, "could not write the failed-login counts");
                }
            }
        });
    }

    /// Finishes erasures that a crash interrupted after the key was destroyed.
    pub async fn resume_erasures(&self) -> Result<usize, VaultError> {
        let pending = self.store.members_pending_erasure().await?;
        let mut done = 0;
        for m in &pending {
            let _one = self.releases.lock.lock().await;
            // The member never saw this receipt (their erasure was cut
            // short); their recipients are told all the same.
            if self.finish_erasure(*m).await?.is_some() {
                done += 1;
            }
        }
        Ok(done)
    }
}
