//! When new intents reach organisations: in batches, never one by one.
//!
//! An organisation that polls its feed every minute would otherwise see each
//! intent the moment it is published, and two intents a member publishes
//! close together would appear together, alone: linked by their timing
//! whatever their pseudonyms. So a new intent waits, unseen by any
//! organisation, until a batch boundary (a whole multiple of
//! `release_period_hours` since the epoch, UTC) at which at least `min_batch`
//! intents are waiting or the oldest has waited `max_wait_hours`. Then every
//! waiting intent becomes visible at that boundary at once: organisations
//! see the boundary as its publishing hour, in the order of the random ids,
//! and its deadline counts from there.
//!
//! The schedule and its gate are me2b-domain's `batch` (the same as the
//! erasures' and consent changes'); this is the `[intents]` section that
//! sets it.
//!
//! What remains: a batch released because its oldest intent waited (a quiet
//! node) may be small, down to one member's intents alone; an organisation
//! following a rare topic sees only its share of a batch, so two intents on
//! that topic in one batch are more likely one member's than two in
//! different batches; and the moment of a release tells organisations that
//! at least `min_batch` intents were waiting node-wide (one bit per period,
//! not per topic). README's Intents section says so.

use me2b_domain::batch::BatchSchedule;
use serde::{Deserialize, Serialize};

/// `[intents]` of the governance file: when waiting intents are released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchGovernance {
    /// Batches are released at multiples of this many hours since the epoch
    /// (UTC): 1 to 24. Default 1.
    pub release_period_hours: u32,
    /// A batch goes when at least this many open intents wait: 1 to 1,000.
    /// Default 10.
    pub min_batch: u32,
    /// … or when the oldest has waited this many hours: from one period to
    /// 72. Default 24.
    pub max_wait_hours: u32,
}

impl Default for BatchGovernance {
    fn default() -> Self {
        Self {
            release_period_hours: 1,
            min_batch: 10,
            max_wait_hours: 24,
        }
    }
}

impl BatchGovernance {
    /// Checks the bounds; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=24).contains(&self.release_period_hours) {
            return Err("[intents] release_period_hours must be 1 to 24".into());
        }
        if !(1..=1_000).contains(&self.min_batch) {
            return Err("[intents] min_batch must be 1 to 1000".into());
        }
        if !(self.release_period_hours..=72).contains(&self.max_wait_hours) {
            return Err("[intents] max_wait_hours must be from release_period_hours to 72".into());
        }
        Ok(())
    }

    /// The schedule these set.
    pub fn schedule(&self) -> BatchSchedule {
        BatchSchedule {
            period_seconds: i64::from(self.release_period_hours.max(1)) * 3600,
            min_batch: u64::from(self.min_batch),
            max_delay_seconds: i64::from(self.max_wait_hours) * 3600,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::HOUR_MS;
    use me2b_domain::Timestamp;

    #[test]
    fn defaults_are_checked_bounds_refused_and_boundaries_whole() {
        let d = BatchGovernance::default();
        assert!(d.check().is_ok());
        for bad in [
            BatchGovernance {
                release_period_hours: 0,
                ..d
            },
            BatchGovernance {
                release_period_hours: 25,
                ..d
            },
            BatchGovernance { min_batch: 0, ..d },
            BatchGovernance {
                max_wait_hours: 73,
                ..d
            },
            BatchGovernance {
                release_period_hours: 6,
                max_wait_hours: 5,
                ..d
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        let six = BatchGovernance {
            release_period_hours: 6,
            ..d
        };
        let t = Timestamp::from_unix_millis(100 * HOUR_MS + 59 * 60_000);
        let s = d.schedule();
        assert_eq!(s.boundary(t).unix_millis(), 100 * HOUR_MS);
        assert_eq!(six.schedule().boundary(t).unix_millis(), 96 * HOUR_MS);
        assert_eq!(
            s.waited_by(s.boundary(t)).unix_millis(),
            (100 - 24) * HOUR_MS
        );
        assert_eq!(s.min_batch, 10);
        let g: BatchGovernance = serde_json::from_str("{}").unwrap();
        assert_eq!(g, d);
    }
}
