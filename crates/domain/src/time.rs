//! Time and randomness, passed in.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_millis(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn unix_millis(self) -> i64 {
        self.0
    }
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1000)))
    }
    /// The start of the `bucket_ms`-long bucket this time falls in (UTC,
    /// counted from the epoch); `self` if `bucket_ms` is not positive.
    pub fn floor_to(self, bucket_ms: i64) -> Self {
        if bucket_ms <= 0 {
            return self;
        }
        Self(self.0.div_euclid(bucket_ms).saturating_mul(bucket_ms))
    }
    /// The start of the hour (UTC): how organisations see a member's times.
    pub fn hour(self) -> Self {
        self.floor_to(HOUR_MS)
    }
    /// RFC 3339 text, as the API shows it.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| "invalid-time".to_owned())
    }
    /// Parses RFC 3339 text (untrusted input).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms).ok().map(Self)
    }
}

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
    }
}

/// A clock for tests: it stands still until advanced.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn at(ts: Timestamp) -> Self {
        Self(AtomicI64::new(ts.0))
    }
    pub fn advance_seconds(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1000, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// A source of cryptographically secure random bytes. Production uses the operating
/// system's generator; tests use a seeded one.
pub trait Random: Send + Sync + std::fmt::Debug {
    fn fill(&self, buf: &mut [u8]);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::AtomicU8;

    /// Not random at all: good enough for id tests in this crate.
    #[derive(Debug, Default)]
    pub(crate) struct CountingRandom(AtomicU8);
    impl Random for CountingRandom {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn rfc3339_round_trip() {
        let ts = Timestamp::from_unix_millis(1_700_000_000_123);
        let text = ts.to_rfc3339();
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&text), Some(ts));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn hours_floor() {
        let t = Timestamp::from_unix_millis(1_790_000_000_000);
        assert_eq!(t.hour().unix_millis(), 1_789_999_200_000);
        assert_eq!(t.hour().hour(), t.hour());
        assert_eq!(
            Timestamp::from_unix_millis(-1).hour().unix_millis(),
            -HOUR_MS
        );
        assert_eq!(t.floor_to(0), t);
    }

    #[test]
    fn fixed_clock_advances() {
        let c = FixedClock::at(Timestamp::from_unix_millis(0));
        c.advance_seconds(2);
        assert_eq!(c.now().unix_millis(), 2000);
    }
}
