//! Failed logins are audited per account per minute, with a count.
//!
//! Each failed login used to write its own permanent audit entry, unknown
//! addresses included, so an anonymous caller grew the log by about 100
//! entries a second. Now the failures on one account (keyed by the e-mail's
//! keyed index, the same for addresses without an account, so nothing here
//! tells whether one exists) give at most one entry per calendar minute:
//!
//! * the first failure in a minute writes its entry at once, before the
//!   answer, counting itself and the failures held back since the last entry;
//! * later failures in that minute are only counted;
//! * what is still counted when its minute is over is written by
//!   [`crate::Vault::flush_failed_logins`] (a background task every
//!   [`FLUSH_SECONDS`], and at shutdown), at most one entry in that minute too.
//!
//! An entry names the member when the address has an account (the member
//! sees it in their own audit log), and no one otherwise. At most
//! [`MAX_TALLIES`] accounts are tallied at once; past that a failure is
//! written on its own (the login throttle bounds how many come).

use me2b_domain::MemberId;
use std::collections::HashMap;
use std::sync::Mutex;

/// How often the background task writes the counts whose minute is over.
pub const FLUSH_SECONDS: u64 = 15;
/// Most accounts tallied at once.
pub const MAX_TALLIES: usize = 100_000;

const MINUTE_MS: i64 = 60_000;

#[derive(Clone, Copy, Debug)]
struct Tally {
    /// The account's member, if the address has one.
    subject: Option<MemberId>,
    /// The minute (ms since the epoch / 60,000) of this account's last entry.
    last_entry_minute: i64,
    /// Failures since that entry, not yet written.
    pending: u64,
}

/// An entry to write: the member (if any) and how many failures it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub subject: Option<MemberId>,
    pub count: u64,
}

/// The tallies, by the e-mail's keyed index.
#[derive(Default)]
pub struct FailedLogins(Mutex<HashMap<[u8; 32], Tally>>);

impl std::fmt::Debug for FailedLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailedLogins")
    }
}

impl FailedLogins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Tally>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A failed login on the account `key` at `now_ms`: the entry to write
    /// now, or None when it is counted into a later one.
    pub fn fail(&self, key: [u8; 32], subject: Option<MemberId>, now_ms: i64) -> Option<Due> {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let mut m = self.lock();
        if !m.contains_key(&key) && m.len() >= MAX_TALLIES {
            m.retain(|_, t| t.pending > 0 || t.last_entry_minute >= minute);
            if m.len() >= MAX_TALLIES {
                return Some(Due { subject, count: 1 });
            }
        }
        let t = m.entry(key).or_insert(Tally {
            subject,
            last_entry_minute: i64::MIN,
            pending: 0,
        });
        t.subject = subject;
        t.pending = t.pending.saturating_add(1);
        if t.last_entry_minute < minute {
            let due = Due {
                subject,
                count: t.pending,
            };
            t.last_entry_minute = minute;
            t.pending = 0;
            Some(due)
        } else {
            None
        }
    }

    /// The entries due at `now_ms`: counts whose account has had no entry in
    /// this minute (all counts with `all`, at shutdown). Forgets accounts with
    /// nothing counted and no entry this minute.
    pub fn due(&self, now_ms: i64, all: bool) -> Vec<Due> {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let mut out = Vec::new();
        let mut m = self.lock();
        for t in m.values_mut() {
            if t.pending > 0 && (all || t.last_entry_minute < minute) {
                out.push(Due {
                    subject: t.subject,
                    count: t.pending,
                });
                t.pending = 0;
                t.last_entry_minute = minute;
            }
        }
        m.retain(|_, t| t.pending > 0 || t.last_entry_minute >= minute);
        out
    }

    /// Accounts tallied now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_account_per_minute_with_the_count() {
        let f = FailedLogins::default();
        let a = [1u8; 32];
        let b = [2u8; 32];
        let t0 = 1_790_000_000_000 - 1_790_000_000_000 % MINUTE_MS;
        // The first failure in a minute is written at once.
        assert_eq!(
            f.fail(a, None, t0),
            Some(Due {
                subject: None,
                count: 1
            })
        );
        // The next 99 in that minute are counted.
        for i in 0..99 {
            assert_eq!(f.fail(a, None, t0 + 100 + i), None);
        }
        // Another account is tallied apart.
        assert!(f.fail(b, None, t0 + 5).is_some());
        // Nothing is due before the minute is over.
        assert!(f.due(t0 + 59_999, false).is_empty());
        // Then the 99 are one entry.
        assert_eq!(
            f.due(t0 + MINUTE_MS, false),
            vec![Due {
                subject: None,
                count: 99
            }]
        );
        // ...which was that minute's entry: a failure in it is counted.
        assert_eq!(f.fail(a, None, t0 + MINUTE_MS + 10), None);
        // The next minute's first failure carries it.
        assert_eq!(
            f.fail(a, None, t0 + 2 * MINUTE_MS).map(|d| d.count),
            Some(2)
        );
        // Idle accounts are forgotten.
        assert!(f.due(t0 + 10 * MINUTE_MS, false).is_empty());
        assert!(f.is_empty());
    }

    #[test]
    fn shutdown_writes_everything_counted() {
        let f = FailedLogins::default();
        let a = [1u8; 32];
        assert!(f.fail(a, None, 0).is_some());
        assert!(f.fail(a, None, 1).is_none());
        assert_eq!(f.due(2, true).iter().map(|d| d.count).sum::<u64>(), 1);
        assert!(f.due(3, true).is_empty());
    }
}
