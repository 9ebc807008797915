//! The thief with the database, and the operator at rest (issue 13).
//!
//! `me2b demo` runs a whole node (sign-ups, vault writes, consents and
//! refusals, GPC, offers, the data trust with cards, sharing and loyalty,
//! credentials, an erasure) and keeps its data directory. The attacker then
//! opens `me2b.sqlite3` and reads every value of every table:
//!
//! - with the file alone, looking for members' personal data in clear, and
//!   for every place a member id appears outside `members` (a join key:
//!   whoever holds the file can tie that row to the member);
//! - with `master.key` too, trying every value as a data key wrapped under
//!   it for every member, and every record with every key that opens.
//!
//! Personal data in clear and a vault that opens fail the test outright.
//! Join keys are compared with [`STILL_JOINABLE`]: the columns issue 13's
//! "metadata at rest" has not yet replaced with keyed hashes or encrypted
//! columns. A new join key fails the test; so does one of the list that is
//! gone (shorten the list as the work lands).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_crypto::{Keyring, MasterKey, OsRandom};
use me2b_domain::MemberId;
use sqlx::{Column, Row, TypeInfo};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_me2b");

/// Columns that still hold a member id in clear (issue 13, "metadata at
/// rest" and "an audit log that forgets": not done yet).
const STILL_JOINABLE: &[&str] = &[
    "audit_log.event",
    "audit_log.subject",
    "consent_envelopes.member_id",
    "consents.body",
    "consents.member_id",
    "sessions.member_id",
    "trust_enrolments.member_id",
    "trust_sharing.member_id",
    "vault_records.member_id",
];

/// What the demo puts in members' vaults, sign-ups and logins: none of it
/// may be in the file in clear.
const PERSONAL: &[&str] = &[
    "members.example.org",
    "demo passphrase for member",
    "Private note of demo member",
    "Havermelk",
    "Volkorenbrood",
    "Luiers maat 3",
    "Fietsherstel",
    "Kringloop Weggeefwinkel",
];

/// Every TEXT and BLOB value of every table: (table, column, bytes).
async fn every_value(file: &Path) -> Vec<(String, String, Vec<u8>)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in &tables {
        for row in sqlx::query(&format!("SELECT * FROM \"{t}\""))
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            for (i, c) in row.columns().iter().enumerate() {
                let v = match c.type_info().name() {
                    "BLOB" => row.try_get::<Option<Vec<u8>>, _>(i).ok().flatten(),
                    "TEXT" => row
                        .try_get::<Option<String>, _>(i)
                        .ok()
                        .flatten()
                        .map(String::into_bytes),
                    _ => None,
                };
                if let Some(v) = v {
                    out.push((t.clone(), c.name().to_owned(), v));
                }
            }
        }
    }
    pool.close().await;
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_thief_and_the_operator_with_the_database() {
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().join("node");
    let out = Command::new(BIN)
        .args(["demo", "--members", "12", "--keep"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let values = rt.block_on(every_value(&dir.join(me2b_node::SQLITE_FILE)));
    assert!(
        values.len() > 1000,
        "the demo wrote {} values",
        values.len()
    );

    // The file alone: personal data in clear.
    for (t, c, v) in &values {
        for p in PERSONAL {
            assert!(!contains(v, p.as_bytes()), "{t}.{c} holds {p:?} in clear");
        }
    }

    // The file alone: member ids outside `members`, raw or as text.
    let members: Vec<MemberId> = values
        .iter()
        .filter(|(t, c, _)| t == "members" && c == "member_id")
        .map(|(_, _, v)| MemberId::from_slice(v).unwrap())
        .collect();
    assert!(members.len() >= 10, "{} members", members.len());
    let mut joinable = BTreeSet::new();
    for (t, c, v) in values.iter().filter(|(t, _, _)| t != "members") {
        if members
            .iter()
            .any(|m| contains(v, m.as_bytes()) || contains(v, m.as_uuid().to_string().as_bytes()))
        {
            joinable.insert(format!("{t}.{c}"));
        }
    }
    let known: BTreeSet<String> = STILL_JOINABLE.iter().map(|s| (*s).to_owned()).collect();
    let new: Vec<_> = joinable.difference(&known).collect();
    let gone: Vec<_> = known.difference(&joinable).collect();
    assert!(new.is_empty(), "new columns join to a member id: {new:?}");
    assert!(
        gone.is_empty(),
        "no longer joinable, take them off STILL_JOINABLE: {gone:?}"
    );

    // With the master key: every value as a data key wrapped under it, for
    // every member; nothing may open.
    let (master, created) =
        MasterKey::load_or_create(&dir.join(me2b_node::MASTER_KEY_FILE), &OsRandom).unwrap();
    assert!(!created, "the demo's master key");
    let keys = Keyring::derive(&master);
    let mut opened = 0;
    for m in &members {
        for (_, _, v) in &values {
            opened += usize::from(keys.legacy_unwrap(*m, v).is_ok());
        }
    }
    assert_eq!(
        opened,
        0,
        "the master key opened {opened} data keys of {} members",
        members.len()
    );
}
