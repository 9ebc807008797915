//! Erasure requests and rectification notices pushed to organisations'
//! webhooks (issue 15, items 2 and 3).
//!
//! An organisation registers one URL (https) through the API. Once an
//! erasure request to it is released with its batch, the node posts the
//! signed request there: the body is the same compact JWS the pull endpoint
//! lists (`signed`; `Content-Type: application/jose`), so the receiver checks
//! it against the node's key. A 2xx answer is a delivery; anything else, or
//! no answer within the timeout, is retried with exponential backoff (with
//! jitter from the node's randomness, capped), at most `max_attempts` times.
//! The state of every delivery is stored, so retries survive a restart. The
//! request stays on the pull list until the organisation confirms it through
//! the API; unconfirmed past the deadline it is overdue, delivered or not.
//!
//! Deliveries run side by side, each with its own timeout: a receiver that
//! fails or hangs holds up only its own requests. Nothing about a member is
//! logged (the log names the organisation, the attempt and the HTTP status),
//! and never the URL.
//!
//! Rectification notices go to the same webhook, the same way, with
//! `me2b-event: rectification-notice` (erasure requests say
//! `erasure-request`) and their own JWS `typ`.
//!
//! A webhook is never pointed inside: registration refuses IP literals of
//! this machine or private networks, and each delivery resolves the host
//! name itself ([`PublicOnly`]) and connects only to the addresses it
//! checked, all public; anything else is a failed attempt.

use me2b_audit::AuditLog;
use me2b_consent::service::Consents;
use me2b_domain::audit::{Action, Actor, AuditEvent};
use me2b_domain::{Clock, OrgId, Random, Timestamp};
use me2b_storage::{DeliveryState, DueDelivery, DueRectification, Store};

/// A delivery due: an erasure request or a rectification notice, posted the
/// same way (`me2b-event` says which).
#[derive(Debug)]
enum Due {
    Erasure(DueDelivery),
    Rectification(DueRectification),
}
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// When a failed delivery is tried again: after the n-th failure, a delay
/// of `base × 2^(n-1)`, capped, of which a random half is jitter; after
/// `max_attempts` attempts the node stops (the pull endpoint still lists
/// the request, and it turns overdue at the deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_seconds: i64,
    pub cap_seconds: i64,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 minute, doubling up to 6 hours, 16 attempts: about 2.5 days.
    fn default() -> Self {
        Self {
            base_seconds: 60,
            cap_seconds: 6 * 3600,
            max_attempts: 16,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `failures` failed ones (≥ 1),
    /// between half the backoff and the whole of it.
    pub fn delay_seconds(&self, failures: u32, rng: &dyn Random) -> i64 {
        let exp = failures.saturating_sub(1).min(40);
        let full = self
            .base_seconds
            .max(1)
            .saturating_mul(1i64 << exp)
            .min(self.cap_seconds.max(1));
        let half = full / 2;
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        let r = i64::try_from(u64::from_le_bytes(b) >> 2).unwrap_or(0);
        full - half + r % (half + 1)
    }
}

/// The node's webhook settings (not in the TOML file: the defaults are the
/// policy, and only tests let a webhook be plain http).
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Accept `http://` URLs. Tests only: their receiver is a plain local
    /// HTTP server.
    pub allow_http: bool,
    /// Accept URLs naming, or host names resolving to, this machine or a
    /// private network. Tests only (their receivers listen on 127.0.0.1):
    /// neither the TOML file nor the API can set it.
    pub allow_private: bool,
    /// Connect plus answer, per attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Deliveries at once.
    pub concurrency: usize,
    /// The certificate authorities trusted for webhooks (a PEM bundle).
    /// Default: the system's, `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_bundle: Option<PathBuf>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private: false,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            concurrency: 8,
            ca_bundle: None,
        }
    }
}

const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Why the URL was refused (never the URL itself).
    #[error("the webhook URL is refused: {0}")]
    InvalidUrl(&'static str),
    #[error(transparent)]
    Storage(#[from] me2b_storage::StorageError),
    #[error(transparent)]
    Audit(#[from] me2b_audit::AuditError),
}

/// A registered webhook as its organisation sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub since: Timestamp,
}

/// What one delivery pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryPass {
    pub delivered: usize,
    /// Failed, to be tried again.
    pub retrying: usize,
    /// Failed for the last time.
    pub given_up: usize,
}

/// Organisations' webhooks and the delivery of erasure requests to them.
#[derive(Clone, Debug)]
pub struct Webhooks {
    store: Arc<dyn Store>,
    consents: Consents,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    client: reqwest::Client,
    settings: WebhookSettings,
    /// One pass at a time.
    running: Arc<tokio::sync::Mutex<()>>,
}

fn private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 0
                || v4.octets()[0] >= 240
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
                || v4.octets()[0] == 198 && (v4.octets()[1] & 0xfe) == 18
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4().is_some_and(|v4| private_ip(IpAddr::V4(v4)))
        }
    }
}

/// Checks a webhook URL: https (http only when allowed), a host, no
/// credentials or fragment, and (outside tests) not this machine or a
/// private network named by its address. A host name that resolves to one
/// is refused when a delivery resolves it ([`PublicOnly`]).
pub fn check_url(
    raw: &str,
    allow_http: bool,
    allow_private: bool,
) -> Result<reqwest::Url, WebhookError> {
    if raw.len() > MAX_URL_LEN {
        return Err(WebhookError::InvalidUrl("it is longer than 2,048 bytes"));
    }
    let url = reqwest::Url::parse(raw).map_err(|_| WebhookError::InvalidUrl("it is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(WebhookError::InvalidUrl("it must be an https:// URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookError::InvalidUrl("it must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(WebhookError::InvalidUrl("it must not have a fragment"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(WebhookError::InvalidUrl("it has no host"))?;
    if !allow_private {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let private = match bare.parse::<IpAddr>() {
            Ok(ip) => private_ip(ip),
            Err(_) => {
                let d = bare.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
        };
        if private {
            return Err(WebhookError::InvalidUrl(
                "it must not name this machine or a private network",
            ));
        }
    }
    Ok(url)
}

/// The webhooks' DNS resolver: it resolves a host name at delivery time and
/// refuses it when any of its addresses is not public (loopback, private,
/// link-local, CGNAT, multicast, unspecified…). The client connects only to
/// the addresses it returns, the ones checked: a name that changes its
/// answer between the check and the connection (DNS rebinding) gains
/// nothing. An IP literal never reaches a resolver; the delivery checks it.
#[derive(Clone, Copy, Debug)]
pub struct PublicOnly {
    /// Tests only ([`WebhookSettings::allow_private`]).
    allow_private: bool,
}

/// A webhook's host resolved to an address that is not public (the error
/// names neither the host nor the address).
#[derive(Debug, thiserror::Error)]
#[error("the webhook's host resolves to an address that is not public")]
pub struct NotPublic;

impl PublicOnly {
    /// The addresses of `host` (any port: the client sets the URL's), all
    /// public, or an error.
    pub async fn lookup(
        &self,
        host: &str,
    ) -> Result<Vec<std::net::SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        if addrs.is_empty() {
            return Err("the webhook's host has no address".into());
        }
        if !self.allow_private && addrs.iter().any(|a| private_ip(a.ip())) {
            return Err(Box::new(NotPublic));
        }
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = *self;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this.lookup(&host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a delivery may go to `url` as far as its host is an IP literal:
/// a stored URL is checked again when used (a name is checked by the
/// resolver).
fn literal_allowed(url: &str, allow_private: bool) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str().filter(|h| !h.is_empty()) else {
        return false;
    };
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => allow_private || !private_ip(ip),
        Err(_) => true,
    }
}

fn client(settings: &WebhookSettings) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .dns_resolver(Arc::new(PublicOnly {
            allow_private: settings.allow_private,
        }))
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.timeout)
        .timeout(settings.timeout)
        .https_only(!settings.allow_http)
        .user_agent("me2b-webhooks/1");
    let path = settings
        .ca_bundle
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
    match std::fs::read(&path) {
        Ok(pem) => {
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| format!("{} is not a PEM bundle", path.display()))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        // Without the bundle, https webhooks fail (and are retried); the
        // node still runs, and says so.
        Err(_) => tracing::warn!(
            path = %path.display(),
            "no certificate authorities for webhooks: https deliveries will fail"
        ),
    }
    builder
        .build()
        .map_err(|_| "cannot build the webhooks' HTTP client".to_owned())
}

impl Webhooks {
    pub fn new(
        store: Arc<dyn Store>,
        consents: Consents,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
        settings: WebhookSettings,
    ) -> Result<Self, String> {
        Ok(Self {
            client: client(&settings)?,
            store,
            consents,
            audit,
            clock,
            rng,
            settings,
            running: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Registers (or replaces) `org`'s webhook; audited.
    pub async fn register(&self, org: OrgId, raw: &str) -> Result<Webhook, WebhookError> {
        let url = check_url(raw, self.settings.allow_http, self.settings.allow_private)?;
        let now = self.clock.now();
        self.store.set_webhook(org, url.as_str(), now).await?;
        self.audit
            .record(AuditEvent::new(
                Actor::Organisation(org),
                Action::OrgWebhookSet,
            ))
            .await?;
        Ok(Webhook {
            url: url.to_string(),
            since: now,
        })
    }

    pub async fn get(&self, org: OrgId) -> Result<Option<Webhook>, WebhookError> {
        Ok(self.store.webhook(org).await?.map(|w| Webhook {
            url: w.url,
            since: w.created_at,
        }))
    }

    /// Removes `org`'s webhook (false: it had none); audited. Its requests
    /// stay on the pull list.
    pub async fn remove(&self, org: OrgId) -> Result<bool, WebhookError> {
        let gone = self.store.delete_webhook(org).await?;
        if gone {
            self.audit
                .record(AuditEvent::new(
                    Actor::Organisation(org),
                    Action::OrgWebhookDelete,
                ))
                .await?;
        }
        Ok(gone)
    }

    /// Delivers the requests due now, side by side (at most
    /// `concurrency` at once, each with its own timeout), and stores each
    /// outcome. A pass already running makes this one return at once.
    pub async fn deliver_due(&self) -> Result<DeliveryPass, WebhookError> {
        let Ok(_running) = self.running.try_lock() else {
            return Ok(DeliveryPass::default());
        };
        if let Err(e) = self.consents.release_rectifications_due().await {
            tracing::warn!(error = %e, "rectification notices due could not be released");
        }
        let now = self.clock.now();
        let mut due: Vec<Due> = self
            .store
            .webhook_deliveries_due(now, 500)
            .await?
            .into_iter()
            .map(Due::Erasure)
            .collect();
        due.extend(
            self.store
                .rectification_deliveries_due(now, 500)
                .await?
                .into_iter()
                .map(Due::Rectification),
        );
        let gate = Arc::new(tokio::sync::Semaphore::new(
            self.settings.concurrency.max(1),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for d in due {
            let (this, gate) = (self.clone(), gate.clone());
            tasks.spawn(async move {
                let _slot = gate.acquire_owned().await;
                this.deliver_one(d, now).await
            });
        }
        let mut pass = DeliveryPass::default();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(state)) if state.delivered_at.is_some() => pass.delivered += 1,
                Ok(Ok(state)) if state.next_at.is_some() => pass.retrying += 1,
                Ok(Ok(_)) => pass.given_up += 1,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "a webhook delivery could not be recorded")
                }
                Err(_) => tracing::warn!("a webhook delivery task stopped"),
            }
        }
        Ok(pass)
    }

    async fn deliver_one(&self, d: Due, now: Timestamp) -> Result<DeliveryState, WebhookError> {
        let (org, id, url, attempts, signed, event) = match &d {
            Due::Erasure(d) => (
                d.request.org,
                d.request.id,
                d.url.as_str(),
                d.attempts,
                self.consents
                    .signed_erasure_request(&d.request, now)
                    .map(|r| r.signed),
                "erasure-request",
            ),
            Due::Rectification(d) => (
                d.notice.org,
                d.notice.id,
                d.url.as_str(),
                d.attempts,
                self.consents
                    .signed_rectification(&d.notice, now)
                    .map(|r| r.signed),
                "rectification-notice",
            ),
        };
        let Some(signed) = signed else {
            return Ok(DeliveryState {
                attempts,
                next_at: None,
                delivered_at: None,
                last_status: None,
            });
        };
        let attempts = attempts.saturating_add(1);
        let refused = !literal_allowed(url, self.settings.allow_private);
        let status = if refused {
            None
        } else {
            match self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/jose")
                .header("me2b-event", event)
                .body(signed)
                .send()
                .await
            {
                Ok(r) => Some(r.status()),
                // Refused by the resolver, or failed: the error names the
                // URL, so it is dropped, never logged.
                Err(_) => None,
            }
        };
        let delivered = status.is_some_and(|s| s.is_success());
        let state = if delivered {
            DeliveryState {
                attempts,
                next_at: None,
                delivered_at: Some(now),
                last_status: status.map(|s| s.as_u16()),
            }
        } else {
            let next_at = (attempts < self.settings.retry.max_attempts).then(|| {
                now.plus_seconds(
                    self.settings
                        .retry
                        .delay_seconds(attempts, self.rng.as_ref()),
                )
            });
            tracing::info!(
                org = %org,
                event,
                attempt = attempts,
                refused,
                status = status.map(|s| s.as_u16()).unwrap_or(0),
                again = next_at.is_some(),
                "a webhook delivery failed"
            );
            DeliveryState {
                attempts,
                next_at,
                delivered_at: None,
                last_status: status.map(|s| s.as_u16()),
            }
        };
        match d {
            Due::Erasure(_) => self.store.webhook_attempted(&id, &state).await?,
            Due::Rectification(_) => self.store.rectification_attempted(&id, &state).await?,
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use me2b_crypto::SeededRandom;
    use proptest::prelude::*;

    #[test]
    fn only_public_https_urls_are_accepted_outside_tests() {
        for (url, ok) in [
            ("https://coop.example.org/me2b/erasures", true),
            ("https://coop.example.org:8443/hook?k=v", true),
            ("https://93.184.216.34/hook", true),
            ("http://coop.example.org/hook", false),
            ("ftp://coop.example.org/hook", false),
            ("https://user:pw@coop.example.org/hook", false),
            ("https://coop.example.org/hook#x", false),
            ("https://localhost/hook", false),
            ("https://a.localhost./hook", false),
            ("https://127.0.0.1/hook", false),
            ("https://10.1.2.3/hook", false),
            ("https://192.168.1.1/hook", false),
            ("https://169.254.169.254/latest", false),
            ("https://100.64.0.1/hook", false),
            ("https://[::1]/hook", false),
            ("https://[fd00::1]/hook", false),
            ("https://[::ffff:127.0.0.1]/hook", false),
            ("not a url", false),
            ("", false),
        ] {
            assert_eq!(check_url(url, false, false).is_ok(), ok, "{url}");
        }
        let long = format!("https://coop.example.org/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(&long, false, false).is_err());
        // Tests' local receivers.
        assert!(check_url("http://127.0.0.1:8080/hook", true, true).is_ok());
        assert!(check_url("ftp://127.0.0.1/hook", true, true).is_err());
    }

    fn private_v4() -> impl Strategy<Value = std::net::Ipv4Addr> {
        prop_oneof![
            any::<[u8; 3]>().prop_map(|b| [127, b[0], b[1], b[2]]),
            any::<[u8; 3]>().prop_map(|b| [10, b[0], b[1], b[2]]),
            any::<[u8; 2]>().prop_map(|b| [192, 168, b[0], b[1]]),
            (16u8..32, any::<[u8; 2]>()).prop_map(|(x, b)| [172, x, b[0], b[1]]),
            any::<[u8; 2]>().prop_map(|b| [169, 254, b[0], b[1]]),
            (64u8..128, any::<[u8; 2]>()).prop_map(|(x, b)| [100, x, b[0], b[1]]),
            (224u8..=255, any::<[u8; 3]>()).prop_map(|(x, b)| [x, b[0], b[1], b[2]]),
            any::<[u8; 3]>().prop_map(|b| [0, b[0], b[1], b[2]]),
        ]
        .prop_map(std::net::Ipv4Addr::from)
    }

    fn private_host() -> impl Strategy<Value = String> {
        prop_oneof![
            private_v4().prop_map(|ip| ip.to_string()),
            private_v4().prop_map(|ip| format!("[::ffff:{ip}]")),
            any::<[u16; 7]>().prop_map(|s| format!(
                "[fd{:02x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}]",
                s[0] & 0xff,
                s[1],
                s[2],
                s[3],
                s[4],
                s[5],
                s[6],
                s[0]
            )),
            any::<u16>().prop_map(|x| format!("[fe80::{x:x}]")),
            Just("[::1]".to_owned()),
            Just("[::]".to_owned()),
            "[a-z]{1,10}".prop_map(|l| format!("{l}.localhost")),
            Just("localhost".to_owned()),
        ]
    }

    fn public_host() -> impl Strategy<Value = String> {
        prop_oneof![
            ("[a-z][a-z0-9-]{0,20}[a-z0-9]", "[a-z]{2,6}").prop_map(|(l, t)| format!("{l}.{t}")),
            (1u8..100, any::<[u8; 3]>()).prop_map(|(a, b)| {
                let a = if a == 10 || a == 0 { 11 } else { a };
                format!("{a}.{}.{}.{}", b[0], b[1], b[2])
            }),
        ]
    }

    proptest! {
        /// Untrusted input: never a panic, whatever the bytes.
        #[test]
        fn any_text_is_an_answer_never_a_panic(raw in ".{0,300}", http: bool, private: bool) {
            let _ = check_url(&raw, http, private);
            let _ = literal_allowed(&raw, private);
        }

        /// What the documentation promises, over generated URLs: https on a
        /// public host is accepted; another scheme, credentials, a fragment
        /// or a private address never is.
        #[test]
        fn urls_are_judged_by_their_parts(
            scheme in prop_oneof![Just("https"), Just("http"), Just("ftp"), Just("file"), Just("gopher")],
            user in proptest::option::of("[a-z]{1,8}(:[a-z0-9]{0,8})?"),
            public in public_host(),
            private in private_host(),
            use_private: bool,
            port in proptest::option::of(1u16..),
            path in "(/[a-zA-Z0-9._~-]{0,12}){0,4}",
            query in proptest::option::of("[a-z]{1,5}=[a-z0-9]{0,5}"),
            fragment in proptest::option::of("[a-z]{0,5}"),
        ) {
            let host = if use_private { &private } else { &public };
            let mut url = format!("{scheme}://");
            if let Some(u) = &user {
                url.push_str(u);
                url.push('@');
            }
            url.push_str(host);
            if let Some(p) = port {
                url.push_str(&format!(":{p}"));
            }
            url.push_str(&path);
            if let Some(q) = &query {
                url.push('?');
                url.push_str(q);
            }
            if let Some(f) = &fragment {
                url.push('#');
                url.push_str(f);
            }
            let ok = scheme == "https" && user.is_none() && !use_private && fragment.is_none();
            prop_assert_eq!(check_url(&url, false, false).is_ok(), ok, "{}", url);
            if ok {
                prop_assert!(literal_allowed(&url, false), "{}", url);
            }
            if use_private {
                prop_assert!(!literal_allowed(&url, false) || !private.starts_with(|c: char| c.is_ascii_digit() || c == '['), "{}", url);
            }
        }
    }

    #[test]
    fn errors_never_echo_the_url() {
        let secret = "https://user:hunter2@coop.example.org/hook";
        let e = check_url(secret, false, false).unwrap_err().to_string();
        assert!(
            !e.contains("hunter2") && !e.contains("coop.example.org"),
            "{e}"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let p = RetryPolicy {
            base_seconds: 60,
            cap_seconds: 3600,
            max_attempts: 10,
        };
        let rng = SeededRandom::new(3);
        for failures in 1..=40 {
            let full = (60i64 << (failures - 1).min(20)).min(3600);
            for _ in 0..50 {
                let d = p.delay_seconds(failures, &rng);
                assert!(d >= full - full / 2 && d <= full, "{failures}: {d}");
            }
        }
        // The total wait is bounded: attempts stop at max_attempts.
        let worst: i64 = (1..p.max_attempts)
            .map(|n| (60i64 << (n - 1)).min(3600))
            .sum();
        assert!(worst < 24 * 3600);
    }
}
