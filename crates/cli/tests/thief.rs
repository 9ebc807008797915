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
//! Personal data in clear, a member id anywhere outside `members` (issue 13,
//! "metadata at rest": locators and sealed ids instead) and a vault that
//! opens fail the test outright.
//!
//! Then the member the demo erased, with the master key too (issue 13, "an
//! audit log that forgets"): every value is searched for their id (raw and
//! as text), their locator in every table and their pseudonym for every
//! organisation; none may be left.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_crypto::{Keyring, MasterKey, OsRandom};
use me2b_domain::meta::{MetaTable, MetadataKeys};
use me2b_domain::{MemberId, OrgId};
use sqlx::{Column, Row, TypeInfo};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_me2b");

/// Columns that still hold a member id in clear: none (issue 13, "metadata
/// at rest" and "an audit log that forgets"). Every column that held one
/// before is named in ARCHITECTURE.md's "Metadata at rest".
const STILL_JOINABLE: &[&str] = &[];

/// The tables whose rows a member's locator finds.
const LOCATED: [MetaTable; 10] = [
    MetaTable::Sessions,
    MetaTable::VaultRecords,
    MetaTable::Consents,
    MetaTable::MemberGpc,
    MetaTable::TrustEnrolments,
    MetaTable::TrustSharing,
    MetaTable::MarketingOptouts,
    MetaTable::OptoutCodes,
    MetaTable::ImportedHistory,
    MetaTable::IntentOwners,
];

/// After the demo, a member imports their own export (issue 15), so the
/// file holds `imported_history` too; then logs out. The clock stands past
/// the demo's, which moved a week ahead.
async fn import_an_export(dir: &Path) {
    let now = me2b_domain::Clock::now(&me2b_domain::SystemClock);
    let clock = std::sync::Arc::new(me2b_domain::FixedClock::at(
        me2b_domain::Timestamp::from_unix_millis(now.unix_millis() + 60 * 86_400_000),
    ));
    let mut cfg = me2b_node::NodeConfig::new(dir);
    cfg.passphrase = me2b_crypto::PassphraseParams::RECOMMENDED;
    let node = me2b_node::Node::open(&cfg, clock, std::sync::Arc::new(OsRandom))
        .await
        .unwrap();
    let i = 2;
    let l = node
        .vault
        .log_in(
            me2b_domain::member::Email::parse(&format!("demo-member-{i:04}@members.example.org"))
                .unwrap(),
            me2b_domain::member::Passphrase::parse(format!(
                "demo passphrase for member {i} – not a real one"
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let token = l.session.token.expose().to_owned();
    let session = node.vault.authenticate(&token).await.unwrap();
    let export = node.export(&session).await.unwrap();
    let bytes = serde_json::to_vec(&export).unwrap();
    assert!(node.import(&session, &bytes).await.unwrap() > 0);
    node.vault.log_out(&session, &token).await.unwrap();
    node.shutdown().await;
}

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

/// The times `members` keeps, and the sizes of the vault's ciphertexts.
async fn times_and_sizes(file: &Path) -> (Vec<i64>, Vec<usize>) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let mut times = Vec::new();
    for row in sqlx::query("SELECT created_at, last_login_at, legacy_warned_at FROM members")
        .fetch_all(&pool)
        .await
        .unwrap()
    {
        for i in 0..3 {
            if let Some(t) = row.try_get::<Option<i64>, _>(i).unwrap() {
                times.push(t);
            }
        }
    }
    let sizes: Vec<i64> = sqlx::query_scalar(
        "SELECT length(ciphertext) FROM vault_records UNION ALL SELECT length(sealed) FROM imported_history",
    )
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    (
        times,
        sizes
            .into_iter()
            .map(|n| usize::try_from(n).unwrap())
            .collect(),
    )
}

/// What the file alone says of offers' counts: (rows, rows whose counts
/// look like true ones (below 2^40), rows whose release state reads in
/// clear).
async fn offer_counts(file: &Path) -> (usize, usize, usize) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT reached, accepted, released FROM offer_counters")
        .fetch_all(&pool)
        .await
        .unwrap();
    let (mut small, mut clear) = (0, 0);
    for row in &rows {
        let (r, a): (i64, i64) = (row.get(0), row.get(1));
        small += usize::from(r < 1 << 40 || a < 1 << 40);
        let released: Option<Vec<u8>> = row.get(2);
        clear += usize::from(
            released.is_some_and(|b| serde_json::from_slice::<serde_json::Value>(&b).is_ok()),
        );
    }
    pool.close().await;
    (rows.len(), small, clear)
}

/// The same rows and entries with every time floored to its hour.
fn to_the_hour(rows: &TimedRows, audit: &[(i64, String)]) -> (TimedRows, Vec<(i64, String)>) {
    let h = |t: &i64| t.div_euclid(3_600_000) * 3_600_000;
    (
        rows.iter()
            .map(|(t, n, times)| (*t, *n, times.iter().map(h).collect()))
            .collect(),
        audit.iter().map(|(at, s)| (h(at), s.clone())).collect(),
    )
}

/// A member's stored times, row by row: (table, row number, times), and
/// the audit log's (time, subject) pairs.
type TimedRows = Vec<(&'static str, usize, Vec<i64>)>;

/// The tables whose rows are a member's, with their time columns; the
/// thief lines them up with each other and with the audit log (issue 13,
/// "coarsen stored times where exact ones are not needed").
const TIMED: &[(&str, &[&str])] = &[
    ("vault_records", &["created_at", "updated_at"]),
    ("sessions", &["created_at", "expires_at"]),
    ("consents", &["given_at", "expires_at", "withdrawn_at"]),
    ("consent_envelopes", &["updated_at", "expires_at"]),
    (
        "consent_envelopes_pending",
        &["updated_at", "changed_at", "expires_at"],
    ),
];

async fn member_times(file: &Path) -> (TimedRows, Vec<(i64, String)>) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let mut rows = Vec::new();
    for (table, cols) in TIMED {
        let sql = format!("SELECT {} FROM {table}", cols.join(", "));
        for (n, row) in sqlx::query(&sql)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .enumerate()
        {
            let times = (0..cols.len())
                .filter_map(|i| row.try_get::<Option<i64>, _>(i).unwrap())
                .collect();
            rows.push((*table, n, times));
        }
    }
    let mut audit = Vec::new();
    // The events are sealed (adv7); the subject column is not.
    for row in sqlx::query("SELECT at, subject FROM audit_log WHERE subject IS NOT NULL")
        .fetch_all(&pool)
        .await
        .unwrap()
    {
        let subject = uuid_text(&row.get::<Vec<u8>, _>(1));
        audit.push((row.get::<i64, _>(0), subject));
    }
    pool.close().await;
    (rows, audit)
}

/// The thief's join by time: a member's row whose time falls within
/// `near` milliseconds of audit entries of one subject only names that
/// subject; two rows of different tables whose times fall that close to
/// each other, and of no other row of that table, are one member's.
/// Returns (rows tied to one audit subject, pairs of rows tied across
/// tables).
fn time_joins(rows: &TimedRows, audit: &[(i64, String)], near: i64) -> (usize, usize) {
    let mut to_subject = 0;
    for (_, _, times) in rows {
        let named = times.iter().any(|t| {
            let subjects: BTreeSet<&str> = audit
                .iter()
                .filter(|(at, _)| (at - t).abs() <= near)
                .map(|(_, s)| s.as_str())
                .collect();
            subjects.len() == 1
        });
        to_subject += usize::from(named);
    }
    let mut pairs = 0;
    for (ta, _, times_a) in rows {
        for (tb, _) in TIMED.iter().filter(|(t, _)| t > ta) {
            let close: BTreeSet<usize> = rows
                .iter()
                .filter(|(t, _, times_b)| {
                    t == tb
                        && times_a
                            .iter()
                            .any(|a| times_b.iter().any(|b| (a - b).abs() <= near))
                })
                .map(|(_, n, _)| *n)
                .collect();
            pairs += usize::from(close.len() == 1);
        }
    }
    (to_subject, pairs)
}

/// 16 bytes as a hyphenated UUID, as ids are written in text.
fn uuid_text(v: &[u8]) -> String {
    let h: String = v.iter().map(|b| format!("{b:02x}")).collect();
    match (
        h.get(..8),
        h.get(8..12),
        h.get(12..16),
        h.get(16..20),
        h.get(20..),
    ) {
        (Some(a), Some(b), Some(c), Some(d), Some(e)) => format!("{a}-{b}-{c}-{d}-{e}"),
        _ => h,
    }
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
    rt.block_on(import_an_export(&dir));
    let values = rt.block_on(every_value(&dir.join(me2b_node::SQLITE_FILE)));
    assert!(
        values.iter().any(|(t, _, _)| t == "imported_history"),
        "an import is in the file"
    );
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
    let known: BTreeSet<String> = STILL_JOINABLE.iter().map(|s| (*s).to_string()).collect();
    let new: Vec<_> = joinable.difference(&known).collect();
    let gone: Vec<_> = known.difference(&joinable).collect();
    assert!(new.is_empty(), "new columns join to a member id: {new:?}");
    assert!(
        gone.is_empty(),
        "no longer joinable, take them off STILL_JOINABLE: {gone:?}"
    );

    // The file alone (finding 4 of adv4): a consent's locator differs per
    // organisation, so grouping `consents` by it does not show a member's
    // set of co-ops, nor join two co-ops' consent lists (their `consent_id`s
    // are in the file and in each co-op's API) into a link of their
    // pseudonyms; and a pending erasure request does not name the member by
    // a co-op's pseudonym in clear.
    let mut orgs_of_loc: std::collections::BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> =
        std::collections::BTreeMap::new();
    let (locs, consent_orgs) = (
        values
            .iter()
            .filter(|(t, c, _)| t == "consents" && c == "member_loc")
            .map(|(_, _, v)| v.clone())
            .collect::<Vec<_>>(),
        values
            .iter()
            .filter(|(t, c, _)| t == "consents" && c == "org_id")
            .map(|(_, _, v)| v.clone())
            .collect::<Vec<_>>(),
    );
    assert_eq!(locs.len(), consent_orgs.len());
    for (l, o) in locs.iter().zip(&consent_orgs) {
        orgs_of_loc.entry(l.clone()).or_default().insert(o.clone());
    }
    let spanning = orgs_of_loc.values().filter(|o| o.len() > 1).count();
    assert!(
        BTreeSet::from_iter(consent_orgs.iter()).len() > 1,
        "the demo's consents are at several organisations"
    );
    assert_eq!(
        spanning, 0,
        "consents.member_loc groups {spanning} members' consents across organisations"
    );
    let subjects_in_clear: Vec<_> = values
        .iter()
        .filter(|(t, c, v)| t == "erasure_requests" && c == "subject" && v.starts_with(b"sub_"))
        .collect();
    assert!(
        values.iter().any(|(t, _, _)| t == "erasure_requests"),
        "the demo's erasure wrote requests"
    );
    assert!(
        subjects_in_clear.is_empty(),
        "erasure_requests.subject holds {} pseudonyms in clear",
        subjects_in_clear.len()
    );

    // The file alone: audit entries about a member name them by a subject
    // no key in the file computes, but an entry's object (a record or
    // consent id) would join that subject to the member's rows in
    // `vault_records` and `consents` (and so those tables to each other).
    let ids_of = |table: &str, col: &str| -> BTreeSet<String> {
        values
            .iter()
            .filter(|(t, c, _)| t == table && c == col)
            .map(|(_, _, v)| uuid_text(v))
            .collect()
    };
    let (records, consents) = (
        ids_of("vault_records", "record_id"),
        ids_of("consents", "consent_id"),
    );
    assert!(records.len() > 50 && consents.len() > 10);
    // Events are sealed at rest (adv7, sections A and D): none reads as
    // JSON, and no record or consent id is in one.
    let subjects: BTreeSet<&Vec<u8>> = values
        .iter()
        .filter(|(t, c, _)| t == "audit_log" && c == "subject")
        .map(|(_, _, v)| v)
        .collect();
    let events: Vec<&Vec<u8>> = values
        .iter()
        .filter(|(t, c, _)| t == "audit_log" && c == "event")
        .map(|(_, _, v)| v)
        .collect();
    let plain = events
        .iter()
        .filter(|v| serde_json::from_slice::<serde_json::Value>(v).is_ok())
        .count();
    let named = |ids: &BTreeSet<String>| {
        ids.iter()
            .filter(|id| events.iter().any(|v| contains(v, id.as_bytes())))
            .count()
    };
    let (to_records, to_consents) = (named(&records), named(&consents));
    assert!(subjects.len() > 10, "{} audit subjects", subjects.len());
    assert_eq!(
        plain,
        0,
        "{plain} of {} audit events in clear",
        events.len()
    );
    // One size bucket holds every event the demo writes: the length tells
    // no action apart.
    let sizes: BTreeSet<usize> = events.iter().map(|v| v.len()).collect();
    assert_eq!(sizes.len(), 1, "audit event sizes {sizes:?}");
    assert!(
        to_records == 0 && to_consents == 0,
        "audit events name {to_records} of {} records and {to_consents} of {} consents",
        records.len(),
        consents.len()
    );

    // The file alone: the account's times are days (an exact one matches
    // the audit entry of the sign-up or login and names its subject), and
    // a record's ciphertext tells its size bucket only.
    let rt2 = tokio::runtime::Runtime::new().unwrap();
    let (times, sizes) = rt2.block_on(times_and_sizes(&dir.join(me2b_node::SQLITE_FILE)));
    assert!(times.len() >= 20, "{} member times", times.len());
    for t in &times {
        assert_eq!(t % 86_400_000, 0, "members keeps an exact time: {t}");
    }
    assert!(sizes.len() > 50, "{} records", sizes.len());
    for n in &sizes {
        // version, nonce, tag; then 256 bytes or a power of two.
        let plain = n - 1 - 24 - 16;
        assert!(
            plain >= 256 && plain.is_power_of_two(),
            "a record ciphertext of {n} bytes shows its length"
        );
    }

    // The file alone: the thief lines up a member's rows by their times,
    // with the audit log (whose entries name a member's subject) and
    // across tables. Every stored time of a member's rows is a whole hour
    // (session and consent expiries too: an exact one is a login or grant
    // time plus a known length); finer ones are sealed, and the audit
    // log's entries are dated to the hour, ordered by their sequence.
    let (timed, audit) = rt2.block_on(member_times(&dir.join(me2b_node::SQLITE_FILE)));
    assert!(
        timed.len() > 50 && audit.len() > 100,
        "{} rows",
        timed.len()
    );
    // A few milliseconds apart: what an exact time gives away. Only what
    // the hours give away may be left (rows of an hour in which one member
    // alone acted, as the demo's jumps of its clock make: a crowd on a
    // node in use).
    let fine = time_joins(&timed, &audit, 5);
    let (rows_h, audit_h) = to_the_hour(&timed, &audit);
    let hours = time_joins(&rows_h, &audit_h, 0);
    assert_eq!(
        fine,
        hours,
        "by time, {} of {} member rows name one audit subject and {} pairs of rows join across tables; by the hour, {} and {}",
        fine.0,
        timed.len(),
        fine.1,
        hours.0,
        hours.1
    );
    for (t, _, times) in &timed {
        for v in times {
            assert_eq!(
                v % 3_600_000,
                0,
                "{t} keeps a time finer than the hour: {v}"
            );
        }
    }
    for (at, _) in &audit {
        assert_eq!(
            at % 3_600_000,
            0,
            "an audit entry keeps a time finer than the hour"
        );
    }

    // The file alone: offers' true counts (issue 13). Each count is kept
    // plus a mask sealed under the node's key; the release state (noisy
    // figures and the true total they were drawn from) is sealed.
    let (offers, small, clear) = rt2.block_on(offer_counts(&dir.join(me2b_node::SQLITE_FILE)));
    assert!(offers >= 2, "{offers} offers");
    assert!(
        small == 0 && clear == 0,
        "of {offers} offers, {small} keep their true counts and {clear} their release state in clear"
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

    // The erased member, with the master key: nothing keyed to or derived
    // from them is left (their rows, their locators, their pseudonym for
    // any organisation; their audit entries are under a name whose salt
    // went with their account).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let erased: MemberId = stdout
        .split("Member ")
        .filter_map(|rest| rest.get(..36))
        .find_map(|id| id.parse().ok())
        .expect("the demo names the member it erased");
    assert!(
        !members.contains(&erased),
        "the erased member's row is gone"
    );
    let meta = keys.metadata_keys(std::sync::Arc::new(OsRandom));
    let orgs: Vec<OrgId> = values
        .iter()
        .filter(|(t, c, _)| t == "organisations" && c == "org_id")
        .map(|(_, _, v)| OrgId::from_slice(v).unwrap())
        .collect();
    assert!(orgs.len() >= 3, "{} organisations", orgs.len());
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("id".into(), erased.as_bytes().to_vec()),
        ("id as text".into(), erased.to_string().into_bytes()),
    ];
    for t in LOCATED {
        needles.push((
            format!("{} locator", t.label()),
            meta.locator(t, erased).to_vec(),
        ));
    }
    for o in &orgs {
        needles.push((
            format!("pseudonym for {o}"),
            keys.subject_pseudonym(o, &erased).into_bytes(),
        ));
    }
    let mut left = BTreeSet::new();
    for (t, c, v) in &values {
        for (what, n) in &needles {
            if contains(v, n) {
                left.insert(format!("{t}.{c}: {what}"));
            }
        }
    }
    assert!(
        left.is_empty(),
        "the erased member is still there: {left:?}"
    );
    // Every value that opens under the node's metadata key, for every row
    // (sealed member ids are bound to their row): none is the erased id.
    let mut sealed_ids = 0;
    for (t, c, v) in values.iter().filter(|(_, c, _)| c == "member_ct") {
        let table = LOCATED.into_iter().find(|m| m.label() == t).unwrap();
        let row_col = match t.as_str() {
            "sessions" => "token_hash",
            "consents" => "consent_id",
            "optout_codes" => "code_index",
            _ => "sharing_id",
        };
        for (_, _, row) in values.iter().filter(|(t2, c2, _)| t2 == t && c2 == row_col) {
            let mut bound = b"member\0".to_vec();
            bound.extend_from_slice(row);
            if let Some(id) = meta.open(table, &bound, v) {
                sealed_ids += 1;
                assert_ne!(
                    id,
                    erased.as_bytes(),
                    "{t}.{c} seals the erased member's id"
                );
            }
        }
    }
    assert!(sealed_ids > 10, "{sealed_ids} sealed member ids opened");
}
