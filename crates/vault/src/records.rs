//! A member's records: sealed under their data key (padded to a size
//! bucket), written through the group-committing writer, read back, each
//! operation audited before it answers.

use crate::*;

impl Vault {
    fn open_record(
        &self,
        member: MemberId,
        key: &DataKey,
        r: StoredRecord,
    ) -> Result<RecordView, VaultError> {
        let plain = key
            .open(&Aad::record(member, r.id), &r.ciphertext)
            .map_err(|e| {
                tracing::error!(record = %r.id, error = %e, "vault record failed authentication");
                match e {
                    CryptoError::UnsupportedVersion(_) => VaultError::Integrity {
                        what: "record format version",
                    },
                    _ => VaultError::Integrity { what: "record" },
                }
            })?;
        let content = RecordContent::from_json(&plain).map_err(|_| VaultError::Integrity {
            what: "record content",
        })?;
        Ok(RecordView {
            id: r.id,
            revision: r.revision,
            created_at: r.created_at,
            updated_at: r.updated_at,
            content,
        })
    }

    fn seal(&self, s: &MemberSession, id: RecordId, content: &RecordContent) -> Vec<u8> {
        s.key.seal(
            self.rng.as_ref(),
            &Aad::record(s.member, id),
            &padded(content.to_json(), PAD_MIN),
        )
    }

    fn event(s: &MemberSession, action: Action, id: RecordId) -> AuditEvent {
        AuditEvent::new(Actor::Member(s.member), action)
            .subject(s.member)
            .object(id)
    }

    /// Import (issue 15): checks each record as a write would and seals it
    /// for the member under a fresh id, keeping its times; nothing is
    /// written (the caller stores them all in one transaction).
    pub fn seal_for_import(
        &self,
        s: &MemberSession,
        records: &[(RecordContent, Timestamp, Timestamp)],
    ) -> Result<Vec<StoredRecord>, VaultError> {
        records
            .iter()
            .map(|(content, created_at, updated_at)| {
                self.check_content(content)?;
                let id = RecordId::generate(self.rng.as_ref());
                Ok(StoredRecord {
                    id,
                    member: s.member,
                    revision: 1,
                    created_at: record_time(*created_at),
                    updated_at: record_time(*updated_at),
                    ciphertext: self.seal_bytes(s, id, &content.to_json()),
                })
            })
            .collect()
    }

    /// Seals JSON for the member under object id `id` (imported records
    /// and history), padded to its size bucket as records are.
    pub fn seal_bytes(&self, s: &MemberSession, id: RecordId, plain: &[u8]) -> Vec<u8> {
        s.key.seal(
            self.rng.as_ref(),
            &Aad::record(s.member, id),
            &padded(plain.to_vec(), PAD_MIN),
        )
    }

    /// Opens what [`Vault::seal_bytes`] sealed.
    pub fn open_bytes(
        &self,
        s: &MemberSession,
        id: RecordId,
        sealed: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        s.key
            .open(&Aad::record(s.member, id), sealed)
            .map_err(|_| VaultError::Integrity {
                what: "imported history",
            })
    }

    #[tracing::instrument(skip_all)]
    pub async fn create_record(
        &self,
        s: &MemberSession,
        content: RecordContent,
    ) -> Result<RecordView, VaultError> {
        self.check_content(&content)?;
        let id = RecordId::generate(self.rng.as_ref());
        let now = record_time(self.clock.now());
        let stored = StoredRecord {
            id,
            member: s.member,
            revision: 1,
            created_at: now,
            updated_at: now,
            ciphertext: self.seal(s, id, &content),
        };
        self.writer()
            .write(
                RecordWrite::Insert(stored),
                Self::event(s, Action::RecordCreate, id),
            )
            .await?;
        self.changed(s, None, Some(&content)).await;
        Ok(RecordView {
            id,
            revision: 1,
            created_at: now,
            updated_at: now,
            content,
        })
    }

    #[tracing::instrument(skip_all)]
    pub async fn read_record(
        &self,
        s: &MemberSession,
        id: RecordId,
    ) -> Result<RecordView, VaultError> {
        let r = self
            .reader()
            .read(s.member, id)
            .await?
            .ok_or(VaultError::RecordNotFound)?;
        self.audit
            .record(Self::event(s, Action::RecordRead, id))
            .await?;
        self.open_record(s.member, &s.key, r)
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_records(
        &self,
        s: &MemberSession,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<RecordView>, VaultError> {
        let rows = self
            .store
            .list_records(s.member, offset, limit.min(MAX_PAGE))
            .await?;
        self.audit
            .record(AuditEvent::new(Actor::Member(s.member), Action::RecordList).subject(s.member))
            .await?;
        rows.into_iter()
            .map(|r| self.open_record(s.member, &s.key, r))
            .collect()
    }

    /// Every record of the member, decrypted, for work done inside the vault on
    /// the member's behalf (offer matching, interest suggestions). One audit entry.
    #[tracing::instrument(skip_all)]
    pub async fn all_records(&self, s: &MemberSession) -> Result<Vec<RecordView>, VaultError> {
        let mut out = Vec::new();
        loop {
            let page = self
                .store
                .list_records(s.member, out.len() as u64, MAX_PAGE)
                .await?;
            let last = (page.len() as u64) < MAX_PAGE;
            for r in page {
                out.push(self.open_record(s.member, &s.key, r)?);
            }
            if last {
                break;
            }
        }
        self.audit
            .record(AuditEvent::new(Actor::Member(s.member), Action::RecordList).subject(s.member))
            .await?;
        Ok(out)
    }

    /// Replaces a record's content. With `if_revision`, refuses when the record
    /// changed in between (optimistic concurrency).
    #[tracing::instrument(skip_all)]
    pub async fn update_record(
        &self,
        s: &MemberSession,
        id: RecordId,
        content: RecordContent,
        if_revision: Option<i64>,
    ) -> Result<RecordView, VaultError> {
        self.check_content(&content)?;
        let current = self
            .store
            .record(s.member, id)
            .await?
            .ok_or(VaultError::RecordNotFound)?;
        if let Some(expected) = if_revision {
            if expected != current.revision {
                return Err(VaultError::RevisionConflict { expected });
            }
        }
        let now = record_time(self.clock.now());
        let next = StoredRecord {
            id,
            member: s.member,
            revision: current.revision + 1,
            created_at: current.created_at,
            updated_at: now,
            ciphertext: self.seal(s, id, &content),
        };
        let old = match self.session_hook.get() {
            Some(_) => Some(self.open_record(s.member, &s.key, current.clone())?.content),
            None => None,
        };
        let view = RecordView {
            id,
            revision: next.revision,
            created_at: next.created_at,
            updated_at: now,
            content,
        };
        let update = RecordWrite::Update {
            record: next,
            expected_revision: current.revision,
        };
        if !self
            .writer()
            .write(update, Self::event(s, Action::RecordUpdate, id))
            .await?
        {
            return Err(VaultError::RevisionConflict {
                expected: current.revision,
            });
        }
        if old.is_some() {
            self.changed(s, old.as_ref(), Some(&view.content)).await;
        }
        Ok(view)
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete_record(&self, s: &MemberSession, id: RecordId) -> Result<(), VaultError> {
        // What the record was, for the session hook (its category's envelopes).
        let old = match self.session_hook.get() {
            Some(_) => match self.store.record(s.member, id).await? {
                Some(r) => Some(self.open_record(s.member, &s.key, r)?.content),
                None => return Err(VaultError::RecordNotFound),
            },
            None => None,
        };
        let delete = RecordWrite::Delete {
            member: s.member,
            id,
        };
        if !self
            .writer()
            .write(delete, Self::event(s, Action::RecordDelete, id))
            .await?
        {
            return Err(VaultError::RecordNotFound);
        }
        if old.is_some() {
            self.changed(s, old.as_ref(), None).await;
        }
        Ok(())
    }

    /// Tells the session hook that a record changed. Its failure is logged:
    /// the write stands, and the member's next login brings it up to date.
    async fn changed(
        &self,
        s: &MemberSession,
        old: Option<&RecordContent>,
        new: Option<&RecordContent>,
    ) {
        if let Some(hook) = self.session_hook.get() {
            if let Err(e) = hook.record_changed(s, old, new).await {
                tracing::warn!(error = %e, "what runs in a member's session could not follow a record change");
            }
        }
    }
}

/// Smallest size bucket of a record's plaintext, in bytes.
const PAD_MIN: usize = 256;
/// Past this, buckets are multiples of it rather than powers of two.
const PAD_STEP: usize = 64 * 1024;

/// A record's JSON padded with spaces (which JSON ignores after a value) to
/// its size bucket: `smallest` bytes (records: 256), then powers of two up
/// to 64 KiB, then multiples of 64 KiB. The stored ciphertext tells a thief
/// the bucket, not the length (issue 13). Consent envelopes are padded by
/// this too, from a larger `smallest`.
pub fn padded(mut json: Vec<u8>, smallest: usize) -> Vec<u8> {
    let n = json.len();
    let bucket = if n <= smallest {
        smallest
    } else if n <= PAD_STEP {
        n.next_power_of_two()
    } else {
        n.div_ceil(PAD_STEP).saturating_mul(PAD_STEP)
    };
    json.resize(bucket.max(n), b' ');
    json
}

#[cfg(test)]
mod padding_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_are_padded_to_buckets_and_read_back() {
        let short = RecordContent::from_json(br#"{"kind":"note","text":"a"}"#).unwrap();
        let longer = RecordContent::from_json(
            format!(r#"{{"kind":"note","text":"{}"}}"#, "b".repeat(200)).as_bytes(),
        )
        .unwrap();
        let (p1, p2) = (
            padded(short.to_json(), PAD_MIN),
            padded(longer.to_json(), PAD_MIN),
        );
        assert_eq!((p1.len(), p2.len()), (256, 256));
        assert_eq!(RecordContent::from_json(&p1).unwrap(), short);
        assert_eq!(padded(vec![b'x'; 257], PAD_MIN).len(), 512);
        assert_eq!(padded(vec![b'x'; 70_000], PAD_MIN).len(), 2 * PAD_STEP);
    }
}
