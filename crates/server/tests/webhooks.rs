//! Erasure requests pushed to organisations' webhooks (issue 15, item 2),
//! over the HTTP API on SQLite and PostgreSQL, with real local HTTP
//! receivers: one fails its first two deliveries and then accepts, one never
//! answers at all. Each receiver checks the signature against the node's
//! published key before it accepts. The node's clock is moved by hand, and
//! each delivery pass is run by the test: no timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use common::Srv;
use me2b_crypto::NodeVerifyingKey;
use me2b_domain::org::Role;
use me2b_domain::Clock as _;
use me2b_node::webhooks::{RetryPolicy, WebhookSettings, Webhooks};
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSPHRASE: &str = "correct horse battery";
const MAX_ATTEMPTS: u32 = 4;
const CAP: i64 = 3600;

/// A local receiver: fails the first `fail_first` posts with 500, or never
/// answers (`hang`); otherwise verifies the JWS body against the node's key
/// and keeps its claims.
struct Receiver {
    fail_first: usize,
    hang: bool,
    key: NodeVerifyingKey,
    hits: AtomicUsize,
    accepted: Mutex<Vec<Value>>,
}

fn verify(key: &NodeVerifyingKey, jws: &str) -> Option<Value> {
    let typs = ["me2b-erasure-request+jws", "me2b-rectification-notice+jws"];
    let (typ, mut claims) = common::verify_jws(key, jws, &typs)?;
    claims["typ"] = json!(typ);
    Some(claims)
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> AxStatus {
    let n = r.hits.fetch_add(1, Ordering::SeqCst);
    if r.hang {
        std::future::pending::<()>().await;
    }
    if n < r.fail_first {
        return AxStatus::INTERNAL_SERVER_ERROR;
    }
    assert_eq!(headers["content-type"], "application/jose");
    match verify(&r.key, std::str::from_utf8(&body).unwrap_or("")) {
        Some(mut claims) => {
            claims["event"] = json!(headers["me2b-event"].to_str().unwrap_or(""));
            r.accepted.lock().unwrap().push(claims);
            AxStatus::NO_CONTENT
        }
        None => AxStatus::BAD_REQUEST,
    }
}

/// Starts a receiver on 127.0.0.1:0; returns its URL.
async fn receiver(r: Arc<Receiver>) -> String {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn settings() -> WebhookSettings {
    WebhookSettings {
        allow_http: true,
        allow_private: true,
        // Only so that the receiver that never answers ends each attempt.
        timeout: Duration::from_secs(1),
        retry: RetryPolicy {
            base_seconds: 60,
            cap_seconds: CAP,
            max_attempts: MAX_ATTEMPTS,
        },
        ..WebhookSettings::default()
    }
}

/// A co-op with the `consent` role and a consent request; (id, key, request).
async fn coop(s: &Srv, name: &str) -> (me2b_domain::OrgId, String, String) {
    coop_for(s, name, "purchases-and-spending-habit").await
}

/// The same, for one category.
async fn coop_for(s: &Srv, name: &str, category: &str) -> (me2b_domain::OrgId, String, String) {
    let (id, key) = s.org_with(name, vec![Role::Consent]).await;
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/consent-requests",
            Some(&key),
            Some(json!({
                "purposes": ["marketing"],
                "categories": [category],
                "processing": ["use"],
                "legal_basis": "consent",
                "retention_days": 30,
                "notice": "We send you offers.",
                "notice_version": "1",
                "recipients": []
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (id, key, v["id"].as_str().unwrap().to_owned())
}

fn by_recipient(v: &Value) -> BTreeMap<String, String> {
    v["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recipient"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn status(s: &Srv, receipt: &str) -> BTreeMap<String, String> {
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/erasure-receipts/status",
            None,
            Some(json!({ "receipt": receipt })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    by_recipient(&v)
}

#[tokio::test]
async fn webhooks_are_retried_with_backoff_verified_and_bounded() {
    for db in Db::ALL {
        let Some(s) = common::start_custom(db, common::test_options(), |cfg| {
            cfg.webhooks = settings();
        })
        .await
        else {
            continue;
        };
        let key = s.published_key().await;
        let flaky = Arc::new(Receiver {
            fail_first: 2,
            hang: false,
            key,
            hits: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
        });
        let silent = Arc::new(Receiver {
            fail_first: 0,
            hang: true,
            key,
            hits: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
        });
        let (a, a_key, a_req) = coop(&s, "Co-op A").await;
        let (_b, b_key, b_req) = coop(&s, "Co-op B").await;
        let (_c, c_key, c_req) = coop(&s, "Co-op C").await;

        // Registration: refused URLs say why without echoing them; a good
        // one is shown back; C keeps to the pull list.
        for bad in [
            "ftp://127.0.0.1/hook",
            "https://u:secret@example.org/h",
            "nope",
        ] {
            let (st, v) = s
                .req(
                    Method::PUT,
                    "/v1/org/webhook",
                    Some(&a_key),
                    Some(json!({ "url": bad })),
                )
                .await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
            assert_eq!(v["error"]["code"], "invalid_webhook_url");
            assert!(!v.to_string().contains("secret"));
        }
        let (st, v) = s
            .req(Method::GET, "/v1/org/webhook", Some(&c_key), None)
            .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("webhook_not_found"))
        );
        for (k, r) in [(&a_key, &flaky), (&b_key, &silent)] {
            let url = receiver(r.clone()).await;
            let (st, v) = s
                .req(
                    Method::PUT,
                    "/v1/org/webhook",
                    Some(k),
                    Some(json!({ "url": url })),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            let (_, v) = s.req(Method::GET, "/v1/org/webhook", Some(k), None).await;
            assert_eq!(v["url"], json!(url));
        }

        // A member gave each co-op a consent, then erases their account.
        let m = s.member("ana@example.org").await;
        for req in [&a_req, &b_req, &c_req] {
            let (st, v) = s
                .req(
                    Method::POST,
                    &format!("/v1/me/consent-requests/{req}/grant"),
                    Some(&m),
                    Some(json!({})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
        }
        let (st, v) = s
            .req(
                Method::DELETE,
                "/v1/me",
                Some(&m),
                Some(json!({ "passphrase": PASSPHRASE })),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let receipt = v["erasure_receipt"].as_str().unwrap().to_owned();

        // Nothing is posted before the batch is released.
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!((pass.delivered, pass.retrying, pass.given_up), (0, 0, 0));
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        s.node.vault.release_erasures_due().await.unwrap();
        let pulled: Vec<Value> = {
            let (_, v) = s
                .req(Method::GET, "/v1/org/erasure-requests", Some(&a_key), None)
                .await;
            v["requests"].as_array().unwrap().clone()
        };
        assert_eq!(pulled.len(), 1);
        let a_id = pulled[0]["id"].as_str().unwrap().to_owned();

        // First pass: A's receiver fails, B's never answers; neither holds
        // up the other, and nothing is retried before its backoff.
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!(
            (pass.delivered, pass.retrying, pass.given_up),
            (0, 2, 0),
            "{db:?}"
        );
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!(
            (pass.delivered, pass.retrying, pass.given_up),
            (0, 0, 0),
            "{db:?}"
        );

        // The state is stored: a new worker (as after a restart) on the same
        // database goes on from attempt 2, not from scratch.
        let id: [u8; 16] = hex::decode(&a_id).unwrap().try_into().unwrap();
        let state = s.node.store.webhook_delivery(&id).await.unwrap().unwrap();
        assert_eq!((state.attempts, state.last_status), (1, Some(500)));
        let next = state.next_at.unwrap();
        assert!(next > s.clock.now());
        let restarted = Webhooks::new(
            s.node.store.clone(),
            s.node.consents.clone(),
            s.node.audit.clone(),
            s.clock.clone(),
            Arc::new(me2b_crypto::SeededRandom::new(5)),
            settings(),
        )
        .unwrap();
        let mut delivered = 0;
        let mut given_up = 0;
        for _ in 0..MAX_ATTEMPTS + 2 {
            s.clock.advance_seconds(CAP);
            let pass = restarted.deliver_due().await.unwrap();
            delivered += pass.delivered;
            given_up += pass.given_up;
        }
        assert_eq!((delivered, given_up), (1, 1), "{db:?}");
        // A: two failures, then one verified delivery; never posted again.
        assert_eq!(flaky.hits.load(Ordering::SeqCst), 3, "{db:?}");
        let got = flaky.accepted.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["request_id"], json!(a_id));
        assert_eq!(got[0]["recipient"], json!(a));
        assert_eq!(got[0]["subject"], pulled[0]["subject"]);
        // B: exactly MAX_ATTEMPTS tries, then the node stopped.
        assert_eq!(
            silent.hits.load(Ordering::SeqCst),
            MAX_ATTEMPTS as usize,
            "{db:?}"
        );
        let state = s.node.store.webhook_delivery(&id).await.unwrap().unwrap();
        assert_eq!((state.attempts, state.next_at.is_none()), (3, true));
        assert!(state.delivered_at.is_some());

        // Delivered is not confirmed: the member still sees A pending until
        // A confirms through the API; C pulls as before.
        let want = |a: &str, b: &str, c: &str| -> BTreeMap<String, String> {
            [
                ("Co-op A", a),
                ("Co-op B", b),
                ("Co-op C", c),
                ("the data trust", "confirmed"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
        };
        assert_eq!(
            status(&s, &receipt).await,
            want("pending", "pending", "pending")
        );
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/org/erasure-requests/{a_id}/confirm"),
                Some(&a_key),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (_, v) = s
            .req(Method::GET, "/v1/org/erasure-requests", Some(&c_key), None)
            .await;
        assert_eq!(v["requests"].as_array().unwrap().len(), 1);
        // B never answered: overdue for the member once the deadline passed.
        s.clock.advance_seconds(31 * 24 * 3600);
        assert_eq!(
            status(&s, &receipt).await,
            want("confirmed", "overdue", "overdue")
        );
        let pass = restarted.deliver_due().await.unwrap();
        assert_eq!((pass.delivered, pass.retrying, pass.given_up), (0, 0, 0));
        assert_eq!(silent.hits.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);

        // Removing the webhook: 204, then 404.
        let (st, _) = s
            .req(Method::DELETE, "/v1/org/webhook", Some(&a_key), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = s
            .req(Method::DELETE, "/v1/org/webhook", Some(&a_key), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}

/// SSRF: a stored webhook whose host *name* resolves to this machine (here
/// `localhost`; a public name rebound to 127.0.0.1 after registration is
/// the same case) is refused when the delivery resolves it: the receiver
/// listening on 127.0.0.1 is never reached, and the attempt counts as
/// failed. Registration refuses the name outright.
#[tokio::test]
async fn a_host_name_resolving_to_this_machine_is_never_reached() {
    for db in Db::ALL {
        let Some(s) = common::start_custom(db, common::test_options(), |cfg| {
            cfg.webhooks = WebhookSettings {
                allow_private: false,
                ..settings()
            };
        })
        .await
        else {
            continue;
        };
        let key = s.published_key().await;
        let target = Arc::new(Receiver {
            fail_first: 0,
            hang: false,
            key,
            hits: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
        });
        let literal = receiver(target.clone()).await;
        let port = literal
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches("/hook");
        let named = format!("http://localhost:{port}/hook");
        let (a, a_key, a_req) = coop(&s, "Co-op A").await;
        for url in [&literal, &named] {
            let (st, v) = s
                .req(
                    Method::PUT,
                    "/v1/org/webhook",
                    Some(&a_key),
                    Some(json!({ "url": url })),
                )
                .await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        }
        // As if the name had resolved to a public address when registered.
        s.node
            .store
            .set_webhook(a, &named, s.clock.now())
            .await
            .unwrap();
        let m = s.member("ana@example.org").await;
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{a_req}/grant"),
                Some(&m),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let (st, v) = s
            .req(
                Method::DELETE,
                "/v1/me",
                Some(&m),
                Some(json!({ "passphrase": PASSPHRASE })),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        s.node.vault.release_erasures_due().await.unwrap();
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!((pass.delivered, pass.retrying), (0, 1), "{db:?}");
        assert_eq!(target.hits.load(Ordering::SeqCst), 0, "{db:?}");
        // A stored private literal is refused at delivery too.
        s.node
            .store
            .set_webhook(a, &literal, s.clock.now())
            .await
            .unwrap();
        s.clock.advance_seconds(CAP);
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!((pass.delivered, pass.retrying), (0, 1), "{db:?}");
        assert_eq!(target.hits.load(Ordering::SeqCst), 0, "{db:?}");
    }
}

/// Rectification notices go to the same webhook, once released, signed with
/// their own `typ` and said so in `me2b-event`; a failed delivery is retried.
#[tokio::test]
async fn rectification_notices_are_posted_to_the_webhook_after_the_release() {
    for db in Db::ALL {
        let Some(s) = common::start_custom(db, common::test_options(), |cfg| {
            cfg.webhooks = settings();
            cfg.session_ttl_seconds = 90 * 24 * 3600;
        })
        .await
        else {
            continue;
        };
        let key = s.published_key().await;
        let flaky = Arc::new(Receiver {
            fail_first: 1,
            hang: false,
            key,
            hits: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
        });
        let (a, a_key, a_req) = coop_for(&s, "Co-op A", "purchase").await;
        let url = receiver(flaky.clone()).await;
        let (st, v) = s
            .req(
                Method::PUT,
                "/v1/org/webhook",
                Some(&a_key),
                Some(json!({ "url": url })),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let m = s.member("ana@example.org").await;
        let receipt = |total: i64| {
            json!({"kind": "receipt", "merchant": "Corner Co-op", "items": [{"name": "Oat milk",
                "category": "food.dairy-alternatives", "quantity": 1, "unit_price": {"minor": total, "currency": "EUR"}}],
                "total": {"minor": total, "currency": "EUR"}, "purchased_at": "2026-11-20T17:03:00Z"})
        };
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&m),
                Some(receipt(189)),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let (st, v) = s
            .req(
                Method::POST,
                &format!("/v1/me/consent-requests/{a_req}/grant"),
                Some(&m),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        // A notice only concerns a consent released to its organisation.
        s.release_and_open_window().await;
        let (st, v) = s
            .req(
                Method::PUT,
                &format!("/v1/vault/records/{id}"),
                Some(&m),
                Some(receipt(199)),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");

        // Nothing is posted before the release.
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!((pass.delivered, pass.retrying), (0, 0), "{db:?}");
        assert_eq!(flaky.hits.load(Ordering::SeqCst), 0);
        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!((pass.delivered, pass.retrying), (0, 1), "{db:?}");
        s.clock.advance_seconds(CAP);
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!((pass.delivered, pass.retrying), (1, 0), "{db:?}");
        let got = flaky.accepted.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["typ"], "me2b-rectification-notice+jws");
        assert_eq!(got[0]["event"], "rectification-notice");
        assert_eq!(got[0]["recipient"], json!(a));
        assert_eq!(got[0]["category"], "purchase");
        assert!(!got[0].to_string().contains("199"), "{}", got[0]);
        let (_, v) = s
            .req(
                Method::GET,
                "/v1/org/rectification-notices",
                Some(&a_key),
                None,
            )
            .await;
        assert_eq!(v["notices"][0]["id"], got[0]["notice_id"]);
        // Delivered once: never posted again.
        s.clock.advance_seconds(CAP);
        let pass = s.node.webhooks.deliver_due().await.unwrap();
        assert_eq!((pass.delivered, pass.retrying), (0, 0), "{db:?}");
        assert_eq!(flaky.hits.load(Ordering::SeqCst), 2);
    }
}
