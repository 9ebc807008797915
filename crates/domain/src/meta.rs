//! Keys for the metadata the database keeps about members (issue 13,
//! "metadata at rest").
//!
//! Storage never writes a member id beside a member's rows. Where it must find
//! a member's rows it writes a *locator* (a keyed hash of the member id, one
//! per table, so two tables' rows of one member do not join); where it must
//! read a member id back it writes it *sealed* (AEAD, fresh nonce, so equal
//! ids do not look equal). Audit entries name a member by an *audit subject*:
//! a keyed hash of the member id and a random salt kept only in the member's
//! row, so erasure (which deletes the row) leaves entries no key ties to them.
//!
//! The keys are the node's (derived from the master key, outside the
//! database): a thief with the database file alone can compute none of these.
//! The implementation lives in `me2b-crypto`; storage only calls it.

use crate::MemberId;

/// Tables whose rows are found by a member's locator. Each has its own
/// locator, so the tables' rows of one member do not join on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaTable {
    Sessions,
    VaultRecords,
    Consents,
    MemberGpc,
    TrustEnrolments,
    TrustSharing,
    MarketingOptouts,
    OptoutCodes,
    ImportedHistory,
    AuditLog,
    /// Not a member's table: an offer's counts are sealed here (issue 13,
    /// "true offer counts are not stored in clear"), bound to the offer.
    OfferCounters,
    /// The link from a member to their intents, for erasure (issue 17).
    IntentOwners,
    ErasureRequests,
    /// The trust's receipts (and per-co-op aggregates), by a research tag
    /// scoped to the co-op (issue 13).
    TrustReceipts,
    /// A member's loyalty history, by a loyalty tag scoped to the co-op.
    TrustLoyaltyDays,
    /// The trust's per-member aggregates (`trust_members`, `trust_bins`),
    /// by a research tag scoped to the aggregate's scope (a co-op or `*`).
    TrustMembers,
    /// Pending redemption tokens, by a loyalty tag scoped to the co-op.
    TrustLoyaltyTokens,
    /// Paper opt-outs waiting for the worker (issue 15, finding 5 of adv4).
    OptoutJobs,
    /// Rectification notices: the member's locator scoped to the notice's
    /// organisation, the subject and consent sealed to the notice.
    RectificationNotices,
}

impl MetaTable {
    /// The label bound into the locator and into sealed values.
    pub fn label(self) -> &'static str {
        match self {
            MetaTable::Sessions => "sessions",
            MetaTable::VaultRecords => "vault_records",
            MetaTable::Consents => "consents",
            MetaTable::MemberGpc => "member_gpc",
            MetaTable::TrustEnrolments => "trust_enrolments",
            MetaTable::TrustSharing => "trust_sharing",
            MetaTable::MarketingOptouts => "marketing_optouts",
            MetaTable::OptoutCodes => "optout_codes",
            MetaTable::ImportedHistory => "imported_history",
            MetaTable::AuditLog => "audit_log",
            MetaTable::OfferCounters => "offer_counters",
            MetaTable::IntentOwners => "intent_owners",
            MetaTable::ErasureRequests => "erasure_requests",
            MetaTable::TrustReceipts => "trust_receipts",
            MetaTable::TrustLoyaltyDays => "trust_loyalty_days",
            MetaTable::TrustMembers => "trust_members",
            MetaTable::TrustLoyaltyTokens => "trust_loyalty_tokens",
            MetaTable::OptoutJobs => "optout_jobs",
            MetaTable::RectificationNotices => "rectification_notices",
        }
    }
}

/// The node's keys for member metadata (see the module documentation).
pub trait MetadataKeys: Send + Sync + std::fmt::Debug {
    /// The member's locator in `table`: a keyed hash, stable, one-way.
    fn locator(&self, table: MetaTable, member: MemberId) -> [u8; 32];
    /// The member's locator in `table` for the rows of one `scope` (a
    /// consent's organisation): one value per member and scope, so grouping
    /// the table by it does not gather a member's rows across scopes. Whoever
    /// holds the keys finds all of a member's rows scope by scope.
    fn scoped_locator(&self, table: MetaTable, member: MemberId, scope: &[u8]) -> [u8; 32];
    /// A trust tag (itself a keyed hash of a pseudonym) as stored in `table`
    /// for the rows of one `scope` (a co-op): one value per tag and scope, so
    /// a member's rows at two co-ops share no value in the file.
    fn scoped_tag(&self, table: MetaTable, tag: &[u8; 32], scope: &[u8]) -> [u8; 32];
    /// `plain` sealed for `table`, bound to `row` (the row's own id): a
    /// format version byte, a fresh nonce, the ciphertext and tag.
    fn seal(&self, table: MetaTable, row: &[u8], plain: &[u8]) -> Vec<u8>;
    /// Opens what [`MetadataKeys::seal`] sealed for the same table and row;
    /// `None` if it was altered, moved or sealed under another key.
    fn open(&self, table: MetaTable, row: &[u8], sealed: &[u8]) -> Option<Vec<u8>>;
    /// The name under which audit entries about `member` are written: a keyed
    /// hash of the member id and the member's `salt`, shaped like a member id
    /// (16 bytes) so the log's format does not change.
    fn audit_subject(&self, member: MemberId, salt: &[u8]) -> MemberId;
    /// What the log's `subject` column holds for the `k`-th entry (0, 1, …)
    /// under `name` (an audit subject, or a trust pseudonym with no
    /// account): a keyed hash of both, shaped like a member id. One value
    /// per entry, so grouping the column gathers nothing; whoever holds the
    /// keys and `name` finds the entries k = 0, 1, … in turn. Once the
    /// member's salt is gone (erasure), so is `name`, and the tags tie to
    /// nothing.
    fn audit_entry_tag(&self, name: MemberId, k: u64) -> MemberId;
    /// A fresh random salt for a member's audit subject.
    fn fresh_salt(&self) -> [u8; 16];
}
