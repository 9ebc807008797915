//! One error registry (issue 14): every route, sent bad input of every kind,
//! answers JSON with a code from the registry, a bounded message, and never
//! the input it was sent; the OpenAPI document and README list every code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start, Srv};
use me2b_domain::org::Role;
use me2b_server::error::MAX_MESSAGE_CHARS;
use me2b_server::ErrorCode;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// What every bad input carries: an answer that contains it echoed input.
const MARK: &str = "ZqEchoMarkQz";
/// The same in the form of a schema's own names (snake_case, short), which
/// a message could mistake for one.
const LOWER_MARK: &str = "zq_echo_mark";

fn registry() -> BTreeSet<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

async fn send(
    s: &Srv,
    method: &Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Answer {
    let mut r = s.http.request(method.clone(), format!("{}{path}", s.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    if let Some(b) = body {
        r = r.body(b);
    }
    let resp = r.send().await.unwrap();
    Answer {
        status: resp.status(),
        content_type: resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        text: resp.text().await.unwrap(),
    }
}

/// The checks every error answer must pass.
fn check(what: &str, a: &Answer, codes: &BTreeSet<&str>) {
    if a.status.is_success() {
        assert!(
            !a.text.contains(MARK) && !a.text.contains(LOWER_MARK),
            "{what}: a success echoes: {}",
            a.text
        );
        return;
    }
    assert!(
        a.status.is_client_error(),
        "{what}: {} is not a 4xx: {}",
        a.status,
        &a.text[..a.text.len().min(300)]
    );
    assert!(
        a.content_type.starts_with("application/json"),
        "{what}: {} answered {}: {}",
        a.status,
        a.content_type,
        &a.text[..a.text.len().min(300)]
    );
    let v: Value = serde_json::from_str(&a.text)
        .unwrap_or_else(|_| panic!("{what}: not JSON: {}", &a.text[..a.text.len().min(300)]));
    let code = v["error"]["code"].as_str().unwrap_or_default();
    assert!(
        codes.contains(code),
        "{what}: code {code:?} not in the registry: {v}"
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        !message.is_empty() && message.chars().count() <= MAX_MESSAGE_CHARS,
        "{what}: message of {} characters",
        message.chars().count()
    );
    assert!(
        a.text.len() < 2_000,
        "{what}: an answer of {} bytes",
        a.text.len()
    );
    assert!(
        !a.text.contains(MARK) && !a.text.contains(LOWER_MARK),
        "{what}: echoes the input: {v}"
    );
    let status = ErrorCode::ALL
        .iter()
        .find(|c| c.as_str() == code)
        .unwrap()
        .status();
    assert_eq!(status, a.status, "{what}: {code} with another status");
}

/// The path with each `{param}` replaced by `value`.
fn fill(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').unwrap();
        out.push_str(value);
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

/// The request body's top-level property names, from the document.
fn body_properties(doc: &Value, op: &Value) -> Vec<String> {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    };
    let mut names: Vec<String> = schema["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for alt in schema["oneOf"].as_array().into_iter().flatten() {
        if let Some(m) = alt["properties"].as_object() {
            names.extend(m.keys().cloned());
        }
    }
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn every_route_answers_bad_input_with_a_registered_json_error_that_echoes_nothing() {
    let Some(s) = start(Db::Sqlite).await else {
        return;
    };
    let codes = registry();
    let member = s.member("fuzz@example.org").await;
    let (_, org) = s.org_with("Fuzz Co-op", Role::ALL.to_vec()).await;
    let doc: Value = s
        .http
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let huge_name = format!("{MARK}{}", "x".repeat(200_000));
    let long_value = format!("{MARK}{}", "y".repeat(5_000));
    let mut sent = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let m: Method = method.to_uppercase().parse().unwrap();
            // Read-only routes and the sign-up / login routes get the same
            // treatment; only the credentials differ.
            for token in [None, Some(member.as_str()), Some(org.as_str())] {
                let who = match token {
                    None => "anonymous",
                    Some(t) if t == member => "member",
                    Some(_) => "organisation",
                };
                // Path ids: the marker, a huge one, invalid UTF-8.
                let mut paths = vec![fill(path, MARK), fill(path, &long_value)];
                if path.contains('{') {
                    paths.push(fill(path, "%FF%FE%80"));
                }
                // Query parameters: the marker and out-of-range numbers.
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "query" {
                        let name = p["name"].as_str().unwrap();
                        for v in [MARK, "9223372036854775808", "-1", "99999999999999999999999"] {
                            paths.push(format!("{}?{name}={v}", fill(path, "x")));
                        }
                        paths.push(format!("{}?{MARK}=1", fill(path, "x")));
                    }
                }
                for p in &paths {
                    let a = send(&s, &m, p, token, None, None).await;
                    check(&format!("{who} {method} {p:.80}"), &a, &codes);
                    sent += 1;
                }
                if op.get("requestBody").is_none() {
                    continue;
                }
                let target = fill(path, "00000000-0000-0000-0000-000000000000");
                let mut bodies: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
                    (
                        "unknown field",
                        Some("application/json"),
                        serde_json::to_vec(&json!({MARK: 1})).unwrap(),
                    ),
                    (
                        "unknown field named like a schema's",
                        Some("application/json"),
                        serde_json::to_vec(&json!({LOWER_MARK: 1})).unwrap(),
                    ),
                    (
                        "huge field name",
                        Some("application/json"),
                        format!("{{\"{huge_name}\": 1}}").into_bytes(),
                    ),
                    (
                        "unknown variant",
                        Some("application/json"),
                        serde_json::to_vec(
                            &json!({"kind": MARK, "answer": MARK, "question": MARK}),
                        )
                        .unwrap(),
                    ),
                    (
                        "not JSON",
                        Some("application/json"),
                        format!("{MARK} {{").into_bytes(),
                    ),
                    (
                        "wrong content type",
                        Some("text/plain"),
                        MARK.as_bytes().to_vec(),
                    ),
                    ("no content type", None, MARK.as_bytes().to_vec()),
                    (
                        "oversized",
                        Some("application/json"),
                        format!("{{\"{MARK}\": \"{}\"}}", "z".repeat(300 * 1024)).into_bytes(),
                    ),
                    (
                        "invalid UTF-8",
                        Some("application/json"),
                        b"{\"a\": \"\xff\xfe\"}".to_vec(),
                    ),
                ];
                // Each property: out-of-range numbers, marked strings, a
                // marked map key and list.
                let props = body_properties(&doc, op);
                let mut per_prop = Vec::new();
                for name in &props {
                    for v in [
                        json!(99999999999999999999999u128 as f64),
                        json!(18446744073709551616u128 as f64),
                        json!(-9223372036854775809i128 as f64),
                        json!(1e300),
                        json!(long_value),
                        json!([long_value]),
                        json!({MARK: long_value}),
                        // A key named like a schema's: an unknown field in
                        // an object, a map's key with a value of the wrong type.
                        json!({LOWER_MARK: [[[]]]}),
                    ] {
                        per_prop.push(serde_json::to_vec(&json!({ name.as_str(): v })).unwrap());
                    }
                    // The raw number past u64, which no f64 equals.
                    per_prop.push(format!("{{\"{name}\": 184467440737095516160}}").into_bytes());
                }
                for (what, ct, b) in bodies.drain(..) {
                    let a = send(&s, &m, &target, token, ct, Some(b)).await;
                    check(&format!("{who} {method} {path} ({what})"), &a, &codes);
                    sent += 1;
                }
                for b in per_prop {
                    let a = send(
                        &s,
                        &m,
                        &target,
                        token,
                        Some("application/json"),
                        Some(b.clone()),
                    )
                    .await;
                    check(
                        &format!(
                            "{who} {method} {path} ({})",
                            String::from_utf8_lossy(&b[..b.len().min(60)])
                        ),
                        &a,
                        &codes,
                    );
                    sent += 1;
                }
            }
        }
    }
    assert!(sent > 1_000, "only {sent} requests");
}

/// The OpenAPI document lists every code of the registry, and nothing else.
#[tokio::test]
async fn the_openapi_document_lists_every_code() {
    let doc = me2b_server::openapi::document();
    // Operation ids are unique (tools name operations by them).
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        }
    }
    let schema = &doc["components"]["schemas"]["ErrorCode"];
    let listed: BTreeSet<&str> = schema["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum in {schema}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, registry());
    let detail = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"];
    assert_eq!(detail["$ref"], "#/components/schemas/ErrorCode", "{detail}");
}

/// README's list of error codes is the registry.
#[test]
fn readme_lists_every_code() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("<!-- error-codes -->")
        .expect("README: <!-- error-codes -->");
    let end = readme
        .find("<!-- /error-codes -->")
        .expect("README: <!-- /error-codes -->");
    let section = &readme[start..end];
    let listed: BTreeSet<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert_eq!(listed, registry(), "README's error code table");
    for c in ErrorCode::ALL {
        let row = format!("| `{}` | {} |", c.as_str(), c.status().as_u16());
        assert!(section.contains(&row), "README: {row}");
    }
}
