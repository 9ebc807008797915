//! The test harness shared by this crate's integration tests: the real router
//! served on 127.0.0.1:0 over a fresh database (SQLite or PostgreSQL).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_crypto::{PassphraseParams, SeededRandom};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::{FixedClock, OrgId, Timestamp};
use me2b_node::{Node, NodeConfig};
use me2b_server::{AppState, ServerOptions};
use me2b_testkit::{fresh, Db, TestDb};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// Session lifetime of test nodes: 30 days, so members stay logged in
/// while [`Srv::release_and_open_window`] moves the clock to a release of
/// consent changes (up to four days with the default governance).
pub const TTL: i64 = 30 * 86_400;

/// A running node and a client for it; the server stops on drop.
pub struct Srv {
    pub base: String,
    pub http: Client,
    pub node: Node,
    pub clock: Arc<FixedClock>,
    pub db: Db,
    pub t: TestDb,
    ttl: i64,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts a node on a fresh database, or None when PostgreSQL is not configured.
pub async fn start(db: Db) -> Option<Srv> {
    start_with(db, None).await
}

/// Seed of the test nodes' release noise (the discrete Laplace distribution
/// OpenDP draws from, from a seeded generator, so a test's noisy figures
/// repeat).
pub const NOISE_SEED: u64 = 7;

fn config(t: &TestDb, governance: Option<&str>, ttl: i64) -> NodeConfig {
    let mut cfg = NodeConfig::new(t.data_dir.path());
    cfg.database_url = Some(t.url.clone());
    cfg.passphrase = PassphraseParams::INSECURE_FAST_FOR_TESTS;
    cfg.session_ttl_seconds = ttl;
    // ME2B_TEST_NOISE_SEED reruns with other draws.
    let seed = std::env::var("ME2B_TEST_NOISE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(NOISE_SEED);
    cfg.noise = Some(Arc::new(me2b_dp::SeededNoise::new(seed)));
    if let Some(g) = governance {
        let path = t.data_dir.path().join("test-governance.toml");
        std::fs::write(&path, g).unwrap();
        cfg.governance = Some(path);
    }
    cfg
}

/// The server options of test nodes: the defaults, with sign-ups from one
/// address unthrottled (a test signs up many members from 127.0.0.1;
/// `logins.rs` tests the sign-up limit with the defaults).
pub fn test_options() -> ServerOptions {
    let mut opts = ServerOptions::default();
    opts.throttle.signup_burst = 100_000;
    opts
}

async fn serve(node: Node) -> (String, tokio::sync::oneshot::Sender<()>) {
    serve_opts(node, test_options()).await
}

async fn serve_opts(node: Node, opts: ServerOptions) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState { node: node.into() };
    tokio::spawn(me2b_server::serve(listener, state, opts, async {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop)
}

/// Starts a node on a fresh database with a governance file (TOML text), or
/// None when PostgreSQL is not configured.
pub async fn start_with(db: Db, governance: Option<&str>) -> Option<Srv> {
    start_ttl(db, governance, TTL).await
}

/// Starts a node with server options and a change to its configuration
/// (login throttling, the Argon2 bound and parameters).
pub async fn start_custom(
    db: Db,
    opts: ServerOptions,
    tweak: impl FnOnce(&mut NodeConfig),
) -> Option<Srv> {
    let t = fresh(db).await.unwrap()?;
    let mut cfg = config(&t, None, TTL);
    tweak(&mut cfg);
    let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
        1_790_000_000_000,
    )));
    let node = Node::open(&cfg, clock.clone(), Arc::new(SeededRandom::new(42)))
        .await
        .unwrap();
    let (base, stop) = serve_opts(node.clone(), opts).await;
    Some(Srv {
        base,
        http: Client::new(),
        node,
        clock,
        db,
        t,
        ttl: TTL,
        stop: Some(stop),
    })
}

/// Like [`start_with`], with sessions that last `ttl` seconds (tests that
/// move the clock by days keep their members logged in).
pub async fn start_ttl(db: Db, governance: Option<&str>, ttl: i64) -> Option<Srv> {
    let t = fresh(db).await.unwrap()?;
    let cfg = config(&t, governance, ttl);
    let clock = Arc::new(FixedClock::at(Timestamp::from_unix_millis(
        1_790_000_000_000,
    )));
    let node = Node::open(&cfg, clock.clone(), Arc::new(SeededRandom::new(42)))
        .await
        .unwrap();
    let (base, stop) = serve(node.clone()).await;
    Some(Srv {
        base,
        http: Client::new(),
        node,
        clock,
        db,
        t,
        ttl,
        stop: Some(stop),
    })
}

impl Srv {
    /// A co-op's keys for its own domain, as the embedded trust gives them
    /// (`POST /v1/org/trust/keys`, here through the service).
    pub async fn coop_keys(&self, org: OrgId) -> me2b_coop::CoopKeys {
        let m = self.node.trust.coop_key_material(org).await.unwrap();
        me2b_coop::CoopKeys::from_material(org, &m).unwrap()
    }

    /// A member's card at `org`, opened by the co-op: its pseudonym for them.
    pub async fn pseudonym_at(&self, member: &str, org: OrgId) -> String {
        let (st, v) = self
            .req(
                Method::GET,
                &format!("/v1/me/trust/cards/{org}"),
                Some(member),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        self.coop_keys(org)
            .await
            .open_card(v["card"].as_str().unwrap())
            .unwrap()
    }

    /// The body as the co-op sends it: every `card` holding one of its
    /// pseudonyms (64 hex), in `receipts` or at the top, sealed afresh.
    pub async fn sealed(&self, org: OrgId, mut body: Value) -> Value {
        let keys = self.coop_keys(org).await;
        let rng = SeededRandom::new(99);
        let seal = |v: &mut Value| {
            if let Some(p) = v["card"].as_str() {
                if p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit()) {
                    v["card"] = json!(keys.seal(p, &rng).unwrap());
                }
            }
        };
        seal(&mut body);
        if let Some(rs) = body.get_mut("receipts").and_then(Value::as_array_mut) {
            rs.iter_mut().for_each(seal);
        }
        body
    }

    /// Stops the node and opens it again on the same database, with another
    /// governance file (governance names organisations by id, so a test
    /// creates them first, as an operator would). Keys and sessions stay.
    pub async fn reopen(&mut self, governance: Option<&str>) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.node.shutdown().await;
        let cfg = config(&self.t, governance, self.ttl);
        self.node = Node::open(&cfg, self.clock.clone(), Arc::new(SeededRandom::new(43)))
            .await
            .unwrap();
        let (base, stop) = serve(self.node.clone()).await;
        self.base = base;
        self.stop = Some(stop);
    }
}

impl Srv {
    /// Moves the test clock to the release of consent changes that lets every
    /// pending change go, and into the data-access window that opens there:
    /// the production path (`[consent_release]`, me2b-consent's
    /// service/release.rs). What an organisation sees of a grant or a
    /// withdrawal changes only at a release, at a period boundary where at
    /// least `min_batch` members changed or the oldest change waited
    /// `max_delay` (a single member's change: up to `max_delay` plus a
    /// period), and data access answers only in the window after each
    /// boundary. The clock stops a minute past the boundary (less if the
    /// window is shorter). Returns how many consents the releases changed.
    /// With the default governance this moves the clock by up to four days:
    /// members' sessions must outlast that ([`TTL`]).
    pub async fn release_and_open_window(&self) -> u64 {
        use me2b_domain::Clock as _;
        let schedule = self.node.consents.release_schedule();
        let period = schedule.batch.period_seconds.max(1);
        let into_window = (schedule.access_window_seconds / 2).clamp(1, 60);
        let mut released = 0;
        let boundaries = schedule.batch.latest_release_seconds() / period + 1;
        for _ in 0..=boundaries {
            let now = self.clock.now().unix_millis() / 1000;
            self.clock
                .advance_seconds(period - now.rem_euclid(period) + into_window);
            released += self.node.consents.release_due().await.unwrap();
            let (pending, _) = self.node.store.consent_changes_pending().await.unwrap();
            if pending == 0 {
                assert_eq!(
                    schedule.window(self.clock.now()),
                    Ok(()),
                    "the data-access window is open"
                );
                return released;
            }
        }
        panic!("consent changes still pending after {boundaries} boundaries");
    }
}

impl Srv {
    /// A second node on this node's database, with its own data directory
    /// holding a copy of the master key, and the same clock: two nodes of
    /// one PostgreSQL (issue 13). Its `t` names the same database.
    pub async fn second_node(&self) -> Srv {
        let data_dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            self.t.data_dir.path().join(me2b_node::MASTER_KEY_FILE),
            data_dir.path().join(me2b_node::MASTER_KEY_FILE),
        )
        .unwrap();
        let t = self.t.sharing(data_dir);
        let cfg = config(&t, None, self.ttl);
        let node = Node::open(&cfg, self.clock.clone(), Arc::new(SeededRandom::new(44)))
            .await
            .unwrap();
        let (base, stop) = serve(node.clone()).await;
        Srv {
            base,
            http: Client::new(),
            node,
            clock: self.clock.clone(),
            db: self.db,
            t,
            ttl: self.ttl,
            stop: Some(stop),
        }
    }
}

/// The `.eml` files in an outbox directory addressed to `email`, oldest
/// first (their names start with the time).
pub fn outbox_to(dir: &std::path::Path, email: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let to = format!("To: {}", email.trim().to_lowercase());
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|text| text.lines().any(|l| l.trim() == to))
        .collect()
}

fn json_or_null(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }
}

impl Srv {
    /// A JSON request with extra headers.
    pub async fn req_h(
        &self,
        m: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(m, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        (status, json_or_null(&resp.text().await.unwrap()))
    }

    /// A JSON request.
    pub async fn req(
        &self,
        m: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.req_h(m, path, token, body, &[]).await
    }

    /// A request with raw body bytes and an optional content type.
    pub async fn raw(
        &self,
        m: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(m, format!("{}{path}", self.base))
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
        )
    }

    /// Signs up a member (passphrase `correct horse battery`); returns the session token.
    pub async fn member(&self, email: &str) -> String {
        self.member_with(email, &[]).await
    }

    /// The messages in the node's outbox (`DATA_DIR/outbox/*.eml`) to
    /// `email`, oldest first: what the member's mail client would show.
    pub fn outbox_to(&self, email: &str) -> Vec<String> {
        outbox_to(&self.t.data_dir.path().join("outbox"), email)
    }

    /// The confirmation token of the latest message to `email` that has one.
    pub fn confirmation_token(&self, email: &str) -> Option<String> {
        self.outbox_to(email)
            .iter()
            .rev()
            .find_map(|m| me2b_vault::find_token(m))
    }

    /// Signs up through the API as a member would: the 202, the token from
    /// the message, the confirmation. Returns the confirmation's answer
    /// (session token, recovery code).
    pub async fn sign_up(&self, email: &str, passphrase: &str) -> Value {
        let (s, v) = self
            .req(
                Method::POST,
                "/v1/members",
                None,
                Some(json!({"email": email, "passphrase": passphrase})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let token = self
            .confirmation_token(email)
            .expect("a confirmation message in the outbox");
        let (s, v) = self
            .req(
                Method::POST,
                "/v1/members/confirm",
                None,
                Some(json!({ "token": token })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    /// Signs up a member and writes `records` to their vault.
    pub async fn member_with(&self, email: &str, records: &[Value]) -> String {
        let v = self.sign_up(email, "correct horse battery").await;
        let t = v["token"].as_str().unwrap().to_owned();
        for r in records {
            let (s, v) = self
                .req(Method::POST, "/v1/vault/records", Some(&t), Some(r.clone()))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        t
    }

    /// Registers an organisation with the admin and consent roles.
    pub async fn org(&self, name: &str) -> (OrgId, String) {
        self.org_with(name, vec![Role::Admin, Role::Consent]).await
    }

    /// Registers an organisation with `roles`; returns its id and API key.
    pub async fn org_with(&self, name: &str, roles: Vec<Role>) -> (OrgId, String) {
        let (org, key) = self
            .node
            .orgs
            .create(
                Label::try_from(name).unwrap(),
                OrgKind::Coop,
                Roles::try_from(roles).unwrap(),
            )
            .await
            .unwrap();
        (org.id, key.secret.expose().to_owned())
    }
}

/// A data-access answer as the organisation reads it: each disclosure's
/// envelopes opened with `api_key` (category → the member's values). Panics
/// if an envelope does not open with that key.
pub fn opened(api_key: &str, answer: &Value) -> Value {
    let mut out = answer.clone();
    if let Some(ds) = out["disclosures"].as_array_mut() {
        for d in ds {
            let parsed: me2b_consent::service::Disclosure =
                serde_json::from_value(d.clone()).unwrap();
            let values = me2b_consent::envelope::open_disclosure(api_key, &parsed).unwrap();
            d["envelopes"] = serde_json::to_value(values).unwrap();
        }
    }
    out
}

impl Srv {
    /// Asks for a consent (`ask`, the consent request's body) as the
    /// organisation of `key` and has the member grant it; the consent id.
    pub async fn granted(&self, key: &str, member: &str, ask: Value) -> String {
        let (st, req) = self
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(key),
                Some(ask),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{req}");
        let rid = req["id"].as_str().unwrap();
        let (st, c) = self
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{rid}/grant"),
                Some(member),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        c["consent_id"].as_str().unwrap().to_owned()
    }

    /// The node's key as a receiver gets it: from /.well-known/me2b/node-keys.
    pub async fn published_key(&self) -> me2b_crypto::NodeVerifyingKey {
        use base64::Engine as _;
        let (st, v) = self
            .req(Method::GET, "/.well-known/me2b/node-keys", None, None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v["keys"][0]["x"].as_str().unwrap())
            .unwrap();
        me2b_crypto::NodeVerifyingKey::from_bytes(&x).unwrap()
    }
}

/// A compact JWS signed by `key` (EdDSA) whose `typ` is one of `typs`: its
/// `typ` and claims; None otherwise.
pub fn verify_jws(
    key: &me2b_crypto::NodeVerifyingKey,
    jws: &str,
    typs: &[&str],
) -> Option<(String, Value)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jws.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).ok()?).ok()?;
    let typ = header["typ"].as_str()?.to_owned();
    if !typs.contains(&typ.as_str()) || header["alg"] != "EdDSA" {
        return None;
    }
    let sig = b64.decode(parts[2]).ok()?;
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .ok()?;
    Some((
        typ,
        serde_json::from_slice(&b64.decode(parts[1]).ok()?).ok()?,
    ))
}
