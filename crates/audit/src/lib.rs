//! The audit log: every vault access, login, key operation and admin action.
//!
//! * **Append** goes through one writer task per node ([`AuditLog`]) that batches
//!   concurrent events into one transaction (group commit): a caller's `record`
//!   returns only once its entry is durable, so an access is never served before
//!   it is logged, and throughput does not pay one fsync per request.
//! * **Chain**: each entry's hash covers the previous one (`me2b_domain::audit`).
//! * **Checkpoints**: every `checkpoint_every` entries (and at shutdown) the node
//!   signs `(seq, head hash)` with its Ed25519 key. A checkpoint pins history: even
//!   someone able to rewrite the whole table and recompute every hash cannot
//!   produce a valid signature over the new head.
//! * **Verify** ([`verify`]) recomputes everything and names the first entry that
//!   does not verify.
#![forbid(unsafe_code)]

mod verify;
mod writer;

pub use verify::{verify, Failure, VerifyReport};
pub use writer::AuditLog;

/// Audit errors. They carry sequence numbers and reasons, never event content.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit storage: {0}")]
    Storage(#[from] me2b_storage::StorageError),
    #[error("the audit writer has stopped")]
    WriterStopped,
}
