//! Releases in batches (issue 12): what organisations can observe of
//! erasures (me2b-vault), of consent changes (me2b-consent) and of new
//! intents (me2b-intents) waits for a period boundary, and everything of a
//! period shows there at once, so that two organisations pooling the moments
//! they saw something change cannot pair one member's changes.
//!
//! One mechanism, no I/O: a [`BatchSchedule`] (boundaries at whole multiples
//! of the period since the Unix epoch, UTC; a batch goes when at least
//! `min_batch` wait or the oldest waited `max_delay`), and a [`ReleaseGate`]
//! the clones of a service share: its schedule, set once when the node is
//! wired, and the next boundary to decide, so that deciding is one atomic
//! read until a boundary passes. Each service keeps its own storage.

use crate::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

/// When a batch is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSchedule {
    /// Releases happen at multiples of this since the Unix epoch (UTC); at
    /// least one second.
    pub period_seconds: i64,
    /// A batch goes when at least this many wait…
    pub min_batch: u64,
    /// …or when the oldest has waited at least this long.
    pub max_delay_seconds: i64,
}

impl BatchSchedule {
    fn period_ms(&self) -> i64 {
        self.period_seconds.max(1).saturating_mul(1000)
    }

    /// The latest boundary at or before `now`.
    pub fn boundary(&self, now: Timestamp) -> Timestamp {
        let p = self.period_ms();
        Timestamp::from_unix_millis(now.unix_millis().div_euclid(p).saturating_mul(p))
    }

    /// The first boundary after `now`.
    pub fn next_boundary(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_unix_millis(
            self.boundary(now)
                .unix_millis()
                .saturating_add(self.period_ms()),
        )
    }

    /// What waits from this moment or before has waited long enough to go
    /// at `boundary` whatever the batch's size.
    pub fn waited_by(&self, boundary: Timestamp) -> Timestamp {
        Timestamp::from_unix_millis(
            boundary
                .unix_millis()
                .saturating_sub(self.max_delay_seconds.saturating_mul(1000)),
        )
    }

    /// Whether a batch of `pending` (the oldest from `oldest`) goes at
    /// `boundary`.
    pub fn due(&self, boundary: Timestamp, pending: u64, oldest: Option<Timestamp>) -> bool {
        let waited_enough = oldest.is_some_and(|t| t <= self.waited_by(boundary));
        pending > 0 && (pending >= self.min_batch || waited_enough)
    }

    /// The latest something waiting can go: the maximum delay, rounded up to
    /// the next boundary.
    pub fn latest_release_seconds(&self) -> i64 {
        self.max_delay_seconds
            .saturating_add(self.period_seconds.max(1))
    }
}

/// What a service's clones share to release batches: the schedule (`S`,
/// which carries a [`BatchSchedule`]), set once, and the next boundary to
/// decide.
#[derive(Debug)]
pub struct ReleaseGate<S> {
    schedule: OnceLock<S>,
    /// Unix milliseconds of the next boundary to decide (`i64::MIN`: none
    /// decided yet).
    next: AtomicI64,
}

impl<S> Default for ReleaseGate<S> {
    fn default() -> Self {
        Self {
            schedule: OnceLock::new(),
            next: AtomicI64::new(i64::MIN),
        }
    }
}

impl<S> ReleaseGate<S> {
    /// A gate with its schedule already set.
    pub fn with(schedule: S) -> Self {
        let g = Self::default();
        g.set_schedule(schedule);
        g
    }

    /// Sets the schedule (once, when the node is wired; later calls are
    /// ignored). Until then: `S::default()`.
    pub fn set_schedule(&self, s: S) {
        let _ = self.schedule.set(s);
    }

    /// Whether a boundary passed at `now` that is not decided yet: the one
    /// atomic read every request may afford.
    pub fn open(&self, now: Timestamp) -> bool {
        now.unix_millis() >= self.next.load(Ordering::Acquire)
    }

    /// The boundary of `now` is decided (released, or not due): the gate
    /// stays shut until the next. Never moves back.
    pub fn decided(&self, batch: &BatchSchedule, now: Timestamp) {
        self.next
            .fetch_max(batch.next_boundary(now).unix_millis(), Ordering::AcqRel);
    }
}

impl<S: Copy + Default> ReleaseGate<S> {
    /// The schedule set, else `S::default()`.
    pub fn schedule(&self) -> S {
        self.schedule.get().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix_millis(s * 1000)
    }

    const DAY: i64 = 86_400;

    #[test]
    fn a_batch_waits_for_enough_or_the_maximum_delay() {
        let s = BatchSchedule {
            period_seconds: DAY,
            min_batch: 3,
            max_delay_seconds: 2 * DAY,
        };
        assert_eq!(s.boundary(at(DAY * 3 + 5)), at(DAY * 3));
        assert_eq!(s.boundary(at(DAY * 3)), at(DAY * 3));
        assert_eq!(s.boundary(at(DAY - 1)), at(0));
        let b = at(10 * DAY);
        assert!(!s.due(b, 0, None));
        assert!(!s.due(b, 2, Some(at(9 * DAY))));
        assert!(s.due(b, 3, Some(at(9 * DAY))));
        assert!(s.due(b, 1, Some(at(8 * DAY))), "waited two days");
        assert!(!s.due(b, 1, Some(at(8 * DAY + 1))));
        assert_eq!(s.latest_release_seconds(), 3 * DAY);
    }

    #[test]
    fn a_gate_opens_at_each_boundary_once() {
        let s = BatchSchedule {
            period_seconds: 3600,
            min_batch: 1,
            max_delay_seconds: 3600,
        };
        /// A service's schedule, as the services have theirs.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        struct Service(Option<BatchSchedule>);
        let g = ReleaseGate::default();
        assert_eq!(g.schedule(), Service(None), "the default until set");
        g.set_schedule(Service(Some(s)));
        g.set_schedule(Service(Some(BatchSchedule {
            period_seconds: 60,
            ..s
        })));
        assert_eq!(g.schedule(), Service(Some(s)), "set once");
        assert!(g.open(at(7200 + 10)), "nothing decided yet");
        g.decided(&s, at(7200 + 10));
        assert!(!g.open(at(10_799)));
        assert!(g.open(at(10_800)));
        // A late decision about an earlier time never shuts a later boundary.
        g.decided(&s, at(10_800));
        g.decided(&s, at(7200));
        assert!(!g.open(at(14_399)));
        assert!(g.open(at(14_400)));
    }

    proptest! {
        /// Every time lies in [boundary, next boundary), boundaries are whole
        /// periods and fixed points.
        #[test]
        fn boundaries_bracket_every_time(
            t in -4_000_000_000_000i64..4_000_000_000_000,
            period in 1i64..=30 * DAY,
        ) {
            let s = BatchSchedule { period_seconds: period, min_batch: 1, max_delay_seconds: period };
            let now = Timestamp::from_unix_millis(t);
            let (b, n) = (s.boundary(now), s.next_boundary(now));
            prop_assert!(b <= now && now < n);
            prop_assert_eq!(b.unix_millis().rem_euclid(period * 1000), 0);
            prop_assert_eq!(n.unix_millis() - b.unix_millis(), period * 1000);
            prop_assert_eq!(s.boundary(b), b);
            prop_assert_eq!(s.boundary(n), n);
        }

        /// A batch is due exactly when something waits and it is big enough
        /// or its oldest waited the maximum delay; more waiting never makes
        /// it less due, nor does a later boundary.
        #[test]
        fn due_is_min_batch_or_max_delay(
            b in 0i64..1_000_000, oldest in 0i64..1_000_000, pending in 0u64..20,
            min_batch in 1u64..10, delay in 0i64..100_000, later in 0i64..100_000,
        ) {
            let s = BatchSchedule { period_seconds: 60, min_batch, max_delay_seconds: delay };
            let due = s.due(at(b), pending, Some(at(oldest)));
            prop_assert_eq!(due, pending > 0 && (pending >= min_batch || b - oldest >= delay));
            if due {
                prop_assert!(s.due(at(b), pending + 1, Some(at(oldest))));
                prop_assert!(s.due(at(b + later), pending, Some(at(oldest))));
            }
            prop_assert!(!s.due(at(b), 0, Some(at(oldest))));
        }

        /// After a decision at `t` the gate is shut until the next boundary
        /// and open from it, whatever the order of decisions.
        #[test]
        fn the_gate_is_shut_until_the_next_boundary(
            t in 0i64..10_000_000_000, u in 0i64..10_000_000_000, period in 1i64..=DAY,
        ) {
            let s = BatchSchedule { period_seconds: period, min_batch: 1, max_delay_seconds: 0 };
            let g: ReleaseGate<BatchSchedule> = ReleaseGate::with(s);
            let (t, u) = (Timestamp::from_unix_millis(t), Timestamp::from_unix_millis(u));
            g.decided(&s, t);
            g.decided(&s, u);
            let next = s.next_boundary(t.max(u));
            prop_assert!(g.open(next));
            prop_assert!(!g.open(Timestamp::from_unix_millis(next.unix_millis() - 1)));
        }
    }
}
