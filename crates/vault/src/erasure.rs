//! Erasures released in batches (issue 12, finding A).
//!
//! An erasure destroys the member's keys at once, and with them everything
//! the node could read or serve of them. What organisations can *observe* of
//! it (their consent leaving the consent lists, the trust naming their card
//! as erased) waits: if it showed at the instant of the erasure, two co-ops
//! pooling what they see would find exactly one card changing at the same
//! moment at each, and link them. So every pending erasure is released
//! together at a period boundary (multiples of the period since the Unix
//! epoch, UTC), once at least `min_batch` are pending or the oldest has
//! waited `max_delay`. One erasure released alone is still linkable when it
//! shows; the batch only hides it among the others (ARCHITECTURE.md).
//!
//! Every erasure and every release takes one lock, and an erasure first
//! settles the release of the period before it: a release never sees an
//! erasure half done, and never releases one that began after its boundary.

use crate::{Vault, VaultError};
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::batch::{BatchSchedule, ReleaseGate};

/// The prefix of an erasure receipt: the secret under which the member
/// follows their recipients' confirmations after their account is gone.
pub const ERASURE_RECEIPT_PREFIX: &str = "me2b_e_";

/// When what organisations observe of erasures is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErasureSchedule {
    /// Releases at period boundaries (UTC) of at least `min_batch`
    /// pending erasures, or when the oldest waited `max_delay_seconds`.
    pub batch: BatchSchedule,
    /// A recipient that has not confirmed this long after the release is
    /// overdue.
    pub confirm_within_seconds: i64,
}

impl Default for ErasureSchedule {
    /// Daily releases of at least 5 members, none held past 7 days.
    fn default() -> Self {
        Self {
            batch: BatchSchedule {
                period_seconds: 24 * 3600,
                min_batch: 5,
                max_delay_seconds: 7 * 24 * 3600,
            },
            confirm_within_seconds: 30 * 24 * 3600,
        }
    }
}

impl ErasureSchedule {
    /// The latest an erasure can become visible to organisations: the
    /// maximum delay, rounded up to the next boundary.
    pub fn latest_release_seconds(&self) -> i64 {
        self.batch.latest_release_seconds()
    }
}

/// The release state a node's vault clones share.
#[derive(Debug, Default)]
pub(crate) struct Releases {
    gate: ReleaseGate<ErasureSchedule>,
    /// Held by every erasure and every release.
    pub(crate) lock: tokio::sync::Mutex<()>,
}

impl Vault {
    /// Sets when erasures are released (once, when the node is wired; later
    /// calls are ignored). Default: [`ErasureSchedule::default`].
    pub fn set_erasure_schedule(&self, s: ErasureSchedule) {
        self.releases.gate.set_schedule(s);
    }

    pub fn erasure_schedule(&self) -> ErasureSchedule {
        self.releases.gate.schedule()
    }

    /// Releases the pending erasures if a boundary passed since the last
    /// decision and the batch is due. Cheap when no boundary passed (one
    /// atomic read), so every request runs it first: nothing an organisation
    /// is answered after a boundary predates that boundary's release.
    /// Returns how many members were released.
    pub async fn release_erasures_due(&self) -> Result<u64, VaultError> {
        if !self.releases.gate.open(self.clock.now()) {
            return Ok(0);
        }
        let _one = self.releases.lock.lock().await;
        self.release_locked().await
    }

    /// The release decision, under the lock.
    pub(crate) async fn release_locked(&self) -> Result<u64, VaultError> {
        let now = self.clock.now();
        if !self.releases.gate.open(now) {
            return Ok(0);
        }
        let s = self.erasure_schedule().batch;
        let boundary = s.boundary(now);
        let (pending, oldest) = self.store.erasure_pending_before(boundary).await?;
        let mut released = 0;
        if s.due(boundary, pending, oldest) {
            released = self.store.erasure_release(boundary, boundary).await?;
            self.audit
                .record(
                    AuditEvent::new(Actor::Node, Action::ErasureRelease)
                        .object(format!("{released} members")),
                )
                .await?;
        }
        self.releases.gate.decided(&s, now);
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_release_is_the_maximum_delay_and_one_period() {
        let s = ErasureSchedule::default();
        assert_eq!(s.latest_release_seconds(), 8 * 86_400);
    }
}
