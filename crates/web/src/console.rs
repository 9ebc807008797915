//! The co-op console's sessions, held on the server.
//!
//! The console's cookie (`me2b_coop`) carries only a random session id (256
//! bits, hex). The organisation's API key stays on the server, in memory,
//! with the session: a stolen cookie is not the API key (it does not work on
//! the API, and stops working at logout, after an idle half hour, or eight
//! hours after login, whichever comes first). Every request authenticates
//! the held key again with the API's own `Orgs::authenticate`, so a revoked
//! key or a deleted organisation ends its console sessions at once. The
//! table is keyed by SHA-256 of the id, so a memory image holds no cookie.
//!
//! Sessions live in this process: a restart of the node logs the console
//! out (members' sessions are in the database; a console session is a
//! convenience over a key the co-op keeps).

use me2b_domain::{Clock, Random, Timestamp};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A session ends after this long without a request.
pub const IDLE_SECONDS: i64 = 30 * 60;
/// A session ends this long after login, however busy.
pub const ABSOLUTE_SECONDS: i64 = 8 * 3600;
/// Most sessions held at once; the oldest goes first beyond it.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug)]
struct Held {
    key: SecretString,
    opened: Timestamp,
    last_seen: Timestamp,
}

impl Held {
    fn live(&self, now: Timestamp) -> bool {
        now < self.opened.plus_seconds(ABSOLUTE_SECONDS)
            && now < self.last_seen.plus_seconds(IDLE_SECONDS)
    }
}

/// The console sessions of this node.
#[derive(Clone, Debug, Default)]
pub struct ConsoleSessions(Arc<Mutex<HashMap<[u8; 32], Held>>>);

fn digest(id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"me2b/web/console-session/v1\0");
    h.update(id.as_bytes());
    h.finalize().into()
}

impl ConsoleSessions {
    fn table(&self) -> MutexGuard<'_, HashMap<[u8; 32], Held>> {
        // A panic elsewhere while holding the lock leaves a usable table.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session for an API key already authenticated: the id for the
    /// cookie.
    pub fn open(&self, clock: &dyn Clock, rng: &dyn Random, key: &str) -> String {
        let mut b = [0u8; 32];
        rng.fill(&mut b);
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let now = clock.now();
        let mut t = self.table();
        t.retain(|_, h| h.live(now));
        while t.len() >= MAX_SESSIONS {
            let oldest = t.iter().min_by_key(|(_, h)| h.opened).map(|(k, _)| *k);
            match oldest {
                Some(k) => t.remove(&k),
                None => break,
            };
        }
        t.insert(
            digest(&id),
            Held {
                key: SecretString::from(key.to_owned()),
                opened: now,
                last_seen: now,
            },
        );
        id
    }

    /// The API key of a live session (and the session is seen now), or
    /// `None` for an unknown, ended or expired one (which is forgotten).
    pub fn key(&self, clock: &dyn Clock, id: &str) -> Option<SecretString> {
        let now = clock.now();
        let d = digest(id);
        let mut t = self.table();
        let live = t.get(&d).is_some_and(|h| h.live(now));
        if !live {
            t.remove(&d);
            return None;
        }
        t.get_mut(&d).map(|h| {
            h.last_seen = now;
            h.key.clone()
        })
    }

    /// Ends a session (logout).
    pub fn close(&self, id: &str) {
        self.table().remove(&digest(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_domain::FixedClock;
    use secrecy::ExposeSecret;

    #[derive(Debug)]
    struct Counter(std::sync::atomic::AtomicU8);
    impl Random for Counter {
        fn fill(&self, buf: &mut [u8]) {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            buf.fill(n);
        }
    }

    fn setup() -> (ConsoleSessions, FixedClock, Counter) {
        (
            ConsoleSessions::default(),
            FixedClock::at(Timestamp::from_unix_millis(1_800_000_000_000)),
            Counter(0.into()),
        )
    }

    #[test]
    fn the_cookie_is_not_the_key_and_logout_ends_it() {
        let (s, clock, rng) = setup();
        let id = s.open(&clock, &rng, "me2b_k_secret");
        assert!(!id.contains("me2b_k_secret"));
        assert_eq!(id.len(), 64);
        assert_eq!(
            s.key(&clock, &id).map(|k| k.expose_secret().to_owned()),
            Some("me2b_k_secret".to_owned())
        );
        assert!(s.key(&clock, "me2b_k_secret").is_none());
        s.close(&id);
        assert!(s.key(&clock, &id).is_none());
    }

    #[test]
    fn sessions_end_when_idle_and_after_eight_hours() {
        let (s, clock, rng) = setup();
        let idle = s.open(&clock, &rng, "me2b_k_a");
        let busy = s.open(&clock, &rng, "me2b_k_b");
        assert_ne!(idle, busy);
        // Busy: a request every 20 minutes keeps it alive, up to 8 hours.
        for _ in 0..23 {
            clock.advance_seconds(20 * 60);
            assert!(s.key(&clock, &busy).is_some());
        }
        assert!(s.key(&clock, &idle).is_none(), "idle past 30 minutes");
        clock.advance_seconds(20 * 60);
        assert!(s.key(&clock, &busy).is_none(), "past 8 hours");
    }
}
