//! Login throttling: per account and per client address, with a stepped
//! backoff, answered `429 too_many_requests` with `Retry-After`.
//!
//! A login was unthrottled: about 107 wrong passphrases a second against one
//! account, the right one still working afterwards. Now, before any Argon2
//! work, `POST /v1/sessions` takes a cell from three GCRA limiters
//! (the `governor` crate), keyed by:
//!
//! * the **account**: the e-mail's keyed index (HMAC under a node key; the
//!   address itself is not kept), the same for an address without an
//!   account, so the throttle says nothing about whether one exists. Two
//!   tiers: `account_burst` attempts at once, then one per
//!   `account_interval`; and over a longer run, `4 × account_burst` attempts,
//!   then one per `10 × account_interval` (the backoff: 5 at once, one a
//!   minute, then one every ten minutes, with the defaults);
//! * the **client address**: the peer's IP (an IPv6 address by its /64),
//!   `ip_burst` at once, then one per `ip_interval`. Behind a reverse proxy,
//!   list it in `trusted_proxies`: only then is `X-Forwarded-For` read (its
//!   right-most address that is not a trusted proxy). Off by default.
//!
//! Every attempt counts, right or wrong, so during a lockout the right
//! passphrase is refused too. Time is the node's [`Clock`], so tests move it.
//!
//! Sign-ups (`POST /v1/members` and the sign-up page) are throttled per
//! client address too, `signup_burst` at once, then one per
//! `signup_interval` (5, then one every 10 minutes): a co-op signed up nine
//! fake members in a row to make a member's rare claim values look common
//! (adv8). The limit is taken before any lookup, Argon2 or message, and
//! keyed by the address only, so its answer says nothing about whether the
//! e-mail address has an account.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::Reference;
use governor::{Quota, RateLimiter};
use me2b_domain::Clock;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Keys kept per limiter before the idle ones are dropped.
const PRUNE_ABOVE: usize = 100_000;

/// The throttle's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Attempts on one account at once.
    pub account_burst: u32,
    /// Then one attempt per this.
    pub account_interval: Duration,
    /// Attempts from one client address at once.
    pub ip_burst: u32,
    /// Then one attempt per this.
    pub ip_interval: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Empty by default.
    pub trusted_proxies: Vec<IpAddr>,
    /// Paper opt-out codes typed from one client address (the public page)
    /// or with one API key (a shop's desk) at once.
    pub optout_burst: u32,
    /// Then one per this.
    pub optout_interval: Duration,
    /// Sign-ups from one client address at once.
    pub signup_burst: u32,
    /// Then one per this.
    pub signup_interval: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            account_burst: 5,
            account_interval: Duration::from_secs(60),
            ip_burst: 30,
            ip_interval: Duration::from_secs(2),
            trusted_proxies: Vec::new(),
            optout_burst: 10,
            optout_interval: Duration::from_secs(6),
            signup_burst: 5,
            signup_interval: Duration::from_secs(600),
        }
    }
}

/// The node's clock, as governor reads it: time since the Unix epoch.
#[derive(Clone)]
struct NodeClock(Arc<dyn Clock>);

impl governor::clock::Clock for NodeClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now().unix_millis()).unwrap_or(0))
    }
}

type Keyed<K> = RateLimiter<
    K,
    governor::state::keyed::HashMapStateStore<K>,
    NodeClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

/// `429 too_many_requests` until `earliest`, by `clock`: "too many `what`".
fn refused(clock: &NodeClock, earliest: Duration, what: &str) -> ApiError {
    use governor::clock::Clock as _;
    let wait: Duration = earliest.duration_since(clock.now()).into();
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::too_many_requests(
        secs,
        format!("too many {what}; retry after {} s", secs.max(1)),
    )
}

/// The longest interval a limiter takes (a year): longer ones are this.
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

/// governor keeps `burst × interval` in nanoseconds in a `u64`, and a
/// product past it overflowed (a debug build panicked at start with a
/// `login_account_burst` of eight million, the long tier's 4 × burst over
/// 10 × the interval): the burst is bounded so the product stays under a
/// quarter of `u64::MAX` (over a century), which no throttle needs more of.
fn quota(burst: u32, interval: Duration) -> Quota {
    let interval = interval.clamp(Duration::from_millis(1), MAX_INTERVAL);
    let nanos = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let max_burst = u32::try_from((u64::MAX / 4) / nanos).unwrap_or(u32::MAX);
    let burst = NonZeroU32::new(burst.clamp(1, max_burst.max(1))).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// The login throttle of one node.
pub struct LoginThrottle {
    clock: NodeClock,
    account: Keyed<[u8; 32]>,
    account_long: Keyed<[u8; 32]>,
    ip: Keyed<IpAddr>,
    signup: Keyed<IpAddr>,
    trusted_proxies: Vec<IpAddr>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle").finish_non_exhaustive()
    }
}

impl LoginThrottle {
    pub fn new(settings: &ThrottleSettings, clock: Arc<dyn Clock>) -> Self {
        let clock = NodeClock(clock);
        let long_burst = settings.account_burst.saturating_mul(4);
        let long_interval = settings.account_interval.saturating_mul(10);
        Self {
            account: RateLimiter::hashmap_with_clock(
                quota(settings.account_burst, settings.account_interval),
                clock.clone(),
            ),
            account_long: RateLimiter::hashmap_with_clock(
                quota(long_burst, long_interval),
                clock.clone(),
            ),
            ip: RateLimiter::hashmap_with_clock(
                quota(settings.ip_burst, settings.ip_interval),
                clock.clone(),
            ),
            signup: RateLimiter::hashmap_with_clock(
                quota(settings.signup_burst, settings.signup_interval),
                clock.clone(),
            ),
            clock,
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    fn refused(&self, earliest: Duration, what: &str) -> ApiError {
        refused(&self.clock, earliest, &format!("login attempts {what}"))
    }

    /// Takes one attempt for `client` on the account `account` (the e-mail's
    /// keyed index), or says how long to wait.
    pub fn check(&self, client: IpAddr, account: &[u8; 32]) -> Result<(), ApiError> {
        prune(&self.ip);
        prune(&self.account);
        prune(&self.account_long);
        if let Err(n) = self.ip.check_key(&client_key(client)) {
            return Err(self.refused(n.earliest_possible(), "from this address"));
        }
        if let Err(n) = self.account_long.check_key(account) {
            return Err(self.refused(n.earliest_possible(), "on this account"));
        }
        if let Err(n) = self.account.check_key(account) {
            return Err(self.refused(n.earliest_possible(), "on this account"));
        }
        Ok(())
    }

    /// Takes one sign-up for `client`, or says how long to wait. Keyed by
    /// the address alone: nothing about the e-mail address is looked at.
    pub fn check_sign_up(&self, client: IpAddr) -> Result<(), ApiError> {
        prune(&self.signup);
        self.signup.check_key(&client_key(client)).map_err(|n| {
            refused(
                &self.clock,
                n.earliest_possible(),
                "sign-ups from this address",
            )
        })
    }

    /// The client's address: the peer, or behind a trusted proxy the
    /// right-most `X-Forwarded-For` address that is not a trusted proxy.
    pub fn client(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if self.trusted_proxies.is_empty() || !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.trusted_proxies.contains(&ip) => continue,
                Ok(ip) => return ip,
                Err(_) => return peer,
            }
        }
        peer
    }
}

/// The throttle of paper opt-out codes (issue 15): per client address at
/// the public page, per API key at a shop's desk. Codes carry 95 bits, so
/// guessing is hopeless anyway; the limit keeps a guesser from flooding the
/// node and the audit log (every use is audited).
pub struct OptOutThrottle {
    clock: NodeClock,
    ip: Keyed<IpAddr>,
    desk: Keyed<[u8; 16]>,
    pub(crate) login: Arc<LoginThrottle>,
}

impl std::fmt::Debug for OptOutThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptOutThrottle").finish_non_exhaustive()
    }
}

impl OptOutThrottle {
    pub fn new(
        settings: &ThrottleSettings,
        clock: Arc<dyn Clock>,
        login: Arc<LoginThrottle>,
    ) -> Self {
        let clock = NodeClock(clock);
        let q = quota(settings.optout_burst, settings.optout_interval);
        Self {
            ip: RateLimiter::hashmap_with_clock(q, clock.clone()),
            desk: RateLimiter::hashmap_with_clock(q, clock.clone()),
            clock,
            login,
        }
    }

    fn refused(&self, earliest: Duration) -> ApiError {
        refused(&self.clock, earliest, "opt-out codes typed")
    }

    /// One code typed at the public page from `client`.
    pub fn check_client(&self, client: IpAddr) -> Result<(), ApiError> {
        prune(&self.ip);
        self.ip
            .check_key(&client_key(client))
            .map_err(|n| self.refused(n.earliest_possible()))
    }

    /// One code typed at a desk with the API key `key`.
    pub fn check_desk(&self, key: &[u8; 16]) -> Result<(), ApiError> {
        prune(&self.desk);
        self.desk
            .check_key(key)
            .map_err(|n| self.refused(n.earliest_possible()))
    }
}

/// The web pages share the API's login and opt-out limits, and learn from
/// the same trusted proxies whether a request came over TLS.
impl me2b_web::LoginGate for OptOutThrottle {
    fn allow(
        &self,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
        account: &[u8; 32],
    ) -> bool {
        let login = &self.login;
        login.check(login.client(peer, headers), account).is_ok()
    }

    fn allow_optout(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> bool {
        self.check_client(self.login.client(peer, headers)).is_ok()
    }

    fn allow_sign_up(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> bool {
        let login = &self.login;
        login.check_sign_up(login.client(peer, headers)).is_ok()
    }

    fn over_tls(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> bool {
        peer.is_some_and(|p| self.login.trusted_proxies.contains(&p))
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    }
}

/// One client: an IPv4 address, or an IPv6 address's /64 (what one
/// subscriber usually holds).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn prune<K: std::hash::Hash + Eq + Clone>(l: &Keyed<K>) {
    if l.len() > PRUNE_ABOVE {
        l.retain_recent();
    }
}

/// The peer's address, when the connection layer recorded it.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_domain::{FixedClock, Timestamp};

    fn throttle(clock: Arc<FixedClock>, proxies: Vec<IpAddr>) -> LoginThrottle {
        LoginThrottle::new(
            &ThrottleSettings {
                trusted_proxies: proxies,
                ..ThrottleSettings::default()
            },
            clock,
        )
    }

    #[test]
    fn a_huge_burst_or_interval_is_bounded_not_an_overflow() {
        // The bench scripts opened the throttle with bursts of 100,000,000:
        // the long tier (4 × burst over 10 × 60 s) overflowed governor's
        // nanoseconds and a debug build panicked at start.
        let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
            1_700_000_000_000,
        )));
        for (burst, secs) in [(100_000_000, 60), (u32::MAX, 600), (5, u64::MAX / 4)] {
            let t = LoginThrottle::new(
                &ThrottleSettings {
                    account_burst: burst,
                    account_interval: Duration::from_secs(secs),
                    ip_burst: burst,
                    ip_interval: Duration::from_secs(secs),
                    signup_burst: burst,
                    signup_interval: Duration::from_secs(secs),
                    ..ThrottleSettings::default()
                },
                clock.clone(),
            );
            drop(t);
            let q = quota(burst, Duration::from_secs(secs).saturating_mul(10));
            assert!(q.burst_size().get() >= 1);
        }
    }

    #[test]
    fn an_account_gets_its_burst_then_waits_then_backs_off() {
        let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
            1_790_000_000_000,
        )));
        let t = throttle(clock.clone(), vec![]);
        let a = [7u8; 32];
        for i in 0..5u8 {
            // From different addresses: the account limit holds whoever asks.
            t.check(IpAddr::from([10, 0, 0, i]), &a).unwrap();
        }
        let e = t.check(IpAddr::from([10, 0, 1, 1]), &a).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::TooManyRequests);
        assert_eq!(e.retry_after, Some(60));
        // Another account is not affected.
        t.check(IpAddr::from([10, 0, 1, 1]), &[8u8; 32]).unwrap();
        // One a minute; after 20 in all, one every ten minutes.
        let mut allowed = 5;
        for _ in 0..40 {
            clock.advance_seconds(60);
            if t.check(IpAddr::from([10, 0, 2, 1]), &a).is_ok() {
                allowed += 1;
            }
        }
        assert!(allowed < 5 + 40, "no backoff: {allowed}");
        let e = t.check(IpAddr::from([10, 0, 2, 2]), &a).unwrap_err();
        assert!(e.retry_after.unwrap() > 60, "{:?}", e.retry_after);
    }

    #[test]
    fn one_address_gets_its_burst_over_many_accounts() {
        let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
            1_790_000_000_000,
        )));
        let t = throttle(clock, vec![]);
        let ip = IpAddr::from([192, 0, 2, 1]);
        for i in 0..30u8 {
            t.check(ip, &[i; 32]).unwrap();
        }
        assert!(t.check(ip, &[99; 32]).is_err());
        // An IPv6 client is one client across its /64.
        let v6 = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last));
        for i in 0..30u16 {
            t.check(v6(i), &[i as u8; 32]).unwrap();
        }
        assert!(t.check(v6(999), &[200; 32]).is_err());
    }

    #[test]
    fn one_address_gets_its_sign_ups_then_waits() {
        let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
            1_790_000_000_000,
        )));
        let t = throttle(clock.clone(), vec![]);
        let ip = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..5 {
            t.check_sign_up(ip).unwrap();
        }
        let e = t.check_sign_up(ip).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::TooManyRequests);
        assert_eq!(e.retry_after, Some(600));
        // Another address is not affected; logins from this one are not.
        t.check_sign_up(IpAddr::from([192, 0, 2, 2])).unwrap();
        t.check(ip, &[1; 32]).unwrap();
        clock.advance_seconds(600);
        t.check_sign_up(ip).unwrap();
        assert!(t.check_sign_up(ip).is_err());
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(0)));
        let proxy = IpAddr::from([127, 0, 0, 1]);
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let off = throttle(clock.clone(), vec![]);
        assert_eq!(off.client(Some(proxy), &h), proxy);
        let on = throttle(clock, vec![proxy]);
        assert_eq!(on.client(Some(proxy), &h), IpAddr::from([198, 51, 100, 7]));
        // Not from the proxy: the header is ignored.
        let other = IpAddr::from([192, 0, 2, 5]);
        assert_eq!(on.client(Some(other), &h), other);
    }
}
