//! Consent changes released in batches (issue 12: the links polling finds).
//!
//! Two co-ops that poll their consent lists (or data access, or a consent's
//! receipts) every few milliseconds would see one member's pseudonym appear
//! at each at the moment they grant, and, when one click withdraws their
//! marketing consents everywhere, turn `withdrawn` at both at once: pairing
//! the moments links the member. So what an organisation *sees* of a change
//! of consent state waits, as erasures do (me2b-vault's erasure.rs), for a
//! release of every change of the period together, at a period boundary
//! (multiples of the period since the Unix epoch, UTC), once enough members
//! changed or the oldest change has waited long enough.
//!
//! A withdrawal takes effect at once all the same (GDPR Art. 7(3)): its
//! envelopes are destroyed, and data access never serves a consent that is
//! not given now. Data access would then show the moment of a withdrawal
//! to an organisation polling it, so data access answers only in a window
//! after each boundary (`access_window`), the same for every organisation:
//! a withdrawal made between two windows shows at the next, together with
//! every other of the period. One made inside a window shows at once: the
//! residual risk (ARCHITECTURE.md, "Who can link what").

use super::*;
use me2b_domain::batch::{BatchSchedule, ReleaseGate};

/// When organisations see consent changes, and how often data access
/// answers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsentSchedule {
    /// Releases at period boundaries (UTC), where data-access windows open
    /// too, of at least `min_batch` members' changes, or when the oldest
    /// change waited `max_delay_seconds`.
    pub batch: BatchSchedule,
    /// How long data access answers after each boundary.
    pub access_window_seconds: i64,
}

impl Default for ConsentSchedule {
    /// Daily releases (at midnight UTC) of at least 5 members, none held
    /// past 3 days; data access answers in the hour after midnight.
    fn default() -> Self {
        Self {
            batch: BatchSchedule {
                period_seconds: 24 * 3600,
                min_batch: 5,
                max_delay_seconds: 3 * 24 * 3600,
            },
            access_window_seconds: 3600,
        }
    }
}

impl ConsentSchedule {
    /// Whether data access is answered at `now`: Ok inside the window
    /// that opens at each boundary, Err(seconds until the next) outside.
    pub fn window(&self, now: Timestamp) -> Result<(), i64> {
        let since = now.unix_millis() - self.batch.boundary(now).unix_millis();
        if since < self.access_window_seconds.saturating_mul(1000) {
            Ok(())
        } else {
            let next = self.batch.period_seconds.max(1).saturating_mul(1000);
            Err((next - since + 999) / 1000)
        }
    }
}

/// The release state a node's `Consents` clones share.
#[derive(Debug, Default)]
pub(crate) struct Releases {
    gate: ReleaseGate<ConsentSchedule>,
    lock: tokio::sync::Mutex<()>,
    /// Rectification notices' (rectification.rs).
    pub(super) rectifications: super::rectification::Releases,
}

impl Consents {
    /// Sets when consent changes are released (once, when the node is
    /// wired; later calls are ignored). Default: [`ConsentSchedule::default`].
    pub fn set_release_schedule(&self, s: ConsentSchedule) {
        self.releases.gate.set_schedule(s);
    }

    pub fn release_schedule(&self) -> ConsentSchedule {
        self.releases.gate.schedule()
    }

    /// Releases the consent changes if a boundary passed since the last
    /// decision and the batch is due. Cheap when no boundary passed (one
    /// atomic read): every view an organisation reads runs it first.
    /// Returns how many consents changed.
    pub async fn release_due(&self) -> Result<u64, ServiceError> {
        let s = self.release_schedule();
        let now = self.clock.now();
        if !self.releases.gate.open(now) {
            return Ok(0);
        }
        let _one = self.releases.lock.lock().await;
        if !self.releases.gate.open(now) {
            return Ok(0);
        }
        let b = s.batch;
        let boundary = b.boundary(now);
        let (members, oldest) = self.store.consent_changes_pending().await?;
        let mut released = 0;
        // Only changes made before the boundary: one made since waits for
        // the next, with the others of its period.
        if b.due(boundary, members, oldest.filter(|t| *t < boundary)) {
            released = self.store.consent_release(boundary).await?;
            self.audit
                .record(
                    AuditEvent::new(Actor::Node, Action::ConsentRelease)
                        .object(format!("{released} consents")),
                )
                .await?;
        }
        self.releases.gate.decided(&b, now);
        Ok(released)
    }

    /// Whether data access is answered now: in the window after each
    /// boundary, the same for every organisation (Err: seconds until the
    /// next window).
    pub(crate) fn access_window(&self) -> Result<(), ServiceError> {
        let s = self.release_schedule();
        s.window(self.clock.now())
            .map_err(|retry_after| ServiceError::AccessWindowClosed {
                retry_after: u64::try_from(retry_after).unwrap_or(60),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix_millis(s * 1000)
    }

    #[test]
    fn data_access_answers_in_the_window_after_each_boundary() {
        let d = ConsentSchedule::default();
        let s = ConsentSchedule {
            batch: BatchSchedule {
                period_seconds: 3600,
                ..d.batch
            },
            access_window_seconds: 600,
        };
        assert_eq!(s.window(at(7200)), Ok(()));
        assert_eq!(s.window(at(7799)), Ok(()), "inside");
        assert_eq!(s.window(at(7800)), Err(3000), "closed");
        assert_eq!(s.window(at(10_799)), Err(1));
        assert_eq!(s.window(at(10_800)), Ok(()), "the next boundary");
    }
}
