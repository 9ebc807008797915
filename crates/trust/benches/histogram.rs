//! A 470-bin differentially private histogram over 10,000,000 stored events
//! on SQLite (issue 6). Run with
//!
//!     cargo bench -p me2b-trust --bench histogram
//!
//! Data (deterministic, seeded): 1,000,000 members with random 32-byte tags,
//! each with 3 receipts (3, 3 and 4 items, so 10 events per member) over 470
//! categories with Zipf (s = 1) popularity, in a home area (85 %) of the 12
//! default areas weighted by population, over one year, for one co-op. Stored
//! in the trust's tables as `insert_trust_receipts` stores them: receipts,
//! items (`trust_events`), per-member totals (`trust_members`, for the
//! co-op's scope and, the member's presence only, for `*`), per-member bins
//! (`trust_bins`, at most 5 values per member per (scope, dimension), first
//! come) and members per value (`trust_bin_totals`), for the co-op's scope
//! (`*` keeps no bins since adv8).
//!
//! `insert_trust_receipts` would take many minutes for 10,000,000 events, so the
//! data is bulk-loaded through a raw sqlx connection to the same file
//! (multi-row INSERTs in key order, `trust_bin_totals` filled by one
//! `GROUP BY` over the bins, secondary indexes dropped and recreated with the
//! migration's own statements, journal and sync off during the load). The
//! bench first proves the loader faithful on 2,000 members: the same data
//! through `insert_trust_receipts` gives identical tables (bin totals
//! included) and schema.
//!
//! Then, in cycles: the store reopened (`me2b_storage::open`; before issue 14
//! it ran `PRAGMA quick_check`, now `me2b check` does) and the file dropped from the OS page cache
//! (`dd iflag=nocache count=0`, i.e. `posix_fadvise(DONTNEED)`), and the path
//! the service runs for `Histogram { by: Category }` timed **cold** (the first
//! run) and **warm** (the following runs): `trust_bin_counts(scope, Category)`
//! (which reads `trust_bin_totals`), counts laid out over the 470 labels,
//! `insights::histogram(OpenDpNoise, …, 5, ε = 1, min cohort 20)`. Then on a
//! fresh connection, the file evicted before each cold run: the same
//! `trust_bin_totals` query cold (a check that the store's cold run owes
//! nothing to SQLite's own page cache), and for comparison the path as it was
//! before `trust_bin_totals` (`SELECT value, COUNT(*) FROM trust_bins WHERE
//! scope = ? AND dim = 1 GROUP BY value`, then the same lay-out and noise),
//! cold and warm.
//!
//! `ME2B_BENCH_EVENTS` sets the number of events (default 10,000,000; members =
//! events / 10). `ME2B_BENCH_DIR` puts the database there instead of a
//! temporary directory (kept, and reused when it already holds the same data
//! loaded by this version of the bench).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_domain::meta::MetaTable;
use me2b_domain::org::OrgKind;
use me2b_domain::{OrgId, Timestamp, TrustReceiptId};
use me2b_dp::mechanisms::histogram;
use me2b_dp::OpenDpNoise;
use me2b_storage::{pack_area, OrgRow, Store, TrustDim, TrustReceiptRow};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

mod common;
use common::{Cdf, AREAS};

const SEED: u64 = 0x6d65_3262_6869_7374; // "me2bhist"
const CATEGORIES: usize = 470;
const RECEIPT_ITEMS: [usize; 3] = [3, 3, 4];
const MAX_VALUES: usize = 5;
const MIN_COHORT: u64 = 20;
const EPSILON: f64 = 1.0;
const COLD_RUNS: usize = 3;
const WARM_RUNS: usize = 10;
/// First day of the year of receipts (2025-11-23), days since the epoch.
const FIRST_DAY: i32 = 20_415;
/// A whole hour: receipts are stored with the hour they arrived (issue 13).
const CREATED_AT: Timestamp = Timestamp::from_unix_millis(1_794_999_600_000);
/// One receipt, compactly. Items beyond `n` are unused.
#[derive(Clone, Copy)]
struct Rec {
    id: [u8; 16],
    member: u32,
    day: i32,
    area: u8,
    n: u8,
    items: [(u16, u32); 4],
}

impl Rec {
    fn items(&self) -> &[(u16, u32)] {
        &self.items[..usize::from(self.n)]
    }
    fn amount(&self) -> i64 {
        self.items().iter().map(|(_, a)| i64::from(*a)).sum()
    }
}

/// The generated data and the per-member aggregates it implies.
struct Data {
    tags: Vec<[u8; 32]>,
    /// Each member's receipts in arrival order, member after member.
    receipts: Vec<Rec>,
    /// Per member: total spend and receipts.
    totals: Vec<(i64, i64)>,
    /// (dim, value, member) of every bin, as the row-by-row insert keeps them.
    bins: Vec<(i64, i64, u32)>,
}

fn generate(members: usize, seed: u64) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    // Category ids 1..=470, popularity by rank, ranks shuffled over the ids.
    let mut by_rank: Vec<u16> = (1..=CATEGORIES as u16).collect();
    for i in (1..by_rank.len()).rev() {
        let j = rng.random_range(0..=i);
        by_rank.swap(i, j);
    }
    let popularity = Cdf::new((1..=CATEGORIES).map(|r| 1.0 / r as f64));
    let areas = Cdf::new(AREAS.iter().map(|(_, w)| *w));
    let mut tags = Vec::with_capacity(members);
    let mut receipts = Vec::with_capacity(members * RECEIPT_ITEMS.len());
    for m in 0..members {
        let mut tag = [0u8; 32];
        rng.fill(&mut tag);
        tags.push(tag);
        let home = areas.draw(&mut rng) as u8;
        let mut days: Vec<i32> = RECEIPT_ITEMS
            .iter()
            .map(|_| FIRST_DAY + rng.random_range(0..365))
            .collect();
        days.sort_unstable();
        for (n, day) in RECEIPT_ITEMS.iter().zip(days) {
            let mut id = [0u8; 16];
            rng.fill(&mut id);
            // A version 4 UUID, as TrustReceiptId::generate makes.
            id[6] = (id[6] & 0x0f) | 0x40;
            id[8] = (id[8] & 0x3f) | 0x80;
            let area = if rng.random_bool(0.85) {
                home
            } else {
                areas.draw(&mut rng) as u8
            };
            let mut items = [(0u16, 0u32); 4];
            for item in items.iter_mut().take(*n) {
                *item = (
                    by_rank[popularity.draw(&mut rng)],
                    rng.random_range(50..5_000),
                );
            }
            receipts.push(Rec {
                id,
                member: m as u32,
                day,
                area,
                n: *n as u8,
                items,
            });
        }
    }
    // The aggregates, with exactly the rules of insert_trust_receipts: per
    // receipt its distinct (dim, value)s in (dim, value) order; a value enters
    // unless the member has it or already has MAX_VALUES in that dimension.
    let mut totals = vec![(0i64, 0i64); members];
    let mut bins = Vec::with_capacity(members * (MAX_VALUES + 2));
    let mut present: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    let mut last_member = u32::MAX;
    for r in &receipts {
        if r.member != last_member {
            last_member = r.member;
            present[0].clear();
            present[1].clear();
        }
        let t = &mut totals[r.member as usize];
        t.0 += r.amount();
        t.1 += 1;
        let mut values: Vec<(i64, i64)> = r
            .items()
            .iter()
            .map(|(c, _)| (TrustDim::Category as i64, i64::from(*c)))
            .collect();
        values.push((
            TrustDim::Area as i64,
            pack_area(AREAS[usize::from(r.area)].0),
        ));
        values.sort_unstable();
        values.dedup();
        for (dim, value) in values {
            let have = &mut present[usize::from(dim == TrustDim::Area as i64)];
            if have.contains(&value) || have.len() >= MAX_VALUES {
                continue;
            }
            have.push(value);
            bins.push((dim, value, r.member));
        }
    }
    Data {
        tags,
        receipts,
        totals,
        bins,
    }
}

fn url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("trust.sqlite3").display())
}

fn org() -> OrgRow {
    OrgRow {
        id: OrgId::generate(&me2b_crypto::SeededRandom::new(SEED)),
        name: "Bench Co-op".into(),
        kind: OrgKind::Coop,
        created_at: CREATED_AT,
        deleted_at: None,
    }
}

/// A fresh store with the schema and the one organisation.
async fn fresh(dir: &Path) -> Arc<dyn Store> {
    std::fs::create_dir_all(dir).unwrap();
    let store = me2b_storage::open(&url(dir)).await.unwrap();
    store.set_metadata_keys(me2b_testkit::metadata_keys());
    store.insert_org(&org()).await.unwrap();
    store
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// The secondary indexes the load drops and recreates, as the migration makes them.
const INDEXES: [(&str, &str); 2] = [
    (
        "trust_receipts_by_member",
        "CREATE INDEX trust_receipts_by_member ON trust_receipts (org_id, tag)",
    ),
    (
        "trust_bins_by_member",
        "CREATE INDEX trust_bins_by_member ON trust_bins (scope, tag)",
    ),
];

/// Bulk-loads `data` into the (closed) store at `dir`. Prints each step's time.
async fn bulk_load(dir: &Path, data: &Data, verbose: bool) -> f64 {
    let start = Instant::now();
    let mut conn = SqliteConnectOptions::from_str(&url(dir))
        .unwrap()
        .journal_mode(SqliteJournalMode::Off)
        .synchronous(SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-1048576")
        .connect()
        .await
        .unwrap();
    let org = org();
    let scope = org.id.to_string();
    // Receipts are stored under the tag scoped to the co-op (issue 13).
    let keys = me2b_testkit::metadata_keys();
    let scoped: Vec<[u8; 32]> = data
        .tags
        .iter()
        .map(|t| keys.scoped_tag(MetaTable::TrustReceipts, t, org.id.as_bytes()))
        .collect();
    let org_hex = hex::encode(org.id.as_bytes());
    let step = |name: &str, t: Instant, rows: usize| {
        if verbose {
            let s = secs(t);
            println!("| {name} | {rows} | {s:.1} | {:.0} |", rows as f64 / s);
        }
    };
    if verbose {
        println!("| load step | rows | s | rows/s |");
        println!("| --- | ---: | ---: | ---: |");
    }
    for (name, _) in INDEXES {
        sqlx::query(&format!("DROP INDEX {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // Receipts and their items in receipt-id order: appends to every b-tree.
    let mut order: Vec<u32> = (0..data.receipts.len() as u32).collect();
    order.sort_unstable_by_key(|i| data.receipts[*i as usize].id);
    let t = Instant::now();
    for chunk in order.chunks(100_000) {
        let mut tx = conn.begin().await.unwrap();
        for rows in chunk.chunks(2_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO trust_receipts (receipt_id, org_id, tag, source_ct, research_ct, day, area, amount_cents, created_at, tag_scoped) ",
            );
            q.push_values(rows, |mut b, i| {
                let r = &data.receipts[*i as usize];
                b.push_bind(&r.id[..])
                    .push(format!("X'{org_hex}'"))
                    .push_bind(&scoped[r.member as usize][..])
                    .push("randomblob(64)")
                    .push("randomblob(64)")
                    .push_bind(r.day)
                    .push_bind(AREAS[usize::from(r.area)].0)
                    .push_bind(r.amount())
                    .push(CREATED_AT.unix_millis())
                    .push("1");
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    step("trust_receipts", t, order.len());
    let t = Instant::now();
    let mut events = 0;
    for chunk in order.chunks(100_000) {
        let mut tx = conn.begin().await.unwrap();
        let items: Vec<(&[u8], i64, u16, u32)> = chunk
            .iter()
            .flat_map(|i| {
                let r = &data.receipts[*i as usize];
                r.items()
                    .iter()
                    .zip(0i64..)
                    .map(move |((c, a), n)| (&r.id[..], n, *c, *a))
            })
            .collect();
        events += items.len();
        for rows in items.chunks(5_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO trust_events (receipt_id, item, category, amount_cents) ",
            );
            q.push_values(rows, |mut b, (id, n, c, a)| {
                b.push_bind(*id)
                    .push_bind(*n)
                    .push_bind(i64::from(*c))
                    .push_bind(i64::from(*a));
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    step("trust_events", t, events);
    // Per-member totals and bins, for the co-op's scope and for `*`, each
    // under the tag scoped to the scope (issue 13), in key order; a co-op
    // scope's row with the tag sealed to it (as storage binds it: the
    // scope and the stored tag).
    let t = Instant::now();
    let mut tx = conn.begin().await.unwrap();
    for s in [scope.as_str(), "*"] {
        let stored: Vec<[u8; 32]> = data
            .tags
            .iter()
            .map(|t| keys.scoped_tag(MetaTable::TrustMembers, t, s.as_bytes()))
            .collect();
        let mut by_tag: Vec<u32> = (0..data.tags.len() as u32).collect();
        by_tag.sort_unstable_by_key(|m| stored[*m as usize]);
        for rows in by_tag.chunks(5_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO trust_members (scope, tag, total_cents, receipts, tag_ct, tag_scoped) ",
            );
            q.push_values(rows, |mut b, m| {
                // A `*` row keeps no totals (adv8).
                let (total, n) = match s {
                    "*" => (0, 0),
                    _ => data.totals[*m as usize],
                };
                let st = &stored[*m as usize];
                let sealed = (s != "*").then(|| {
                    let mut row = b"tag\0".to_vec();
                    row.extend_from_slice(s.as_bytes());
                    row.push(0);
                    row.extend_from_slice(st);
                    keys.seal(MetaTable::TrustMembers, &row, &data.tags[*m as usize])
                });
                b.push_bind(s)
                    .push_bind(&st[..])
                    .push_bind(total)
                    .push_bind(n)
                    .push_bind(sealed)
                    .push("1");
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    step("trust_members (both scopes)", t, 2 * data.tags.len());
    let t = Instant::now();
    // Bins for the co-op's scope only: `*` keeps none (adv8).
    {
        let s = scope.as_str();
        let stored: Vec<[u8; 32]> = data
            .tags
            .iter()
            .map(|t| keys.scoped_tag(MetaTable::TrustMembers, t, s.as_bytes()))
            .collect();
        let mut bins: Vec<&(i64, i64, u32)> = data.bins.iter().collect();
        bins.sort_unstable_by(|a, b| {
            (a.0, a.1, &stored[a.2 as usize]).cmp(&(b.0, b.1, &stored[b.2 as usize]))
        });
        for chunk in bins.chunks(500_000) {
            let mut tx = conn.begin().await.unwrap();
            for rows in chunk.chunks(5_000) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO trust_bins (scope, dim, value, tag, tag_scoped) ",
                );
                q.push_values(rows, |mut b, (dim, value, m)| {
                    b.push_bind(s)
                        .push_bind(*dim)
                        .push_bind(*value)
                        .push_bind(&stored[*m as usize][..])
                        .push("1");
                });
                q.build().execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
    step("trust_bins (the co-op's scope)", t, data.bins.len());
    // Members per (scope, dim, value), as insert_trust_receipts keeps them.
    let t = Instant::now();
    let totals = sqlx::query(
        "INSERT INTO trust_bin_totals (scope, dim, value, members) \
         SELECT scope, dim, value, COUNT(*) FROM trust_bins GROUP BY scope, dim, value",
    )
    .execute(&mut conn)
    .await
    .unwrap()
    .rows_affected();
    step("trust_bin_totals (the co-op's scope)", t, totals as usize);
    for (name, sql) in INDEXES {
        let t = Instant::now();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
        step(&format!("CREATE INDEX {name}"), t, 0);
    }
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    secs(start)
}

/// The same data through `insert_trust_receipts`, in arrival order, batches of 1,000.
async fn load_row_by_row(store: &Arc<dyn Store>, data: &Data) {
    let org = org().id;
    let rows: Vec<TrustReceiptRow> = data
        .receipts
        .iter()
        .map(|r| TrustReceiptRow {
            id: TrustReceiptId::from_slice(&r.id).unwrap(),
            org,
            tag: data.tags[r.member as usize],
            source_ct: vec![0; 64],
            research_ct: vec![0; 64],
            day: r.day,
            area: AREAS[usize::from(r.area)].0.to_owned(),
            amount_cents: r.amount(),
            created_at: CREATED_AT,
            items: r
                .items()
                .iter()
                .map(|(c, a)| (i64::from(*c), i64::from(*a)))
                .collect(),
        })
        .collect();
    for b in rows.chunks(1_000) {
        store
            .insert_trust_receipts(b, MAX_VALUES as u32)
            .await
            .unwrap();
    }
}

/// Everything but the ciphertexts, sorted, and the schema.
async fn dump(dir: &Path) -> Vec<String> {
    let mut conn = SqliteConnection::connect(&url(dir)).await.unwrap();
    let mut out = Vec::new();
    for q in [
        "SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
        "SELECT hex(receipt_id) || hex(org_id) || hex(tag) || ' ' || day || ' ' || area || ' ' || amount_cents || ' ' || created_at || ' ' || length(source_ct) || ' ' || length(research_ct) FROM trust_receipts ORDER BY receipt_id",
        "SELECT hex(receipt_id) || ' ' || item || ' ' || category || ' ' || amount_cents FROM trust_events ORDER BY receipt_id, item",
        "SELECT scope || ' ' || hex(tag) || ' ' || total_cents || ' ' || receipts || ' ' || tag_scoped || ' ' || (tag_ct IS NULL) FROM trust_members ORDER BY scope, tag",
        "SELECT scope || ' ' || dim || ' ' || value || ' ' || hex(tag) || ' ' || tag_scoped FROM trust_bins ORDER BY scope, dim, value, tag",
        "SELECT scope || ' ' || dim || ' ' || value || ' ' || members FROM trust_bin_totals ORDER BY scope, dim, value",
    ] {
        for row in sqlx::query(q).fetch_all(&mut conn).await.unwrap() {
            out.push(row.get::<String, _>(0));
        }
        out.push("--".into());
    }
    conn.close().await.unwrap();
    out
}

/// The bulk loader and insert_trust_receipts store the same thing.
async fn check_loader(root: &Path) {
    let data = generate(2_000, SEED ^ 1);
    let (a, b) = (root.join("check-bulk"), root.join("check-rows"));
    fresh(&a).await.close().await;
    bulk_load(&a, &data, false).await;
    let store = fresh(&b).await;
    load_row_by_row(&store, &data).await;
    store.close().await;
    let (da, db) = (dump(&a).await, dump(&b).await);
    assert!(da.len() > 30_000, "{}", da.len());
    assert!(
        da == db,
        "the bulk loader must store what insert_trust_receipts stores"
    );
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

/// What `trust_bin_counts` runs now: members per value kept in `trust_bin_totals`.
const TOTALS_SQL: &str =
    "SELECT value, members AS n FROM trust_bin_totals WHERE scope = $1 AND dim = $2 ORDER BY value";
/// What it ran before: members per value counted from the bins.
const COUNT_SQL: &str = "SELECT value, COUNT(*) AS n FROM trust_bins WHERE scope = $1 AND dim = $2 GROUP BY value ORDER BY value";

/// The histogram asked for: scope, the 470 labels and values, and the number
/// of category bins the counts must add up to.
struct Ask {
    scope: String,
    labels: Vec<String>,
    values: Vec<i64>,
    total: u64,
}

struct Timing {
    /// The release charged by the accountant (service path only).
    charge: f64,
    /// The counts fetched and laid out over the labels.
    sql: f64,
    /// The DP histogram.
    dp: f64,
}

/// The service's steps after the fetch: the counts laid out over the labels
/// (timed with the fetch, from `start`), then the DP histogram.
fn lay_out_and_noise(found: Vec<(i64, u64)>, start: Instant, ask: &Ask) -> Timing {
    let found: HashMap<i64, u64> = found.into_iter().collect();
    let counts: Vec<u64> = ask
        .values
        .iter()
        .map(|v| found.get(v).copied().unwrap_or(0))
        .collect();
    let sql = secs(start);
    let t = Instant::now();
    let h = histogram(
        &OpenDpNoise,
        &ask.labels,
        &counts,
        MAX_VALUES as u32,
        EPSILON,
        MIN_COHORT,
    )
    .unwrap();
    let dp = secs(t);
    assert_eq!(counts.iter().sum::<u64>(), ask.total);
    assert_eq!(h.bins.len(), CATEGORIES);
    std::hint::black_box(h);
    Timing {
        charge: 0.0,
        sql,
        dp,
    }
}

/// The accountant the service charges every release to, over `store`.
async fn accountant(store: &Arc<dyn Store>, dir: &Path) -> me2b_dp::Accountant {
    let clock = Arc::new(me2b_domain::SystemClock);
    let (master, _) = me2b_crypto::MasterKey::load_or_create(
        &dir.join("bench-master.key"),
        &me2b_crypto::SeededRandom::new(1),
    )
    .unwrap();
    let keys = Arc::new(me2b_crypto::Keyring::derive(&master));
    let audit = me2b_audit::AuditLog::start(store.clone(), clock.clone(), keys, 1000)
        .await
        .unwrap();
    let mut g = me2b_dp::PrivacyGovernance::default();
    g.pools.trust_coop.epsilon_per_period = 1_000_000.0;
    g.pools.trust_coop.lifetime = 1_000_000.0;
    me2b_dp::Accountant::new(store.clone(), audit, clock, g).unwrap()
}

/// The service's histogram path: the release charged to the co-op's pool,
/// `trust_bin_counts`, laid out, DP noise.
async fn service_path(store: &Arc<dyn Store>, acc: &me2b_dp::Accountant, ask: &Ask) -> Timing {
    let t = Instant::now();
    acc.charge(me2b_dp::Release {
        asker: org().id,
        pools: vec![me2b_dp::Pool::TrustCoop(org().id)],
        epsilon: EPSILON,
        mechanism: "discrete Laplace (OpenDP)".into(),
        what: "trust histogram".into(),
    })
    .await
    .unwrap();
    let charge = secs(t);
    let t = Instant::now();
    let found = store
        .trust_bin_counts(&ask.scope, TrustDim::Category)
        .await
        .unwrap();
    Timing {
        charge,
        ..lay_out_and_noise(found, t, ask)
    }
}

/// The same path with `sql` run on a raw connection.
async fn sql_path(conn: &mut SqliteConnection, sql: &str, ask: &Ask) -> Timing {
    let t = Instant::now();
    let found = sqlx::query(sql)
        .bind(ask.scope.as_str())
        .bind(TrustDim::Category as i64)
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("value"), r.get::<i64, _>("n") as u64))
        .collect();
    lay_out_and_noise(found, t, ask)
}

/// A connection to the file, opened as the store opens it, with the schema read.
async fn connect(dir: &Path) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::from_str(&url(dir))
        .unwrap()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("SELECT COUNT(*) FROM sqlite_master")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn
}

/// Timings of one case over the runs.
#[derive(Default)]
struct Series {
    total: Vec<f64>,
    sql: Vec<f64>,
    charge: Vec<f64>,
}

impl Series {
    fn push(&mut self, t: &Timing, dps: &mut Vec<f64>) {
        self.total.push(t.charge + t.sql + t.dp);
        self.sql.push(t.sql);
        self.charge.push(t.charge);
        dps.push(t.dp);
    }
}

fn evict(file: &Path) {
    let ok = std::process::Command::new("dd")
        .arg(format!("if={}", file.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "dd iflag=nocache failed");
}

/// MiB of the file in the OS page cache, when `fincore` is there.
fn resident_mib(file: &Path) -> Option<f64> {
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(file)
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    s.trim().parse::<f64>().ok().map(|b| b / 1_048_576.0)
}

fn stats(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    (s[s.len() / 2], s[s.len() - 1])
}

fn main() {
    let events: usize = std::env::var("ME2B_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let members = events / 10;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let temp = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("ME2B_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| temp.path().join("db"));
    let file = dir.join("trust.sqlite3");
    let marker = dir.join(format!("loaded-{events}-{SEED:x}-with-bin-totals"));

    let t = Instant::now();
    rt.block_on(check_loader(temp.path()));
    println!(
        "loader check: 2,000 members (20,000 events) bulk-loaded and through insert_trust_receipts give identical tables and schema ({:.1} s)",
        secs(t)
    );

    let t = Instant::now();
    let data = generate(members, SEED);
    let generated = secs(t);
    let category_bins = data
        .bins
        .iter()
        .filter(|b| b.0 == TrustDim::Category as i64)
        .count() as u64;
    println!(
        "generated {members} members, {} receipts, {} events, {} bins per scope ({category_bins} by category) in {generated:.1} s",
        data.receipts.len(),
        data.receipts.iter().map(|r| usize::from(r.n)).sum::<usize>(),
        data.bins.len(),
    );
    if marker.exists() {
        println!("reusing the database loaded before in {}", dir.display());
    } else {
        std::fs::create_dir_all(&dir).unwrap();
        rt.block_on(async { fresh(&dir).await.close().await });
        println!();
        let load = rt.block_on(bulk_load(&dir, &data, true));
        println!();
        println!("bulk load: {load:.1} s in all");
        std::fs::write(&marker, b"").unwrap();
    }
    drop(data);
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
    println!(
        "database file: {:.0} MiB (+ WAL {:.0} MiB)",
        size(&file),
        size(&dir.join("trust.sqlite3-wal"))
    );

    let values: Vec<i64> = (1..=CATEGORIES as i64).collect();
    let ask = Ask {
        scope: org().id.to_string(),
        labels: values.iter().map(|v| format!("topic-{v}")).collect(),
        values,
        total: category_bins,
    };
    rt.block_on(async {
        let mut conn = SqliteConnection::connect(&url(&dir)).await.unwrap();
        for (name, sql) in [("trust_bin_counts", TOTALS_SQL), ("before", COUNT_SQL)] {
            let plan = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind(ask.scope.as_str())
                .bind(TrustDim::Category as i64)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            for r in plan {
                println!("query plan ({name}): {}", r.get::<String, _>("detail"));
            }
        }
        let t = Instant::now();
        let sizes = sqlx::query(
            "SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        println!();
        println!("| table or index | MiB |");
        println!("| --- | ---: |");
        for r in &sizes {
            let (name, bytes) = (r.get::<String, _>("name"), r.get::<i64, _>("bytes"));
            if bytes >= 50 << 20
                || name.starts_with("trust_bin_totals")
                || name.contains("autoindex_trust_bin_totals")
            {
                println!("| {name} | {:.2} |", bytes as f64 / 1_048_576.0);
            }
        }
        println!("(dbstat took {:.1} s)", secs(t));
        conn.close().await.unwrap();
    });

    // Each cycle: the store reopened (as a node opens it), the file evicted,
    // the service's path cold then warm; a fresh connection, the file evicted,
    // the same totals SQL cold; the file evicted, the previous SQL cold then warm.
    let (mut service_cold, mut service_warm, mut fresh_cold, mut before_cold, mut before_warm) = (
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
    );
    let (mut dps, mut opens) = (Vec::new(), Vec::new());
    let mut cache_note = String::new();
    for _ in 0..COLD_RUNS {
        rt.block_on(async {
            let t = Instant::now();
            let store = me2b_storage::open(&url(&dir)).await.unwrap();
            opens.push(secs(t));
            let acc = accountant(&store, &dir).await;
            let before = resident_mib(&file);
            evict(&file);
            let after = resident_mib(&file);
            if let (Some(b), Some(a)) = (before, after) {
                cache_note = format!("page cache before/after eviction: {b:.0}/{a:.0} MiB");
            }
            service_cold.push(&service_path(&store, &acc, &ask).await, &mut dps);
            for _ in 0..WARM_RUNS {
                service_warm.push(&service_path(&store, &acc, &ask).await, &mut dps);
            }
            store.close().await;
            let mut conn = connect(&dir).await;
            evict(&file);
            fresh_cold.push(&sql_path(&mut conn, TOTALS_SQL, &ask).await, &mut dps);
            evict(&file);
            before_cold.push(&sql_path(&mut conn, COUNT_SQL, &ask).await, &mut dps);
            for _ in 0..WARM_RUNS {
                before_warm.push(&sql_path(&mut conn, COUNT_SQL, &ask).await, &mut dps);
            }
            conn.close().await.unwrap();
        });
    }
    let (om, _) = stats(&opens);
    println!();
    println!("store open: median {om:.1} s; {cache_note}");
    println!();
    println!("| histogram, 470 bins, {events} events | case | runs | median ms | max ms | of which the accountant's charge (median) ms | of which SQL + lay-out (median) ms |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for (path, case, s) in [
        (
            "service: accountant charge + trust_bin_counts (trust_bin_totals) + DP",
            "cold (store reopened, file evicted)",
            &service_cold,
        ),
        (
            "service: accountant charge + trust_bin_counts (trust_bin_totals) + DP",
            "warm",
            &service_warm,
        ),
        (
            "trust_bin_totals SQL on a fresh connection + DP",
            "cold (file evicted)",
            &fresh_cold,
        ),
        (
            "before: COUNT(*) over trust_bins + DP",
            "cold (file evicted)",
            &before_cold,
        ),
        (
            "before: COUNT(*) over trust_bins + DP",
            "warm",
            &before_warm,
        ),
    ] {
        let (m, x) = stats(&s.total);
        let (sm, _) = stats(&s.sql);
        let charge = if s.charge.iter().any(|c| *c > 0.0) {
            format!("{:.2}", stats(&s.charge).0 * 1e3)
        } else {
            "(none)".into()
        };
        println!(
            "| {path} | {case} | {} | {:.2} | {:.2} | {charge} | {:.2} |",
            s.total.len(),
            m * 1e3,
            x * 1e3,
            sm * 1e3
        );
    }
    let (dm, dx) = stats(&dps);
    println!(
        "DP noise over 470 bins (OpenDP): median {:.2} ms, max {:.2} ms",
        dm * 1e3,
        dx * 1e3
    );
    if kept.is_none() {
        drop(temp);
    }
}
