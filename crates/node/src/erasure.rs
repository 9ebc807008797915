//! The governance file's `[erasure]` section: when what organisations can
//! observe of erasures is released (me2b-vault's erasure.rs).

use me2b_domain::batch::BatchSchedule;
use me2b_vault::ErasureSchedule;

/// `[erasure]`: releases every `release_period_hours` (UTC boundaries), of
/// at least `min_batch` members, none held past `max_delay_days`; recipients
/// confirm within `confirm_within_days`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErasureGovernance {
    /// 1 to 168 (a week); a divisor of 24 or a multiple of 24 keeps the
    /// boundaries at the same hours every day. Default 24.
    pub release_period_hours: u32,
    /// 1 to 1,000. Default 5.
    pub min_batch: u32,
    /// 1 to 14 days, so that the latest release (this plus one period) stays
    /// well within GDPR's month. Default 7.
    pub max_delay_days: u32,
    /// A recipient that has not confirmed an erasure request this many days
    /// after it was sent is overdue: 1 to 90. Default 30.
    pub confirm_within_days: u32,
}

impl Default for ErasureGovernance {
    fn default() -> Self {
        let s = ErasureSchedule::default();
        Self {
            release_period_hours: u32::try_from(s.batch.period_seconds / 3600).unwrap_or(24),
            min_batch: u32::try_from(s.batch.min_batch).unwrap_or(5),
            max_delay_days: u32::try_from(s.batch.max_delay_seconds / 86_400).unwrap_or(7),
            confirm_within_days: u32::try_from(s.confirm_within_seconds / 86_400).unwrap_or(30),
        }
    }
}

impl ErasureGovernance {
    /// Checks the bounds; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=168).contains(&self.release_period_hours) {
            return Err("[erasure] release_period_hours must be 1 to 168".into());
        }
        if !(1..=1_000).contains(&self.min_batch) {
            return Err("[erasure] min_batch must be 1 to 1000".into());
        }
        if !(1..=14).contains(&self.max_delay_days) {
            return Err("[erasure] max_delay_days must be 1 to 14".into());
        }
        if !(1..=90).contains(&self.confirm_within_days) {
            return Err("[erasure] confirm_within_days must be 1 to 90".into());
        }
        Ok(())
    }

    pub fn schedule(&self) -> ErasureSchedule {
        ErasureSchedule {
            batch: BatchSchedule {
                period_seconds: i64::from(self.release_period_hours) * 3600,
                min_batch: u64::from(self.min_batch),
                max_delay_seconds: i64::from(self.max_delay_days) * 86_400,
            },
            confirm_within_seconds: i64::from(self.confirm_within_days) * 86_400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_vault_and_bounds_are_checked() {
        let g = ErasureGovernance::default();
        assert_eq!(g.schedule(), ErasureSchedule::default());
        assert!(g.check().is_ok());
        for bad in [
            ErasureGovernance {
                release_period_hours: 0,
                ..g.clone()
            },
            ErasureGovernance {
                min_batch: 0,
                ..g.clone()
            },
            ErasureGovernance {
                max_delay_days: 15,
                ..g.clone()
            },
        ] {
            assert!(bad.check().is_err());
        }
    }
}
