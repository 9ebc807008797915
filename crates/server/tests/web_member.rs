//! The member's pages of issue 16 as the server mounts them: export,
//! erasure with each recipient's status, the one-click and the paper
//! opt-out, the passphrase and its recovery, interests, insights,
//! credentials, and the HTML "not found" page (API paths keep JSON).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, Srv};
use me2b_domain::org::Role;
use me2b_testkit::Db;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_DISPOSITION, LOCATION, SET_COOKIE};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const PASS: &str = "correct horse battery";

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

fn jar(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("me2b_session={token}")).unwrap()
}

async fn get(s: &Srv, path: &str, cookie: Option<&HeaderValue>) -> (StatusCode, HeaderMap, String) {
    let mut r = client().get(format!("{}{path}", s.base));
    if let Some(c) = cookie {
        r = r.header("cookie", c.clone());
    }
    let resp = r.send().await.unwrap();
    let (st, h) = (resp.status(), resp.headers().clone());
    (st, h, resp.text().await.unwrap())
}

async fn post(
    s: &Srv,
    path: &str,
    cookie: &HeaderValue,
    form: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let resp = client()
        .post(format!("{}{path}", s.base))
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

/// A visitor's pre-login cookie and the CSRF token of `path`'s form.
async fn visitor(s: &Srv, path: &str) -> (HeaderValue, String) {
    let (st, h, page) = get(s, path, None).await;
    assert_eq!(st, StatusCode::OK, "{path}");
    let pre = h[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (HeaderValue::from_str(&pre).unwrap(), csrf_in(&page))
}

async fn opted_out(s: &Srv, token: &str) -> bool {
    let (st, v) = s
        .req(Method::GET, "/v1/me/marketing-opt-out", Some(token), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    !v["opted_out_since"].is_null()
}

#[tokio::test]
async fn an_unknown_page_is_html_and_an_unknown_api_path_is_json() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    for path in ["/no-such-page", "/vault/extra/deep/path", "/v1x"] {
        let (st, h, body) = get(&s, path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert!(
            h["content-type"].to_str().unwrap().starts_with("text/html"),
            "{path}"
        );
        assert_eq!(h["content-security-policy"], me2b_web::CSP);
        assert_eq!(h["cache-control"], "no-store");
        assert!(body.contains("<h1>Not found</h1>"), "{body}");
        assert!(!body.contains("no-such-page"), "the path is not echoed");
    }
    for path in ["/v1/no-such-route", "/.well-known/me2b/nothing", "/v1"] {
        let (st, h, body) = get(&s, path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert!(
            h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
    }
}

#[tokio::test]
async fn export_downloads_the_signed_documents() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let t = s
        .member_with(
            "ana@example.org",
            &[json!({"kind": "note", "text": "kept"})],
        )
        .await;
    let c = jar(&t);
    let (st, _, page) = get(&s, "/account", Some(&c)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("href=\"/account/export/json\""));
    let (st, h, body) = get(&s, "/account/export/json", Some(&c)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        h[CONTENT_DISPOSITION],
        "attachment; filename=\"me2b-export.json\""
    );
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(body.contains("kept"));
    assert!(
        doc.get("signature").is_some() || body.contains("signature"),
        "{doc}"
    );
    let (st, h, body) = get(&s, "/account/export/jsonld", Some(&c)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/ld+json"));
    assert!(body.contains("@context"));
    let (st, _, _) = get(&s, "/account/export/xml", Some(&c)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Not logged in: to the login page.
    let (st, h, _) = get(&s, "/account/export/json", None).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[LOCATION], "/login?next=/account/export/json");
}

#[tokio::test]
async fn one_click_opt_out_needs_the_csrf_token_and_opts_back_in() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let t = s.member("ana@example.org").await;
        let c = jar(&t);
        let (_, _, page) = get(&s, "/account", Some(&c)).await;
        let csrf = csrf_in(&page);
        let (st, _, _) = post(&s, "/account/opt-out", &c, &[("csrf", "x")]).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert!(!opted_out(&s, &t).await);
        let (st, h, _) = post(&s, "/account/opt-out", &c, &[("csrf", &csrf)]).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        assert_eq!(h[LOCATION], "/account?done=opted_out");
        assert!(opted_out(&s, &t).await, "{db:?}");
        let (_, _, page) = get(&s, "/account?done=opted_out", Some(&c)).await;
        assert!(page.contains("You are opted out of all direct marketing"));
        let (st, _, _) = post(&s, "/account/opt-in", &c, &[("csrf", &csrf)]).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        assert!(!opted_out(&s, &t).await);
    }
}

#[tokio::test]
async fn the_printable_card_carries_a_new_code_that_the_public_page_takes() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let t = s.member("ana@example.org").await;
    let c = jar(&t);
    let (_, _, page) = get(&s, "/account", Some(&c)).await;
    let (st, _, card) = post(&s, "/account/card", &c, &[("csrf", &csrf_in(&page))]).await;
    assert_eq!(st, StatusCode::OK);
    let at = card.find("id=\"optout-code\">").unwrap() + 17;
    let code = card[at..].split('<').next().unwrap().to_owned();
    assert_eq!(code.len(), 24, "{code}");
    assert!(
        card.contains("href=\"data:application/pdf;base64,JVBERi0"),
        "a PDF"
    );
    assert!(card.contains("src=\"data:image/svg+xml;base64,"));

    // The public page, no login: a mistyped code and an unknown one are
    // refused next to the field, the input kept; the card's code works.
    let (pre, csrf) = visitor(&s, "/optout").await;
    let (st, _, body) = post(
        &s,
        "/optout",
        &pre,
        &[("code", "not a code"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"code-error\""));
    assert!(body.contains("value=\"not a code\""));
    let (st, _, body) = post(&s, "/optout", &pre, &[("code", "")]).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "CSRF on the public form too: {body}"
    );
    assert!(!opted_out(&s, &t).await);
    let typed = code.to_lowercase().replace('-', " ");
    let (st, _, body) = post(&s, "/optout", &pre, &[("code", &typed), ("csrf", &csrf)]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("id=\"optout-done\""));
    assert!(!body.contains("ana@example.org"));
    // The page queued the opt-out; the node's worker does it.
    s.node.consents.run_optout_jobs().await.unwrap();
    assert!(opted_out(&s, &t).await);
}

#[tokio::test]
async fn the_public_opt_out_page_is_throttled_like_the_api() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (pre, csrf) = visitor(&s, "/optout").await;
    let mut last = StatusCode::OK;
    for _ in 0..100 {
        let (st, _, _) = post(
            &s,
            "/optout",
            &pre,
            &[("code", "AAAA-AAAA-AAAA-AAAA-AAAA"), ("csrf", &csrf)],
        )
        .await;
        last = st;
        if st == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

/// An organisation with the consent role whose request `member` granted.
async fn recipient(s: &Srv, name: &str, member: &str) -> String {
    let (_, key) = s.org_with(name, vec![Role::Consent]).await;
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/org/consent-requests",
            Some(&key),
            Some(
                json!({"purposes": ["marketing"], "categories": ["purchases-and-spending-habit"],
                "processing": ["use"], "legal_basis": "consent", "retention_days": 30,
                "notice": "We send you offers.", "notice_version": "1", "recipients": []}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let path = format!(
        "/v1/me/consent-requests/{}/grant",
        v["id"].as_str().unwrap()
    );
    let (st, v) = s
        .req(Method::POST, &path, Some(member), Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    key
}

/// The status cell of `name`'s row in an erasure page.
fn status_of(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("<th scope=\"row\">{name}</th>"))
        .unwrap_or_else(|| panic!("{name} in {page}"));
    let cell = &page[at..];
    let from = cell.find("<td>").unwrap() + 4;
    let to = cell.find("</td>").unwrap();
    cell[from..to].to_owned()
}

#[tokio::test]
async fn erasure_needs_the_passphrase_and_gives_a_receipt_to_follow() {
    let Some(s) = common::start_ttl(Db::Sqlite, None, 90 * 24 * 3600).await else {
        return;
    };
    let t = s.member("ana@example.org").await;
    let a = recipient(&s, "Co-op A", &t).await;
    let _b = recipient(&s, "Co-op B", &t).await;
    let c = jar(&t);
    let (st, _, page) = get(&s, "/account/erase", Some(&c)).await;
    assert_eq!(st, StatusCode::OK);
    let csrf = csrf_in(&page);
    // Not ticked; a wrong passphrase: refused next to the field, nothing erased.
    let (st, _, body) = post(
        &s,
        "/account/erase",
        &c,
        &[("passphrase", PASS), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"confirm-error\""));
    let (st, _, body) = post(
        &s,
        "/account/erase",
        &c,
        &[
            ("confirm", "yes"),
            ("passphrase", "not my passphrase"),
            ("csrf", &csrf),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("This is not your passphrase"));
    let (st, _) = s.req(Method::GET, "/v1/me", Some(&t), None).await;
    assert_eq!(st, StatusCode::OK, "still there");

    let (st, h, body) = post(
        &s,
        "/account/erase",
        &c,
        &[("confirm", "yes"), ("passphrase", PASS), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let at = body.find("id=\"erasure-receipt\">").unwrap() + 21;
    let receipt = body[at..].split('<').next().unwrap().to_owned();
    assert!(receipt.starts_with("me2b_e_"), "{receipt}");
    for name in ["Co-op A", "Co-op B"] {
        assert!(status_of(&body, name).contains("Waiting"), "{name}");
    }
    let cookies: Vec<&str> = h
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("me2b_session=;") && c.contains("Max-Age=0")));
    let pre = cookies
        .iter()
        .find(|c| c.starts_with("me2b_pre="))
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let (st, _) = s.req(Method::GET, "/v1/me", Some(&t), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "the account is gone");

    // Later, with the receipt alone: pending once sent, confirmed once A
    // confirms, overdue past B's deadline; in words, not colour only.
    let pre = HeaderValue::from_str(pre).unwrap();
    let csrf = csrf_in(&body);
    let check = |want_a: &'static str, want_b: &'static str| {
        let (s, pre, csrf, receipt) = (&s, pre.clone(), csrf.clone(), receipt.clone());
        async move {
            let (st, _, page) = post(
                s,
                "/erasure",
                &pre,
                &[("receipt", &receipt), ("csrf", &csrf)],
            )
            .await;
            assert_eq!(st, StatusCode::OK, "{page}");
            assert!(status_of(&page, "Co-op A").contains(want_a), "{page}");
            assert!(status_of(&page, "Co-op B").contains(want_b), "{page}");
        }
    };
    s.clock
        .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
    check("Pending", "Pending").await;
    let (_, v) = s
        .req(Method::GET, "/v1/org/erasure-requests", Some(&a), None)
        .await;
    let id = v["requests"][0]["id"].as_str().unwrap();
    let (st, _) = s
        .req(
            Method::POST,
            &format!("/v1/org/erasure-requests/{id}/confirm"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    check("Confirmed", "Pending").await;
    s.clock
        .advance_seconds(s.node.vault.erasure_schedule().confirm_within_seconds + 1);
    check("Confirmed", "Overdue").await;

    let (pre2, csrf2) = visitor(&s, "/erasure").await;
    let (st, _, body) = post(
        &s,
        "/erasure",
        &pre2,
        &[("receipt", "me2b_e_nope"), ("csrf", &csrf2)],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"receipt-error\""));
    assert!(body.contains("value=\"me2b_e_nope\""), "the input kept");
}

#[tokio::test]
async fn passphrase_change_and_recovery_with_the_recovery_code() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let signed = s.sign_up("ana@example.org", PASS).await;
    let t = signed["token"].as_str().unwrap().to_owned();
    let code = signed["recovery_code"].as_str().unwrap().to_owned();
    let c = jar(&t);
    let (_, _, page) = get(&s, "/account/passphrase", Some(&c)).await;
    let csrf = csrf_in(&page);
    let new = "a brand new passphrase";
    for (form, field) in [
        (
            vec![("current", "wrong passphrase"), ("new", new), ("new2", new)],
            "current",
        ),
        (
            vec![("current", PASS), ("new", new), ("new2", "something else")],
            "new2",
        ),
        (
            vec![("current", PASS), ("new", "short"), ("new2", "short")],
            "new",
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let (st, _, body) = post(&s, "/account/passphrase", &c, &form).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(body.contains(&format!("id=\"{field}-error\"")), "{field}");
        assert!(
            !body.contains(new) && !body.contains("wrong passphrase"),
            "never sent back"
        );
    }
    let (st, h, _) = post(
        &s,
        "/account/passphrase",
        &c,
        &[
            ("current", PASS),
            ("new", new),
            ("new2", new),
            ("csrf", &csrf),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[LOCATION], "/account?done=passphrase");
    let login = |p: &'static str| {
        let s = &s;
        async move {
            s.req(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({"email": "ana@example.org", "passphrase": p})),
            )
            .await
            .0
        }
    };
    assert_eq!(login(new).await, StatusCode::CREATED);
    assert_eq!(login(PASS).await, StatusCode::UNAUTHORIZED);

    // Forgotten: the recovery code sets another, and a new code is shown once.
    let (pre, csrf) = visitor(&s, "/recover").await;
    let third = "the third passphrase";
    let (st, _, body) = post(
        &s,
        "/recover",
        &pre,
        &[
            ("email", "ana@example.org"),
            ("code", "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"),
            ("new", third),
            ("new2", third),
            ("csrf", &csrf),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("value=\"ana@example.org\""),
        "the address kept"
    );
    let (st, h, body) = post(
        &s,
        "/recover",
        &pre,
        &[
            ("email", "ana@example.org"),
            ("code", &code.to_lowercase()),
            ("new", third),
            ("new2", third),
            ("csrf", &csrf),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("id=\"recovery-code\""));
    assert!(!body.contains(&code), "a new code");
    assert!(h[SET_COOKIE]
        .to_str()
        .unwrap()
        .starts_with("me2b_session=me2b_s_"));
    assert_eq!(login(third).await, StatusCode::CREATED);
}

fn receipt(month: &str, items: &[(&str, u32, i64)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(c, q, p)| json!({"name": "Item", "category": c, "quantity": q, "unit_price": {"minor": p, "currency": "EUR"}}))
        .collect();
    json!({"kind": "receipt", "merchant": "Corner Co-op", "items": items,
           "total": {"minor": 1, "currency": "EUR"}, "purchased_at": format!("2026-{month}-05T10:00:00Z")})
}

#[tokio::test]
async fn interests_suggested_from_receipts_are_accepted_or_rejected() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let t = s
        .member_with(
            "ana@example.org",
            &[
                receipt("10", &[("cycling", 1, 100)]),
                receipt("11", &[("cycling", 1, 100), ("books", 1, 100)]),
            ],
        )
        .await;
    let c = jar(&t);
    let (st, _, page) = get(&s, "/interests", Some(&c)).await;
    assert_eq!(st, StatusCode::OK);
    let (_, sugg) = s
        .req(Method::GET, "/v1/me/interest-suggestions", Some(&t), None)
        .await;
    let topics: Vec<String> = sugg
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["topic"].as_str().unwrap().to_owned())
        .collect();
    assert!(!topics.is_empty(), "{sugg}");
    for t in &topics {
        assert!(
            page.contains(&format!("action=\"/interests/{t}/accept\"")),
            "{t}"
        );
    }
    let csrf = csrf_in(&page);
    let (st, h, _) = post(
        &s,
        &format!("/interests/{}/accept", topics[0]),
        &c,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[LOCATION], "/interests?done=accepted");
    let (_, after) = s
        .req(Method::GET, "/v1/me/interest-suggestions", Some(&t), None)
        .await;
    assert!(!after.to_string().contains(&format!("\"{}\"", topics[0])));
    let (_, _, page) = get(&s, "/interests", Some(&c)).await;
    assert!(page.contains("Suggested from your receipts, accepted by you"));
    // Not a current suggestion (already accepted; never one): not found.
    for t in [topics[0].as_str(), "not-a-topic"] {
        let (st, _, _) = post(
            &s,
            &format!("/interests/{t}/reject"),
            &c,
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{t}");
    }
    // A declared interest; a topic not in the list is refused at the field.
    let (st, _, body) = post(
        &s,
        "/interests",
        &c,
        &[("topic", "no-such-topic"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"topic-error\""));
    let (st, _, _) = post(
        &s,
        "/interests",
        &c,
        &[("topic", "cooking-and-recipes"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, _, page) = get(&s, "/interests", Some(&c)).await;
    assert!(page.contains("You added it"));
}

#[tokio::test]
async fn insights_are_summed_from_the_members_own_receipts_as_svg_and_table() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let t = s
        .member_with(
            "ana@example.org",
            &[
                receipt("10", &[("food.organic", 2, 250), ("household", 1, 1000)]),
                receipt("11", &[("food.bakery", 3, 100)]),
            ],
        )
        .await;
    let other = s
        .member_with("bo@example.org", &[receipt("11", &[("garden", 1, 99_999)])])
        .await;
    let (st, h, page) = get(&s, "/insights", Some(&jar(&t))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-security-policy"], me2b_web::CSP);
    assert!(page.contains("role=\"img\""));
    assert!(page.contains("<title id=\"cat-0-title\">Spending by category, in EUR</title>"));
    assert!(
        page.contains("<th scope=\"row\">Food</th><td>8.00 EUR</td>"),
        "{page}"
    );
    assert!(page.contains("<th scope=\"row\">Household</th><td>10.00 EUR</td>"));
    assert!(page.contains("<th scope=\"row\">2026-10</th><td>15.00 EUR</td>"));
    assert!(page.contains("<th scope=\"row\">2026-11</th><td>3.00 EUR</td>"));
    assert!(page.contains("18.00 EUR on 2 receipt(s)"));
    assert!(
        !page.contains("Garden") && !page.contains("999.99"),
        "only this member's"
    );
    assert!(!page.contains("style="));
    let (_, _, page) = get(&s, "/insights", Some(&jar(&other))).await;
    assert!(page.contains("999.99 EUR"));
}

#[tokio::test]
async fn a_credential_is_added_with_a_code_and_presented_to_a_typed_challenge() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (_, coop_key) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
    let (_, shop_key) = s.org_with("Fair Market", vec![Role::Credentials]).await;
    let t = s.member("ana@example.org").await;
    let c = jar(&t);
    let (st, issued) = s
        .req(
            Method::POST,
            "/v1/org/credentials/codes",
            Some(&coop_key),
            Some(
                json!({"federation": "Fair Economy Federation", "tier": "founding",
                "region": "NL-NH", "member_since": 2020}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{issued}");
    let code = issued["code"].as_str().unwrap();
    let (_, _, page) = get(&s, "/credentials", Some(&c)).await;
    assert!(page.contains("id=\"no-credentials\""));
    let csrf = csrf_in(&page);
    let (st, _, body) = post(
        &s,
        "/credentials",
        &c,
        &[("code", "WRONG-CODE"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"code-error\""));
    let (st, h, _) = post(&s, "/credentials", &c, &[("code", code), ("csrf", &csrf)]).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{h:?}");
    let (_, held) = s
        .req(Method::GET, "/v1/me/credentials", Some(&t), None)
        .await;
    let id = held[0]["id"].as_str().unwrap().to_owned();
    let (_, _, page) = get(&s, "/credentials", Some(&c)).await;
    assert!(page.contains("From Corner Co-op"));
    assert!(page.contains("founding"));

    // A challenge that is not one: refused next to its field, kept.
    let path = format!("/credentials/{id}/present");
    let (st, _, body) = post(
        &s,
        &path,
        &c,
        &[("challenge", "{\"nonce\": 1}"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"challenge-error\""));
    assert!(
        body.contains("{&#34;nonce&#34;: 1}") || body.contains("{&quot;nonce&quot;: 1}"),
        "{body}"
    );

    let (st, ch) = s
        .req(
            Method::POST,
            "/v1/org/credentials/challenges",
            Some(&shop_key),
            Some(json!({"federation": "Fair Economy Federation"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, body) = post(
        &s,
        &path,
        &c,
        &[("challenge", &ch.to_string()), ("csrf", &csrf)],
    )
    .await;
    // The only credential of its co-op: the member is warned first (issue
    // 12), and confirms.
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("id=\"rare-warning\""), "{body}");
    assert!(
        body.contains("No other credential of Corner Co-op"),
        "{body}"
    );
    let (st, _, body) = post(
        &s,
        &path,
        &c,
        &[
            ("challenge", &ch.to_string()),
            ("accept", "yes"),
            ("csrf", &csrf_in(&body)),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("Give this answer to Fair Market"));
    let at = body.find("readonly spellcheck=\"false\">").unwrap() + 28;
    let shown = body[at..].split("</textarea>").next().unwrap();
    let presentation = shown
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let (st, v) = s
        .raw(
            Method::POST,
            "/v1/org/credentials/verify",
            Some(&shop_key),
            Some("application/json"),
            presentation.into_bytes(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true);
    // The same challenge again, now used: an error at the field, not a failure.
    let (_, _, page) = get(&s, "/credentials", Some(&c)).await;
    let (st, _, page) = post(
        &s,
        &path,
        &c,
        &[("challenge", &ch.to_string()), ("csrf", &csrf_in(&page))],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("not open here"));
    // Another member's credential id: not found.
    let bo = s.member("bo@example.org").await;
    let bc = jar(&bo);
    let (_, _, page) = get(&s, "/credentials", Some(&bc)).await;
    let (st, _, _) = post(
        &s,
        &path,
        &bc,
        &[("challenge", &ch.to_string()), ("csrf", &csrf_in(&page))],
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// The row of `name` in the vault page's corrections table.
fn correction_row(page: &str, name: &str) -> String {
    let section = &page[page
        .find("Who was told of your corrections")
        .unwrap_or_else(|| panic!("no corrections section in {page}"))..];
    let at = section
        .find(&format!("<th scope=\"row\">{name}</th>"))
        .unwrap_or_else(|| panic!("{name} in {section}"));
    let row = &section[at..];
    row[..row.find("</tr>").unwrap()].to_owned()
}

#[tokio::test]
async fn a_correction_on_the_web_shows_each_recipients_status() {
    for db in Db::ALL {
        let Some(s) = common::start_ttl(db, None, 90 * 24 * 3600).await else {
            continue;
        };
        let ana = s.member("ana@example.org").await;
        let (_, v) = s
            .req(
                Method::POST,
                "/v1/vault/records",
                Some(&ana),
                Some(json!({"kind": "profile_attribute", "name": "region", "value": "Utrecht"})),
            )
            .await;
        let id = v["id"].as_str().unwrap().to_owned();
        let (_, key) = s.org_with("Co-op Region", vec![Role::Consent]).await;
        let (st, v) = s
            .req(
                Method::POST,
                "/v1/org/consent-requests",
                Some(&key),
                Some(
                    json!({"purposes": ["service-personalisation"], "categories": ["region"],
                    "processing": ["use"], "legal_basis": "consent", "retention_days": 30,
                    "notice": "We tailor the shop.", "notice_version": "1", "recipients": []}),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let (st, v) = s
            .req(
                Method::POST,
                &format!(
                    "/v1/me/consent-requests/{}/grant",
                    v["id"].as_str().unwrap()
                ),
                Some(&ana),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        // A notice only concerns a consent released to its organisation.
        s.release_and_open_window().await;
        let j = jar(&ana);
        let (_, _, page) = get(&s, "/vault", Some(&j)).await;
        assert!(!page.contains("Who was told of your corrections"));
        let (_, _, form) = get(&s, &format!("/vault/{id}/edit"), Some(&j)).await;
        let (st, h, body) = post(
            &s,
            &format!("/vault/{id}/edit"),
            &j,
            &[
                ("csrf", &csrf_in(&form)),
                ("revision", "1"),
                ("kind", "profile_attribute"),
                ("name", "region"),
                ("value", "Amsterdam"),
            ],
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(h[LOCATION], "/vault?done=saved");
        let (_, _, page) = get(&s, "/vault", Some(&j)).await;
        let row = correction_row(&page, "Co-op Region");
        assert!(row.contains("region") && row.contains("Waiting"), "{row}");

        s.clock
            .advance_seconds(s.node.vault.erasure_schedule().latest_release_seconds());
        let (_, v) = s
            .req(
                Method::GET,
                "/v1/org/rectification-notices",
                Some(&key),
                None,
            )
            .await;
        let n = v["notices"][0]["id"].as_str().unwrap().to_owned();
        let (_, _, page) = get(&s, "/vault", Some(&j)).await;
        assert!(correction_row(&page, "Co-op Region").contains("Pending"));
        let (st, _) = s
            .req(
                Method::POST,
                &format!("/v1/org/rectification-notices/{n}/confirm"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (_, _, page) = get(&s, "/vault", Some(&j)).await;
        assert!(correction_row(&page, "Co-op Region").contains("Confirmed"));
    }
}
