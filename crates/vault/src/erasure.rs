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
use me2b_domain::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};

/// The prefix of an erasure receipt: the secret under which the member
/// follows their recipients' confirmations after their account is gone.
pub const ERASURE_RECEIPT_PREFIX: &str = "me2b_e_";

/// When what organisations observe of erasures is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErasureSchedule {
    /// Releases happen at multiples of this since the Unix epoch (UTC).
    pub period_seconds: i64,
    /// A period's erasures are released when at least this many are
    /// pending…
    pub min_batch: u64,
    /// …or when the oldest has waited at least this long.
    pub max_delay_seconds: i64,
    /// A recipient that has not confirmed this long after the release is
    /// overdue.
    pub confirm_within_seconds: i64,
}

impl Default for ErasureSchedule {
    /// Daily releases of at least 5 members, none held past 7 days.
    fn default() -> Self {
        Self {
            period_seconds: 24 * 3600,
            min_batch: 5,
            max_delay_seconds: 7 * 24 * 3600,
            confirm_within_seconds: 30 * 24 * 3600,
        }
    }
}

impl ErasureSchedule {
    /// The latest boundary at or before `now`.
    pub fn boundary(&self, now: Timestamp) -> Timestamp {
        let p = self.period_seconds.max(1).saturating_mul(1000);
        Timestamp::from_unix_millis(now.unix_millis().div_euclid(p).saturating_mul(p))
    }

    /// Whether the erasures pending before `boundary` (`pending` of them, the
    /// oldest begun at `oldest`) are released there.
    pub fn due(&self, boundary: Timestamp, pending: u64, oldest: Option<Timestamp>) -> bool {
        let waited_enough = oldest.is_some_and(|t| {
            boundary.unix_millis().saturating_sub(t.unix_millis())
                >= self.max_delay_seconds.saturating_mul(1000)
        });
        pending > 0 && (pending >= self.min_batch || waited_enough)
    }

    /// The latest an erasure can become visible to organisations: the
    /// maximum delay, rounded up to the next boundary.
    pub fn latest_release_seconds(&self) -> i64 {
        self.max_delay_seconds.saturating_add(self.period_seconds)
    }
}

/// The release state a node's vault clones share.
#[derive(Debug, Default)]
pub(crate) struct Releases {
    schedule: std::sync::OnceLock<ErasureSchedule>,
    /// Held by every erasure and every release.
    pub(crate) lock: tokio::sync::Mutex<()>,
    /// Unix milliseconds of the next boundary to decide (0: not yet known).
    next_check: AtomicI64,
}

impl Vault {
    /// Sets when erasures are released (once, when the node is wired; later
    /// calls are ignored). Default: [`ErasureSchedule::default`].
    pub fn set_erasure_schedule(&self, s: ErasureSchedule) {
        let _ = self.releases.schedule.set(s);
    }

    pub fn erasure_schedule(&self) -> ErasureSchedule {
        self.releases.schedule.get().copied().unwrap_or_default()
    }

    /// Releases the pending erasures if a boundary passed since the last
    /// decision and the batch is due. Cheap when no boundary passed (one
    /// atomic read), so every request runs it first: nothing an organisation
    /// is answered after a boundary predates that boundary's release.
    /// Returns how many members were released.
    pub async fn release_erasures_due(&self) -> Result<u64, VaultError> {
        if self.clock.now().unix_millis() < self.releases.next_check.load(Ordering::Acquire) {
            return Ok(0);
        }
        let _one = self.releases.lock.lock().await;
        self.release_locked().await
    }

    /// The release decision, under the lock.
    pub(crate) async fn release_locked(&self) -> Result<u64, VaultError> {
        let now = self.clock.now();
        if now.unix_millis() < self.releases.next_check.load(Ordering::Acquire) {
            return Ok(0);
        }
        let s = self.erasure_schedule();
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
        self.releases.next_check.store(
            boundary
                .unix_millis()
                .saturating_add(s.period_seconds.saturating_mul(1000)),
            Ordering::Release,
        );
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix_millis(s * 1000)
    }

    #[test]
    fn boundaries_are_multiples_of_the_period() {
        let s = ErasureSchedule::default();
        assert_eq!(s.boundary(at(86_400 * 3 + 5)), at(86_400 * 3));
        assert_eq!(s.boundary(at(86_400 * 3)), at(86_400 * 3));
        assert_eq!(s.boundary(at(86_399)), at(0));
    }

    #[test]
    fn a_batch_waits_for_enough_members_or_the_maximum_delay() {
        let s = ErasureSchedule {
            period_seconds: 86_400,
            min_batch: 3,
            max_delay_seconds: 2 * 86_400,
            confirm_within_seconds: 86_400,
        };
        let b = at(10 * 86_400);
        assert!(!s.due(b, 0, None));
        assert!(!s.due(b, 2, Some(at(9 * 86_400))));
        assert!(s.due(b, 3, Some(at(9 * 86_400))));
        assert!(s.due(b, 1, Some(at(8 * 86_400))), "waited two days");
        assert!(!s.due(b, 1, Some(at(8 * 86_400 + 1))));
        assert_eq!(s.latest_release_seconds(), 3 * 86_400);
    }
}
