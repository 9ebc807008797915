//! Storage for me2b: one small trait per capability, and two adapters (SQLite and
//! PostgreSQL, through `sqlx`) that implement all of them from the same SQL.
//!
//! The storage layer only ever sees ciphertext, keyed hashes and opaque ids: it
//! cannot leak personal data because it is never given any.
#![forbid(unsafe_code)]

mod audit_tags;
mod combinations;
mod compaction;
mod consent_release;
mod erasure;
mod intents;
mod keys;
mod loyalty;
mod member_rows;
mod meta;
mod org_credentials;
mod privacy;
mod rectification;
mod rights;
mod sql;
mod trust;
mod types;
mod webhooks;

pub use audit_tags::REKEYED_AUDIT_TAGS;
pub use combinations::CombinationStore;
pub use consent_release::{ConsentReleaseStore, ReleasedConsent};
pub use erasure::{Confirmed, ErasedTag, ErasureRequestRow, ErasureStore};
pub use keys::{EnvelopeStore, LegacyMember, MemberKeyStore, SignUpStore};
pub use loyalty::{LoyaltyAccount, LoyaltyDay, LoyaltyStore, MemberAuditStore, NewRedemptionToken};
pub use member_rows::member_tables;
pub use meta::{MetadataStore, REKEYED_CONSENTS, REKEYED_RECTIFICATIONS, REKEYED_TRUST};
pub use org_credentials::{AudienceProofRow, OrgCredentialRow, OrgCredentialStore};
pub use rectification::{DueRectification, RectificationRow, RectificationStore};
pub use rights::{ImportedHistoryRow, RightsStore};
pub use sql::{open, redact_url, Backend, SqlStore};
pub use types::*;
pub use webhooks::{DeliveryState, DueDelivery, WebhookRow, WebhookStore};

use async_trait::async_trait;
use me2b_domain::audit::{AuditEntry, AuditEvent, ChainHash, Checkpoint};
use me2b_domain::{
    ApiKeyId, ConsentId, ConsentRequestId, MemberId, OfferId, OrgId, RecordId, SharingId,
    Timestamp, TrustReceiptId,
};

/// Storage errors. Messages name tables and operations, never stored values.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("a row with the same unique key already exists")]
    Conflict,
    #[error("the database could not be opened at {location}: {source}")]
    Open {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the audit log head moved during {attempts} attempts to append; giving up")]
    AuditContention { attempts: u32 },
    #[error("unsupported database URL (use sqlite://… or postgres://…)")]
    UnsupportedUrl,
    #[error("the store has no metadata keys (set them before member data is touched)")]
    NoMetadataKeys,
    /// A row for a member with no active account (what a foreign key on
    /// the member id refused before issue 13 took the id out of the row).
    #[error("no active member for this row")]
    NoSuchMember,
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StorageError::Conflict;
            }
        }
        // A stored value that does not parse (a typed id of the wrong
        // length): the column's name, never the value.
        if let sqlx::Error::ColumnDecode { index, .. } = &e {
            return StorageError::Corrupt(format!("column {index} does not decode"));
        }
        StorageError::Database(e)
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Small key-value facts about the node (schema-independent): key check value,
/// node public key.
#[async_trait]
pub trait NodeMetaStore {
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` under `key` unless present; returns whether it was stored.
    async fn put_meta_if_absent(&self, key: &str, value: &[u8]) -> Result<bool>;
}

/// Member accounts.
#[async_trait]
pub trait MemberStore {
    /// Fails with [`StorageError::Conflict`] when the e-mail index is taken.
    async fn insert_member(&self, m: &NewMember) -> Result<()>;
    async fn member(&self, id: MemberId) -> Result<Option<MemberRow>>;
    async fn member_by_email_index(&self, index: &[u8; 32]) -> Result<Option<MemberRow>>;
    /// Erasure, step 1 (crypto-shredding): destroys the wrapped data key and the
    /// login credentials in one durable write. Returns false if no such member.
    async fn shred_member(&self, id: MemberId) -> Result<bool>;
    /// Erasure, step 2: deletes the member's sessions, records and account row.
    async fn delete_member_rows(&self, id: MemberId) -> Result<()>;
    /// Empties the SQLite write-ahead log if an erasure's checkpoint could
    /// not (a reader held it): the sweeper calls it every minute. Nothing
    /// to do on PostgreSQL.
    async fn finish_scrub(&self);
    /// Empties the SQLite write-ahead log if no reader holds it, without
    /// waiting (the sweeper, every minute): the log keeps the commits since
    /// the last checkpoint in order, so a copy of it taken from a running
    /// node paired every row one member wrote in one commit (adv9: 16 of
    /// 16 with a 1,000-page log). Nothing to do on PostgreSQL.
    async fn trim_log(&self);
    /// Rewrites the SQLite file in key order (`VACUUM`, then the log
    /// emptied): run at a start that re-keyed an older node's rows, so the
    /// cells they left in the pages' free space, and the insertion order
    /// the rows' cells kept within their pages, are gone from the file.
    /// On PostgreSQL, `CLUSTER` of the member tables on their primary keys
    /// (ARCHITECTURE says what remains there).
    async fn compact(&self) -> Result<()>;
    /// [`Self::compact`] if anything was written since the last time this
    /// ran (always on its first run): `me2b serve` calls it every
    /// `[storage] compact_every`, so rows written since keep the order they
    /// were written in for at most that long, and an idle node's file is
    /// left alone. True when it compacted.
    async fn compact_if_written(&self) -> Result<bool>;
    /// Members whose erasure stopped between step 1 and step 2.
    async fn members_pending_erasure(&self) -> Result<Vec<MemberId>>;
    async fn count_members(&self) -> Result<u64>;
}

/// Login sessions, by token hash.
#[async_trait]
pub trait SessionStore {
    async fn insert_session(&self, s: &SessionRow) -> Result<()>;
    /// The session and the member's data key wrapped for it, in one read
    /// (none for a member being erased).
    async fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionWithKey>>;
    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<bool>;
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;
}

/// Encrypted vault records.
#[async_trait]
pub trait VaultStore {
    async fn insert_record(&self, r: &StoredRecord) -> Result<()>;
    async fn record(&self, member: MemberId, id: RecordId) -> Result<Option<StoredRecord>>;
    /// Several members' records in one round trip (per 64 ids), in the
    /// order asked: each the member's own, or none (coalesced reads).
    async fn records(&self, wanted: &[(MemberId, RecordId)]) -> Result<Vec<Option<StoredRecord>>>;
    /// The member's records, oldest first.
    async fn list_records(
        &self,
        member: MemberId,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<StoredRecord>>;
    /// Replaces a record's ciphertext if its revision is still `expected_revision`.
    async fn update_record(&self, r: &StoredRecord, expected_revision: i64) -> Result<bool>;
    async fn delete_record(&self, member: MemberId, id: RecordId) -> Result<bool>;
    async fn count_records(&self, member: MemberId) -> Result<u64>;
    /// Applies `writes` in order in one transaction: all or none, durable when
    /// this returns. Per write, whether it changed a row (an update whose
    /// revision moved on, or a delete of a missing record, did not).
    async fn apply_record_writes(&self, writes: &[RecordWrite]) -> Result<Vec<bool>>;
}

/// Organisations and their API keys.
#[async_trait]
pub trait OrgStore {
    /// Fails with [`StorageError::Conflict`] when the name is taken.
    async fn insert_org(&self, org: &OrgRow) -> Result<()>;
    async fn org(&self, id: OrgId) -> Result<Option<OrgRow>>;
    async fn list_orgs(&self) -> Result<Vec<OrgRow>>;
    /// Marks the organisation deleted and revokes all its keys.
    async fn delete_org(&self, id: OrgId, at: Timestamp) -> Result<bool>;
    async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<()>;
    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKeyRow, OrgRow)>>;
    async fn api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyRow>>;
}

/// Signs a batch's head: `(seq, hash, at)` of its last entry → signature.
pub type HeadSigner<'a> = dyn Fn(u64, &ChainHash, Timestamp) -> Vec<u8> + Send + Sync + 'a;

/// The append-only, hash-chained audit log.
#[async_trait]
pub trait AuditStore {
    /// Appends `events` in order, linking each to the current head inside one
    /// transaction, and returns the stored entries. Concurrent appenders (another
    /// process on the same database) are detected and retried. No signed head:
    /// the node's writer uses [`AuditStore::append_audit_signed`].
    async fn append_audit(&self, at: Timestamp, events: &[AuditEvent]) -> Result<Vec<AuditEntry>>;
    /// As [`AuditStore::append_audit`], and the batch's last entry carries
    /// `sign(seq, hash, at)` (its signed head), in the same transaction.
    async fn append_audit_signed(
        &self,
        at: Timestamp,
        events: &[AuditEvent],
        sign: &HeadSigner<'_>,
    ) -> Result<Vec<AuditEntry>>;
    /// The signed heads stored on entries with `after < seq <= upto`, in order
    /// (as checkpoints: seq, hash, the entry's time, the signature).
    async fn audit_signed_heads(&self, after: u64, upto: u64) -> Result<Vec<Checkpoint>>;
    async fn audit_head(&self) -> Result<Option<(u64, ChainHash)>>;
    /// Entries with `seq > after`, in order.
    async fn audit_entries(&self, after: u64, limit: u64) -> Result<Vec<AuditEntry>>;
    /// Entries whose subject is `member`, with `seq > after`, in order.
    async fn audit_entries_for(
        &self,
        member: MemberId,
        after: u64,
        limit: u64,
    ) -> Result<Vec<AuditEntry>>;
    async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<()>;
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>>;
}

/// Consent requests, members' consent records and GPC opt-outs.
#[async_trait]
pub trait ConsentStore {
    async fn insert_consent_request(&self, r: &ConsentRequestRow) -> Result<()>;
    async fn consent_request(&self, id: ConsentRequestId) -> Result<Option<ConsentRequestRow>>;
    /// All requests, or those of one organisation, oldest first.
    async fn consent_requests(&self, org: Option<OrgId>) -> Result<Vec<ConsentRequestRow>>;
    async fn insert_consent(&self, c: &ConsentRow) -> Result<()>;
    /// Replaces a record if its version is still `expected_version`; the write is
    /// durable when this returns.
    async fn update_consent(&self, c: &ConsentRow, expected_version: i64) -> Result<bool>;
    async fn consent(&self, id: ConsentId) -> Result<Option<ConsentRow>>;
    /// The member's records with one organisation: the decision point's input.
    async fn consents_between(&self, org: OrgId, member: MemberId) -> Result<Vec<ConsentRow>>;
    async fn consents_of_member(&self, member: MemberId) -> Result<Vec<ConsentRow>>;
    /// Records answering `request` with status `given` or `withdrawn` (never refusals).
    async fn consents_for_request(&self, request: ConsentRequestId) -> Result<Vec<ConsentRow>>;
    /// Records the member's first GPC signal; returns the time in force.
    async fn record_gpc(&self, member: MemberId, at: Timestamp) -> Result<Timestamp>;
    async fn gpc_since(&self, member: MemberId) -> Result<Option<Timestamp>>;
}

/// Published offers and their aggregate counters. Nothing here is per member.
#[async_trait]
pub trait OfferStore {
    /// Inserts the offer and its zeroed counters in one transaction.
    async fn insert_offer(&self, o: &OfferRow) -> Result<()>;
    async fn offer(&self, id: OfferId) -> Result<Option<OfferRow>>;
    /// Replaces status, version, `updated_at`, `valid_until` and body if the
    /// version is still `expected_version`; false when it is not (or no such offer).
    async fn update_offer(&self, o: &OfferRow, expected_version: i64) -> Result<bool>;
    /// The organisation's offers, oldest first.
    async fn offers_by_org(&self, org: OrgId) -> Result<Vec<OfferRow>>;
    /// Offers with status `active`, valid after `now`, whose organisation is not
    /// deleted, oldest first.
    async fn active_offers(&self, now: Timestamp) -> Result<Vec<OfferRow>>;
    /// The sum of all offers' versions plus the number of deleted
    /// organisations (it grows with every insert and every update, even two
    /// within one millisecond, and when a publisher is deleted) and the offers'
    /// latest `updated_at` (0 when none): a cheap way to tell whether a cached
    /// catalogue is stale.
    async fn offers_stamp(&self) -> Result<(u64, Timestamp)>;
    /// Atomically adds to the offer's counters (a no-op for an unknown offer).
    async fn count_offer_events(&self, offer: OfferId, reached: u64, accepted: u64) -> Result<()>;
    async fn offer_counters(&self, offer: OfferId) -> Result<Option<OfferCounters>>;
    /// Replaces the offer's release state (opaque bytes) and when its next
    /// release is due, if its release sequence is still `expected_seq`
    /// (then incremented); false when another writer got there first. So a
    /// scheduled release is drawn once, even by two nodes at the same moment.
    async fn replace_offer_release(
        &self,
        offer: OfferId,
        expected_seq: i64,
        released: &[u8],
        due: Option<Timestamp>,
    ) -> Result<bool>;
    /// Offers whose next release is due at `now`.
    async fn offers_release_due(&self, now: Timestamp) -> Result<Vec<OfferId>>;
    /// The organisation's offers that are active or waiting for partners and
    /// still valid at `now`.
    async fn count_live_offers(&self, org: OrgId, now: Timestamp) -> Result<u64>;
}

/// The privacy accountant's ledger: ε spent per data pool and period, per
/// asker, and over each pool's life.
#[async_trait]
pub trait PrivacyStore {
    /// Charges every line (one per pool a release reads) in one transaction:
    /// each pool's period total, lifetime total and the asker's period
    /// spend must stay within the line's limits, or nothing is charged.
    /// Concurrent charges cannot together pass a limit.
    async fn dp_charge(&self, asker: &str, lines: &[PoolCharge]) -> Result<DpCharge>;
    /// What a pool spent in a period, by asker, and over its life.
    async fn dp_pool_spend(&self, pool: &str, period: i64) -> Result<PoolSpend>;
}

/// The data trust: enrolments, pseudonymised receipts and their aggregates,
/// privacy budgets, sharing consents and the loyalty ledger.
#[async_trait]
pub trait TrustStore {
    /// Stores the member's enrolment ciphertext unless one exists; returns the
    /// one in force (so concurrent enrolments agree).
    async fn enrol_trust_member(
        &self,
        member: MemberId,
        origin_ct: &[u8],
        at: Timestamp,
    ) -> Result<Vec<u8>>;
    async fn trust_enrolment(&self, member: MemberId) -> Result<Option<Vec<u8>>>;
    /// Stores receipts, their items and the per-member aggregates in one
    /// transaction. A member enters at most `max_values` values per (scope,
    /// dimension) in the bins; later values are not counted.
    async fn insert_trust_receipts(
        &self,
        receipts: &[TrustReceiptRow],
        max_values: u32,
    ) -> Result<()>;
    /// Which of `ids` are stored already.
    async fn trust_receipts_present(&self, ids: &[TrustReceiptId]) -> Result<Vec<TrustReceiptId>>;
    /// Distinct members in a scope (an organisation id or `*`).
    async fn trust_member_count(&self, scope: &str) -> Result<u64>;
    /// Members in the scope and the sum of their total spend, each clamped to `0..=upper`.
    async fn trust_clamped_sum(&self, scope: &str, upper: i64) -> Result<(u64, i64)>;
    /// Distinct members per value of a dimension in a co-op's scope (values
    /// with members only). The `*` scope keeps no bins (an error here): see
    /// [`TrustStore::trust_pooled_bin_counts`].
    async fn trust_bin_counts(&self, scope: &str, dim: TrustDim) -> Result<Vec<(i64, u64)>>;
    /// Distinct members of all co-ops per value of a dimension, each member
    /// counted for at most `max_values` of their values over every co-op
    /// (their smallest), computed at query time from the co-op scopes' bins:
    /// no stored row holds a member's values over co-ops (adv8).
    async fn trust_pooled_bin_counts(
        &self,
        dim: TrustDim,
        max_values: u32,
    ) -> Result<Vec<(i64, u64)>>;
    /// The scopes (organisation ids, and `*`) in which a member tag has
    /// receipts. Reads the per-member totals whole (no index by tag, which
    /// would slow every ingest): for a member's own transparency view.
    async fn trust_member_scopes(&self, tag: &[u8; 32]) -> Result<Vec<String>>;
    /// Members present in both scopes.
    async fn trust_overlap(&self, a: &str, b: &str) -> Result<u64>;
    /// An organisation's receipts for one member tag, oldest first.
    async fn trust_receipts_of(&self, org: OrgId, tag: &[u8; 32]) -> Result<Vec<TrustReceiptRow>>;
    async fn insert_trust_sharing(&self, s: &TrustSharingRow) -> Result<()>;
    /// Withdraws the member's sharing consent; false if not theirs or already withdrawn.
    async fn withdraw_trust_sharing(
        &self,
        id: SharingId,
        member: MemberId,
        at: Timestamp,
    ) -> Result<bool>;
    async fn trust_sharing_of_member(&self, member: MemberId) -> Result<Vec<TrustSharingRow>>;
    /// Sharing consents in force at `now` from `from` to `to`.
    async fn trust_sharing_between(
        &self,
        from: OrgId,
        to: OrgId,
        now: Timestamp,
    ) -> Result<Vec<TrustSharingRow>>;
    /// Forgets a member, in one transaction: every receipt, item, bin and
    /// per-member total under `research_tag` (decrementing the bin totals),
    /// and the loyalty balance, history and tokens under `loyalty_tag` (its
    /// enrolment stays until the erasure is released). Returns the
    /// number of receipts removed. Both tags join the erased list
    /// (`trust_erased_among`) in the same transaction.
    async fn trust_forget(
        &self,
        research_tag: &[u8; 32],
        loyalty_tag: &[u8; 32],
        at: Timestamp,
    ) -> Result<u64>;
    /// Which of `tags` belong to members who erased their data.
    async fn trust_erased_among(&self, tags: &[[u8; 32]]) -> Result<Vec<[u8; 32]>>;
}

/// Co-op credentials: the federation's issuer key, one-time issuance codes,
/// status (revocation) and verifier challenges. No member id is stored: the
/// issuer learns nothing about which vault member redeemed a code.
#[async_trait]
pub trait CredentialStore {
    /// Stores the federation's issuer key unless there is one; returns the one
    /// in force (concurrent calls agree).
    async fn ensure_federation_issuer(
        &self,
        row: &CredentialIssuerRow,
    ) -> Result<CredentialIssuerRow>;
    async fn federation_issuer(&self) -> Result<Option<CredentialIssuerRow>>;
    /// Stores a code and reserves its status index in the federation's list
    /// for the code's organisation, in one transaction; returns false (nothing
    /// written) when any organisation already reserved that index. Fails with
    /// [`StorageError::Conflict`] (nothing written) when the code hash is taken.
    async fn insert_credential_code(&self, row: &CredentialCodeRow) -> Result<bool>;
    /// Marks the code redeemed if it exists, is not yet redeemed, has not
    /// expired at `now` (`expires_at > now`), and its status index is not
    /// revoked; exactly one of concurrent callers gets the row (a conditional
    /// UPDATE), the others `None`.
    async fn redeem_credential_code(
        &self,
        code_hash: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<CredentialCodeRow>>;
    /// Undoes a redemption whose credential could not be stored, so the code
    /// works again: false when the code is unknown or was not redeemed.
    async fn release_credential_code(&self, code_hash: &[u8; 32]) -> Result<bool>;
    /// Clears a redeemed code's claims once its credential is in the
    /// member's vault (issue 13: the node keeps no copy of what it issued,
    /// and nothing of it is left after the member's erasure); false when
    /// the code is unknown or not redeemed.
    async fn forget_credential_claims(&self, code_hash: &[u8; 32]) -> Result<bool>;
    /// Revokes a status index this organisation reserved; false when it did
    /// not (never reserved, or another organisation's). Revoking twice is true
    /// and keeps the first time.
    async fn revoke_credential(&self, org: OrgId, index: u32, at: Timestamp) -> Result<bool>;
    /// The federation's revoked status indexes (every organisation's), ascending.
    async fn revoked_credentials(&self) -> Result<Vec<u32>>;
    /// The organisations, not deleted, that reserved a status index (the
    /// co-ops that issue credentials), ascending by id.
    async fn credential_issuing_orgs(&self) -> Result<Vec<OrgId>>;
    /// Fails with [`StorageError::Conflict`] when the nonce is taken.
    async fn insert_credential_challenge(&self, row: &CredentialChallengeRow) -> Result<()>;
    /// Consumes a challenge of this organisation: returns it once if it has
    /// not expired at `now` (`expires_at > now`), and never again (one DELETE
    /// … RETURNING); an expired one is deleted and `None` returned. Another
    /// organisation's challenge is left alone and `None` returned.
    async fn take_credential_challenge(
        &self,
        org: OrgId,
        nonce: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<CredentialChallengeRow>>;
    /// An open challenge by its nonce, left in place (not consumed): what the
    /// node checks a challenge against before showing or answering it.
    async fn open_credential_challenge(
        &self,
        nonce: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<CredentialChallengeRow>>;
    /// Deletes challenges and codes (redeemed or not) that expired at `now`;
    /// their status entries stay reserved. Returns how many rows went.
    async fn purge_expired_credentials(&self, now: Timestamp) -> Result<u64>;
}

/// Intents (members' anonymous requests for proposal), organisations'
/// answers and subscriptions, members' reports, and the released counts.
/// Nothing here names a member.
#[async_trait]
pub trait IntentStore {
    async fn insert_intent(&self, r: &IntentRow) -> Result<()>;
    /// Inserts a member's intent with the link erasure finds it by (the
    /// member's locator and the intent id sealed, `intent_owners`), in one
    /// transaction.
    async fn insert_member_intent(&self, r: &IntentRow, member: MemberId) -> Result<()>;
    /// The intent, unless past its deadline at `now`.
    async fn intent(&self, id: &[u8; 16], now: Timestamp) -> Result<Option<IntentRow>>;
    /// Intents organisations see as open at `now` (released in a batch; not
    /// past the deadline; not closed, or closed but not yet visibly), on one
    /// of `topics`, in one of `regions` (empty: any), with no credential
    /// audience or one of `audiences`; the latest batch first, then by
    /// pseudonym.
    async fn open_intents(
        &self,
        now: Timestamp,
        topics: &[String],
        regions: &[String],
        audiences: &[String],
        offset: u64,
        limit: u64,
    ) -> Result<Vec<IntentRow>>;
    /// Releases a batch at `boundary`: when at least `min_batch` open intents
    /// published before it are pending, or the oldest of them was published
    /// at or before `oldest_by`, every pending intent published before it
    /// becomes visible at `boundary` and its deadline moves on by as long as
    /// it waited. Returns how many became visible (0: not due). Intents
    /// published from `boundary` on wait for a later one.
    async fn release_intent_batch(
        &self,
        boundary: Timestamp,
        min_batch: u64,
        oldest_by: Timestamp,
    ) -> Result<u64>;
    /// How many stored intents were published in hours from `from` to
    /// before `to`, per topic (closed ones count; deleted ones do not).
    async fn intent_counts_published(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, u64)>>;
    /// Adds one to the quota row `tag` (of `week`) unless it reached `max`;
    /// false (nothing written) when it had.
    async fn bump_intent_quota(&self, tag: &[u8; 32], week: i64, max: u64) -> Result<bool>;
    /// How many of the quota rows `tags` exist (the weeks in which one member
    /// published, when the tags are theirs).
    async fn intent_quota_rows(&self, tags: &[[u8; 32]]) -> Result<u64>;
    /// Closes an open intent, shown closed from `visible_at`; false (nothing
    /// written) when it is not open. With `accept` (answer, sealed delivery,
    /// keep until): that answer of the intent is marked accepted in the same
    /// transaction, or nothing is written and false returned.
    async fn close_intent(
        &self,
        id: &[u8; 16],
        visible_at: Timestamp,
        accept: Option<(&[u8; 16], &[u8], Timestamp)>,
    ) -> Result<bool>;
    /// Fails with [`StorageError::Conflict`] when the organisation already
    /// answered the intent.
    async fn insert_intent_answer(&self, a: &IntentAnswerRow) -> Result<()>;
    /// The answer, unless deleted (`keep_until` passed at `now`).
    async fn intent_answer(&self, id: &[u8; 16], now: Timestamp)
        -> Result<Option<IntentAnswerRow>>;
    /// The intent's answers at `now`, oldest hour first, then by id.
    async fn intent_answers(
        &self,
        intent: &[u8; 16],
        now: Timestamp,
    ) -> Result<Vec<IntentAnswerRow>>;
    /// The organisation's answers at `now`, latest hour first, then by id.
    async fn intent_answers_of_org(
        &self,
        org: OrgId,
        now: Timestamp,
    ) -> Result<Vec<IntentAnswerRow>>;
    /// Answers the organisation made in hours from `since` on (deleted ones
    /// no longer count).
    async fn count_intent_answers_since(&self, org: OrgId, since: Timestamp) -> Result<u64>;
    /// Replaces the organisation's subscription (its version grows by one).
    async fn put_intent_subscription(
        &self,
        org: OrgId,
        topics: &[String],
        regions: &[String],
        at: Timestamp,
    ) -> Result<IntentSubscriptionRow>;
    async fn intent_subscription(&self, org: OrgId) -> Result<Option<IntentSubscriptionRow>>;
    /// Every subscription, by organisation id.
    async fn intent_subscriptions(&self) -> Result<Vec<IntentSubscriptionRow>>;
    /// (subscriptions, sum of their versions): grows with every change, so a
    /// cached index can tell it is stale.
    async fn intent_subscriptions_stamp(&self) -> Result<(u64, i64)>;
    /// Fails with [`StorageError::Conflict`] when the answer was reported.
    async fn insert_intent_report(&self, r: &IntentReportRow) -> Result<()>;
    /// Every report, latest hour first.
    async fn intent_reports(&self) -> Result<Vec<IntentReportRow>>;
    /// Stores a release of counts for `window` unless one exists; returns the
    /// one in force (two nodes agree).
    async fn put_intent_release(&self, window: i64, body: &[u8]) -> Result<Vec<u8>>;
    async fn intent_release(&self, window: i64) -> Result<Option<Vec<u8>>>;
    /// Deletes intents past their deadline, answers past `keep_until`,
    /// releases of windows (and quota rows of weeks) before
    /// `releases_before` and reports from hours before `reports_before`;
    /// returns how many intents and answers went.
    async fn purge_intents(
        &self,
        now: Timestamp,
        releases_before: i64,
        reports_before: Timestamp,
    ) -> Result<u64>;
}

/// How thoroughly [`Store::check_integrity`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegrityLevel {
    /// SQLite `PRAGMA quick_check`: every page and b-tree, O(file size).
    Quick,
    /// SQLite `PRAGMA integrity_check`: also that every index matches its table.
    Full,
}

/// Everything a node stores.
#[async_trait]
pub trait Store:
    NodeMetaStore
    + MemberStore
    + SessionStore
    + VaultStore
    + OrgStore
    + AuditStore
    + ConsentStore
    + OfferStore
    + TrustStore
    + CredentialStore
    + PrivacyStore
    + IntentStore
    + MemberKeyStore
    + SignUpStore
    + EnvelopeStore
    + LoyaltyStore
    + MemberAuditStore
    + ErasureStore
    + ConsentReleaseStore
    + RightsStore
    + WebhookStore
    + RectificationStore
    + MetadataStore
    + OrgCredentialStore
    + CombinationStore
    + Send
    + Sync
    + std::fmt::Debug
{
    fn backend(&self) -> Backend;
    /// Checks the database file (SQLite: `PRAGMA quick_check` or
    /// `integrity_check`, on a connection of its own; PostgreSQL: that the
    /// server answers). It reads the whole file: minutes on a large one, so
    /// never on the way to serving (`me2b check`, or a background task).
    async fn check_integrity(&self, level: IntegrityLevel) -> Result<()>;
    async fn close(&self);
}
