//! The signed head file: the latest signed head of the audit log, kept
//! outside the database (`audit-head` in the data directory).
//!
//! Every batch the writer commits carries a signed head in the database (on
//! its last entry). That alone cannot show a removed tail: whoever deletes the
//! last entries deletes their heads with them, and what is left is a valid,
//! shorter log. The head file is a second copy, written after each commit and
//! before any caller is acknowledged, so it always names an entry that must
//! still be in the log. Someone with write access to the database only cannot
//! move it back; a node refuses to start on a log that lost the entry it names,
//! and `me2b audit verify` fails. It is one fixed-size record, overwritten in
//! place (no rename), not fsynced: it survives a process crash (`kill -9`), not
//! necessarily a power loss (the database, which is fsynced, is then ahead of
//! it, which is safe: only its own entry must be present).

use crate::AuditError;
use me2b_crypto::NodeVerifyingKey;
use me2b_domain::audit::Checkpoint;
use me2b_domain::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the head file in a data directory.
pub const HEAD_FILE: &str = "audit-head";
const FORMAT: &str = "me2b-audit-head/1";
/// The record's size on disk: JSON padded with spaces, then a newline.
const RECORD_LEN: usize = 512;

#[derive(Serialize, Deserialize)]
struct Record {
    format: String,
    seq: u64,
    hash: String,
    at_ms: i64,
    signature: String,
}

/// The bytes of the head file for `head`.
pub fn encode(head: &Checkpoint) -> Vec<u8> {
    let rec = Record {
        format: FORMAT.into(),
        seq: head.seq,
        hash: hex::encode(head.head),
        at_ms: head.at.unix_millis(),
        signature: hex::encode(&head.signature),
    };
    let mut out = serde_json::to_vec(&rec).unwrap_or_default();
    out.resize(RECORD_LEN - 1, b' ');
    out.push(b'\n');
    out
}

/// Parses a head file (or a copy of one). The signature is not checked here.
pub fn parse(bytes: &[u8]) -> Result<Checkpoint, String> {
    let rec: Record = serde_json::from_slice(bytes.trim_ascii_end())
        .map_err(|_| "not a signed audit head (damaged or another file)".to_owned())?;
    if rec.format != FORMAT {
        return Err(format!("unknown format {:?}", rec.format.get(..40)));
    }
    let head = hex::decode(&rec.hash)
        .ok()
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
        .ok_or("its hash is not 32 bytes of hex")?;
    let signature = hex::decode(&rec.signature).map_err(|_| "its signature is not hex")?;
    Ok(Checkpoint {
        seq: rec.seq,
        head,
        at: Timestamp::from_unix_millis(rec.at_ms),
        signature,
    })
}

/// Reads and parses the head file at `path`; `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Checkpoint>, AuditError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(head_err(path, e.to_string())),
    };
    parse(&bytes).map(Some).map_err(|r| head_err(path, r))
}

fn head_err(path: &Path, reason: String) -> AuditError {
    AuditError::HeadFile {
        path: path.display().to_string(),
        reason,
    }
}

/// Checks the head file at `path` against the log in `store`, as a node does
/// before it appends anything: the file must be signed by `key` and the log
/// must still hold its entry, unchanged. Returns the head (if any).
pub async fn check(
    store: &dyn me2b_storage::Store,
    key: &NodeVerifyingKey,
    path: &Path,
) -> Result<Option<Checkpoint>, AuditError> {
    let Some(head) = read(path)? else {
        return Ok(None);
    };
    let msg = Checkpoint::signed_message(head.seq, &head.head, head.at);
    if key.verify(&msg, &head.signature).is_err() {
        return Err(head_err(path, "it is not signed by this node's key".into()));
    }
    let entry = store
        .audit_entries(head.seq.saturating_sub(1), 1)
        .await?
        .into_iter()
        .find(|e| e.seq == head.seq);
    match entry {
        None => {
            let log_end = store.audit_head().await?.map_or(0, |(s, _)| s);
            Err(AuditError::TailRemoved {
                path: path.display().to_string(),
                log_end,
                head_seq: head.seq,
            })
        }
        Some(e) if e.hash != head.head => Err(AuditError::HeadMismatch {
            path: path.display().to_string(),
            seq: head.seq,
        }),
        Some(_) => Ok(Some(head)),
    }
}

/// The writer's handle on the head file.
#[derive(Debug)]
pub(crate) struct HeadFile {
    path: PathBuf,
    file: std::fs::File,
    written: u64,
    failing: bool,
}

impl HeadFile {
    pub(crate) fn open(path: &Path) -> Result<Self, AuditError> {
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(|e| head_err(path, e.to_string()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| head_err(path, e.to_string()))?;
        let written = parse(&bytes).map_or(0, |h| h.seq);
        Ok(Self {
            path: path.to_owned(),
            file,
            written,
            failing: false,
        })
    }

    /// Overwrites the file with `head` unless it already names a later entry
    /// (another process on the same data directory may have written one).
    /// A small write into the page cache, no fsync.
    pub(crate) fn write(&mut self, head: &Checkpoint) {
        if head.seq <= self.written {
            return;
        }
        let bytes = encode(head);
        let r = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(&bytes))
            .and_then(|()| self.file.set_len(RECORD_LEN as u64));
        match r {
            Ok(()) => {
                self.written = head.seq;
                if self.failing {
                    self.failing = false;
                    tracing::info!(path = %self.path.display(), "the audit head file is written again");
                }
            }
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit head file: a removed tail of the audit log would go unnoticed until it is written again");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_round_trips_through_its_fixed_size_record() {
        let h = Checkpoint {
            seq: 123_456_789,
            head: [7; 32],
            at: Timestamp::from_unix_millis(1_700_000_000_123),
            signature: vec![9; 64],
        };
        let bytes = encode(&h);
        assert_eq!(bytes.len(), RECORD_LEN);
        assert_eq!(parse(&bytes).unwrap(), h);
        assert!(parse(b"garbage").is_err());
        assert!(parse(&bytes[..100]).is_err(), "a torn record is refused");
    }
}
