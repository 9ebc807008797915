//! Coalesced record reads.
//!
//! A record read used to be one query of its own: on SQLite each query is a
//! hand-off from a tokio worker to the connection's thread and back, and on
//! 2 cores those switches, not the query, were the cost of a read
//! (BENCHMARKS.md, "Reads and the ceiling"). The reads that arrive while
//! earlier ones are being answered now go to the database together, as one
//! `SELECT … WHERE record_id IN (…)` ([`me2b_storage::VaultStore::records`]):
//! one round trip for the batch. Nothing is cached: every read is answered
//! by a query that started after it was asked, so a write acknowledged
//! before a read is seen by it, on SQLite and on PostgreSQL with several
//! nodes alike. Each record is answered only to the member it belongs to
//! (the store compares the row's member locator with the asker's).
//!
//! A batch that fails as a whole is read again one record at a time, so that
//! only the read at fault fails.

use crate::VaultError;
use me2b_domain::{MemberId, RecordId};
use me2b_storage::{Store, StoredRecord};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most reads in one query.
const MAX_BATCH: usize = 64;
/// Batches in flight at once: one being answered while the next gathers.
const IN_FLIGHT: usize = 2;

type Answer = Result<Option<StoredRecord>, VaultError>;

struct Request {
    member: MemberId,
    id: RecordId,
    done: oneshot::Sender<Answer>,
}

/// Handle to the vault's reader task. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct RecordReader {
    tx: mpsc::Sender<Request>,
}

impl RecordReader {
    /// Starts the reader task (on the current tokio runtime). It stops when
    /// every handle is dropped.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// The member's record `id`, if it is theirs.
    pub(crate) async fn read(&self, member: MemberId, id: RecordId) -> Answer {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { member, id, done })
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

fn stopped() -> VaultError {
    VaultError::Internal("the vault reader has stopped".into())
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Request>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            answer(store.as_ref(), batch).await;
            drop(slot);
        });
    }
}

/// One batch: one query, then the answers.
async fn answer(store: &dyn Store, batch: Vec<Request>) {
    let wanted: Vec<(MemberId, RecordId)> = batch.iter().map(|r| (r.member, r.id)).collect();
    match store.records(&wanted).await {
        Ok(found) if found.len() == batch.len() => {
            for (r, f) in batch.into_iter().zip(found) {
                let _ = r.done.send(Ok(f));
            }
        }
        Ok(_) => {
            for r in batch {
                let _ = r.done.send(Err(VaultError::Internal(
                    "the store answered a read batch short".into(),
                )));
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(r) = batch.into_iter().next() {
                let _ = r.done.send(Err(e.into()));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, reads = batch.len(), "a vault read batch failed; reading its records one at a time");
            for r in batch {
                let one = store.record(r.member, r.id).await.map_err(VaultError::from);
                let _ = r.done.send(one);
            }
        }
    }
}
