//! The web pages (me2b-web) as mounted by the server: security headers, the
//! CSRF guard on every POST, session cookies, an expired session sent to the
//! login page and back, forms that keep what was typed without running it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, start_ttl, Srv};
use me2b_testkit::Db;
use reqwest::header::{HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use reqwest::{Client, Method, StatusCode};

const PASS: &str = "correct horse battery";

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

/// GET as a browser holding `cookie`: status, headers, body.
async fn get(s: &Srv, path: &str, cookie: Option<HeaderValue>) -> (StatusCode, HeaderMap, String) {
    let mut r = client().get(format!("{}{path}", s.base));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let resp = r.send().await.unwrap();
    let (st, h) = (resp.status(), resp.headers().clone());
    (st, h, resp.text().await.unwrap())
}

/// A form POST with extra headers.
async fn post(
    s: &Srv,
    path: &str,
    cookie: &HeaderValue,
    form: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut r = client()
        .request(Method::POST, format!("{}{path}", s.base))
        .header("cookie", cookie.clone())
        .form(form);
    // A browser names the page's origin on every form POST.
    if !extra.iter().any(|(k, _)| *k == "origin") {
        r = r.header("origin", s.base.as_str());
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let (st, h) = (resp.status(), resp.headers().clone());
    (st, h, resp.text().await.unwrap())
}

async fn record_count(s: &Srv, token: &str) -> usize {
    let (_, v) = s
        .req(Method::GET, "/v1/vault/records", Some(token), None)
        .await;
    v["records"].as_array().unwrap().len()
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    for path in ["/", "/login", "/signup", "/privacy"] {
        let (st, h, body) = get(&s, path, None).await;
        assert_eq!(st, StatusCode::OK, "{path}");
        assert_eq!(h["content-security-policy"], me2b_web::CSP, "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        // Nothing from another host: every script and style is the node's own.
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
        assert!(
            !body.contains("style=") && !body.contains("<style"),
            "{path}"
        );
    }
    let (st, h, _) = get(&s, "/assets/htmx.min.js", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(me2b_web::CSP.contains("script-src 'self'") && !me2b_web::CSP.contains("unsafe"));
}

#[tokio::test]
async fn every_post_needs_its_sessions_csrf_token_and_this_origin() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let ana = s.member("ana@example.org").await;
        let bo = s.member("bo@example.org").await;
        let jar = cookie("me2b_session", &ana);
        let (st, _, page) = get(&s, "/vault", Some(jar.clone())).await;
        assert_eq!(st, StatusCode::OK);
        let token = csrf_in(&page);
        let (_, _, bo_page) = get(&s, "/vault", Some(cookie("me2b_session", &bo))).await;
        let bo_token = csrf_in(&bo_page);
        assert_ne!(token, bo_token);

        let note = |csrf: &'static str| [("kind", "note"), ("text", "hello"), ("csrf", csrf)];
        let leaked: &'static str = Box::leak(token.clone().into_boxed_str());
        let other: &'static str = Box::leak(bo_token.into_boxed_str());
        // No token, another session's token, a wrong one: refused, nothing written.
        for form in [
            &note("")[..2],
            &note("")[..],
            &note(other)[..],
            &note("x")[..],
        ] {
            let (st, _, body) = post(&s, "/vault", &jar, form, &[]).await;
            assert_eq!(st, StatusCode::FORBIDDEN);
            assert!(body.contains("Form refused"));
        }
        // The right token from another site, by either header.
        for extra in [
            [("origin", "http://evil.example")],
            [("sec-fetch-site", "cross-site")],
        ] {
            let (st, _, _) = post(&s, "/vault", &jar, &note(leaked), &extra).await;
            assert_eq!(st, StatusCode::FORBIDDEN);
        }
        assert_eq!(record_count(&s, &ana).await, 0);
        // Log-out is a form too.
        let (st, _, _) = post(&s, "/logout", &jar, &[("csrf", other)], &[]).await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        let host = s.base.trim_start_matches("http://").to_owned();
        let origin = format!("http://{host}");
        let (st, h, _) = post(
            &s,
            "/vault",
            &jar,
            &note(leaked),
            &[("origin", &origin), ("sec-fetch-site", "same-origin")],
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        assert_eq!(h[LOCATION], "/vault?done=added");
        assert_eq!(record_count(&s, &ana).await, 1);
    }
}

/// Login CSRF with a planted cookie: an attacker who can set cookies for
/// this host (a sibling subdomain, plain http on the network) plants a
/// pre-login secret of their choosing, so they know the form's token, and
/// makes the victim's browser post their own credentials to `/login`. The
/// token alone would let it through; the browser's origin headers must not
/// be missing.
#[tokio::test]
async fn a_planted_cookie_with_its_token_is_refused_without_the_browsers_origin() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    s.member("mallory@example.org").await;
    let planted = cookie("me2b_pre", "chosen-by-the-attacker");
    let (_, _, page) = get(&s, "/login", Some(planted.clone())).await;
    let token = csrf_in(&page);
    let form = [
        ("email", "mallory@example.org"),
        ("passphrase", PASS),
        ("csrf", token.as_str()),
    ];
    // Neither Origin nor Sec-Fetch-Site: refused, no session.
    let resp = client()
        .request(Method::POST, format!("{}/login", s.base))
        .header("cookie", planted.clone())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get(SET_COOKIE).is_none());
    // From another site: refused.
    let (st, h, _) = post(
        &s,
        "/login",
        &planted,
        &form,
        &[("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(h.get(SET_COOKIE).is_none());
    // The same form from the node's own page still logs in.
    let (st, h, _) = post(&s, "/login", &planted, &form, &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(h[SET_COOKIE].to_str().unwrap().starts_with("me2b_session="));
}

#[tokio::test]
async fn log_in_sets_a_strict_http_only_cookie_and_returns_to_next() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    s.member("ana@example.org").await;
    // A visitor gets a pre-login cookie that their forms' token is bound to.
    let (_, h, page) = get(&s, "/login?next=/consents", None).await;
    let pre = h[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(pre.contains("HttpOnly") && pre.contains("SameSite=Strict"));
    assert!(!pre.contains("Secure"), "plain HTTP without a TLS proxy");
    let pre_value = pre.split(';').next().unwrap().split_once('=').unwrap().1;
    let jar = cookie("me2b_pre", pre_value);
    let csrf = csrf_in(&page);

    // A wrong passphrase: the form again, the address kept (escaped), no passphrase.
    let typed = "ana@example.org";
    let (st, _, body) = post(
        &s,
        "/login",
        &jar,
        &[
            ("email", typed),
            ("passphrase", "not the passphrase"),
            ("next", "/consents"),
            ("csrf", &csrf),
        ],
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("is wrong"));
    assert!(body.contains("value=\"ana@example.org\""));
    assert!(!body.contains("not the passphrase"));

    // Markup typed into a field comes back as text.
    let (st, _, body) = post(
        &s,
        "/login",
        &jar,
        &[
            ("email", "<script>alert(1)</script>"),
            ("passphrase", PASS),
            ("csrf", &csrf),
        ],
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!body.contains("<script>alert"));
    assert!(body.contains("&#60;script&#62;") || body.contains("&lt;script&gt;"));

    // Another site as `next` is ignored.
    let (st, h, _) = post(
        &s,
        "/login",
        &jar,
        &[
            ("email", typed),
            ("passphrase", PASS),
            ("next", "//evil.example/"),
            ("csrf", &csrf),
        ],
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[LOCATION], "/vault");
    let set = h[SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("me2b_session=me2b_s_"));
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"));
}

#[tokio::test]
async fn an_expired_session_goes_to_login_and_then_back() {
    let Some(s) = start_ttl(Db::Sqlite, None, 60).await else {
        return;
    };
    let token = s.member("ana@example.org").await;
    let jar = cookie("me2b_session", &token);
    let (st, _, _) = get(&s, "/consents", Some(jar.clone())).await;
    assert_eq!(st, StatusCode::OK);
    s.clock.advance_seconds(61);
    let (st, h, _) = get(&s, "/consents", Some(jar.clone())).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[LOCATION], "/login?next=/consents");
    assert!(h[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    // No cookie at all: the same.
    let (st, h, _) = get(&s, "/vault/x/edit", None).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[LOCATION], "/login?next=/vault/x/edit");

    // Logging in again brings the member back.
    let (_, h, page) = get(&s, "/login?next=/consents", None).await;
    let pre = h[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let jar = HeaderValue::from_str(&pre).unwrap();
    let (st, h, _) = post(
        &s,
        "/login",
        &jar,
        &[
            ("email", "ana@example.org"),
            ("passphrase", PASS),
            ("next", "/consents"),
            ("csrf", &csrf_in(&page)),
        ],
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[LOCATION], "/consents");
}

#[tokio::test]
async fn another_members_record_is_not_found() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let ana = s.member("ana@example.org").await;
    let bo = s.member("bo@example.org").await;
    let (_, v) = s
        .req(
            Method::POST,
            "/v1/vault/records",
            Some(&ana),
            Some(serde_json::json!({"kind": "note", "text": "ana's"})),
        )
        .await;
    let id = v["id"].as_str().unwrap();
    let jar = cookie("me2b_session", &bo);
    for path in [format!("/vault/{id}/edit"), format!("/vault/{id}/delete")] {
        let (st, _, body) = get(&s, &path, Some(jar.clone())).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("ana's"));
    }
    let (_, _, page) = get(&s, "/vault", Some(jar.clone())).await;
    let (st, _, _) = post(
        &s,
        &format!("/vault/{id}/delete"),
        &jar,
        &[("csrf", &csrf_in(&page))],
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(record_count(&s, &ana).await, 1);
}

/// The sign-up page shares the API's per-address sign-up limit (adv8's fake
/// members): past the default burst of 5, the form again with `429` and a
/// word to wait, and no message sent.
#[tokio::test]
async fn the_sign_up_page_is_throttled_per_address() {
    let Some(s) =
        common::start_custom(Db::Sqlite, me2b_server::ServerOptions::default(), |_| {}).await
    else {
        return;
    };
    let (_, h, page) = get(&s, "/signup", None).await;
    let pre = h[SET_COOKIE].to_str().unwrap().to_owned();
    let pre_value = pre.split(';').next().unwrap().split_once('=').unwrap().1;
    let jar = cookie("me2b_pre", pre_value);
    let csrf = csrf_in(&page);
    let mut statuses = Vec::new();
    for i in 0..6 {
        let email = format!("web{i}@example.org");
        let (st, _, body) = post(
            &s,
            "/signup",
            &jar,
            &[
                ("email", &email),
                ("passphrase", PASS),
                ("passphrase2", PASS),
                ("csrf", &csrf),
            ],
            &[],
        )
        .await;
        statuses.push(st);
        if st == StatusCode::TOO_MANY_REQUESTS {
            assert!(body.contains("Too many sign-ups"), "{body}");
            assert!(s.outbox_to(&email).is_empty(), "a message went out");
        }
    }
    assert_eq!(
        statuses,
        [
            [StatusCode::OK; 5].as_slice(),
            &[StatusCode::TOO_MANY_REQUESTS]
        ]
        .concat()
    );
}
