//! Member-held keys on both databases: the wraps of members' data keys,
//! sign-ups waiting for confirmation, the move away from the master-key wrap,
//! and the envelopes sealed for organisations under a consent.

use crate::sql::{begin_postgres, begin_sqlite, SqlStore};
use crate::*;
use me2b_domain::meta::MetaTable;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// A member still on an older node's master-key wrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyMember {
    pub id: MemberId,
    pub last_login_at: Timestamp,
    pub warned_at: Option<Timestamp>,
    /// Their e-mail, sealed under their data key (to warn them).
    pub email_ct: Option<Vec<u8>>,
    pub wrapped_dek: Vec<u8>,
}

/// The wraps of members' data keys and their sessions.
#[async_trait]
pub trait MemberKeyStore {
    /// Replaces the member's wraps, clearing an older node's master-key wrap
    /// and passphrase hash, in one write; false if no such active member.
    async fn replace_member_wraps(&self, id: MemberId, wraps: &MemberWraps) -> Result<bool>;
    async fn touch_member_login(&self, id: MemberId, at: Timestamp) -> Result<()>;
    /// Ends the member's sessions but `keep` (e.g. the one changing the
    /// passphrase); returns how many ended.
    async fn delete_member_sessions(&self, id: MemberId, keep: Option<&[u8; 32]>) -> Result<u64>;
    /// Active members whose key is still wrapped under the master key.
    async fn legacy_members(&self) -> Result<Vec<LegacyMember>>;
    async fn count_legacy_members(&self) -> Result<u64>;
    async fn mark_legacy_warned(&self, id: MemberId, at: Timestamp) -> Result<()>;
}

/// Sign-ups waiting for their address to be confirmed.
#[async_trait]
pub trait SignUpStore {
    async fn insert_sign_up(&self, row: &SignUpRow) -> Result<()>;
    /// The sign-up of a confirmation token, if it has not expired at `now`.
    async fn sign_up(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<SignUpRow>>;
    /// Confirms: deletes the sign-up and inserts the member and their first
    /// session, in one transaction. `Ok(false)` (nothing written) when the
    /// sign-up is gone (confirmed concurrently); [`StorageError::Conflict`]
    /// when the address has an account by now.
    async fn confirm_sign_up(
        &self,
        token_hash: &[u8; 32],
        member: &NewMember,
        session: &SessionRow,
    ) -> Result<bool>;
    async fn purge_sign_ups(&self, now: Timestamp) -> Result<u64>;
}

/// Envelopes: what a consent allows, sealed per category to API keys.
#[async_trait]
pub trait EnvelopeStore {
    /// Replaces the consent's envelopes of `categories` (every key; None:
    /// every category) with `rows`, in one transaction, only while the
    /// consent is `given` (a withdrawal committed first wins: nothing is
    /// written). An envelope whose keyed digest is unchanged stays as it
    /// is. Until the consent is released to the organisation they are
    /// written as they are; after, a change waits as pending (made at `at`)
    /// for the next `consent_release`, which swaps it in with the period's
    /// other consent changes (adv4 finding 1: a change shown at once at
    /// every co-op links the member's pseudonyms).
    async fn replace_envelopes(
        &self,
        consent: ConsentId,
        categories: Option<&[String]>,
        rows: &[EnvelopeRow],
        at: Timestamp,
    ) -> Result<EnvelopeWrite>;
    /// The consent's envelopes sealed to `key`, not expired at `now`.
    async fn envelopes_for(
        &self,
        consent: ConsentId,
        key: ApiKeyId,
        now: Timestamp,
    ) -> Result<Vec<EnvelopeRow>>;
    /// The API keys that hold envelopes of the consent.
    async fn envelope_keys(&self, consent: ConsentId) -> Result<Vec<ApiKeyId>>;
    /// Destroys envelopes (served and pending) whose consent expired at `now`.
    async fn purge_expired_envelopes(&self, now: Timestamp) -> Result<u64>;
    /// The organisation's keys that are not revoked (envelopes are sealed
    /// to those with the `consent` role and a public key).
    async fn live_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRow>>;
    /// Stores the envelope public key of a key made by an older node.
    async fn set_api_key_envelope(&self, key: ApiKeyId, public_key: &[u8]) -> Result<()>;
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_owned())
}

fn hash32(v: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| corrupt(what))
}

/// An envelope's place: (API key id, category).
type Slot = (Vec<u8>, String);

/// Whether a stored envelope's digest is the new row's (None: an envelope
/// an older node sealed, replaced).
fn same(stored: &Option<Vec<u8>>, new: &EnvelopeRow) -> bool {
    stored
        .as_ref()
        .is_some_and(|d| new.digest.is_some_and(|n| n[..] == d[..]))
}

macro_rules! impl_key_stores {
    ($pool:ty, $begin:ident) => {
        impl SqlStore<$pool> {
            fn sign_up_row(row: &<<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Row) -> Result<SignUpRow> {
                Ok(SignUpRow {
                    token_hash: hash32(row.try_get("token_hash")?, "sign_ups.token_hash")?,
                    member: row.try_get::<MemberId, _>("member_id")?,
                    email_index: hash32(row.try_get("email_index")?, "sign_ups.email_index")?,
                    email_ct: row.try_get("email_ct")?,
                    passphrase_lock: row.try_get("passphrase_lock")?,
                    created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
                    expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
                })
            }

            /// An envelope row joined to its consent (whose sealed member id
            /// it reads: the envelope table holds no member reference).
            fn envelope_row(&self, row: &<<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Row) -> Result<EnvelopeRow> {
                let cid: ConsentId = row.try_get("consent_id")?;
                Ok(EnvelopeRow {
                    consent: cid,
                    key: row.try_get::<ApiKeyId, _>("key_id")?,
                    category: row.try_get("category")?,
                    member: self.open_member(
                        MetaTable::Consents,
                        cid.as_bytes(),
                        row.try_get("member_ct")?,
                        row.try_get("legacy_member_id")?,
                    )?,
                    expires_at: Timestamp::from_unix_millis(row.try_get("expires_at")?),
                    updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
                    sealed: row.try_get("sealed")?,
                    digest: row
                        .try_get::<Option<Vec<u8>>, _>("digest")?
                        .map(|d| hash32(d, "consent_envelopes.digest"))
                        .transpose()?,
                })
            }

            /// The consent's envelopes of `table` within `categories`:
            /// (key, category) → (digest, expiry, sealed).
            async fn envelope_slots(
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                table: &str,
                cid: &[u8],
                categories: Option<&[String]>,
            ) -> Result<BTreeMap<Slot, (Option<Vec<u8>>, i64, Option<Vec<u8>>)>> {
                let mut out = BTreeMap::new();
                for e in sqlx::query(&format!(
                    "SELECT key_id, category, digest, expires_at, sealed FROM {table} WHERE consent_id = $1"
                ))
                .bind(cid.to_vec())
                .fetch_all(&mut *conn)
                .await?
                {
                    let slot: Slot = (e.try_get("key_id")?, e.try_get("category")?);
                    if categories.is_none_or(|cs| cs.contains(&slot.1)) {
                        out.insert(
                            slot,
                            (e.try_get("digest")?, e.try_get("expires_at")?, e.try_get("sealed")?),
                        );
                    }
                }
                Ok(out)
            }

            /// A consent served to no one yet: its envelopes are written as
            /// they are; rows whose plaintext did not change (equal keyed
            /// digest) stay, bytes and time. Whether anything changed.
            async fn write_served(
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                cid: &[u8],
                categories: Option<&[String]>,
                wanted: &BTreeMap<Slot, &EnvelopeRow>,
            ) -> Result<bool> {
                let served = Self::envelope_slots(&mut *conn, "consent_envelopes", cid, categories).await?;
                let mut changed = false;
                for (slot, (d, _, _)) in &served {
                    if wanted.get(slot).is_some_and(|r| same(d, r)) {
                        continue;
                    }
                    sqlx::query(
                        "DELETE FROM consent_envelopes WHERE consent_id = $1 AND key_id = $2 AND category = $3",
                    )
                    .bind(cid.to_vec())
                    .bind(slot.0.clone())
                    .bind(slot.1.clone())
                    .execute(&mut *conn)
                    .await?;
                    changed = true;
                }
                for (slot, r) in wanted {
                    if served.get(slot).is_some_and(|(d, _, _)| same(d, r)) {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO consent_envelopes (consent_id, key_id, category, expires_at, updated_at, sealed, digest) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(cid.to_vec())
                    .bind(slot.0.clone())
                    .bind(slot.1.clone())
                    // To the hour (issue 13): an envelope ends no later than
                    // its consent (whose exact times the decision reads).
                    .bind(crate::sql::hour_ms(r.expires_at))
                    .bind(crate::sql::hour_ms(r.updated_at))
                    .bind(&r.sealed)
                    .bind(r.digest.map(|d| d.to_vec()))
                    .execute(&mut *conn)
                    .await?;
                    changed = true;
                }
                Ok(changed)
            }

            /// A released consent: what differs from what is served waits
            /// as pending (`sealed` NULL: the envelope goes); a change back
            /// to what is served drops the pending one. Whether anything
            /// changed.
            async fn write_pending(
                conn: &mut <<$pool as crate::sql::PoolDb>::Db as sqlx::Database>::Connection,
                cid: &[u8],
                categories: Option<&[String]>,
                wanted: &BTreeMap<Slot, &EnvelopeRow>,
                at: Timestamp,
            ) -> Result<bool> {
                let served = Self::envelope_slots(&mut *conn, "consent_envelopes", cid, categories).await?;
                let pending =
                    Self::envelope_slots(&mut *conn, "consent_envelopes_pending", cid, categories).await?;
                let changed_at: BTreeMap<Slot, i64> = {
                    let mut m = BTreeMap::new();
                    for e in sqlx::query(
                        "SELECT key_id, category, changed_at FROM consent_envelopes_pending WHERE consent_id = $1",
                    )
                    .bind(cid.to_vec())
                    .fetch_all(&mut *conn)
                    .await?
                    {
                        m.insert((e.try_get("key_id")?, e.try_get("category")?), e.try_get("changed_at")?);
                    }
                    m
                };
                let slots: BTreeSet<&Slot> = served.keys().chain(pending.keys()).chain(wanted.keys()).collect();
                let mut changed = false;
                for slot in slots {
                    let want = wanted.get(slot).copied();
                    let as_served = match (served.get(slot), want) {
                        (None, None) => true,
                        (Some((d, _, _)), Some(r)) => same(d, r),
                        _ => false,
                    };
                    let waiting = pending.get(slot);
                    let as_waiting = match (waiting, want) {
                        (Some((_, _, None)), None) => true,
                        (Some((d, _, Some(_))), Some(r)) => same(d, r),
                        _ => false,
                    };
                    if as_waiting || (as_served && waiting.is_none()) {
                        continue;
                    }
                    changed = true;
                    if waiting.is_some() {
                        sqlx::query(
                            "DELETE FROM consent_envelopes_pending WHERE consent_id = $1 AND key_id = $2 AND category = $3",
                        )
                        .bind(cid.to_vec())
                        .bind(slot.0.clone())
                        .bind(slot.1.clone())
                        .execute(&mut *conn)
                        .await?;
                    }
                    if as_served {
                        continue;
                    }
                    // The first pending change's hour is the batch's clock:
                    // writing again does not put the release off.
                    let first = changed_at.get(slot).copied().unwrap_or(crate::sql::hour_ms(at));
                    let (expires_at, updated_at, sealed, digest) = match want {
                        Some(r) => (
                            crate::sql::hour_ms(r.expires_at),
                            crate::sql::hour_ms(r.updated_at),
                            Some(r.sealed.clone()),
                            r.digest.map(|d| d.to_vec()),
                        ),
                        None => (
                            served.get(slot).map_or(first, |s| s.1),
                            crate::sql::hour_ms(at),
                            None,
                            None,
                        ),
                    };
                    sqlx::query(
                        "INSERT INTO consent_envelopes_pending \
                         (consent_id, key_id, category, expires_at, updated_at, changed_at, sealed, digest) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(cid.to_vec())
                    .bind(slot.0.clone())
                    .bind(slot.1.clone())
                    .bind(expires_at)
                    .bind(updated_at)
                    .bind(first)
                    .bind(sealed)
                    .bind(digest)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(changed)
            }
        }

        #[async_trait]
        impl MemberKeyStore for SqlStore<$pool> {
            async fn replace_member_wraps(&self, id: MemberId, w: &MemberWraps) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE members SET passphrase_wrap = $1, \
                     recovery_wrap = COALESCE($2, recovery_wrap), \
                     wrapped_dek = NULL, passphrase_hash = NULL, legacy_warned_at = NULL \
                     WHERE member_id = $3 AND state = 'active'",
                )
                .bind(&w.passphrase_wrap)
                .bind(w.recovery_wrap.clone())
                .bind(id)
                .execute(self.pool())
                .await?;
                Ok(r.rows_affected() == 1)
            }
            async fn touch_member_login(&self, id: MemberId, at: Timestamp) -> Result<()> {
                sqlx::query("UPDATE members SET last_login_at = $1 WHERE member_id = $2")
                    .bind(crate::sql::member_day(at))
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }
            async fn delete_member_sessions(
                &self,
                id: MemberId,
                keep: Option<&[u8; 32]>,
            ) -> Result<u64> {
                let r = sqlx::query("DELETE FROM sessions WHERE member_loc = $1 AND token_hash <> $2")
                    .bind(self.loc(MetaTable::Sessions, id)?)
                    .bind(keep.map(|k| k.to_vec()).unwrap_or_default())
                    .execute(self.pool())
                    .await?;
                Ok(r.rows_affected())
            }
            async fn legacy_members(&self) -> Result<Vec<LegacyMember>> {
                let rows = sqlx::query(
                    "SELECT member_id, created_at, last_login_at, legacy_warned_at, email_ct, wrapped_dek \
                     FROM members WHERE state = 'active' AND wrapped_dek IS NOT NULL ORDER BY member_id",
                )
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|row| {
                        let created: i64 = row.try_get("created_at")?;
                        Ok(LegacyMember {
                            id: row.try_get::<MemberId, _>("member_id")?,
                            last_login_at: Timestamp::from_unix_millis(
                                row.try_get::<Option<i64>, _>("last_login_at")?.unwrap_or(created),
                            ),
                            warned_at: row
                                .try_get::<Option<i64>, _>("legacy_warned_at")?
                                .map(Timestamp::from_unix_millis),
                            email_ct: row.try_get("email_ct")?,
                            wrapped_dek: row.try_get("wrapped_dek")?,
                        })
                    })
                    .collect()
            }
            async fn count_legacy_members(&self) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM members WHERE state = 'active' AND wrapped_dek IS NOT NULL",
                )
                .fetch_one(self.pool())
                .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
            async fn mark_legacy_warned(&self, id: MemberId, at: Timestamp) -> Result<()> {
                sqlx::query("UPDATE members SET legacy_warned_at = $1 WHERE member_id = $2")
                    .bind(crate::sql::member_day(at))
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl SignUpStore for SqlStore<$pool> {
            async fn insert_sign_up(&self, r: &SignUpRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sign_ups (token_hash, member_id, email_index, email_ct, passphrase_lock, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(r.token_hash.to_vec())
                .bind(r.member)
                .bind(r.email_index.to_vec())
                .bind(&r.email_ct)
                .bind(&r.passphrase_lock)
                .bind(r.created_at.unix_millis())
                .bind(r.expires_at.unix_millis())
                .execute(self.pool())
                .await?;
                Ok(())
            }
            async fn sign_up(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<SignUpRow>> {
                sqlx::query("SELECT * FROM sign_ups WHERE token_hash = $1 AND expires_at > $2")
                    .bind(token_hash.to_vec())
                    .bind(now.unix_millis())
                    .fetch_optional(self.pool())
                    .await?
                    .as_ref()
                    .map(Self::sign_up_row)
                    .transpose()
            }
            async fn confirm_sign_up(
                &self,
                token_hash: &[u8; 32],
                m: &NewMember,
                s: &SessionRow,
            ) -> Result<bool> {
                let mut tx = $begin(self.pool()).await?;
                let gone = sqlx::query("DELETE FROM sign_ups WHERE token_hash = $1")
                    .bind(token_hash.to_vec())
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO members (member_id, email_index, email_ct, passphrase_wrap, recovery_wrap, state, created_at, last_login_at) \
                     VALUES ($1, $2, $3, $4, $5, 'active', $6, $6)",
                )
                .bind(m.id)
                .bind(m.email_index.to_vec())
                .bind(&m.email_ct)
                .bind(&m.passphrase_wrap)
                .bind(&m.recovery_wrap)
                .bind(crate::sql::member_day(m.created_at))
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO sessions (token_hash, member_loc, member_ct, created_at, expires_at, wrapped_dek, expires_ct) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(s.token_hash.to_vec())
                    .bind(self.loc(MetaTable::Sessions, s.member)?)
                    .bind(self.seal_member(MetaTable::Sessions, &s.token_hash, s.member)?)
                    .bind(crate::sql::hour_ms(s.created_at))
                    .bind(crate::sql::hour_up_ms(s.expires_at))
                    .bind(&s.wrapped_dek)
                    .bind(self.seal_expiry(&s.token_hash, s.expires_at)?)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
            async fn purge_sign_ups(&self, now: Timestamp) -> Result<u64> {
                let r = sqlx::query("DELETE FROM sign_ups WHERE expires_at <= $1")
                    .bind(now.unix_millis())
                    .execute(self.pool())
                    .await?;
                Ok(r.rows_affected())
            }
        }

        #[async_trait]
        impl EnvelopeStore for SqlStore<$pool> {
            async fn replace_envelopes(
                &self,
                consent: ConsentId,
                categories: Option<&[String]>,
                rows: &[EnvelopeRow],
                at: Timestamp,
            ) -> Result<EnvelopeWrite> {
                let mut tx = $begin(self.pool()).await?;
                let cid = consent.as_bytes().to_vec();
                // A no-op write on the consent: it waits for (PostgreSQL: the
                // row lock) or sees (SQLite: one writer) a withdrawal, so
                // envelopes never outlive one.
                let live = sqlx::query(
                    "UPDATE consents SET version = version WHERE consent_id = $1 AND status = 'given'",
                )
                .bind(cid.clone())
                .execute(&mut *tx)
                .await?;
                if live.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(EnvelopeWrite::NotGiven);
                }
                // Once organisations see the consent, a change waits for the
                // next release of consent changes (`consent_release`).
                let released: Option<i64> =
                    sqlx::query_scalar("SELECT org_version FROM consents WHERE consent_id = $1")
                        .bind(cid.clone())
                        .fetch_one(&mut *tx)
                        .await?;
                let wanted: BTreeMap<Slot, &EnvelopeRow> = rows
                    .iter()
                    .map(|r| ((r.key.as_bytes().to_vec(), r.category.clone()), r))
                    .collect();
                let changed = if released.is_none() {
                    Self::write_served(&mut *tx, &cid, categories, &wanted).await?
                } else {
                    Self::write_pending(&mut *tx, &cid, categories, &wanted, at).await?
                };
                tx.commit().await?;
                Ok(if changed {
                    EnvelopeWrite::Changed
                } else {
                    EnvelopeWrite::Unchanged
                })
            }
            async fn envelopes_for(
                &self,
                consent: ConsentId,
                key: ApiKeyId,
                now: Timestamp,
            ) -> Result<Vec<EnvelopeRow>> {
                sqlx::query(
                    "SELECT e.consent_id, e.key_id, e.category, e.expires_at, e.updated_at, e.sealed, e.digest, \
                     c.member_ct, c.legacy_member_id \
                     FROM consent_envelopes e JOIN consents c ON c.consent_id = e.consent_id \
                     WHERE e.consent_id = $1 AND e.key_id = $2 AND e.expires_at > $3 ORDER BY e.category",
                )
                .bind(consent)
                .bind(key)
                .bind(now.unix_millis())
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| self.envelope_row(r))
                .collect()
            }
            async fn envelope_keys(&self, consent: ConsentId) -> Result<Vec<ApiKeyId>> {
                let ids: Vec<ApiKeyId> = sqlx::query_scalar(
                    "SELECT DISTINCT key_id FROM consent_envelopes WHERE consent_id = $1",
                )
                .bind(consent)
                .fetch_all(self.pool())
                .await?;
                Ok(ids)
            }
            async fn purge_expired_envelopes(&self, now: Timestamp) -> Result<u64> {
                let mut n = 0;
                for table in ["consent_envelopes", "consent_envelopes_pending"] {
                    n += sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                        .bind(now.unix_millis())
                        .execute(self.pool())
                        .await?
                        .rows_affected();
                }
                Ok(n)
            }
            async fn live_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyRow>> {
                let rows = sqlx::query(
                    "SELECT key_id FROM org_api_keys WHERE org_id = $1 AND revoked_at IS NULL ORDER BY key_id",
                )
                .bind(org)
                .fetch_all(self.pool())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let id = row.try_get::<ApiKeyId, _>("key_id")?;
                    if let Some(k) = self.api_key(id).await? {
                        out.push(k);
                    }
                }
                Ok(out)
            }
            async fn set_api_key_envelope(&self, key: ApiKeyId, public_key: &[u8]) -> Result<()> {
                sqlx::query("UPDATE org_api_keys SET envelope_pk = $1 WHERE key_id = $2 AND envelope_pk IS NULL")
                    .bind(public_key.to_vec())
                    .bind(key)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }
        }
    };
}

impl_key_stores!(SqlitePool, begin_sqlite);
impl_key_stores!(PgPool, begin_postgres);
