use me2b_domain::org::{OrgKind, Roles};
use me2b_domain::{
    ApiKeyId, ConsentId, ConsentRequestId, MemberId, OfferId, OrgId, RecordId, SharingId,
    Timestamp, TrustReceiptId,
};

/// A member account as created at sign-up.
#[derive(Clone, Debug)]
pub struct NewMember {
    pub id: MemberId,
    /// HMAC of the normalised e-mail, for login lookup.
    pub email_index: [u8; 32],
    /// The e-mail, encrypted under the member's data key.
    pub email_ct: Vec<u8>,
    /// The member's data key wrapped under their passphrase (me2b-crypto's
    /// `member_key`).
    pub passphrase_wrap: Vec<u8>,
    /// The member's data key wrapped under their recovery code.
    pub recovery_wrap: Vec<u8>,
    pub created_at: Timestamp,
}

/// A member account as read back. After crypto-shredding, the key and
/// credentials are gone.
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub id: MemberId,
    pub email_ct: Option<Vec<u8>>,
    /// An older node's Argon2id PHC string; cleared when the key moves.
    pub passphrase_hash: Option<String>,
    /// An older node's wrap under the master key; cleared at the member's
    /// next login (the key then moves to `passphrase_wrap`).
    pub wrapped_dek: Option<Vec<u8>>,
    pub passphrase_wrap: Option<Vec<u8>>,
    pub recovery_wrap: Option<Vec<u8>>,
    pub last_login_at: Option<Timestamp>,
    pub legacy_warned_at: Option<Timestamp>,
    pub erasing: bool,
    pub created_at: Timestamp,
}

/// New wraps of a member's data key: after a login that moved it from the
/// master key, a passphrase change or a recovery.
#[derive(Clone, Debug)]
pub struct MemberWraps {
    pub passphrase_wrap: Vec<u8>,
    /// None keeps the current recovery wrap.
    pub recovery_wrap: Option<Vec<u8>>,
}

/// A sign-up waiting for its address to be confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignUpRow {
    /// SHA-256 of the confirmation token.
    pub token_hash: [u8; 32],
    /// The id the account will have.
    pub member: MemberId,
    pub email_index: [u8; 32],
    /// The e-mail, sealed under a key derived from the confirmation token.
    pub email_ct: Vec<u8>,
    /// The public half of the passphrase wrap (me2b-crypto's `WrapLock`).
    pub passphrase_lock: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One category of what a consent allows, sealed to one API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeRow {
    pub consent: ConsentId,
    pub key: ApiKeyId,
    pub category: String,
    pub member: MemberId,
    pub expires_at: Timestamp,
    pub updated_at: Timestamp,
    pub sealed: Vec<u8>,
    /// A digest of the plaintext sealed, keyed by the member's key (None: a
    /// row an older node wrote): an envelope whose plaintext would not
    /// change is left as it is (see `EnvelopeStore::replace_envelopes`).
    pub digest: Option<[u8; 32]>,
}

/// What [`EnvelopeStore::replace_envelopes`](crate::EnvelopeStore::replace_envelopes) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeWrite {
    /// The consent is not given (a withdrawal committed first): nothing.
    NotGiven,
    /// Every envelope's plaintext was as stored (or as pending): nothing.
    Unchanged,
    /// Envelopes changed: served at once (a consent not yet released, seen
    /// by no organisation), or pending until the next release.
    Changed,
}

#[derive(Clone, Debug)]
pub struct SessionRow {
    pub token_hash: [u8; 32],
    pub member: MemberId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The member's data key wrapped under a key derived from the token.
    pub wrapped_dek: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct SessionWithKey {
    pub member: MemberId,
    pub expires_at: Timestamp,
    /// None for a session an older node opened (it carries no key).
    pub wrapped_dek: Option<Vec<u8>>,
}

/// A vault record as stored: ids, times, and the sealed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub id: RecordId,
    pub member: MemberId,
    pub revision: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub ciphertext: Vec<u8>,
}

/// One vault write, as the vault's writer batches them
/// ([`VaultStore::apply_record_writes`](crate::VaultStore::apply_record_writes)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordWrite {
    Insert(StoredRecord),
    /// Replaces the record if its revision is still `expected_revision`.
    Update {
        record: StoredRecord,
        expected_revision: i64,
    },
    Delete {
        member: MemberId,
        id: RecordId,
    },
}

#[derive(Clone, Debug)]
pub struct OrgRow {
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Clone, Debug)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub org: OrgId,
    pub key_hash: [u8; 32],
    pub roles: Roles,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The X25519 public key envelopes are sealed to (derived from the key).
    pub envelope_pk: Option<Vec<u8>>,
}

/// A consent request: its organisation and its JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRequestRow {
    pub id: ConsentRequestId,
    pub org: OrgId,
    pub created_at: Timestamp,
    pub body: Vec<u8>,
}

/// A consent record: the columns the decision point looks up by, and the full
/// record with its history as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRow {
    pub id: ConsentId,
    pub request: ConsentRequestId,
    pub org: OrgId,
    pub member: MemberId,
    /// `given`, `refused` or `withdrawn`.
    pub status: String,
    pub version: i64,
    pub given_at: Timestamp,
    pub expires_at: Timestamp,
    pub withdrawn_at: Option<Timestamp>,
    pub body: Vec<u8>,
}

/// A published offer: the columns the catalogue selects by, and the full offer as
/// JSON (opaque to storage). Never per member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferRow {
    pub id: OfferId,
    pub org: OrgId,
    /// `pending_partners`, `active` or `withdrawn`.
    pub status: String,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub valid_until: Timestamp,
    pub body: Vec<u8>,
}

/// An offer's aggregate counters, and its released figures as opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferCounters {
    pub reached: u64,
    pub accepted: u64,
    pub released: Option<Vec<u8>>,
    /// Bumped by every replacement of `released`.
    pub release_seq: i64,
    /// When the next release is due; `None` when no more are.
    pub release_due: Option<Timestamp>,
}

/// Which dimension a trust bin counts members by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustDim {
    /// Taxonomy topic id of an item's category.
    Category = 1,
    /// The store's area (packed ASCII code).
    Area = 2,
}

/// A pseudonymised receipt as the trust stores it. `tag` is a keyed hash of the
/// member's research-domain pseudonym; `source_ct` the pseudonym encrypted for
/// the submitting co-op's domain; `research_ct` for the research domain. The
/// attributes are coarse (day, area) by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustReceiptRow {
    pub id: TrustReceiptId,
    pub org: OrgId,
    pub tag: [u8; 32],
    pub source_ct: Vec<u8>,
    pub research_ct: Vec<u8>,
    /// Days since the Unix epoch.
    pub day: i32,
    pub area: String,
    pub amount_cents: i64,
    pub created_at: Timestamp,
    /// (taxonomy topic id, amount in cents) per item.
    pub items: Vec<(i64, i64)>,
}

/// A member's consent to share one co-op's receipts with a partner co-op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustSharingRow {
    pub id: SharingId,
    pub member: MemberId,
    pub from_org: OrgId,
    pub to_org: OrgId,
    pub purpose: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub withdrawn_at: Option<Timestamp>,
    /// The keyed hash of the member's research pseudonym, computed when they
    /// consented (in their session): deliveries find their receipts by it
    /// without moving their pseudonym out of the origin domain again.
    pub research_tag: Option<[u8; 32]>,
}

/// One pool's part of a privacy charge, in micro-ε.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolCharge {
    pub pool: String,
    pub period: i64,
    pub micros: i64,
    /// Most the pool may spend in the period.
    pub period_budget: i64,
    /// Most this asker may spend of the pool in the period.
    pub allowance: i64,
    /// Most the pool may spend over its life.
    pub lifetime_budget: i64,
}

/// Which limit refused a charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolLimit {
    Period,
    Allowance,
    Lifetime,
}

/// The outcome of a privacy charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpCharge {
    Charged,
    /// Nothing charged: line `line` would pass `limit`, where `spent` micro-ε
    /// are spent already.
    Refused {
        line: usize,
        limit: PoolLimit,
        spent: i64,
    },
}

/// One asker's spend on a pool in a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AskerSpend {
    pub asker: String,
    pub spent_micro: i64,
    pub releases: i64,
}

/// A pool's spend in a period and over its life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolSpend {
    pub period_micro: i64,
    pub lifetime_micro: i64,
    pub by_asker: Vec<AskerSpend>,
}

/// The federation's BBS issuer key (one for every co-op of the node): the
/// public key, and the secret key sealed by the node's keyring.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialIssuerRow {
    /// The key's public identifier.
    pub key_id: String,
    pub public_key: Vec<u8>,
    /// The secret key, sealed by the node's keyring. Never printed.
    pub sealed_secret: Vec<u8>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for CredentialIssuerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialIssuerRow")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public_key)
            .field("sealed_secret", &format_args!("<sealed>"))
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A one-time issuance code an organisation hands to one of its members. Only
/// the code's hash is stored, and no member id: the issuer does not learn who
/// redeemed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialCodeRow {
    pub code_hash: [u8; 32],
    pub org_id: OrgId,
    /// The claims the credential will carry, as JSON (opaque to storage).
    pub claims_json: Vec<u8>,
    /// The credential's index in the federation's status (revocation) list,
    /// reserved by this organisation.
    pub status_index: u32,
    pub created_at: Timestamp,
    /// The code is valid before this time (exclusive).
    pub expires_at: Timestamp,
    pub redeemed_at: Option<Timestamp>,
}

/// A challenge a verifier created; its nonce is single-use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialChallengeRow {
    pub nonce: [u8; 32],
    pub org_id: OrgId,
    /// The challenge as JSON (opaque to storage).
    pub challenge_json: Vec<u8>,
    pub created_at: Timestamp,
    /// The challenge is valid before this time (exclusive).
    pub expires_at: Timestamp,
}

/// Packs an area code (at most 8 ASCII bytes, e.g. `NL-NH`) into an integer
/// for the bins, big-endian and zero-padded: stable and reversible.
pub fn pack_area(area: &str) -> i64 {
    let mut b = [0u8; 8];
    for (slot, byte) in b.iter_mut().zip(area.bytes()) {
        *slot = byte;
    }
    i64::from_be_bytes(b)
}

/// The area code packed by [`pack_area`].
pub fn unpack_area(v: i64) -> String {
    v.to_be_bytes()
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| char::from(*b))
        .collect()
}

/// A member's intent (request for proposal) as stored. No member id: the
/// member's link to it is a secret in their own vault, of which only the
/// SHA-256 (`owner_check`) is here. Times are whole hours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentRow {
    /// The intent's one-time pseudonym (16 random bytes).
    pub id: [u8; 16],
    /// SHA-256 of the secret the member's vault holds for this intent.
    pub owner_check: [u8; 32],
    /// The taxonomy topic's slug.
    pub topic: String,
    /// An area code of the trust's governance.
    pub region: String,
    /// What was asked (versioned JSON: free text, budget, audience).
    pub body: Vec<u8>,
    /// The hour it was published.
    pub published_hour: Timestamp,
    /// The batch boundary from which organisations see it (and see as its
    /// publishing hour); none while it waits for a batch.
    pub visible_hour: Option<Timestamp>,
    /// On the hour: the intent and its unaccepted answers are deleted then.
    pub deadline: Timestamp,
    /// Closed (accepted or withdrawn).
    pub closed: bool,
    /// From when organisations see it closed (the next whole hour after it
    /// closed, so the moment of acceptance is not shown).
    pub closed_visible_at: Option<Timestamp>,
    /// A credential audience (`claim=value` or `claim=value@issuer`): only
    /// organisations that proved it see the intent. None: any other audience.
    pub audience_key: Option<String>,
}

/// An organisation's answer to an intent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentAnswerRow {
    pub id: [u8; 16],
    pub intent: [u8; 16],
    pub org: OrgId,
    /// The hour it was made.
    pub created_hour: Timestamp,
    pub valid_until: Timestamp,
    /// When the row is deleted: the intent's deadline, or for the accepted
    /// answer the later of that and its validity.
    pub keep_until: Timestamp,
    /// Price, terms, what the organisation asks to see (versioned JSON).
    pub body: Vec<u8>,
    pub accepted: bool,
    /// For the accepted answer: what the member disclosed, sealed under a
    /// node key (the consent's ids, a presentation).
    pub delivery: Option<Vec<u8>>,
}

/// What an organisation follows: topic slugs and area codes (none: every area).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentSubscriptionRow {
    pub org: OrgId,
    pub topics: Vec<String>,
    pub regions: Vec<String>,
    /// Grows by one with every change.
    pub version: i64,
    pub updated_at: Timestamp,
}

/// A member's report of an answer, for the operator: the organisation, a
/// copy of what it answered, the reason. No member id, no intent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentReportRow {
    pub id: [u8; 16],
    /// The reported answer (one report per answer).
    pub answer: [u8; 16],
    pub org: OrgId,
    pub reason: String,
    /// The answer's copy and the member's note (versioned JSON).
    pub body: Vec<u8>,
    /// The hour it was made.
    pub at_hour: Timestamp,
}
