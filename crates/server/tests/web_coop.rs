//! The co-op console's pages as mounted by the server: its session cookie
//! carries a random id, never the API key; logout, revocation and expiry end
//! the session; the console's forms (credential codes, the till, erasure,
//! intents) go through the same services as the API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, start_with, Srv};
use me2b_domain::org::Role;
use me2b_domain::Clock;
use me2b_testkit::Db;
use reqwest::header::{HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use reqwest::{Client, Method, StatusCode};

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The CSRF token in a page's forms.
fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

fn cookie(name: &str, value: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}={value}")).unwrap()
}

/// The value a `Set-Cookie` sets.
fn set_value(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// GET as a browser holding `cookie`: status, headers, body.
async fn get(s: &Srv, path: &str, cookie: &HeaderValue) -> (StatusCode, HeaderMap, String) {
    let resp = client()
        .get(format!("{}{path}", s.base))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    let (st, h) = (resp.status(), resp.headers().clone());
    (st, h, resp.text().await.unwrap())
}

/// A form POST as a browser holding `cookie`.
async fn post(
    s: &Srv,
    path: &str,
    cookie: &HeaderValue,
    form: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let resp = client()
        .request(Method::POST, format!("{}{path}", s.base))
        .header("cookie", cookie.clone())
        // A browser names the page's origin on every form POST.
        .header("origin", s.base.as_str())
        .form(form)
        .send()
        .await
        .unwrap();
    let (st, h) = (resp.status(), resp.headers().clone());
    (st, h, resp.text().await.unwrap())
}

/// Logs into the console with `key`: the session cookie's value.
async fn console_login(s: &Srv, key: &str) -> String {
    let pre = cookie("me2b_pre", "pre-login-secret");
    let (_, _, page) = get(s, "/coop/login", &pre).await;
    let csrf = csrf_in(&page);
    let (st, h, _) = post(s, "/coop/login", &pre, &[("api_key", key), ("csrf", &csrf)]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    set_value(&h, "me2b_coop").expect("a console cookie")
}

#[tokio::test]
async fn the_console_cookie_is_a_session_id_not_the_api_key() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (_, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
    let id = console_login(&s, &key).await;
    assert!(
        !id.contains(&key) && !key.contains(&id),
        "the key is not in the cookie"
    );
    assert!(!id.starts_with("me2b_k_"));
    assert_eq!(id.len(), 64);

    let jar = cookie("me2b_coop", &id);
    let (st, _, page) = get(&s, "/coop", &jar).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("Corner Co-op"));

    // The cookie is worthless as an API key, and the key as a cookie.
    let (st, _) = s.req(Method::GET, "/v1/org", Some(&key), None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.req(Method::GET, "/v1/org", Some(&id), None).await;
    assert!(st.is_client_error(), "{st}");
    let (st, h, _) = get(&s, "/coop", &cookie("me2b_coop", &key)).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(h[LOCATION].to_str().unwrap().starts_with("/coop/login"));

    // Logout ends the session on the server: the old cookie no longer opens it.
    let (_, _, page) = get(&s, "/coop", &jar).await;
    let (st, _, _) = post(&s, "/coop/logout", &jar, &[("csrf", &csrf_in(&page))]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, h, _) = get(&s, "/coop", &jar).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(h[LOCATION].to_str().unwrap().starts_with("/coop/login"));
}

#[tokio::test]
async fn a_console_session_ends_when_idle_and_with_its_key() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (org, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
    let jar = cookie("me2b_coop", &console_login(&s, &key).await);
    s.clock.advance_seconds(29 * 60);
    assert_eq!(get(&s, "/coop", &jar).await.0, StatusCode::OK);
    s.clock.advance_seconds(31 * 60);
    let (st, h, _) = get(&s, "/coop/consents", &jar).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "idle for 31 minutes");
    assert_eq!(h[LOCATION], "/coop/login?next=/coop/consents");

    // Deleting the organisation (its keys with it) ends a live session.
    let jar = cookie("me2b_coop", &console_login(&s, &key).await);
    assert_eq!(get(&s, "/coop", &jar).await.0, StatusCode::OK);
    s.node.orgs.delete(org).await.unwrap();
    assert_eq!(get(&s, "/coop", &jar).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn console_forms_need_their_csrf_token_and_views_their_role() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (_, key) = s.org_with("Corner Co-op", vec![Role::Consent]).await;
    let jar = cookie("me2b_coop", &console_login(&s, &key).await);
    // A key without the role: each of these views is refused.
    for path in [
        "/coop/credentials",
        "/coop/till",
        "/coop/insights",
        "/coop/intents",
    ] {
        assert_eq!(get(&s, path, &jar).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(get(&s, "/coop/erasure", &jar).await.0, StatusCode::OK);

    let (_, key) = s
        .org_with("Bike Co-op", vec![Role::Credentials, Role::Offers])
        .await;
    let jar = cookie("me2b_coop", &console_login(&s, &key).await);
    let (_, _, page) = get(&s, "/coop/till", &jar).await;
    let csrf = csrf_in(&page);
    // Without the token, or with another session's: refused before the handler.
    let (st, _, _) = post(&s, "/coop/till", &jar, &[("claim", "tier")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = post(
        &s,
        "/coop/till",
        &cookie("me2b_coop", "another-session"),
        &[("claim", "tier"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, page) = post(
        &s,
        "/coop/till",
        &jar,
        &[("claim", "tier"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("id=\"challenge\""));
}

#[tokio::test]
async fn the_public_challenge_page_reads_a_challenge_and_echoes_nothing_else() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let pre = cookie("me2b_pre", "pre-login-secret");
    let (st, _, page) = get(&s, "/verify?c=%3Cscript%3Ealert(1)%3C/script%3E", &pre).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(!page.contains("alert(1)"));
    let (st, _, _) = get(&s, "/verify", &pre).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A real challenge, as the till links it: who asks, and what.
    let (_, key) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
    let jar = cookie("me2b_coop", &console_login(&s, &key).await);
    let (_, _, page) = get(&s, "/coop/till", &jar).await;
    let csrf = csrf_in(&page);
    let (_, _, page) = post(
        &s,
        "/coop/till",
        &jar,
        &[("claim", "region"), ("csrf", &csrf)],
    )
    .await;
    let at = page.find("href=\"/verify?c=").unwrap() + 6;
    let link = page[at..].split('"').next().unwrap().to_owned();
    let (st, _, public) = get(&s, &link, &pre).await;
    assert_eq!(st, StatusCode::OK);
    assert!(public.contains("Corner Co-op asks you"));
    assert!(public.contains("<li>Region</li>"));
    assert!(!public.contains("Membership tier"));

    // The same challenge rewritten to ask for more, or with a nonce never
    // issued: the node's page does not speak in the co-op's name (the
    // adversary's review made it show both).
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let c = link.split("c=").nth(1).unwrap();
    let mut ch: serde_json::Value = serde_json::from_slice(&b64.decode(c).unwrap()).unwrap();
    let more = {
        let mut m = ch.clone();
        m["required_claims"] = serde_json::json!(["region", "tier", "member_since"]);
        m
    };
    ch["nonce"] = serde_json::json!("ab".repeat(32));
    for forged in [more, ch] {
        let url = format!(
            "/verify?c={}",
            b64.encode(serde_json::to_vec(&forged).unwrap())
        );
        let (st, _, page) = get(&s, &url, &pre).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{forged}");
        assert!(!page.contains("Corner Co-op"));
    }
}

#[tokio::test]
async fn an_organisation_sees_open_intents_without_the_member_and_to_the_hour() {
    // Every batch of intents, however small, goes at the next whole hour
    // (the default waits for ten: tests/intents_batches.rs).
    let Some(s) = start_with(Db::Sqlite, Some("[intents]\nmin_batch = 1\n")).await else {
        return;
    };
    let member = s.member("fay@example.org").await;
    let areas = s.node.credentials.published().await.unwrap().regions;
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/me/intents",
            Some(&member),
            Some(serde_json::json!({
                "topic": "cycling", "text": "A cargo bike",
                "budget": {"min_cents": 80000, "max_cents": 150000, "currency": "EUR"},
                "region": areas[0], "deadline_days": 14, "audience": {"kind": "any"},
                "acknowledge_free_text_warning": true
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // To the next whole hour, where the batch reaches organisations.
    let hour = 3_600_000;
    let now = s.clock.now().unix_millis();
    s.clock
        .advance_seconds((hour - now.rem_euclid(hour)) / 1000);
    let (_, key) = s.org_with("Corner Co-op", vec![Role::Offers]).await;
    let jar = cookie("me2b_coop", &console_login(&s, &key).await);
    let (_, _, page) = get(&s, "/coop/intents", &jar).await;
    let (st, _, page) = post(
        &s,
        "/coop/intents/subscription",
        &jar,
        &[("topics", "cycling"), ("csrf", &csrf_in(&page))],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let (_, _, page) = get(&s, "/coop/intents", &jar).await;
    assert!(page.contains("A cargo bike"));
    assert!(!page.contains("fay@example.org"));
    let member_id = s.node.vault.authenticate(&member).await.unwrap().member;
    assert!(!page.contains(&member_id.to_string()));
    // Every time shown is a whole hour.
    let times: Vec<&str> = page
        .match_indices(" UTC<")
        .map(|(i, _)| &page[i - 5..i])
        .collect();
    assert!(times.len() >= 2, "{times:?}");
    assert!(times.iter().all(|t| t.ends_with(":00")), "{times:?}");
}
