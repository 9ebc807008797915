//! Claims as a tag (issue 12, adv5 target 5): an issuer gives one member a
//! combination of tier, region, start year and interests no other member
//! has, and a colluding verifier asks for every claim. Before this test's
//! change the member presented without a word and the verifier recognised
//! them; now the member is told how many credentials of the issuer share
//! what they would disclose, and a set shared by fewer than the federation's
//! threshold (10 by default) is refused unless they accept. The counts are
//! aggregates a thief with the file cannot join to a member. On SQLite and
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, start_ttl, start_with, Srv};
use me2b_domain::org::Role;
use me2b_testkit::Db;
use reqwest::header::HeaderValue;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const FED: &str = "Fair Economy Federation";
/// Every claim a verifier can ask a member's credential for.
const ALL_CLAIMS: [&str; 5] = ["tier", "region", "member_since", "interest_1", "interest_2"];

fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn common_claims() -> Value {
    json!({"federation": FED, "tier": "member", "region": "NL-NH", "member_since": 2020})
}

fn tag_claims() -> Value {
    json!({"federation": FED, "tier": "founding", "region": "NL-ZE", "member_since": 2005,
        "interests": ["games", "pets-and-animals"]})
}

/// How long an account must have existed for its redemptions to count
/// (`[credentials] count_after_days`, default 28 days), and a day more.
const ESTABLISHED: i64 = 29 * 86_400;

/// Members who sign up now; the clock then moves on until their accounts
/// are old enough for their redemptions to count. Their session tokens.
async fn established(s: &Srv, emails: &[String]) -> Vec<String> {
    let mut tokens = Vec::new();
    for email in emails {
        tokens.push(s.member(email).await);
    }
    s.clock.advance_seconds(ESTABLISHED);
    tokens
}

fn emails(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@example.org")).collect()
}

/// The member of `token` redeems a code of the co-op `key` with `claims`:
/// the credential's vault record id.
async fn redeemed(s: &Srv, key: &str, token: &str, claims: &Value) -> String {
    let (st, code) = s
        .req(
            Method::POST,
            "/v1/org/credentials/codes",
            Some(key),
            Some(claims.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{code}");
    let (st, held) = s
        .req(
            Method::POST,
            "/v1/me/credentials",
            Some(token),
            Some(json!({"code": code["code"]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{held}");
    held["id"].as_str().unwrap().to_owned()
}

/// A new member of the co-op `key` holding a credential with `claims`: the
/// member's token and the credential's vault record id.
async fn holder(s: &Srv, key: &str, email: &str, claims: &Value) -> (String, String) {
    let token = s.member(email).await;
    let id = redeemed(s, key, &token, claims).await;
    (token, id)
}

async fn challenge(s: &Srv, key: &str, claims: &[&str]) -> Value {
    let (st, c) = s
        .req(
            Method::POST,
            "/v1/org/credentials/challenges",
            Some(key),
            Some(json!({"federation": FED, "claims": claims})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    c
}

async fn present(s: &Srv, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        &format!("/v1/me/credentials/{id}/present"),
        Some(token),
        Some(body),
    )
    .await
}

async fn preview(s: &Srv, token: &str, id: &str, body: Value) -> Value {
    let (st, v) = s
        .req(
            Method::POST,
            &format!("/v1/me/credentials/{id}/preview"),
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn verify(s: &Srv, key: &str, presentation: &Value) -> (StatusCode, Value) {
    s.req(
        Method::POST,
        "/v1/org/credentials/verify",
        Some(key),
        Some(presentation.clone()),
    )
    .await
}

/// Every value of every TEXT or BLOB column of the SQLite file, by table.
async fn sqlite_values(s: &Srv) -> Vec<(String, Vec<u8>)> {
    let pool = sqlx::SqlitePool::connect(&s.t.url).await.unwrap();
    let cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' \
         AND p.type IN ('BLOB', 'TEXT')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for (t, c) in cols {
        let vs: Vec<Option<Vec<u8>>> =
            sqlx::query_scalar(&format!("SELECT CAST(\"{c}\" AS BLOB) FROM \"{t}\""))
                .fetch_all(&pool)
                .await
                .unwrap();
        out.extend(vs.into_iter().flatten().map(|v| (t.clone(), v)));
    }
    pool.close().await;
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The attack of adv5's target 5, written to win: ten members share one
/// combination, one member gets a combination of their own, and the
/// verifier asks for every claim. The tagged member is refused unless they
/// accept; told how many share it and what to leave out; a common member is
/// not bothered; the issuer's unused codes count for nothing.
#[tokio::test]
async fn a_member_is_warned_before_disclosing_a_combination_only_they_hold() {
    for db in Db::ALL {
        let Some(s) = start(db).await else { continue };
        let (_, coop) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
        let (_, shop) = s.org_with("Fair Market", vec![Role::Credentials]).await;
        // Members for a while: their redemptions count.
        let mut members = established(&s, &emails("m", 11)).await;
        let tagged = members.remove(0);
        let tagged_id = redeemed(&s, &coop, &tagged, &tag_claims()).await;
        let mut crowd = Vec::new();
        for token in members {
            let id = redeemed(&s, &coop, &token, &common_claims()).await;
            crowd.push((token, id));
        }
        // The issuer's unused codes with the tag's values: never redeemed by
        // an enrolled member, so they make the tag look no more common.
        for _ in 0..12 {
            let (st, _) = s
                .req(
                    Method::POST,
                    "/v1/org/credentials/codes",
                    Some(&coop),
                    Some(tag_claims()),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED);
        }

        // The attack: the verifier asks for every claim and the member
        // answers as before. It must not go through unseen.
        let c = challenge(&s, &shop, &ALL_CLAIMS).await;
        let (st, v) = present(&s, &tagged, &tagged_id, json!({"challenge": c})).await;
        assert_eq!(
            st,
            StatusCode::CONFLICT,
            "{db:?}: a combination only this member holds was presented without a warning: {v}"
        );
        assert_eq!(err(&v), "rare_disclosure", "{db:?}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        for echoed in ["NL-ZE", "founding", "games", "2005"] {
            assert!(!message.contains(echoed), "{db:?}: {message}");
        }

        // Told before presenting: how many share it, and what to leave out.
        let p = preview(&s, &tagged, &tagged_id, json!({"challenge": c})).await;
        assert_eq!(p["rarity"]["shared_by"], 1, "{db:?}: {p}");
        assert_eq!(p["rarity"]["threshold"], 10, "{db:?}: {p}");
        assert_eq!(p["rarity"]["rare"], true, "{db:?}: {p}");
        assert_eq!(p["discloses"]["region"], "NL-ZE", "{db:?}: {p}");
        assert_eq!(p["verifier"], "Fair Market", "{db:?}: {p}");
        let leave: BTreeSet<&str> = p["withhold_to_be_common"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(leave, ALL_CLAIMS.into_iter().collect(), "{db:?}: {p}");

        // Disclosing less: common (11 credentials this epoch), presented
        // without accepting; the verifier, which asked for more, refuses it.
        let (st, less) = present(
            &s,
            &tagged,
            &tagged_id,
            json!({"challenge": c, "withhold": ALL_CLAIMS}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{db:?}: {less}");
        assert_eq!(less["rarity"]["shared_by"], 11, "{db:?}: {less}");
        assert!(less["discloses"].get("region").is_none(), "{db:?}: {less}");
        let (st, v) = verify(&s, &shop, &less["presentation"]).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{db:?}: {v}");
        assert_eq!(err(&v), "missing_claim", "{db:?}: {v}");

        // The member accepts: it goes through, and the verifier learns what
        // the member chose to show.
        let c = challenge(&s, &shop, &ALL_CLAIMS).await;
        let (st, shown) = present(
            &s,
            &tagged,
            &tagged_id,
            json!({"challenge": c, "accept_rare": true}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{db:?}: {shown}");
        assert_eq!(shown["rarity"]["shared_by"], 1);
        let (st, v) = verify(&s, &shop, &shown["presentation"]).await;
        assert_eq!(st, StatusCode::OK, "{db:?}: {v}");

        // A member of the crowd answers the same question without a word:
        // ten credentials share their values.
        let (token, id) = &crowd[0];
        let c = challenge(&s, &shop, &ALL_CLAIMS).await;
        let p = preview(&s, token, id, json!({"challenge": c})).await;
        assert_eq!(p["rarity"]["shared_by"], 10, "{db:?}: {p}");
        assert_eq!(p["rarity"]["rare"], false, "{db:?}: {p}");
        assert!(p["withhold_to_be_common"].is_null(), "{db:?}: {p}");
        let (st, v) = present(&s, token, id, json!({"challenge": c})).await;
        assert_eq!(st, StatusCode::OK, "{db:?}: {v}");
        let (st, _) = verify(&s, &shop, &v["presentation"]).await;
        assert_eq!(st, StatusCode::OK);

        // A revocation check discloses the status index, which the issuer
        // knows per member: always shared by one.
        let (st, c) = s
            .req(
                Method::POST,
                "/v1/org/credentials/challenges",
                Some(&shop),
                Some(json!({"federation": FED, "status_check": true})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        let p = preview(&s, token, id, json!({"challenge": c})).await;
        assert_eq!(p["rarity"]["status_index"], true, "{db:?}: {p}");
        assert_eq!(p["rarity"]["shared_by"], 1, "{db:?}: {p}");
        let (st, v) = present(&s, token, id, json!({"challenge": c})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{db:?}: {v}");

        // Only what a member may choose can be left out.
        let c = challenge(&s, &shop, &["tier"]).await;
        let (st, v) = present(
            &s,
            token,
            id,
            json!({"challenge": c, "withhold": ["validity_epoch"]}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{db:?}: {v}");
        assert_eq!(err(&v), "invalid_parameter", "{db:?}: {v}");
    }
}

/// The counts at rest, as a thief with the SQLite file reads them: a keyed
/// hash, an epoch and a number per row, nothing that names a member, a
/// claim value or a time, and no rowid to give the order of redemptions.
#[tokio::test]
async fn the_counts_keep_no_member_and_no_claim_value() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (_, coop) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
    let members = established(
        &s,
        &[
            "tagged@example.org".to_owned(),
            "crowd@example.org".to_owned(),
        ],
    )
    .await;
    redeemed(&s, &coop, &members[0], &tag_claims()).await;
    redeemed(&s, &coop, &members[1], &common_claims()).await;

    let pool = sqlx::SqlitePool::connect(&s.t.url).await.unwrap();
    let cols: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('credential_combinations')")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        cols.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        ["combination", "epoch", "shared_by"].into_iter().collect()
    );
    // WITHOUT ROWID: the file keeps the rows in hash order.
    assert!(
        sqlx::query("SELECT rowid FROM credential_combinations")
            .fetch_all(&pool)
            .await
            .is_err(),
        "credential_combinations has a rowid"
    );
    let counts: Vec<i64> = sqlx::query_scalar("SELECT shared_by FROM credential_combinations")
        .fetch_all(&pool)
        .await
        .unwrap();
    // Two credentials, 32 subsets each, sharing only the empty one.
    assert_eq!(counts.len(), 63, "{counts:?}");
    assert_eq!(counts.iter().filter(|n| **n == 2).count(), 1, "{counts:?}");
    pool.close().await;

    for (table, value) in sqlite_values(&s).await {
        if table != "credential_combinations" {
            continue;
        }
        for needle in ["NL-ZE", "founding", "pets-and-animals", "2005"] {
            assert!(
                !contains(&value, needle.as_bytes()),
                "{table} holds a claim value"
            );
        }
    }
}

/// `[credentials] min_shared` sets the threshold; 1 leaves the count shown
/// and refuses nothing.
#[tokio::test]
async fn the_threshold_comes_from_governance() {
    let Some(s) = start_with(Db::Sqlite, Some("[credentials]\nmin_shared = 1\n")).await else {
        return;
    };
    let (_, coop) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
    let (_, shop) = s.org_with("Fair Market", vec![Role::Credentials]).await;
    let (token, id) = holder(&s, &coop, "tagged@example.org", &tag_claims()).await;
    let c = challenge(&s, &shop, &ALL_CLAIMS).await;
    let (st, v) = present(&s, &token, &id, json!({"challenge": c})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["rarity"]["shared_by"], 1);
    assert_eq!(v["rarity"]["threshold"], 1);
    assert_eq!(v["rarity"]["rare"], false);
}

/// adv8's Sybil issuer (issue 12): the co-op that gave a member a
/// combination of their own signs up nine fake members (each confirmed with
/// the message in the outbox) and redeems codes with the member's exact
/// values into them, so that the combination counts as shared by ten and
/// the member presents it without a word. Before this test's change that
/// won (shared_by 10, presented without `accept_rare`). Now a redemption
/// counts only when the account is at least `[credentials]
/// count_after_days` (28) old: fakes made this epoch count for nothing.
/// Honest members who joined before count; one who joined this epoch sees
/// them and is not counted yet (a count too low, never too high). What
/// remains (ARCHITECTURE.md "Sybil issuer"): fakes made 28 days ahead and
/// kept count, in every later period.
#[tokio::test]
async fn fakes_made_this_epoch_do_not_make_a_tag_common() {
    for db in Db::ALL {
        // Sessions outlast the two months the test moves through.
        let Some(s) = start_ttl(db, None, 90 * 86_400).await else {
            continue;
        };
        let (_, coop) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
        let (_, shop) = s.org_with("Fair Market", vec![Role::Credentials]).await;
        // The target and an honest crowd, members for a while.
        let mut crowd = established(&s, &emails("m", 11)).await;
        let target = crowd.remove(0);
        let target_id = redeemed(&s, &coop, &target, &tag_claims()).await;
        let mut crowd_ids = Vec::new();
        for token in &crowd {
            crowd_ids.push(redeemed(&s, &coop, token, &common_claims()).await);
        }

        // The attack: nine fakes signed up and confirmed now, each holding
        // the target's values.
        let mut fakes = Vec::new();
        for email in emails("fake", 9) {
            let token = s.member(&email).await;
            redeemed(&s, &coop, &token, &tag_claims()).await;
            fakes.push(token);
        }
        let c = challenge(&s, &shop, &ALL_CLAIMS).await;
        let p = preview(&s, &target, &target_id, json!({"challenge": c})).await;
        assert_eq!(
            p["rarity"]["rare"], true,
            "{db:?}: nine fakes made the target's combination common: {p}"
        );
        assert_eq!(p["rarity"]["shared_by"], 1, "{db:?}: {p}");
        let (st, v) = present(&s, &target, &target_id, json!({"challenge": c})).await;
        assert_eq!(
            st,
            StatusCode::CONFLICT,
            "{db:?}: the target presented the tag without a warning: {v}"
        );
        assert_eq!(err(&v), "rare_disclosure", "{db:?}: {v}");

        // An honest member who joined this epoch: the crowd's ten share
        // their values; their own credential is not counted yet.
        let newcomer = s.member("newcomer@example.org").await;
        let newcomer_id = redeemed(&s, &coop, &newcomer, &common_claims()).await;
        let c = challenge(&s, &shop, &ALL_CLAIMS).await;
        let p = preview(&s, &newcomer, &newcomer_id, json!({"challenge": c})).await;
        assert_eq!(p["rarity"]["shared_by"], 10, "{db:?}: {p}");
        assert_eq!(p["rarity"]["rare"], false, "{db:?}: {p}");
        let p = preview(&s, &crowd[0], &crowd_ids[0], json!({"challenge": c})).await;
        assert_eq!(p["rarity"]["shared_by"], 10, "{db:?}: {p}");

        // What remains: fakes kept for 28 days count, in the next period.
        s.clock.advance_seconds(ESTABLISHED);
        let target_id = redeemed(&s, &coop, &target, &tag_claims()).await;
        for token in &fakes {
            redeemed(&s, &coop, token, &tag_claims()).await;
        }
        let c = challenge(&s, &shop, &ALL_CLAIMS).await;
        let p = preview(&s, &target, &target_id, json!({"challenge": c})).await;
        assert_eq!(p["rarity"]["shared_by"], 10, "{db:?}: {p}");
        assert_eq!(p["rarity"]["rare"], false, "{db:?}: {p}");
    }
}

/// adv9 (on the merged build): one account made a month ahead, holding ten
/// codes with the target's values, made them "shared by 10" (the counts were
/// of credentials, not of members). A member counts once per issuer and
/// validity epoch.
#[tokio::test]
async fn one_account_counts_once_however_many_codes_it_holds() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, None, 90 * 86_400).await else {
            continue;
        };
        let (_, coop) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
        let (_, shop) = s.org_with("Fair Market", vec![Role::Credentials]).await;
        let mut both = established(&s, &emails("aged", 2)).await;
        let fake = both.remove(1);
        let target = both.remove(0);
        let target_id = redeemed(&s, &coop, &target, &tag_claims()).await;
        for _ in 0..10 {
            redeemed(&s, &coop, &fake, &tag_claims()).await;
        }
        let c = challenge(&s, &shop, &ALL_CLAIMS).await;
        let p = preview(&s, &target, &target_id, json!({"challenge": c})).await;
        assert_eq!(
            p["rarity"]["shared_by"], 2,
            "{db:?}: one account's ten codes counted as ten members: {p}"
        );
        assert_eq!(p["rarity"]["rare"], true, "{db:?}: {p}");
        let (st, v) = present(&s, &target, &target_id, json!({"challenge": c})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{db:?}: {v}");
        assert_eq!(err(&v), "rare_disclosure", "{db:?}: {v}");
    }
}

fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// The value of the hidden field `name` of the form whose submit button
/// has id `button`.
fn hidden_in_form(html: &str, button: &str, name: &str) -> String {
    let end = html
        .find(&format!("id=\"{button}\""))
        .unwrap_or_else(|| panic!("no {button} in {html}"));
    let form = &html[html[..end].rfind("<form").unwrap()..end];
    let key = format!("name=\"{name}\" value=\"");
    let at = form
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {form}"))
        + key.len();
    form[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

async fn web_post(s: &Srv, token: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let resp = Client::new()
        .post(format!("{}{path}", s.base))
        .header(
            "cookie",
            HeaderValue::from_str(&format!("me2b_session={token}")).unwrap(),
        )
        .header("origin", s.base.as_str())
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn web_get(s: &Srv, token: &str, path: &str) -> String {
    Client::new()
        .get(format!("{}{path}", s.base))
        .header(
            "cookie",
            HeaderValue::from_str(&format!("me2b_session={token}")).unwrap(),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The web UI: the warning names how many share the values, offers to leave
/// out what makes them rare (the verifier may refuse), and shows them only
/// after the member confirms.
#[tokio::test]
async fn the_web_page_warns_offers_less_and_asks_to_confirm() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let (_, coop) = s.org_with("Corner Co-op", vec![Role::Credentials]).await;
    let (_, shop) = s.org_with("Fair Market", vec![Role::Credentials]).await;
    let mut members = established(&s, &emails("m", 11)).await;
    let tagged = members.remove(0);
    let id = redeemed(&s, &coop, &tagged, &tag_claims()).await;
    for token in &members {
        redeemed(&s, &coop, token, &common_claims()).await;
    }
    let path = format!("/credentials/{id}/present");
    let c = challenge(&s, &shop, &ALL_CLAIMS).await.to_string();
    let page = web_get(&s, &tagged, "/credentials").await;
    let (st, warning) = web_post(
        &s,
        &tagged,
        &path,
        &[("challenge", &c), ("csrf", &csrf_in(&page))],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{warning}");
    assert!(warning.contains("id=\"rare-warning\""), "{warning}");
    assert!(
        warning.contains("No other credential of Corner Co-op"),
        "{warning}"
    );
    assert!(
        warning.contains("NL-ZE"),
        "the warning shows what would be disclosed"
    );
    assert!(!warning.contains("Give this answer"), "{warning}");
    // Show less: everything the co-op chose per member is left out.
    let withhold = hidden_in_form(&warning, "show-less", "withhold");
    let left: BTreeSet<&str> = withhold.split(',').collect();
    assert_eq!(left, ALL_CLAIMS.into_iter().collect());
    let (st, less) = web_post(
        &s,
        &tagged,
        &path,
        &[
            (
                "challenge",
                &hidden_in_form(&warning, "show-less", "challenge"),
            ),
            ("withhold", &withhold),
            ("csrf", &csrf_in(&warning)),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{less}");
    assert!(less.contains("Give this answer to Fair Market"), "{less}");
    assert!(less.contains("11 credentials of the co-op"), "{less}");
    assert!(!less.contains("NL-ZE"), "{less}");
    // Show it anyway: only with the box ticked.
    let c = challenge(&s, &shop, &ALL_CLAIMS).await.to_string();
    let (_, warning) = web_post(
        &s,
        &tagged,
        &path,
        &[("challenge", &c), ("csrf", &csrf_in(&less))],
    )
    .await;
    let (st, again) = web_post(
        &s,
        &tagged,
        &path,
        &[
            ("challenge", &c),
            ("withhold", ""),
            ("csrf", &csrf_in(&warning)),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(again.contains("id=\"rare-warning\""), "unticked: {again}");
    let (st, shown) = web_post(
        &s,
        &tagged,
        &path,
        &[
            (
                "challenge",
                &hidden_in_form(&warning, "show-anyway", "challenge"),
            ),
            ("withhold", ""),
            ("accept", "yes"),
            ("csrf", &csrf_in(&again)),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{shown}");
    assert!(shown.contains("Give this answer to Fair Market"), "{shown}");
    assert!(shown.contains("1 credential of the co-op"), "{shown}");
    assert!(shown.contains("NL-ZE"), "{shown}");
}
