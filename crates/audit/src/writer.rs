use crate::head::HeadFile;
use crate::AuditError;
use me2b_crypto::Keyring;
use me2b_domain::audit::{AuditEvent, Checkpoint};
use me2b_domain::{Clock, Timestamp};
use me2b_storage::Store;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most events written in one transaction.
const MAX_BATCH: usize = 512;

type Ack = oneshot::Sender<Result<u64, AuditError>>;

enum Request {
    Append {
        events: Vec<AuditEvent>,
        done: Ack,
    },
    Checkpoint {
        done: oneshot::Sender<Result<Option<Checkpoint>, AuditError>>,
    },
}

/// Handle to the node's audit writer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Append { events, .. } => write!(f, "Append({} events)", events.len()),
            Request::Checkpoint { .. } => f.write_str("Checkpoint"),
        }
    }
}

struct Writer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: Arc<Keyring>,
    checkpoint_every: u64,
    last_checkpoint: u64,
    head_file: Option<HeadFile>,
}

impl AuditLog {
    /// Starts the writer task. It stops when every handle is dropped. Every
    /// batch gets a signed head in the database; no head file is kept (see
    /// [`AuditLog::start_with_head_file`], which a node uses).
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: Arc<Keyring>,
        checkpoint_every: u64,
    ) -> Result<Self, AuditError> {
        Self::start_inner(store, clock, keys, checkpoint_every, None).await
    }

    /// As [`AuditLog::start`], and keeps the latest signed head in the file
    /// at `head_path` too (outside the database). First checks that the log
    /// still holds the entry the file names, unchanged: a log whose tail was
    /// removed (or rewritten) is refused with [`AuditError::TailRemoved`] or
    /// [`AuditError::HeadMismatch`] before anything is appended to it.
    pub async fn start_with_head_file(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: Arc<Keyring>,
        checkpoint_every: u64,
        head_path: &std::path::Path,
    ) -> Result<Self, AuditError> {
        let known = crate::head::check(store.as_ref(), &keys.verifying_key(), head_path).await?;
        if known.is_none() {
            if let Some((seq, _)) = store.audit_head().await? {
                tracing::warn!(
                    entries = seq,
                    path = %head_path.display(),
                    "no audit head file for a log that has entries: starting one now; a tail removed before now would not be noticed (a node's first start on this data directory, or the file was deleted)"
                );
            }
        }
        let file = HeadFile::open(head_path)?;
        Self::start_inner(store, clock, keys, checkpoint_every, Some(file)).await
    }

    async fn start_inner(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: Arc<Keyring>,
        checkpoint_every: u64,
        head_file: Option<HeadFile>,
    ) -> Result<Self, AuditError> {
        let last_checkpoint = store.checkpoints().await?.last().map_or(0, |c| c.seq);
        let (tx, rx) = mpsc::channel(4096);
        let writer = Writer {
            store,
            clock,
            keys,
            checkpoint_every: checkpoint_every.max(1),
            last_checkpoint,
            head_file,
        };
        tokio::spawn(writer.run(rx));
        Ok(Self { tx })
    }

    /// Appends one event; returns its sequence number once it is durable.
    pub async fn record(&self, event: AuditEvent) -> Result<u64, AuditError> {
        self.record_all(vec![event]).await
    }

    /// Appends events in order; returns the last one's sequence number.
    pub async fn record_all(&self, events: Vec<AuditEvent>) -> Result<u64, AuditError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Append { events, done })
            .await
            .map_err(|_| AuditError::WriterStopped)?;
        wait.await.map_err(|_| AuditError::WriterStopped)?
    }

    /// Appends one event dated to the hour it happens in. Every entry is
    /// (issue 13): the log keeps no finer time of any act, so an entry's
    /// time never lines up with a member's rows or a co-op's own records
    /// (a member's intents are kept to the hour, and so are the vault's
    /// and consents' times). Its place in the chain orders it.
    pub async fn record_hourly(&self, event: AuditEvent) -> Result<u64, AuditError> {
        self.record(event).await
    }

    /// Signs a checkpoint over the current head (if it moved since the last one).
    pub async fn checkpoint_now(&self) -> Result<Option<Checkpoint>, AuditError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Checkpoint { done })
            .await
            .map_err(|_| AuditError::WriterStopped)?;
        wait.await.map_err(|_| AuditError::WriterStopped)?
    }
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.recv().await {
            let mut appends = Vec::new();
            let mut checkpoints = Vec::new();
            let mut n_events = 0;
            let mut next = Some(first);
            while let Some(req) = next.take() {
                match req {
                    Request::Append { events, done } => {
                        n_events += events.len();
                        appends.push((events, done));
                    }
                    Request::Checkpoint { done } => checkpoints.push(done),
                }
                if n_events < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            // Every entry is dated to the whole hour it is written in
            // (issue 13, "metadata at rest"); the chain orders entries.
            if !appends.is_empty() {
                self.append(appends, self.clock.now().hour()).await;
            }
            for done in checkpoints {
                let head = match self.store.audit_head().await {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                        continue;
                    }
                };
                let _ = done.send(self.checkpoint(head, true).await);
            }
        }
        // Every handle is gone. The final checkpoint is signed by the node's
        // shutdown (`checkpoint_now`) while the database is still open.
    }

    async fn append(&mut self, batch: Vec<(Vec<AuditEvent>, Ack)>, at: Timestamp) {
        let all: Vec<AuditEvent> = batch.iter().flat_map(|(e, _)| e.iter().cloned()).collect();
        // One signature per batch, made inside the batch's transaction (the
        // head is only known there); kept to write the head file after commit.
        let signed = std::sync::Mutex::new(None::<Vec<u8>>);
        let keys = self.keys.clone();
        let sign = |seq: u64, hash: &me2b_domain::audit::ChainHash, at| {
            let sig = keys.sign(&Checkpoint::signed_message(seq, hash, at));
            if let Ok(mut s) = signed.lock() {
                *s = Some(sig.clone());
            }
            sig
        };
        match self.store.append_audit_signed(at, &all, &sign).await {
            Ok(entries) => {
                // The head file first, then the acknowledgements: every entry
                // a caller was told is durable is covered by it.
                let sig = signed.lock().ok().and_then(|mut s| s.take());
                if let (Some(file), Some(last), Some(signature)) =
                    (self.head_file.as_mut(), entries.last(), sig)
                {
                    file.write(&Checkpoint {
                        seq: last.seq,
                        head: last.hash,
                        at: last.at,
                        signature,
                    });
                }
                let mut i = 0;
                for (events, done) in batch {
                    i += events.len();
                    let seq = entries.get(i.wrapping_sub(1)).map_or(0, |e| e.seq);
                    let _ = done.send(Ok(seq));
                }
                let head = entries.last().map(|e| (e.seq, e.hash));
                if let Err(e) = self.checkpoint(head, false).await {
                    tracing::error!(error = %e, "could not sign an audit checkpoint");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = all.len(), "audit append failed");
                let msg = e.to_string();
                for (_, done) in batch {
                    let _ = done.send(Err(AuditError::Storage(
                        me2b_storage::StorageError::Corrupt(format!("audit append failed: {msg}")),
                    )));
                }
            }
        }
    }

    /// Signs `head` if `force` and it moved, or if `checkpoint_every` entries
    /// have passed since the last checkpoint.
    async fn checkpoint(
        &mut self,
        head: Option<(u64, me2b_domain::audit::ChainHash)>,
        force: bool,
    ) -> Result<Option<Checkpoint>, AuditError> {
        let Some((seq, head)) = head else {
            return Ok(None);
        };
        let due = seq >= self.last_checkpoint + self.checkpoint_every;
        if seq == self.last_checkpoint || !(force || due) {
            return Ok(None);
        }
        // To the hour, as the entries are: an exact time next to a
        // sequence number would date the entry it covers.
        let at = self.clock.now().hour();
        let signature = self.keys.sign(&Checkpoint::signed_message(seq, &head, at));
        let cp = Checkpoint {
            seq,
            head,
            at,
            signature,
        };
        self.store.insert_checkpoint(&cp).await?;
        self.last_checkpoint = seq;
        Ok(Some(cp))
    }
}
