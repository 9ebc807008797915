//! The audit log: every vault access, login, key operation and admin action.
//!
//! * **Append** goes through one writer task per node ([`AuditLog`]) that batches
//!   concurrent events into one transaction (group commit): a caller's `record`
//!   returns only once its entry is durable, so an access is never served before
//!   it is logged, and throughput does not pay one fsync per request.
//! * **Chain**: each entry's hash covers the previous one (`me2b_domain::audit`).
//! * **Signed heads**: every batch (one commit) carries the node's Ed25519
//!   signature over `(seq, hash, time)` of its last entry, in the same
//!   transaction, so every committed entry is covered by a signed head: even
//!   someone able to rewrite the whole table and recompute every hash cannot
//!   sign the new head, and entries added behind the writer's back are covered
//!   by none. The latest head is also kept outside the database, in the data
//!   directory's head file ([`head`]), before any caller is acknowledged: a
//!   removed tail (entries and their heads deleted together) no longer matches
//!   it. Checkpoints (every `checkpoint_every` entries and at shutdown, in
//!   their own table) are signed heads too.
//! * **A member's view** ([`member`]): their own entries numbered per member,
//!   to the minute, with one-way leaves and a signed statement, and nothing
//!   that moves when someone else acts.
//! * **Verify** ([`verify`]) recomputes everything and names the first entry that
//!   does not verify.
#![forbid(unsafe_code)]

pub mod head;
pub mod member;
mod verify;
mod writer;

pub use head::HEAD_FILE;
pub use verify::{verify, verify_with, ExpectedHead, Failure, VerifyReport};
pub use writer::AuditLog;

/// Audit errors. They carry sequence numbers and reasons, never event content.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit storage: {0}")]
    Storage(#[from] me2b_storage::StorageError),
    #[error("the audit writer has stopped")]
    WriterStopped,
    #[error("the audit log ends at entry {log_end}, but the signed head in {path} is at entry {head_seq}: entries after {log_end} were removed, or the database was restored from an older backup; keep that file as evidence (to start on this database anyway, move it aside)")]
    TailRemoved {
        path: String,
        log_end: u64,
        head_seq: u64,
    },
    #[error("entry {seq} of the audit log differs from the signed head in {path}: the log was rewritten; keep that file as evidence (to start on this database anyway, move it aside)")]
    HeadMismatch { path: String, seq: u64 },
    #[error("cannot use the audit head file {path}: {reason}")]
    HeadFile { path: String, reason: String },
}
