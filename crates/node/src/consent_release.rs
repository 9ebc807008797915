//! The governance file's `[consent_release]` section: when organisations see
//! changes of consent state, and how often data access answers them
//! (me2b-consent's service/release.rs).

use me2b_consent::service::ConsentSchedule;
use me2b_domain::batch::BatchSchedule;

/// `[consent_release]`: releases every `release_period_hours` (UTC
/// boundaries), of at least `min_batch` members, none held past
/// `max_delay_hours`; data access answers in the `access_window_minutes`
/// after each boundary.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentReleaseGovernance {
    /// 1 to 168 (a week). Default 24.
    pub release_period_hours: u32,
    /// 1 to 1,000. Default 5.
    pub min_batch: u32,
    /// 1 to 336 hours (two weeks); at least one period. Default 72.
    pub max_delay_hours: u32,
    /// 1 minute to a quarter of the period. Default 60.
    pub access_window_minutes: u32,
}

impl Default for ConsentReleaseGovernance {
    fn default() -> Self {
        let s = ConsentSchedule::default();
        Self {
            release_period_hours: u32::try_from(s.batch.period_seconds / 3600).unwrap_or(24),
            min_batch: u32::try_from(s.batch.min_batch).unwrap_or(5),
            max_delay_hours: u32::try_from(s.batch.max_delay_seconds / 3600).unwrap_or(72),
            access_window_minutes: u32::try_from(s.access_window_seconds / 60).unwrap_or(60),
        }
    }
}

impl ConsentReleaseGovernance {
    /// Checks the bounds; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=168).contains(&self.release_period_hours) {
            return Err("[consent_release] release_period_hours must be 1 to 168".into());
        }
        if !(1..=1_000).contains(&self.min_batch) {
            return Err("[consent_release] min_batch must be 1 to 1000".into());
        }
        if !(self.release_period_hours..=336).contains(&self.max_delay_hours) {
            return Err(
                "[consent_release] max_delay_hours must be one period to 336 (two weeks)".into(),
            );
        }
        if self.access_window_minutes == 0
            || self.access_window_minutes * 4 > self.release_period_hours * 60
        {
            return Err(
                "[consent_release] access_window_minutes must be 1 to a quarter of the period"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn schedule(&self) -> ConsentSchedule {
        ConsentSchedule {
            batch: BatchSchedule {
                period_seconds: i64::from(self.release_period_hours) * 3600,
                min_batch: u64::from(self.min_batch),
                max_delay_seconds: i64::from(self.max_delay_hours) * 3600,
            },
            access_window_seconds: i64::from(self.access_window_minutes) * 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_service_and_bounds_are_checked() {
        let g = ConsentReleaseGovernance::default();
        assert_eq!(g.schedule(), ConsentSchedule::default());
        assert!(g.check().is_ok());
        for bad in [
            ConsentReleaseGovernance {
                release_period_hours: 0,
                ..g.clone()
            },
            ConsentReleaseGovernance {
                min_batch: 0,
                ..g.clone()
            },
            ConsentReleaseGovernance {
                max_delay_hours: 23,
                ..g.clone()
            },
            ConsentReleaseGovernance {
                release_period_hours: 1,
                max_delay_hours: 1,
                access_window_minutes: 16,
                ..g.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
