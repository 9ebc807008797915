//! Group commit for vault writes, as the audit log does for its entries.
//!
//! Every record create, update and delete goes through one writer task per
//! node. It takes the writes that arrived while the previous batch was being
//! committed, applies them in one transaction (one fsync on SQLite, where each
//! write used to take the single write lock and an fsync of its own), then
//! appends their audit entries in one batch, and only then answers each caller:
//! a write is acknowledged once both the record and its audit entry are durable,
//! as before. Recording the audit entries before taking the next batch also
//! keeps this writer and the audit writer from fighting over SQLite's write lock.
//!
//! A batch that fails as a whole (one write's member was erased meanwhile, say)
//! is applied again one write at a time, so that only the write at fault fails.

use crate::VaultError;
use me2b_audit::{AuditError, AuditLog};
use me2b_domain::audit::AuditEvent;
use me2b_storage::{RecordWrite, StorageError, Store};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 256;

struct Request {
    write: RecordWrite,
    /// Recorded once the write changed a row.
    event: AuditEvent,
    done: oneshot::Sender<Result<bool, VaultError>>,
}

/// Handle to the vault's writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct RecordWriter {
    tx: mpsc::Sender<Request>,
}

impl RecordWriter {
    /// Starts the writer task (on the current tokio runtime). It stops when
    /// every handle is dropped.
    pub(crate) fn start(store: Arc<dyn Store>, audit: AuditLog) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(store, audit, rx));
        Self { tx }
    }

    /// Applies `write` and records `event` if it changed a row. Answers whether
    /// it did, once the record and its audit entry are both durable.
    pub(crate) async fn write(
        &self,
        write: RecordWrite,
        event: AuditEvent,
    ) -> Result<bool, VaultError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { write, event, done })
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

fn stopped() -> VaultError {
    VaultError::Internal("the vault writer has stopped".into())
}

async fn run(store: Arc<dyn Store>, audit: AuditLog, mut rx: mpsc::Receiver<Request>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        commit(store.as_ref(), &audit, batch).await;
    }
}

/// One batch: the writes in one transaction, their audit entries in one
/// append, then the answers.
async fn commit(store: &dyn Store, audit: &AuditLog, batch: Vec<Request>) {
    let (writes, rest): (Vec<RecordWrite>, Vec<_>) = batch
        .into_iter()
        .map(|r| (r.write, (r.event, r.done)))
        .unzip();
    let results: Vec<Result<bool, VaultError>> = match store.apply_record_writes(&writes).await {
        Ok(changed) if changed.len() == writes.len() => changed.into_iter().map(Ok).collect(),
        Ok(_) => writes
            .iter()
            .map(|_| {
                Err(VaultError::Internal(
                    "the store answered a batch short".into(),
                ))
            })
            .collect(),
        Err(e) if writes.len() == 1 => vec![Err(e.into())],
        Err(e) => {
            tracing::warn!(error = %e, writes = writes.len(), "a vault write batch failed; applying its writes one at a time");
            let mut out = Vec::with_capacity(writes.len());
            for w in &writes {
                out.push(
                    store
                        .apply_record_writes(std::slice::from_ref(w))
                        .await
                        .map(|c| c.first().copied().unwrap_or(false))
                        .map_err(VaultError::from),
                );
            }
            out
        }
    };
    let events: Vec<AuditEvent> = results
        .iter()
        .zip(&rest)
        .filter(|(r, _)| matches!(r, Ok(true)))
        .map(|(_, (event, _))| event.clone())
        .collect();
    let audited = if events.is_empty() {
        Ok(())
    } else {
        audit.record_all(events).await.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit append for vault writes failed");
            e.to_string()
        })
    };
    for (result, (_, done)) in results.into_iter().zip(rest) {
        let answer = match (result, &audited) {
            (Ok(true), Err(msg)) => Err(VaultError::Audit(AuditError::Storage(
                StorageError::Corrupt(format!("audit append failed: {msg}")),
            ))),
            (other, _) => other,
        };
        let _ = done.send(answer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use me2b_crypto::{Keyring, MasterKey, SeededRandom};
    use me2b_domain::audit::{Action, Actor};
    use me2b_domain::{Clock, FixedClock, MemberId, RecordId, Timestamp};
    use me2b_storage::{NewMember, StoredRecord};
    use me2b_testkit::Db;

    fn record(member: MemberId, rng: &SeededRandom) -> StoredRecord {
        StoredRecord {
            id: RecordId::generate(rng),
            member,
            revision: 1,
            created_at: Timestamp::from_unix_millis(1),
            updated_at: Timestamp::from_unix_millis(1),
            ciphertext: vec![1; 40],
        }
    }

    /// A batch one write spoils (its member does not exist) is applied again
    /// one write at a time: the others are stored, acknowledged and audited.
    #[tokio::test]
    async fn a_failing_write_fails_alone_and_the_rest_of_its_batch_is_kept() {
        for db in Db::ALL {
            let Some(t) = me2b_testkit::fresh(db).await.unwrap() else {
                continue;
            };
            let store = me2b_storage::open(&t.url).await.unwrap();
            let clock: Arc<dyn Clock> =
                Arc::new(FixedClock::at(Timestamp::from_unix_millis(1_000)));
            let keys = Arc::new(Keyring::derive(&MasterKey::from_bytes([4; 32])));
            let audit = AuditLog::start(store.clone(), clock, keys, 1000)
                .await
                .unwrap();
            let rng = SeededRandom::new(3);
            let member = MemberId::generate(&rng);
            store
                .insert_member(&NewMember {
                    id: member,
                    email_index: [1; 32],
                    email_ct: vec![1],
                    passphrase_wrap: vec![2; 40],
                    recovery_wrap: vec![3; 40],
                    created_at: Timestamp::from_unix_millis(1),
                })
                .await
                .unwrap();
            let (good, orphan) = (record(member, &rng), record(MemberId::generate(&rng), &rng));
            let mut waits = Vec::new();
            let mut batch = Vec::new();
            for r in [good.clone(), orphan.clone()] {
                let (done, wait) = oneshot::channel();
                waits.push(wait);
                batch.push(Request {
                    event: AuditEvent::new(Actor::Member(r.member), Action::RecordCreate)
                        .object(r.id),
                    write: RecordWrite::Insert(r),
                    done,
                });
            }
            commit(store.as_ref(), &audit, batch).await;
            let mut answers = Vec::new();
            for w in waits {
                answers.push(w.await.unwrap());
            }
            assert!(matches!(answers[0], Ok(true)), "{db:?}: {:?}", answers[0]);
            assert!(
                matches!(answers[1], Err(VaultError::Storage(_))),
                "{db:?}: {:?}",
                answers[1]
            );
            assert!(store.record(member, good.id).await.unwrap().is_some());
            let audited = store.audit_entries(0, 100).await.unwrap();
            let creates = audited
                .iter()
                .filter(|e| String::from_utf8_lossy(&e.event_json).contains("vault.record.create"))
                .count();
            assert_eq!(creates, 1, "{db:?}: only the stored write is audited");
        }
    }
}
