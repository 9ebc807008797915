//! Data pools and budget periods.
//!
//! A **pool** is a set of people's data that releases read. Budgets belong to
//! pools, not to whoever asks: every release is charged to each pool it reads,
//! and everyone who asks about a pool shares its budget. So however many
//! organisations ask, together they spend no more on one member than the
//! budgets of the pools that member is in.

use crate::DpError;
use me2b_domain::{OrgId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A data pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pool {
    /// One co-op's customers in the data trust: the receipts held for it.
    TrustCoop(OrgId),
    /// The trust's pooled receipts across every co-op (research questions).
    TrustResearch,
    /// Members' profiles as offers' targeting rules see them: the audience
    /// every offer is drawn from, so one pool for every offer of every
    /// publisher (copies of an offer read the same people).
    OffersAudience,
    /// Members' published intents (requests for proposal): the counts of
    /// open intents shown to organisations.
    Intents,
}

/// The kind of a pool: how governance configures it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolClass {
    TrustCoop,
    TrustResearch,
    OffersAudience,
    Intents,
}

impl Pool {
    pub fn class(&self) -> PoolClass {
        match self {
            Pool::TrustCoop(_) => PoolClass::TrustCoop,
            Pool::TrustResearch => PoolClass::TrustResearch,
            Pool::OffersAudience => PoolClass::OffersAudience,
            Pool::Intents => PoolClass::Intents,
        }
    }

    /// The organisation whose customers the pool holds, if any.
    pub fn owner(&self) -> Option<OrgId> {
        match self {
            Pool::TrustCoop(o) => Some(*o),
            _ => None,
        }
    }

    /// The pool in plain words; `name` gives an organisation's name.
    pub fn describe(&self, name: &dyn Fn(OrgId) -> String) -> String {
        match self {
            Pool::TrustCoop(o) => format!("the receipts the data trust holds from {}", name(*o)),
            Pool::TrustResearch => {
                "the data trust's pooled receipts, across all co-ops (research)".into()
            }
            Pool::OffersAudience => {
                "what offers' targeting rules see of members' profiles (every offer's audience)"
                    .into()
            }
            Pool::Intents => {
                "the intents members published (counts of open intents per topic)".into()
            }
        }
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pool::TrustCoop(o) => write!(f, "trust:coop:{o}"),
            Pool::TrustResearch => f.write_str("trust:research"),
            Pool::OffersAudience => f.write_str("offers:audience"),
            Pool::Intents => f.write_str("intents:open"),
        }
    }
}

impl FromStr for Pool {
    type Err = DpError;
    fn from_str(s: &str) -> Result<Self, DpError> {
        match s {
            "trust:research" => Ok(Pool::TrustResearch),
            "offers:audience" => Ok(Pool::OffersAudience),
            "intents:open" => Ok(Pool::Intents),
            _ => s
                .strip_prefix("trust:coop:")
                .and_then(|o| o.parse().ok())
                .map(Pool::TrustCoop)
                .ok_or(DpError::Invalid("not a pool id")),
        }
    }
}

/// How long a budget period lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodLength {
    /// Calendar months, UTC.
    Month,
    /// Fixed spans of this many days from 1970-01-01 (UTC).
    Days(u32),
}

/// One budget period: months or day-spans since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(pub i64);

const DAY_MS: i64 = 86_400_000;

fn date_of(ts: Timestamp) -> time::Date {
    let days = ts.unix_millis().div_euclid(DAY_MS);
    let jd = i32::try_from(days + 2_440_588).unwrap_or(2_440_588);
    time::Date::from_julian_day(jd).unwrap_or(time::Date::MIN)
}

fn from_date(d: time::Date) -> Timestamp {
    Timestamp::from_unix_millis(i64::from(d.to_julian_day() - 2_440_588) * DAY_MS)
}

impl PeriodLength {
    pub fn period_of(&self, ts: Timestamp) -> Period {
        match self {
            PeriodLength::Month => {
                let d = date_of(ts);
                Period(i64::from(d.year() - 1970) * 12 + i64::from(u8::from(d.month())) - 1)
            }
            PeriodLength::Days(n) => {
                Period(ts.unix_millis().div_euclid(DAY_MS * i64::from((*n).max(1))))
            }
        }
    }

    /// The period's first instant and the next period's.
    pub fn bounds(&self, p: Period) -> (Timestamp, Timestamp) {
        match self {
            PeriodLength::Month => {
                let start = |p: i64| {
                    let year = i32::try_from(1970 + p.div_euclid(12)).unwrap_or(1970);
                    let month = u8::try_from(p.rem_euclid(12) + 1).unwrap_or(1);
                    time::Month::try_from(month)
                        .ok()
                        .and_then(|m| time::Date::from_calendar_date(year, m, 1).ok())
                        .map(from_date)
                        .unwrap_or(Timestamp::from_unix_millis(0))
                };
                (start(p.0), start(p.0 + 1))
            }
            PeriodLength::Days(n) => {
                let span = DAY_MS * i64::from((*n).max(1));
                (
                    Timestamp::from_unix_millis(p.0.saturating_mul(span)),
                    Timestamp::from_unix_millis(p.0.saturating_add(1).saturating_mul(span)),
                )
            }
        }
    }

    /// The period as people read it: `2026-12`, or its first and last day.
    pub fn label(&self, p: Period) -> String {
        let (start, next) = self.bounds(p);
        match self {
            PeriodLength::Month => {
                let d = date_of(start);
                format!("{:04}-{:02}", d.year(), u8::from(d.month()))
            }
            PeriodLength::Days(_) => {
                let last = Timestamp::from_unix_millis(next.unix_millis() - DAY_MS);
                format!("{} to {}", date_of(start), date_of(last))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn pools_round_trip() {
        let org: OrgId = "6f1c1e2a-0000-4000-8000-000000000001".parse().unwrap();
        for p in [
            Pool::TrustCoop(org),
            Pool::TrustResearch,
            Pool::OffersAudience,
            Pool::Intents,
        ] {
            assert_eq!(p.to_string().parse::<Pool>().unwrap(), p);
        }
        assert!("trust:coop:nope".parse::<Pool>().is_err());
        assert!("".parse::<Pool>().is_err());
    }

    #[test]
    fn months_are_calendar_months() {
        let m = PeriodLength::Month;
        let p = m.period_of(ts("2026-12-04T22:00:00Z"));
        assert_eq!(m.label(p), "2026-12");
        assert_eq!(m.period_of(ts("2026-12-31T23:59:59.999Z")), p);
        assert_eq!(m.period_of(ts("2027-01-01T00:00:00Z")), Period(p.0 + 1));
        let (start, next) = m.bounds(p);
        assert_eq!(start, ts("2026-12-01T00:00:00Z"));
        assert_eq!(next, ts("2027-01-01T00:00:00Z"));
        assert_eq!(m.label(Period(0)), "1970-01");
        let d = PeriodLength::Days(7);
        let q = d.period_of(ts("1970-01-08T00:00:00Z"));
        assert_eq!(q, Period(1));
        assert_eq!(d.label(q), "1970-01-08 to 1970-01-14");
    }
}
