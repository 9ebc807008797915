//! The polling link (issue 17, adversarial review): an organisation polls
//! its intent feed every minute and links two intents of one member because
//! they appear one right after the other, alone. Written as the attack
//! first: on a node that shows each intent as soon as it is published, it
//! links every pair. New intents now reach organisations in batches (at a
//! whole hour, at least `min_batch` of them or once the oldest waited
//! `max_wait_hours`), so a poll shows a whole batch at once, one time for
//! all of it, in the order of the random ids. On SQLite and PostgreSQL, with
//! the defaults.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{start_ttl, Srv};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::Clock;
use me2b_testkit::Db;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const HOUR: i64 = 3_600_000;

fn bike(text: &str) -> Value {
    json!({"topic": "bicycles-and-accessories", "text": text,
           "budget": {"min_cents": 100_000, "max_cents": 300_000, "currency": "EUR"},
           "region": "NL-UT", "deadline_days": 7, "audience": {"kind": "any"},
           "acknowledge_free_text_warning": true})
}

async fn publish(s: &Srv, member: &str) -> String {
    let (st, v) = s
        .req(
            Method::POST,
            "/v1/me/intents",
            Some(member),
            Some(bike("A cargo bike for two children.")),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The attacker's poll: the feed, and what is new in it since the last one.
async fn poll(s: &Srv, key: &str, seen: &mut BTreeSet<String>) -> Vec<Value> {
    let (st, v) = s.req(Method::GET, "/v1/org/intents", Some(key), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .filter(|i| seen.insert(i["id"].as_str().unwrap().to_owned()))
        .cloned()
        .collect()
}

#[tokio::test]
async fn polling_the_feed_does_not_link_two_intents_published_together() {
    for db in Db::ALL {
        let Some(s) = start_ttl(db, None, 30 * 86_400).await else {
            continue;
        };
        let (_, key) = s
            .node
            .orgs
            .create(
                Label::try_from("Fietscoop Utrecht").unwrap(),
                OrgKind::Coop,
                Roles::try_from(vec![Role::Offers]).unwrap(),
            )
            .await
            .unwrap();
        let key = key.secret.expose().to_owned();
        let (st, v) = s
            .req(
                Method::PUT,
                "/v1/org/intents/subscription",
                Some(&key),
                Some(json!({"topics": ["bicycles-and-accessories"]})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let mut others = Vec::new();
        for i in 0..3 {
            others.push(s.member(&format!("other{i}@example.org")).await);
        }
        let mut pairs = Vec::new();
        for i in 0..5 {
            pairs.push(s.member(&format!("pair{i}@example.org")).await);
        }
        // Start on a whole hour.
        let now = s.clock.now().unix_millis();
        s.clock
            .advance_seconds((HOUR - now.rem_euclid(HOUR)) / 1000);

        // Five hours. In each, three other members publish at minutes 5, 20
        // and 50, and one member publishes twice, at minutes 35 and 36. The
        // organisation reads its feed every minute.
        let mut owner: BTreeMap<String, usize> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let mut deltas: Vec<(i64, Vec<Value>)> = Vec::new();
        for (round, pair) in pairs.iter().enumerate() {
            for minute in 0..60 {
                let who = match minute {
                    5 => Some((0, &others[0])),
                    20 => Some((1, &others[1])),
                    35 | 36 => Some((10 + round, pair)),
                    50 => Some((2, &others[2])),
                    _ => None,
                };
                if let Some((n, token)) = who {
                    owner.insert(publish(&s, token).await, n);
                }
                s.clock.advance_seconds(30);
                let new = poll(&s, &key, &mut seen).await;
                if !new.is_empty() {
                    deltas.push((s.clock.now().unix_millis(), new));
                }
                s.clock.advance_seconds(30);
            }
        }
        // Then every ten minutes for a day and two hours, until every
        // intent has reached the organisation.
        for _ in 0..(26 * 6) {
            s.clock.advance_seconds(600);
            let new = poll(&s, &key, &mut seen).await;
            if !new.is_empty() {
                deltas.push((s.clock.now().unix_millis(), new));
            }
        }
        assert_eq!(seen.len(), 25, "{db:?}: every intent was shown in the end");

        // The attack: two intents that appear alone together in one poll,
        // or alone in two polls at most two minutes apart, are one member's.
        let mut guesses: Vec<(&Value, &Value)> = Vec::new();
        for (i, (at, d)) in deltas.iter().enumerate() {
            if let [x, y] = d.as_slice() {
                guesses.push((x, y));
            }
            if let (Some((next_at, next)), [x]) = (deltas.get(i + 1), d.as_slice()) {
                if let [y] = next.as_slice() {
                    if next_at - at <= 2 * 60_000 {
                        guesses.push((x, y));
                    }
                }
            }
        }
        let who = |v: &Value| owner[v["id"].as_str().unwrap()];
        let linked = guesses
            .iter()
            .filter(|(x, y)| who(x) == who(y) && who(x) >= 10)
            .count();
        assert_eq!(
            linked, 0,
            "{db:?}: the polling attack linked {linked} of 5 pairs"
        );

        // What a poll shows is a batch: at least `min_batch` intents, or,
        // once the oldest waited `max_wait_hours`, the rest; several
        // members' intents in each; one time for all of them; in the order
        // of their random ids.
        let batch = s.node.intents.limits().batch;
        let min = usize::try_from(batch.min_batch).unwrap();
        for (i, (_, d)) in deltas.iter().enumerate() {
            let last = i + 1 == deltas.len();
            assert!(d.len() >= min || last, "{db:?}: a batch of {}", d.len());
            let members: BTreeSet<usize> =
                d.iter().map(|x| owner[x["id"].as_str().unwrap()]).collect();
            assert!(members.len() >= 3, "{db:?}: a batch of {members:?}");
            let hours: BTreeSet<i64> = d
                .iter()
                .map(|x| x["published_at"].as_i64().unwrap())
                .collect();
            assert_eq!(hours.len(), 1, "{db:?}: {hours:?}");
            let ids: Vec<&str> = d.iter().map(|x| x["id"].as_str().unwrap()).collect();
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(ids, sorted, "{db:?}");
            let deadlines: BTreeSet<i64> =
                d.iter().map(|x| x["deadline"].as_i64().unwrap()).collect();
            assert_eq!(
                deadlines.len(),
                1,
                "{db:?}: the deadline tells the hour apart: {deadlines:?}"
            );
        }
    }
}
