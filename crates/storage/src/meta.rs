//! Member metadata at rest (issue 13): the node's keys as storage uses them.
//!
//! No table but `members` holds a member id. A member's rows are found by a
//! locator (a keyed hash of the id, one per table), and where the id must be
//! read back it is sealed, bound to the row; consent bodies are sealed too.
//! Audit entries name a member by an audit subject: a keyed hash of the id
//! and `members.audit_salt`, which erasure deletes with the row. The keys
//! are the node's ([`MetadataKeys`], derived from the master key, outside the
//! database), set once on a store with [`MetadataStore::set_metadata_keys`];
//! a store without them refuses every query that needs them.
//!
//! Rows written by an older node keep their member id in
//! `legacy_member_id` until [`MetadataStore::rekey_member_metadata`] (run by
//! the node at start) moves them.

use crate::sql::SqlStore;
use crate::*;
use me2b_domain::meta::{MetaTable, MetadataKeys};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Audit subjects kept in memory, at most this many (then the cache starts over).
const SUBJECT_CACHE: usize = 100_000;

/// The keys, once set, and the audit subjects already looked up.
#[derive(Default)]
pub struct MetaState {
    keys: OnceLock<Arc<dyn MetadataKeys>>,
    subjects: Mutex<HashMap<MemberId, MemberId>>,
    /// The next audit entry tag's number per name (`crate::audit_tags`).
    pub(crate) next_tags: Mutex<HashMap<MemberId, u64>>,
}

impl std::fmt::Debug for MetaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaState")
            .field("keys", &self.keys.get().is_some())
            .finish_non_exhaustive()
    }
}

/// How a sealed audit object starts (format version 1), then the sealed
/// bytes in hex.
const SEALED_OBJECT: &str = "sealed1:";

/// How a sealed audit event starts (format version 1). A plain event, an
/// older node's, starts with `{`.
const SEALED_EVENT_V1: u8 = 0x01;
/// The smallest size an audit event is padded to (its length prefix
/// included): every event the node writes today fits.
const EVENT_BUCKET_MIN: usize = 512;
/// Past this, events are padded to multiples of it.
const EVENT_BUCKET_MAX: usize = 64 * 1024;

/// An event's JSON as sealed: its length (4 bytes, big-endian), the JSON,
/// then zeros up to a bucket: 512 B, powers of two to 64 KiB, then 64 KiB
/// multiples.
fn padded_event(json: &[u8]) -> Vec<u8> {
    let len = json.len().saturating_add(4);
    let bucket = if len <= EVENT_BUCKET_MAX {
        len.next_power_of_two().max(EVENT_BUCKET_MIN)
    } else {
        len.div_ceil(EVENT_BUCKET_MAX)
            .saturating_mul(EVENT_BUCKET_MAX)
    };
    let mut out = Vec::with_capacity(bucket);
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(json);
    out.resize(bucket, 0);
    out
}

/// What [`padded_event`] padded, or `None` if it is not that shape.
fn unpadded_event(p: &[u8]) -> Option<Vec<u8>> {
    let (len, rest) = p.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    rest.get(..len).map(<[u8]>::to_vec)
}

/// The organisations holding consents: whose locators find a member's.
pub(crate) const CONSENT_ORGS: &str = "SELECT DISTINCT org_id FROM consents";

fn to_hex(bytes: &[u8]) -> String {
    // Not `format!` per byte: this runs for every audited read, in the
    // audit writer's batch.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// A `trust_members` row, as its sealed research tag is bound to it.
fn scope_row(scope: &str, stored: &[u8]) -> Vec<u8> {
    let mut v = bound(b"tag\0", scope.as_bytes());
    v.push(0);
    v.extend_from_slice(stored);
    v
}

/// Sealed values of one row: the member id and a consent's body are told
/// apart by a prefix of the bound row id.
fn bound(kind: &[u8], row: &[u8]) -> Vec<u8> {
    let mut v = kind.to_vec();
    v.extend_from_slice(row);
    v
}

impl<P> SqlStore<P> {
    pub(crate) fn keys(&self) -> Result<&dyn MetadataKeys> {
        self.meta
            .keys
            .get()
            .map(|k| k.as_ref())
            .ok_or(StorageError::NoMetadataKeys)
    }
    /// The member's locator in `table`, as bound into queries.
    pub(crate) fn loc(&self, table: MetaTable, member: MemberId) -> Result<Vec<u8>> {
        Ok(self.keys()?.locator(table, member).to_vec())
    }
    /// The member's locator for their consents at `org` (finding 4 of adv4):
    /// one per member and organisation, so `consents` grouped by locator does
    /// not show a member's set of organisations.
    pub(crate) fn consent_loc(&self, member: MemberId, org: OrgId) -> Result<Vec<u8>> {
        Ok(self
            .keys()?
            .scoped_locator(MetaTable::Consents, member, org.as_bytes())
            .to_vec())
    }
    /// The member's consent locators, one per organisation of `orgs` (the
    /// organisations holding consents, [`CONSENT_ORGS`]), and the unscoped
    /// one rows of an older node carry until a start re-keys them.
    pub(crate) fn consent_locs(&self, member: MemberId, orgs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let mut out = vec![self.loc(MetaTable::Consents, member)?];
        for o in orgs {
            let org = OrgId::from_slice(o)
                .map_err(|_| StorageError::Corrupt("consents.org_id".into()))?;
            out.push(self.consent_loc(member, org)?);
        }
        Ok(out)
    }
    /// A trust tag as stored in `table` for one co-op's rows (issue 13): a
    /// member's receipts or loyalty days at two co-ops share no tag.
    pub(crate) fn org_tag(&self, table: MetaTable, tag: &[u8; 32], org: &[u8]) -> Result<Vec<u8>> {
        Ok(self.keys()?.scoped_tag(table, tag, org).to_vec())
    }
    /// A research tag as `trust_members` and `trust_bins` store it for one
    /// `scope` (a co-op's id or `*`): a member's rows in two scopes share no
    /// tag (issue 13).
    pub(crate) fn scope_tag(&self, tag: &[u8; 32], scope: &str) -> Result<[u8; 32]> {
        Ok(self
            .keys()?
            .scoped_tag(MetaTable::TrustMembers, tag, scope.as_bytes()))
    }
    /// The research tag sealed to its `trust_members` row (scope and stored
    /// tag): what tells the overlap of two co-ops at query time.
    pub(crate) fn seal_scope_tag(
        &self,
        scope: &str,
        stored: &[u8],
        tag: &[u8; 32],
    ) -> Result<Vec<u8>> {
        Ok(self
            .keys()?
            .seal(MetaTable::TrustMembers, &scope_row(scope, stored), tag))
    }
    /// A `trust_members` row's research tag, opened.
    pub(crate) fn open_scope_tag(
        &self,
        scope: &str,
        stored: &[u8],
        sealed: &[u8],
    ) -> Result<[u8; 32]> {
        self.keys()?
            .open(MetaTable::TrustMembers, &scope_row(scope, stored), sealed)
            .and_then(|t| <[u8; 32]>::try_from(t.as_slice()).ok())
            .ok_or_else(|| StorageError::Corrupt("trust_members.tag_ct".into()))
    }
    /// A member's loyalty tag sealed to their pending token (its hash):
    /// what a redemption credits, read back from the token alone.
    pub(crate) fn seal_token_tag(&self, token_hash: &[u8; 32], tag: &[u8; 32]) -> Result<Vec<u8>> {
        Ok(self.keys()?.seal(
            MetaTable::TrustLoyaltyTokens,
            &bound(b"tag\0", token_hash),
            tag,
        ))
    }
    /// A pending token's loyalty tag, opened.
    pub(crate) fn open_token_tag(&self, token_hash: &[u8; 32], sealed: &[u8]) -> Result<[u8; 32]> {
        self.keys()?
            .open(
                MetaTable::TrustLoyaltyTokens,
                &bound(b"tag\0", token_hash),
                sealed,
            )
            .and_then(|t| <[u8; 32]>::try_from(t.as_slice()).ok())
            .ok_or_else(|| StorageError::Corrupt("trust_loyalty_tokens.tag_ct".into()))
    }
    /// An erasure request's subject (the recipient's pseudonym for the
    /// member) sealed, bound to the request's id: two co-ops' pseudonyms of
    /// one pending erasure are not paired in the file.
    pub(crate) fn seal_subject(&self, request: &[u8], subject: &str) -> Result<String> {
        let sealed = self
            .keys()?
            .seal(MetaTable::ErasureRequests, request, subject.as_bytes());
        Ok(format!("{SEALED_OBJECT}{}", to_hex(&sealed)))
    }
    /// A stored subject opened (one an older node stored in clear, not yet
    /// sealed at start, as it is).
    pub(crate) fn open_subject(&self, request: &[u8], stored: String) -> Result<String> {
        let Some(hex) = stored.strip_prefix(SEALED_OBJECT) else {
            return Ok(stored);
        };
        from_hex(hex)
            .and_then(|b| {
                self.keys()
                    .ok()?
                    .open(MetaTable::ErasureRequests, request, &b)
            })
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| StorageError::Corrupt("erasure_requests.subject".into()))
    }
    pub(crate) fn seal_member(
        &self,
        table: MetaTable,
        row: &[u8],
        member: MemberId,
    ) -> Result<Vec<u8>> {
        Ok(self
            .keys()?
            .seal(table, &bound(b"member\0", row), member.as_bytes()))
    }
    /// The member id of a row: sealed, or (a row of an older node not yet
    /// re-keyed) in clear.
    pub(crate) fn open_member(
        &self,
        table: MetaTable,
        row: &[u8],
        sealed: Option<Vec<u8>>,
        legacy: Option<Vec<u8>>,
    ) -> Result<MemberId> {
        let what = || StorageError::Corrupt(format!("{}.member_ct", table.label()));
        let bytes = match (sealed, legacy) {
            (_, Some(legacy)) => legacy,
            (Some(ct), None) => self
                .keys()?
                .open(table, &bound(b"member\0", row), &ct)
                .ok_or_else(what)?,
            (None, None) => return Err(what()),
        };
        MemberId::from_slice(&bytes).map_err(|_| what())
    }
    /// A member's loyalty balance sealed to its row (adv9: in clear, two
    /// co-ops' own points summed to it and paired their cards).
    pub(crate) fn seal_balance(&self, tag: &[u8], balance: i64) -> Result<Vec<u8>> {
        Ok(self.keys()?.seal(
            MetaTable::TrustLoyaltyDays,
            &bound(b"balance\0", tag),
            &balance.to_be_bytes(),
        ))
    }
    /// A loyalty balance: sealed, or (an older node's row, a store without
    /// keys) the row's own.
    pub(crate) fn open_balance(
        &self,
        tag: &[u8],
        sealed: Option<Vec<u8>>,
        stored: i64,
    ) -> Result<i64> {
        let Some(ct) = sealed else {
            return Ok(stored);
        };
        let bytes = self
            .keys()?
            .open(MetaTable::TrustLoyaltyDays, &bound(b"balance\0", tag), &ct)
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| StorageError::Corrupt("trust_loyalty_balances.balance_ct".into()))?;
        Ok(i64::from_be_bytes(bytes))
    }
    pub(crate) fn seal_body(&self, table: MetaTable, row: &[u8], body: &[u8]) -> Result<Vec<u8>> {
        Ok(self.keys()?.seal(table, &bound(b"body\0", row), body))
    }
    /// A session's exact expiry, sealed to its row (issue 13): the row's
    /// `expires_at` is the end of its hour, for the sweep.
    pub(crate) fn seal_expiry(&self, token_hash: &[u8], at: Timestamp) -> Result<Vec<u8>> {
        Ok(self.keys()?.seal(
            MetaTable::Sessions,
            &bound(b"expires\0", token_hash),
            &at.unix_millis().to_be_bytes(),
        ))
    }
    /// A session's exact expiry: sealed, or (a row of an older node) the
    /// row's own.
    pub(crate) fn open_expiry(
        &self,
        token_hash: &[u8],
        sealed: Option<Vec<u8>>,
        stored: i64,
    ) -> Result<Timestamp> {
        let Some(ct) = sealed else {
            return Ok(Timestamp::from_unix_millis(stored));
        };
        let bytes = self
            .keys()?
            .open(MetaTable::Sessions, &bound(b"expires\0", token_hash), &ct)
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| StorageError::Corrupt("sessions.expires_ct".into()))?;
        Ok(Timestamp::from_unix_millis(i64::from_be_bytes(bytes)))
    }
    /// A row's exact time, sealed to the row (issue 13): the row's own
    /// column keeps the hour.
    pub(crate) fn seal_time(&self, table: MetaTable, row: &[u8], at: Timestamp) -> Result<Vec<u8>> {
        Ok(self.keys()?.seal(
            table,
            &bound(b"time\0", row),
            &at.unix_millis().to_be_bytes(),
        ))
    }
    /// A row's exact time: sealed, or (a row of an older node) the row's own.
    pub(crate) fn open_time(
        &self,
        table: MetaTable,
        row: &[u8],
        sealed: Option<Vec<u8>>,
        stored: i64,
    ) -> Result<Timestamp> {
        let Some(ct) = sealed else {
            return Ok(Timestamp::from_unix_millis(stored));
        };
        let bytes = self
            .keys()?
            .open(table, &bound(b"time\0", row), &ct)
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| StorageError::Corrupt(format!("{}.time", table.label())))?;
        Ok(Timestamp::from_unix_millis(i64::from_be_bytes(bytes)))
    }
    /// Fresh masks for an offer's two counts, and the masks sealed to the
    /// offer (issue 13: the row keeps each count plus its mask, so the file
    /// alone gives no true count, and counts still add up in SQL).
    pub(crate) fn fresh_counter_masks(&self, offer: &[u8]) -> Result<([i64; 2], Vec<u8>)> {
        let keys = self.keys()?;
        let r = keys.fresh_salt();
        let mask = |b: &[u8]| {
            let mut x = [0u8; 8];
            x.copy_from_slice(b.get(..8).unwrap_or(&[0; 8]));
            // In [2^40, 2^40 + 2^59): far above any count, far from overflow.
            i64::from_be_bytes(x).rem_euclid(1 << 59) + (1 << 40)
        };
        let masks = [mask(&r[..8]), mask(&r[8..])];
        let mut plain = masks[0].to_be_bytes().to_vec();
        plain.extend_from_slice(&masks[1].to_be_bytes());
        let sealed = keys.seal(MetaTable::OfferCounters, &bound(b"masks\0", offer), &plain);
        Ok((masks, sealed))
    }
    /// The masks [`Self::fresh_counter_masks`] sealed.
    pub(crate) fn open_counter_masks(&self, offer: &[u8], sealed: &[u8]) -> Result<[i64; 2]> {
        let b = self
            .keys()?
            .open(MetaTable::OfferCounters, &bound(b"masks\0", offer), sealed)
            .filter(|b| b.len() == 16)
            .ok_or_else(|| StorageError::Corrupt("offer_counters.counts_ct".into()))?;
        let at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(b.get(i..i + 8).unwrap_or(&[0; 8]));
            i64::from_be_bytes(x)
        };
        Ok([at(0), at(8)])
    }
    /// An offer's release state (the noisy figures and the true total they
    /// were drawn from), sealed to the offer.
    pub(crate) fn seal_released(&self, offer: &[u8], state: &[u8]) -> Result<Vec<u8>> {
        Ok(self.keys()?.seal(
            MetaTable::OfferCounters,
            &bound(b"released\0", offer),
            state,
        ))
    }
    pub(crate) fn open_released(&self, offer: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        self.keys()?
            .open(
                MetaTable::OfferCounters,
                &bound(b"released\0", offer),
                sealed,
            )
            .ok_or_else(|| StorageError::Corrupt("offer_counters.released".into()))
    }
    /// A sealed body, or (an older node's row) the body in clear.
    pub(crate) fn open_body(
        &self,
        table: MetaTable,
        row: &[u8],
        body: Vec<u8>,
        legacy: bool,
    ) -> Result<Vec<u8>> {
        if legacy {
            return Ok(body);
        }
        self.keys()?
            .open(table, &bound(b"body\0", row), &body)
            .ok_or_else(|| StorageError::Corrupt(format!("{}.body", table.label())))
    }
    /// An audit event as stored (adv7, sections A and D): the whole
    /// canonical JSON, padded to a size bucket ([`padded_event`]) and sealed
    /// under the audit log's key, bound to the entry's sequence number,
    /// after a format version byte. The file alone then reads no actor,
    /// action, purpose, category or object, and the length tells no action
    /// apart. The chain hash covers these bytes (a hash of the plain JSON
    /// would let a thief test guesses of it against the stored hash).
    pub(crate) fn seal_event(&self, seq: u64, json: &[u8]) -> Result<Vec<u8>> {
        let sealed = self.keys()?.seal(
            MetaTable::AuditLog,
            &bound(b"event\0", &seq.to_be_bytes()),
            &padded_event(json),
        );
        let mut out = Vec::with_capacity(sealed.len() + 1);
        out.push(SEALED_EVENT_V1);
        out.extend_from_slice(&sealed);
        Ok(out)
    }
    /// A stored event read back: `(event_json, stored)` as
    /// [`AuditEntry`] holds them. A sealed event opened (its JSON empty
    /// where it does not open: a store without the keys, as `me2b audit
    /// verify` with only the public key); an older node's plain event as
    /// it is.
    pub(crate) fn stored_event(&self, seq: u64, stored: Vec<u8>) -> (Vec<u8>, Option<Vec<u8>>) {
        let Some((&SEALED_EVENT_V1, sealed)) = stored.split_first() else {
            return (stored, None);
        };
        let opened = self
            .keys()
            .ok()
            .and_then(|k| {
                k.open(
                    MetaTable::AuditLog,
                    &bound(b"event\0", &seq.to_be_bytes()),
                    sealed,
                )
            })
            .and_then(|p| unpadded_event(&p));
        (opened.unwrap_or_default(), Some(stored))
    }
    /// An entry as the member's views read it: the object of an older
    /// entry about a member (sealed alone, `sealed1:` and hex, bound to its
    /// subject, before whole events were sealed) opened. The chain hash,
    /// and so the member's leaf, stays that of the stored bytes (kept in
    /// `stored`). An object that does not open stays as stored.
    pub(crate) fn opened_objects(&self, mut entry: AuditEntry) -> AuditEntry {
        let Ok(mut e) = entry.event() else {
            return entry;
        };
        let (Some(subject), Some(object)) = (e.subject, e.object.as_deref()) else {
            return entry;
        };
        let Some(sealed) = object.strip_prefix(SEALED_OBJECT).and_then(from_hex) else {
            return entry;
        };
        let Ok(keys) = self.keys() else {
            return entry;
        };
        let opened = keys
            .open(
                MetaTable::AuditLog,
                &bound(b"object\0", subject.as_bytes()),
                &sealed,
            )
            .and_then(|o| String::from_utf8(o).ok());
        if let Some(o) = opened {
            e.object = Some(o);
            let json = e.canonical_json();
            if entry.stored.is_none() {
                entry.stored = Some(std::mem::take(&mut entry.event_json));
            }
            entry.event_json = json;
        }
        entry
    }
    pub(crate) fn cached_subject(&self, member: MemberId) -> Option<MemberId> {
        self.meta
            .subjects
            .lock()
            .map_or(None, |c| c.get(&member).copied())
    }
    pub(crate) fn remember_subject(&self, member: MemberId, subject: MemberId) {
        if let Ok(mut c) = self.meta.subjects.lock() {
            if c.len() >= SUBJECT_CACHE {
                c.clear();
            }
            c.insert(member, subject);
        }
    }
    pub(crate) fn forget_subject(&self, member: MemberId) {
        let subject = self
            .meta
            .subjects
            .lock()
            .map_or(None, |mut c| c.remove(&member));
        if let Some(s) = subject {
            self.forget_next_tag(s);
        }
    }
}

/// Setting the keys, re-keying an older node's rows, audit subjects.
#[async_trait]
pub trait MetadataStore {
    /// Sets the node's metadata keys; false if they were set already (the
    /// first keys stay).
    fn set_metadata_keys(&self, keys: Arc<dyn MetadataKeys>) -> bool;
    /// Moves rows an older node wrote by member id to locators and sealed
    /// ids, and gives every member an audit salt; returns how many rows
    /// changed.
    async fn rekey_member_metadata(&self) -> Result<u64>;
    /// The names audit entries about `members` are under: for each member
    /// with an account, their audit subject and (entries an older node
    /// wrote) their id; any other value as it is (a trust pseudonym).
    async fn audit_subjects(&self, members: &[MemberId]) -> Result<Vec<MemberId>>;
}

/// `node_meta` marker: consents' per-organisation locators and sealed
/// erasure subjects done (a start after migration 0030's rows are moved).
pub const REKEYED_CONSENTS: &str = "rekeyed_consents_subjects";
/// `node_meta` marker: the trust's tags scoped (migrations 0033 and 0036).
pub const REKEYED_TRUST: &str = "rekeyed_trust_scopes";

/// `node_meta` marker: rectification notices an older node kept in clear
/// sealed (migration 0034).
pub const REKEYED_RECTIFICATIONS: &str = "rekeyed_rectifications";

/// Tables with only a locator (no member id read back).
const LOCATED: [(&str, MetaTable); 5] = [
    ("vault_records", MetaTable::VaultRecords),
    ("marketing_optouts", MetaTable::MarketingOptouts),
    ("imported_history", MetaTable::ImportedHistory),
    ("member_gpc", MetaTable::MemberGpc),
    ("trust_enrolments", MetaTable::TrustEnrolments),
];

macro_rules! impl_meta_store {
    ($pool:ty) => {
        impl SqlStore<$pool> {
            /// Offer counters an older node kept in clear: masked and sealed
            /// in place (issue 13). A row whose release changed meanwhile is
            /// left for the next start.
            async fn seal_legacy_counters(&self) -> Result<u64> {
                let rows = sqlx::query(
                    "SELECT offer_id, released, release_seq FROM offer_counters WHERE counts_ct IS NULL",
                )
                .fetch_all(self.pool())
                .await?;
                let mut changed = 0;
                for row in rows {
                    let offer: Vec<u8> = row.try_get("offer_id")?;
                    let released: Option<Vec<u8>> = row.try_get("released")?;
                    let (masks, sealed) = self.fresh_counter_masks(&offer)?;
                    let released = released.map(|r| self.seal_released(&offer, &r)).transpose()?;
                    let r = sqlx::query(
                        "UPDATE offer_counters SET reached = reached + $1, accepted = accepted + $2, \
                         released = $3, counts_ct = $4 \
                         WHERE offer_id = $5 AND counts_ct IS NULL AND release_seq = $6",
                    )
                    .bind(masks[0])
                    .bind(masks[1])
                    .bind(released)
                    .bind(sealed)
                    .bind(offer)
                    .bind(row.try_get::<i64, _>("release_seq")?)
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                Ok(changed)
            }

            /// Consents an older node located by the member alone, given
            /// their per-organisation locator; erasure requests' subjects
            /// stored in clear, sealed (finding 4 of adv4).
            async fn rekey_consents_and_subjects(&self) -> Result<u64> {
                let mut changed = 0u64;
                let rows = sqlx::query(
                    "SELECT consent_id, org_id, member_ct FROM consents \
                     WHERE loc_scoped = 0 AND legacy_member_id IS NULL AND member_ct IS NOT NULL",
                )
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    let cid: Vec<u8> = row.try_get("consent_id")?;
                    let org = row.try_get::<OrgId, _>("org_id")?;
                    let m = self.open_member(MetaTable::Consents, &cid, row.try_get("member_ct")?, None)?;
                    let r = sqlx::query(
                        "UPDATE consents SET member_loc = $1, loc_scoped = 1 WHERE consent_id = $2 AND loc_scoped = 0",
                    )
                    .bind(self.consent_loc(m, org)?)
                    .bind(cid)
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                let rows = sqlx::query("SELECT request_id, subject FROM erasure_requests")
                    .fetch_all(self.pool())
                    .await?;
                for row in rows {
                    let id: Vec<u8> = row.try_get("request_id")?;
                    let subject: String = row.try_get("subject")?;
                    if subject.starts_with(SEALED_OBJECT) {
                        continue;
                    }
                    let r = sqlx::query("UPDATE erasure_requests SET subject = $1 WHERE request_id = $2 AND subject = $3")
                        .bind(self.seal_subject(&id, &subject)?)
                        .bind(id)
                        .bind(subject)
                        .execute(self.pool())
                        .await?;
                    changed += r.rows_affected();
                }
                Ok(changed)
            }

            /// Receipts and loyalty days an older node stored under the
            /// member's one trust tag, moved to the tag scoped to their
            /// co-op (issue 13), row by row, once.
            async fn rekey_trust_tags(&self) -> Result<u64> {
                let mut changed = 0u64;
                let rows = sqlx::query("SELECT receipt_id, org_id, tag FROM trust_receipts WHERE tag_scoped = 0")
                    .fetch_all(self.pool())
                    .await?;
                for row in rows {
                    let tag = <[u8; 32]>::try_from(row.try_get::<Vec<u8>, _>("tag")?.as_slice())
                        .map_err(|_| StorageError::Corrupt("trust_receipts.tag".into()))?;
                    let org: Vec<u8> = row.try_get("org_id")?;
                    let r = sqlx::query("UPDATE trust_receipts SET tag = $1, tag_scoped = 1 WHERE receipt_id = $2 AND tag_scoped = 0")
                        .bind(self.org_tag(MetaTable::TrustReceipts, &tag, &org)?)
                        .bind(row.try_get::<Vec<u8>, _>("receipt_id")?)
                        .execute(self.pool())
                        .await?;
                    changed += r.rows_affected();
                }
                let rows = sqlx::query("SELECT tag, org_id, day FROM trust_loyalty_days WHERE tag_scoped = 0")
                    .fetch_all(self.pool())
                    .await?;
                for row in rows {
                    let old: Vec<u8> = row.try_get("tag")?;
                    let tag = <[u8; 32]>::try_from(old.as_slice())
                        .map_err(|_| StorageError::Corrupt("trust_loyalty_days.tag".into()))?;
                    let org: Vec<u8> = row.try_get("org_id")?;
                    let r = sqlx::query(
                        "UPDATE trust_loyalty_days SET tag = $1, tag_scoped = 1 \
                         WHERE tag = $2 AND org_id = $3 AND day = $4 AND tag_scoped = 0",
                    )
                    .bind(self.org_tag(MetaTable::TrustLoyaltyDays, &tag, &org)?)
                    .bind(old)
                    .bind(org)
                    .bind(row.try_get::<i64, _>("day")?)
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                Ok(changed)
            }

            /// `trust_members` and `trust_bins` rows an older node stored
            /// under the member's one research tag in every scope, moved to
            /// the tag scoped to their scope, a co-op scope's row with the
            /// research tag sealed to it (issue 13), row by row, once.
            async fn rekey_trust_scopes(&self) -> Result<u64> {
                let mut changed = 0u64;
                let old_tag = |row: &<<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Row, what: &str| {
                    row.try_get::<Vec<u8>, _>("tag")
                        .map_err(StorageError::from)
                        .and_then(|t| <[u8; 32]>::try_from(t.as_slice()).map_err(|_| StorageError::Corrupt(what.into())))
                };
                let rows = sqlx::query("SELECT scope, dim, value, tag FROM trust_bins WHERE tag_scoped = 0")
                    .fetch_all(self.pool())
                    .await?;
                for row in rows {
                    let tag = old_tag(&row, "trust_bins.tag")?;
                    let scope: String = row.try_get("scope")?;
                    let r = sqlx::query(
                        "UPDATE trust_bins SET tag = $1, tag_scoped = 1 \
                         WHERE scope = $2 AND dim = $3 AND value = $4 AND tag = $5 AND tag_scoped = 0",
                    )
                    .bind(self.scope_tag(&tag, &scope)?.to_vec())
                    .bind(&scope)
                    .bind(row.try_get::<i64, _>("dim")?)
                    .bind(row.try_get::<i64, _>("value")?)
                    .bind(tag.to_vec())
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                let rows = sqlx::query("SELECT scope, tag FROM trust_members WHERE tag_scoped = 0")
                    .fetch_all(self.pool())
                    .await?;
                for row in rows {
                    let tag = old_tag(&row, "trust_members.tag")?;
                    let scope: String = row.try_get("scope")?;
                    let stored = self.scope_tag(&tag, &scope)?;
                    let sealed = (scope != "*")
                        .then(|| self.seal_scope_tag(&scope, &stored, &tag))
                        .transpose()?;
                    let r = sqlx::query(
                        "UPDATE trust_members SET tag = $1, tag_ct = $2, tag_scoped = 1 \
                         WHERE scope = $3 AND tag = $4 AND tag_scoped = 0",
                    )
                    .bind(stored.to_vec())
                    .bind(sealed)
                    .bind(&scope)
                    .bind(tag.to_vec())
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                let rows = sqlx::query("SELECT token_hash, org_id, tag FROM trust_loyalty_tokens WHERE tag_scoped = 0")
                    .fetch_all(self.pool())
                    .await?;
                for row in rows {
                    let tag = old_tag(&row, "trust_loyalty_tokens.tag")?;
                    let hash = <[u8; 32]>::try_from(row.try_get::<Vec<u8>, _>("token_hash")?.as_slice())
                        .map_err(|_| StorageError::Corrupt("trust_loyalty_tokens.token_hash".into()))?;
                    let org: Vec<u8> = row.try_get("org_id")?;
                    let r = sqlx::query(
                        "UPDATE trust_loyalty_tokens SET tag = $1, tag_ct = $2, tag_scoped = 1 \
                         WHERE token_hash = $3 AND tag_scoped = 0",
                    )
                    .bind(self.org_tag(MetaTable::TrustLoyaltyTokens, &tag, &org)?)
                    .bind(self.seal_token_tag(&hash, &tag)?)
                    .bind(hash.to_vec())
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                Ok(changed)
            }

            /// Runs a start's re-keying `work` unless the node marked it done
            /// (`marker` in `node_meta`), then marks it: rows an older node
            /// wrote are moved at the first start after the migration; a
            /// started node's next start reads one row, not every row.
            async fn rekey_once(
                &self,
                marker: &str,
                work: impl std::future::Future<Output = Result<u64>> + Send,
            ) -> Result<u64> {
                if NodeMetaStore::meta(self, marker).await?.is_some() {
                    return Ok(0);
                }
                let changed = work.await?;
                NodeMetaStore::put_meta_if_absent(self, marker, b"1").await?;
                Ok(changed)
            }

            /// The member's audit subject, giving them a salt if they have
            /// none; None if there is no such member (erased). `cached`: an
            /// earlier answer may do (appending; another node's erasure is
            /// seen at the next miss), else the members row is read (what
            /// finds a member's entries never outlives their erasure).
            pub(crate) async fn audit_subject_in(
                &self,
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                member: MemberId,
                cached: bool,
            ) -> Result<Option<MemberId>> {
                if let Some(s) = self.cached_subject(member).filter(|_| cached) {
                    return Ok(Some(s));
                }
                let row = sqlx::query("SELECT audit_salt FROM members WHERE member_id = $1")
                    .bind(member)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let keys = self.keys()?;
                let salt = match row.try_get::<Option<Vec<u8>>, _>("audit_salt")? {
                    Some(salt) => salt,
                    None => {
                        let salt = keys.fresh_salt().to_vec();
                        sqlx::query("UPDATE members SET audit_salt = $1 WHERE member_id = $2 AND audit_salt IS NULL")
                            .bind(salt.clone())
                            .bind(member)
                            .execute(&mut *conn)
                            .await?;
                        let again: Option<Vec<u8>> =
                            sqlx::query_scalar("SELECT audit_salt FROM members WHERE member_id = $1")
                                .bind(member)
                                .fetch_optional(&mut *conn)
                                .await?
                                .flatten();
                        again.unwrap_or(salt)
                    }
                };
                let subject = keys.audit_subject(member, &salt);
                self.remember_subject(member, subject);
                Ok(Some(subject))
            }
        }

        #[async_trait]
        impl MetadataStore for SqlStore<$pool> {
            fn set_metadata_keys(&self, keys: Arc<dyn MetadataKeys>) -> bool {
                self.meta.keys.set(keys).is_ok()
            }

            async fn rekey_member_metadata(&self) -> Result<u64> {
                let keys = self.keys()?;
                let mut changed = 0u64;
                let unsalted: Vec<Vec<u8>> =
                    sqlx::query_scalar("SELECT member_id FROM members WHERE audit_salt IS NULL")
                        .fetch_all(self.pool())
                        .await?;
                for id in unsalted {
                    let r = sqlx::query("UPDATE members SET audit_salt = $1 WHERE member_id = $2 AND audit_salt IS NULL")
                        .bind(keys.fresh_salt().to_vec())
                        .bind(id)
                        .execute(self.pool())
                        .await?;
                    changed += r.rows_affected();
                }
                let legacy_id = |b: &[u8], t: &str| {
                    MemberId::from_slice(b)
                        .map_err(|_| StorageError::Corrupt(format!("{t}.legacy_member_id")))
                };
                for (table, mt) in LOCATED {
                    let ids: Vec<Vec<u8>> = sqlx::query_scalar(&format!(
                        "SELECT DISTINCT legacy_member_id FROM {table} WHERE legacy_member_id IS NOT NULL"
                    ))
                    .fetch_all(self.pool())
                    .await?;
                    for id in ids {
                        let m = legacy_id(&id, table)?;
                        let r = sqlx::query(&format!(
                            "UPDATE {table} SET member_loc = $1, legacy_member_id = NULL WHERE legacy_member_id = $2"
                        ))
                        .bind(keys.locator(mt, m).to_vec())
                        .bind(id)
                        .execute(self.pool())
                        .await?;
                        changed += r.rows_affected();
                    }
                }
                let rows = sqlx::query(
                    "SELECT consent_id, org_id, legacy_member_id, body FROM consents WHERE legacy_member_id IS NOT NULL",
                )
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    let cid: Vec<u8> = row.try_get("consent_id")?;
                    let m = legacy_id(&row.try_get::<Vec<u8>, _>("legacy_member_id")?, "consents")?;
                    let body: Vec<u8> = row.try_get("body")?;
                    let org = row.try_get::<OrgId, _>("org_id")?;
                    let r = sqlx::query(
                        "UPDATE consents SET member_loc = $1, member_ct = $2, body = $3, legacy_member_id = NULL, \
                         loc_scoped = 1 WHERE consent_id = $4 AND legacy_member_id IS NOT NULL",
                    )
                    .bind(self.consent_loc(m, org)?)
                    .bind(self.seal_member(MetaTable::Consents, &cid, m)?)
                    .bind(self.seal_body(MetaTable::Consents, &cid, &body)?)
                    .bind(cid.clone())
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                let rows = sqlx::query(
                    "SELECT sharing_id, legacy_member_id FROM trust_sharing WHERE legacy_member_id IS NOT NULL",
                )
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    let sid: Vec<u8> = row.try_get("sharing_id")?;
                    let m = legacy_id(&row.try_get::<Vec<u8>, _>("legacy_member_id")?, "trust_sharing")?;
                    let r = sqlx::query(
                        "UPDATE trust_sharing SET member_loc = $1, member_ct = $2, legacy_member_id = NULL \
                         WHERE sharing_id = $3",
                    )
                    .bind(keys.locator(MetaTable::TrustSharing, m).to_vec())
                    .bind(self.seal_member(MetaTable::TrustSharing, &sid, m)?)
                    .bind(sid.clone())
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                let rows = sqlx::query(
                    "SELECT code_index, legacy_member_id FROM optout_codes WHERE legacy_member_id IS NOT NULL",
                )
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    let index: Vec<u8> = row.try_get("code_index")?;
                    let m = legacy_id(&row.try_get::<Vec<u8>, _>("legacy_member_id")?, "optout_codes")?;
                    let r = sqlx::query(
                        "UPDATE optout_codes SET member_loc = $1, member_ct = $2, legacy_member_id = NULL \
                         WHERE code_index = $3",
                    )
                    .bind(keys.locator(MetaTable::OptoutCodes, m).to_vec())
                    .bind(self.seal_member(MetaTable::OptoutCodes, &index, m)?)
                    .bind(index.clone())
                    .execute(self.pool())
                    .await?;
                    changed += r.rows_affected();
                }
                changed += self.seal_legacy_counters().await?;
                changed += self
                    .rekey_once(REKEYED_CONSENTS, self.rekey_consents_and_subjects())
                    .await?;
                changed += self
                    .rekey_once(REKEYED_TRUST, async {
                        Ok(self.rekey_trust_tags().await? + self.rekey_trust_scopes().await?)
                    })
                    .await?;
                // After the salts above: an older node's rows under a member
                // id go under the member's audit subject's tags.
                changed += self.rekey_audit_tags().await?;
                Ok(changed)
            }

            async fn audit_subjects(&self, members: &[MemberId]) -> Result<Vec<MemberId>> {
                let mut conn = self.pool().acquire().await?;
                let mut out = Vec::with_capacity(members.len() * 2);
                for m in members {
                    if let Some(s) = self.audit_subject_in(&mut conn, *m, false).await? {
                        out.push(s);
                    }
                    out.push(*m);
                }
                Ok(out)
            }
        }
    };
}

impl_meta_store!(SqlitePool);
impl_meta_store!(PgPool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_pad_to_buckets_and_back() {
        for (len, bucket) in [
            (0, 512),
            (300, 512),
            (508, 512),
            (509, 1024),
            (EVENT_BUCKET_MAX - 4, EVENT_BUCKET_MAX),
            (EVENT_BUCKET_MAX, 2 * EVENT_BUCKET_MAX),
        ] {
            let json = vec![b'x'; len];
            let p = padded_event(&json);
            assert_eq!(p.len(), bucket, "{len}");
            assert_eq!(unpadded_event(&p), Some(json));
        }
        assert_eq!(unpadded_event(&[0, 0, 1]), None);
        assert_eq!(unpadded_event(&[0, 0, 0, 9, b'x']), None);
    }
}
