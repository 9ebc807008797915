//! Receipt ingest (pseudonymise + store, on SQLite) next to raw libpep
//! pseudonymisation, measured alternately in one run (issue 6). Run with
//!
//!     cargo bench -p me2b-trust --bench ingest
//!
//! * **raw**: per receipt, exactly the cryptography ingest does: encrypt the
//!   co-op's pseudonym for the co-op's domain, the chain of three in-process
//!   transcryptors co-op → `trust:research`, decrypt. A plain loop on one
//!   thread, calling the library directly.
//! * **ingest**: a real node (`Node::open`, SQLite in a temporary directory,
//!   three in-process transcryptors) and `node.trust.submit(org, batch)` in
//!   batches of 1,000 receipts with 3 items each, under the cards of 1,000
//!   signed-up members. Only the submit calls are timed: checks, encryption, the
//!   chain (each step on a blocking thread, with its durable audit entry), the
//!   keyed hash, the durable insert of receipts, items and per-member bins, and
//!   the submission's audit entry.
//! * **replica**: `submit` redone step by step from the crate's public pieces
//!   (its own three audited in-process links, the node's keyring, store and
//!   audit log), so its phases can be timed; once with `insert_trust_receipts`
//!   (it should match ingest) and once with `insert_batched`, a prototype in
//!   this file of a batched insert that stores the same rows (checked at
//!   start-up against `insert_trust_receipts` on 3,000 receipts). That gives a
//!   measured figure for ingest with the batched insert, without touching the
//!   storage crate.
//! * **store alone**: `insert_trust_receipts` and the prototype with the same
//!   shape of rows (random ciphertext bytes).
//!
//! Rounds alternate all of them so they see the same machine state; medians
//! over the rounds are reported. Besides wall-clock receipts/s the bench
//! reports process CPU time per receipt (all threads, from `/proc/self/stat`),
//! for the "per core" ratio. It ends with the pseudonymisation's steps one by
//! one.
//!
//! `ME2B_BENCH_RECEIPTS` sets receipts per run (default 10,000, a multiple of
//! 1,000 is best).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_crypto::{PassphraseParams, SeededRandom};
use me2b_domain::audit::{Action, Actor, AuditEvent, Outcome};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::{MemberId, OrgId, SystemClock, Timestamp, TrustReceiptId};
use me2b_node::{Node, NodeConfig};
use me2b_offers::Taxonomy;
use me2b_storage::{pack_area, TrustDim, TrustReceiptRow};
use me2b_trust::link::{run_chain, LocalLink, TranscryptorLink};
use me2b_trust::policy::Policy;
use me2b_trust::pseudonym::{
    chain, setup, DomainClient, ElGamalEncryptable, ElGamalEncrypted, Pseudonym, Transcryptor,
    ORIGIN, RESEARCH,
};
use me2b_trust::service::{coop_domain, ItemIn, ReceiptIn};
use me2b_trust::wire::{Item, TranscryptRequest};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEED: u64 = 0x6d65_3262_7472_7374; // "me2btrst"
const BATCH: usize = 1_000;
const ITEMS: usize = 3;
const MEMBERS: usize = 1_000;
const ROUNDS: usize = 3;
/// The governance config's default areas, weighted by population (millions).
const AREAS: [(&str, f64); 12] = [
    ("NL-ZH", 3.8),
    ("NL-NH", 2.9),
    ("NL-NB", 2.6),
    ("NL-GE", 2.1),
    ("NL-UT", 1.4),
    ("NL-OV", 1.2),
    ("NL-LI", 1.1),
    ("NL-FR", 0.65),
    ("NL-GR", 0.59),
    ("NL-DR", 0.5),
    ("NL-FL", 0.44),
    ("NL-ZE", 0.39),
];

/// Process CPU time (user + system, all threads, dead ones included), seconds.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 (utime, stime) in USER_HZ (100 on Linux).
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// A cumulative distribution to draw indices from.
struct Cdf(Vec<f64>);

impl Cdf {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut acc = 0.0;
        let mut v: Vec<f64> = weights
            .into_iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        for x in &mut v {
            *x /= acc;
        }
        Self(v)
    }

    fn draw(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        self.0.partition_point(|c| *c < u).min(self.0.len() - 1)
    }
}

/// Categories (slug, taxonomy id) with Zipf-like popularity, and areas.
struct Shape {
    categories: Vec<(String, i64)>,
    popularity: Cdf,
    areas: Cdf,
}

impl Shape {
    fn new(rng: &mut StdRng) -> Self {
        let mut categories: Vec<(String, i64)> = Taxonomy::shipped()
            .unwrap()
            .topics()
            .iter()
            .filter(|t| t.sensitive.is_none())
            .map(|t| (t.slug.clone(), i64::from(t.id)))
            .collect();
        // Popularity by rank, ranks shuffled over the taxonomy.
        for i in (1..categories.len()).rev() {
            let j = rng.random_range(0..=i);
            categories.swap(i, j);
        }
        let popularity = Cdf::new((1..=categories.len()).map(|r| 1.0 / r as f64));
        let areas = Cdf::new(AREAS.iter().map(|(_, w)| *w));
        Self {
            categories,
            popularity,
            areas,
        }
    }

    /// (category index, amount) for one receipt's items.
    fn items(&self, rng: &mut StdRng) -> Vec<(usize, i64)> {
        (0..ITEMS)
            .map(|_| (self.popularity.draw(rng), rng.random_range(50..5_000)))
            .collect()
    }
}

/// The raw side: its own federation of three transcryptors, a co-op domain and
/// the co-op's pseudonyms of 1,000 members.
struct Raw {
    ts: Vec<Transcryptor>,
    coop: DomainClient,
    research: DomainClient,
    domain: String,
    members: Vec<Pseudonym>,
}

impl Raw {
    fn new(rng: &mut StdRng) -> Self {
        let (fed, secrets) = setup(3, rng);
        let policy = Policy::standard(None);
        let ts: Vec<Transcryptor> = secrets
            .into_iter()
            .map(|s| Transcryptor::with_policy(s, policy.clone()))
            .collect();
        let client = |d: &str| {
            let shares: Vec<_> = ts.iter().map(|t| t.share(d).unwrap()).collect();
            fed.client(&shares)
        };
        let domain = coop_domain(OrgId::generate(&SeededRandom::new(SEED)));
        let coop = client(&domain);
        let research = client(RESEARCH);
        let members = (0..MEMBERS)
            .map(|_| {
                let e = fed.enrol(rng);
                let ct = chain(&ts, &e, fed.origin_key(), ORIGIN, &domain, rng).unwrap();
                coop.decrypt(&ct)
            })
            .collect();
        Self {
            ts,
            coop,
            research,
            domain,
            members,
        }
    }

    /// Per receipt: encrypt for the co-op domain, the chain of three into the
    /// research domain, decrypt. Returns the elapsed seconds.
    fn run(&self, n: usize, rng: &mut StdRng) -> f64 {
        let start = Instant::now();
        for i in 0..n {
            let p = &self.members[i % MEMBERS];
            let ct = self.coop.encrypt_pseudonym(p, rng);
            let out = chain(&self.ts, &ct, self.coop.key(), &self.domain, RESEARCH, rng).unwrap();
            black_box(self.research.decrypt(&out));
        }
        start.elapsed().as_secs_f64()
    }
}

fn receipts(
    shape: &Shape,
    cards: &[String],
    days: &[String],
    n: usize,
    rng: &mut StdRng,
) -> Vec<ReceiptIn> {
    (0..n)
        .map(|_| ReceiptIn {
            pseudonym: cards[rng.random_range(0..cards.len())].clone(),
            day: Some(days[rng.random_range(0..days.len())].clone()),
            at: None,
            area: AREAS[shape.areas.draw(rng)].0.to_owned(),
            items: shape
                .items(rng)
                .into_iter()
                .map(|(c, amount_cents)| ItemIn {
                    category: shape.categories[c].0.clone(),
                    amount_cents,
                })
                .collect(),
            amount_cents: None,
        })
        .collect()
}

fn store_rows(
    shape: &Shape,
    org: OrgId,
    tags: &[[u8; 32]],
    n: usize,
    rng: &mut StdRng,
) -> Vec<TrustReceiptRow> {
    let ids = SeededRandom::new(rng.random());
    (0..n)
        .map(|_| {
            let mut source_ct = vec![0u8; 64];
            let mut research_ct = vec![0u8; 64];
            rng.fill(&mut source_ct[..]);
            rng.fill(&mut research_ct[..]);
            let items: Vec<(i64, i64)> = shape
                .items(rng)
                .into_iter()
                .map(|(c, a)| (shape.categories[c].1, a))
                .collect();
            TrustReceiptRow {
                id: TrustReceiptId::generate(&ids),
                org,
                tag: tags[rng.random_range(0..tags.len())],
                source_ct,
                research_ct,
                day: 20_400 + rng.random_range(0..30),
                area: AREAS[shape.areas.draw(rng)].0.to_owned(),
                amount_cents: items.iter().map(|(_, a)| a).sum(),
                created_at: Timestamp::from_unix_millis(1_795_000_000_000),
                items,
            }
        })
        .collect()
}

/// A prototype of `insert_trust_receipts` with the same result in a handful of
/// statements per batch instead of ~22 per receipt: multi-row INSERTs for
/// receipts and items, per-member totals summed in memory and upserted once,
/// and the bins' cap decided in memory after one read of the batch's members'
/// present values. Used only to put a figure on that change.
async fn insert_batched(
    pool: &SqlitePool,
    rows: &[TrustReceiptRow],
    max_values: u32,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(3_000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO trust_receipts (receipt_id, org_id, tag, source_ct, research_ct, day, area, amount_cents, created_at) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.id.as_bytes().to_vec())
                .push_bind(r.org.as_bytes().to_vec())
                .push_bind(r.tag.to_vec())
                .push_bind(r.source_ct.clone())
                .push_bind(r.research_ct.clone())
                .push_bind(i64::from(r.day))
                .push_bind(r.area.clone())
                .push_bind(r.amount_cents)
                .push_bind(r.created_at.unix_millis());
        });
        q.build().execute(&mut *tx).await?;
    }
    let events: Vec<(&TrustReceiptRow, i64, i64)> = rows
        .iter()
        .flat_map(|r| r.items.iter().map(move |(c, a)| (r, *c, *a)))
        .collect();
    for chunk in events.chunks(10_000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO trust_events (receipt_id, category, amount_cents) ",
        );
        q.push_values(chunk, |mut b, (r, c, a)| {
            b.push_bind(r.id.as_bytes().to_vec())
                .push_bind(*c)
                .push_bind(*a);
        });
        q.build().execute(&mut *tx).await?;
    }
    // Per (scope, tag): summed spend and receipts of the batch.
    let mut members: BTreeMap<(String, [u8; 32]), (i64, i64)> = BTreeMap::new();
    for r in rows {
        for scope in [r.org.to_string(), "*".to_owned()] {
            let e = members.entry((scope, r.tag)).or_default();
            e.0 += r.amount_cents;
            e.1 += 1;
        }
    }
    let members: Vec<_> = members.into_iter().collect();
    for chunk in members.chunks(5_000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO trust_members (scope, tag, total_cents, receipts) ",
        );
        q.push_values(chunk, |mut b, ((scope, tag), (total, n))| {
            b.push_bind(scope.clone())
                .push_bind(tag.to_vec())
                .push_bind(*total)
                .push_bind(*n);
        });
        q.push(
            " ON CONFLICT (scope, tag) DO UPDATE SET total_cents = trust_members.total_cents + excluded.total_cents, \
             receipts = trust_members.receipts + excluded.receipts",
        );
        q.build().execute(&mut *tx).await?;
    }
    // The bins already present for the batch's members, then the same
    // first-come cap as the row-by-row insert, decided in memory.
    let mut present: HashMap<(String, i64, [u8; 32]), Vec<i64>> = HashMap::new();
    let mut by_scope: BTreeMap<String, Vec<[u8; 32]>> = BTreeMap::new();
    for r in rows {
        for scope in [r.org.to_string(), "*".to_owned()] {
            by_scope.entry(scope).or_default().push(r.tag);
        }
    }
    for (scope, mut tags) in by_scope {
        tags.sort_unstable();
        tags.dedup();
        for chunk in tags.chunks(2_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT dim, value, tag FROM trust_bins WHERE scope = ",
            );
            q.push_bind(scope.clone())
                .push(" AND dim IN (1, 2) AND tag IN (");
            let mut sep = q.separated(", ");
            for t in chunk {
                sep.push_bind(t.to_vec());
            }
            q.push(")");
            for row in q.build().fetch_all(&mut *tx).await? {
                let tag: Vec<u8> = row.try_get("tag")?;
                let tag: [u8; 32] = tag.try_into().map_err(|_| sqlx::Error::RowNotFound)?;
                present
                    .entry((scope.clone(), row.try_get("dim")?, tag))
                    .or_default()
                    .push(row.try_get("value")?);
            }
        }
    }
    let mut new_bins: Vec<(String, i64, i64, [u8; 32])> = Vec::new();
    for r in rows {
        let mut values: Vec<(TrustDim, i64)> = r
            .items
            .iter()
            .map(|(c, _)| (TrustDim::Category, *c))
            .collect();
        values.push((TrustDim::Area, pack_area(&r.area)));
        values.sort_by_key(|(d, v)| (*d as i64, *v));
        values.dedup();
        for scope in [r.org.to_string(), "*".to_owned()] {
            for (dim, value) in &values {
                let have = present
                    .entry((scope.clone(), *dim as i64, r.tag))
                    .or_default();
                if have.contains(value) || have.len() >= max_values as usize {
                    continue;
                }
                have.push(*value);
                new_bins.push((scope.clone(), *dim as i64, *value, r.tag));
            }
        }
    }
    for chunk in new_bins.chunks(5_000) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO trust_bins (scope, dim, value, tag) ");
        q.push_values(chunk, |mut b, (scope, dim, value, tag)| {
            b.push_bind(scope.clone())
                .push_bind(*dim)
                .push_bind(*value)
                .push_bind(tag.to_vec());
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Everything stored for one scope's members, sorted, for comparisons.
async fn scope_contents(
    pool: &SqlitePool,
    scope: &str,
) -> (Vec<(i64, i64, Vec<u8>)>, Vec<(Vec<u8>, i64, i64)>) {
    let bins = sqlx::query(
        "SELECT dim, value, tag FROM trust_bins WHERE scope = $1 ORDER BY dim, value, tag",
    )
    .bind(scope)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("dim"), r.get("value"), r.get("tag")))
    .collect();
    let members = sqlx::query(
        "SELECT tag, total_cents, receipts FROM trust_members WHERE scope = $1 ORDER BY tag",
    )
    .bind(scope)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("tag"), r.get("total_cents"), r.get("receipts")))
    .collect();
    (bins, members)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn fresh_tags(n: usize, rng: &mut StdRng) -> Vec<[u8; 32]> {
    (0..n)
        .map(|_| {
            let mut t = [0u8; 32];
            rng.fill(&mut t);
            t
        })
        .collect()
}

/// Seconds per item of `f` over `n` items, median of three runs.
fn per_item(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    median(&[f(), f(), f()]) / n as f64
}

fn main() {
    let n: usize = std::env::var("ME2B_BENCH_RECEIPTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let mut rng = StdRng::seed_from_u64(SEED);
    let shape = Shape::new(&mut rng);
    let days: Vec<String> = (1..=30).map(|d| format!("2026-11-{d:02}")).collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = NodeConfig::new(dir.path().join("data"));
    cfg.passphrase = PassphraseParams::INSECURE_FAST_FOR_TESTS;
    let setup_start = Instant::now();
    let node = rt
        .block_on(Node::open(
            &cfg,
            Arc::new(SystemClock),
            Arc::new(SeededRandom::new(SEED)),
        ))
        .unwrap();
    let create_org = |name: &str| {
        rt.block_on(node.orgs.create(
            Label::try_from(name).unwrap(),
            OrgKind::Coop,
            Roles::try_from(vec![Role::Insights]).unwrap(),
        ))
        .unwrap()
        .0
    };
    let org = create_org("Bench Co-op").id;
    let members: Vec<MemberId> = (0..MEMBERS)
        .map(|i| {
            rt.block_on(node.vault.sign_up(
                Email::parse(&format!("bench-{i}@example.org")).unwrap(),
                Passphrase::parse("bench passphrase".into()).unwrap(),
            ))
            .unwrap()
            .member
        })
        .collect();
    let cards: Vec<String> = members
        .iter()
        .map(|m| rt.block_on(node.trust.card(*m, org)).unwrap())
        .collect();
    let tags = fresh_tags(MEMBERS, &mut rng);
    // A second pool on the same file, opened as the store opens it, for the
    // batched-insert prototype.
    let pool = rt
        .block_on(
            SqlitePoolOptions::new().max_connections(1).connect_with(
                SqliteConnectOptions::from_str(&cfg.database_url())
                    .unwrap()
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("secure_delete", "ON"),
            ),
        )
        .unwrap();
    // The prototype stores exactly what insert_trust_receipts stores: the same
    // rows (200 members, so caps are reached) under two fresh co-ops.
    let (a, b) = (create_org("Check A").id, create_org("Check B").id);
    let check_tags = fresh_tags(200, &mut rng);
    let rows_a = store_rows(&shape, a, &check_tags, 3 * BATCH, &mut rng);
    let ids = SeededRandom::new(SEED + 1);
    let rows_b: Vec<TrustReceiptRow> = rows_a
        .iter()
        .map(|r| TrustReceiptRow {
            id: TrustReceiptId::generate(&ids),
            org: b,
            ..r.clone()
        })
        .collect();
    for (ra, rb) in rows_a.chunks(BATCH).zip(rows_b.chunks(BATCH)) {
        rt.block_on(node.store.insert_trust_receipts(ra, 5))
            .unwrap();
        rt.block_on(insert_batched(&pool, rb, 5)).unwrap();
    }
    let (ca, cb) = (
        rt.block_on(scope_contents(&pool, &a.to_string())),
        rt.block_on(scope_contents(&pool, &b.to_string())),
    );
    assert!(!ca.0.is_empty() && ca.0.len() < 200 * 6 * 2);
    assert_eq!(
        ca, cb,
        "the batched prototype stores what insert_trust_receipts stores"
    );

    // The pieces of submit, for the replica and the breakdown: a second set
    // of three in-process transcryptors (audited in the node's log) and the
    // co-op's and research domain's clients from their shares.
    let (fed, secrets) = setup(3, &mut rng);
    let links: Vec<Arc<dyn TranscryptorLink>> = secrets
        .into_iter()
        .enumerate()
        .map(|(k, sec)| {
            Arc::new(LocalLink::new(
                format!("bench-{}", k + 1),
                Transcryptor::with_policy(sec, Policy::standard(None)),
                node.clock.clone(),
                node.rng.clone(),
                Some(node.audit.clone()),
            )) as Arc<dyn TranscryptorLink>
        })
        .collect();
    let domain = coop_domain(org);
    let client = |d: &str| {
        let shares: Vec<_> = links
            .iter()
            .map(|l| rt.block_on(l.key_share("trust", d)).unwrap())
            .collect();
        fed.client(&shares)
    };
    let replica = Replica {
        coop: client(&domain),
        research: client(RESEARCH),
        links,
        domain,
        org,
        by_slug: shape.categories.iter().cloned().collect(),
        ids: SeededRandom::new(SEED + 2),
    };

    // Warm up every path once (domain clients, prepared statements, the raw world).
    let warm = receipts(&shape, &cards, &days, BATCH, &mut rng);
    rt.block_on(node.trust.submit(org, &warm)).unwrap();
    rt.block_on(replica.submit(&node, &warm, None, &mut rng));
    rt.block_on(replica.submit(&node, &warm, Some(&pool), &mut rng));
    let raw_world = Raw::new(&mut rng);
    raw_world.run(BATCH, &mut rng);
    println!(
        "setup: node, {MEMBERS} members signed up with cards, prototype check, warm-up: {:.1} s; {n} receipts of {ITEMS} items per run, batches of {BATCH}, {ROUNDS} rounds",
        setup_start.elapsed().as_secs_f64()
    );
    println!();
    println!("| round | raw | ingest (submit) | replica, row-by-row insert | replica, batched insert | store alone | store alone, batched | raw CPU ms | ingest CPU ms | replica batched CPU ms |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut m = Measured::default();
    for round in 1..=ROUNDS {
        let c0 = cpu_seconds();
        let secs = raw_world.run(n, &mut rng);
        m.raw_cpu.push((cpu_seconds() - c0) / n as f64);
        m.raw.push(n as f64 / secs);

        let batch = receipts(&shape, &cards, &days, n, &mut rng);
        let (mut wall, mut cpu) = (0.0, 0.0);
        for b in batch.chunks(BATCH) {
            let c0 = cpu_seconds();
            let t = Instant::now();
            let done = rt.block_on(node.trust.submit(org, b)).unwrap();
            wall += t.elapsed().as_secs_f64();
            cpu += cpu_seconds() - c0;
            assert_eq!(done.stored, b.len());
        }
        m.ingest.push(n as f64 / wall);
        m.ingest_cpu.push(cpu / n as f64);

        for batched in [false, true] {
            let batch = receipts(&shape, &cards, &days, n, &mut rng);
            let mut phases = Phases::default();
            let c0 = cpu_seconds();
            for b in batch.chunks(BATCH) {
                let p = rt.block_on(replica.submit(&node, b, batched.then_some(&pool), &mut rng));
                phases.add(&p);
            }
            let cpu = (cpu_seconds() - c0) / n as f64;
            let (list, cpus, ph) = if batched {
                (&mut m.batched, &mut m.batched_cpu, &mut m.batched_phases)
            } else {
                (&mut m.replica, &mut Vec::new(), &mut m.replica_phases)
            };
            list.push(n as f64 / phases.total());
            cpus.push(cpu);
            ph.push(phases.per_receipt(n));
        }

        let rows = store_rows(&shape, org, &tags, n, &mut rng);
        let mut wall = 0.0;
        for b in rows.chunks(BATCH) {
            let t = Instant::now();
            rt.block_on(node.store.insert_trust_receipts(b, 5)).unwrap();
            wall += t.elapsed().as_secs_f64();
        }
        m.store.push(n as f64 / wall);

        let rows = store_rows(&shape, org, &tags, n, &mut rng);
        let mut wall = 0.0;
        for b in rows.chunks(BATCH) {
            let t = Instant::now();
            rt.block_on(insert_batched(&pool, b, 5)).unwrap();
            wall += t.elapsed().as_secs_f64();
        }
        m.store_batched.push(n as f64 / wall);

        let i = round - 1;
        println!(
            "| {round} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} |",
            m.raw[i],
            m.ingest[i],
            m.replica[i],
            m.batched[i],
            m.store[i],
            m.store_batched[i],
            m.raw_cpu[i] * 1e3,
            m.ingest_cpu[i] * 1e3,
            m.batched_cpu[i] * 1e3
        );
    }
    let (r, i, rp, b) = (
        median(&m.raw),
        median(&m.ingest),
        median(&m.replica),
        median(&m.batched),
    );
    let (s, sb) = (median(&m.store), median(&m.store_batched));
    let (rc, ic, bc) = (
        median(&m.raw_cpu),
        median(&m.ingest_cpu),
        median(&m.batched_cpu),
    );
    println!(
        "| **median** | **{r:.0}** | **{i:.0}** | **{rp:.0}** | **{b:.0}** | **{s:.0}** | **{sb:.0}** | {:.3} | {:.3} | {:.3} |",
        rc * 1e3,
        ic * 1e3,
        bc * 1e3
    );
    println!();
    println!("(receipts/s; CPU ms = process CPU time per receipt, all threads)");
    println!();
    println!(
        "ingest / raw: wall clock {:.2}; per CPU-second {:.2}",
        i / r,
        rc / ic
    );
    println!(
        "replica with the batched insert / raw: wall clock {:.2}; per CPU-second {:.2}",
        b / r,
        rc / bc
    );
    println!(
        "replica (row-by-row insert) / ingest: {:.2} (how closely the replica models submit)",
        rp / i
    );
    let ph = |v: &[[f64; 3]], k: usize| median(&v.iter().map(|p| p[k]).collect::<Vec<_>>());
    println!();
    println!("| µs per receipt (median of rounds) | pseudonymise | store | audit entry | total |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, v) in [
        ("replica, row-by-row insert", &m.replica_phases),
        ("replica, batched insert", &m.batched_phases),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} |",
            ph(v, 0),
            ph(v, 1),
            ph(v, 2),
            ph(v, 0) + ph(v, 1) + ph(v, 2)
        );
    }
    println!(
        "| raw, ingest, store alone, store alone batched | {:.0} (raw) | {:.0} / {:.0} (alone) | | {:.0} (ingest) |",
        1e6 / r,
        1e6 / s,
        1e6 / sb,
        1e6 / i
    );

    // Where the pseudonymisation time goes: its steps one by one.
    let ps: Vec<Pseudonym> = (0..n).map(|k| raw_world.members[k % MEMBERS]).collect();
    let hexes: Vec<String> = ps.iter().map(|p| p.to_hex()).collect();
    let items: Vec<Item> = ps
        .iter()
        .map(|p| Item {
            ct: replica.coop.encrypt_pseudonym(p, &mut rng),
            key: replica.coop.key(),
        })
        .collect();
    let request = |b: &[Item]| TranscryptRequest {
        requester: org.to_string(),
        from: replica.domain.clone(),
        to: RESEARCH.to_owned(),
        grant: None,
        items: b.to_vec(),
    };
    let parse = per_item(n, || {
        let t = Instant::now();
        for h in &hexes {
            black_box(<Pseudonym>::from_hex(h).unwrap());
        }
        t.elapsed().as_secs_f64()
    });
    let encrypt = per_item(n, || {
        let t = Instant::now();
        for p in &ps {
            black_box(replica.coop.encrypt_pseudonym(p, &mut rng));
        }
        t.elapsed().as_secs_f64()
    });
    let chain_links = per_item(n, || {
        let t = Instant::now();
        for b in items.chunks(BATCH) {
            black_box(rt.block_on(run_chain(&replica.links, request(b))).unwrap());
        }
        t.elapsed().as_secs_f64()
    });
    let out: Vec<Item> = items
        .chunks(BATCH)
        .flat_map(|b| rt.block_on(run_chain(&replica.links, request(b))).unwrap())
        .collect();
    let decrypt = per_item(n, || {
        let t = Instant::now();
        for o in &out {
            black_box(replica.research.decrypt(&o.ct));
        }
        t.elapsed().as_secs_f64()
    });
    let bytes = per_item(n, || {
        let t = Instant::now();
        for (a, o) in items.iter().zip(&out) {
            black_box((a.ct.to_bytes(), o.ct.to_bytes()));
        }
        t.elapsed().as_secs_f64()
    });
    let decrypted: Vec<Pseudonym> = out
        .iter()
        .map(|o| replica.research.decrypt(&o.ct))
        .collect();
    let tag = per_item(n, || {
        let t = Instant::now();
        for p in &decrypted {
            black_box(node.keys.trust_tag(RESEARCH, &p.to_bytes()));
        }
        t.elapsed().as_secs_f64()
    });
    println!();
    println!("Pseudonymisation step by step (µs per receipt; median of 3 runs of {n}):");
    println!();
    println!("| step | µs per receipt |");
    println!("| --- | ---: |");
    println!("| parse the card (hex → point) | {:.0} |", parse * 1e6);
    println!("| encrypt for the co-op domain | {:.0} |", encrypt * 1e6);
    println!("| chain of 3 through in-process links (a blocking thread per step, an audit entry per step and batch) | {:.0} |", chain_links * 1e6);
    println!("| decrypt in the research domain | {:.0} |", decrypt * 1e6);
    println!("| two ciphertexts to bytes | {:.0} |", bytes * 1e6);
    println!(
        "| research pseudonym to bytes + keyed hash (tag) | {:.0} |",
        tag * 1e6
    );
    println!(
        "| raw loop (encrypt + plain chain of 3 + decrypt), from the rounds | {:.0} |",
        1e6 / r
    );
    rt.block_on(pool.close());
    rt.block_on(node.shutdown());
}

#[derive(Default)]
struct Measured {
    raw: Vec<f64>,
    ingest: Vec<f64>,
    replica: Vec<f64>,
    batched: Vec<f64>,
    store: Vec<f64>,
    store_batched: Vec<f64>,
    raw_cpu: Vec<f64>,
    ingest_cpu: Vec<f64>,
    batched_cpu: Vec<f64>,
    replica_phases: Vec<[f64; 3]>,
    batched_phases: Vec<[f64; 3]>,
}

/// Seconds spent in the replica's phases.
#[derive(Default)]
struct Phases {
    pseudonymise: f64,
    store: f64,
    audit: f64,
}

impl Phases {
    fn add(&mut self, o: &Phases) {
        self.pseudonymise += o.pseudonymise;
        self.store += o.store;
        self.audit += o.audit;
    }
    fn total(&self) -> f64 {
        self.pseudonymise + self.store + self.audit
    }
    fn per_receipt(&self, n: usize) -> [f64; 3] {
        let f = 1e6 / n as f64;
        [self.pseudonymise * f, self.store * f, self.audit * f]
    }
}

/// A checked receipt: the co-op's pseudonym, the day, (category id, amount)s.
type Checked = (Pseudonym, i32, Vec<(i64, i64)>);

/// `Trust::submit` redone from public pieces, so its phases can be timed and
/// its store step swapped for the batched prototype: check, encrypt, chain,
/// decrypt, keyed hash, insert, audit entry.
struct Replica {
    links: Vec<Arc<dyn TranscryptorLink>>,
    coop: DomainClient,
    research: DomainClient,
    domain: String,
    org: OrgId,
    by_slug: HashMap<String, i64>,
    ids: SeededRandom,
}

impl Replica {
    async fn submit(
        &self,
        node: &Node,
        batch: &[ReceiptIn],
        pool: Option<&SqlitePool>,
        rng: &mut StdRng,
    ) -> Phases {
        let t = Instant::now();
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let checked: Vec<Checked> = batch
            .iter()
            .map(|r| {
                let p = Pseudonym::from_hex(&r.pseudonym).unwrap();
                let day = time::Date::parse(r.day.as_deref().unwrap(), &fmt)
                    .unwrap()
                    .to_julian_day()
                    - 2_440_588;
                assert!(AREAS.iter().any(|(a, _)| *a == r.area));
                let items = r
                    .items
                    .iter()
                    .map(|i| (self.by_slug[&i.category], i.amount_cents))
                    .collect();
                (p, day, items)
            })
            .collect();
        let items: Vec<Item> = checked
            .iter()
            .map(|(p, _, _)| Item {
                ct: self.coop.encrypt_pseudonym(p, rng),
                key: self.coop.key(),
            })
            .collect();
        let req = TranscryptRequest {
            requester: self.org.to_string(),
            from: self.domain.clone(),
            to: RESEARCH.to_owned(),
            grant: None,
            items: items.clone(),
        };
        let out = run_chain(&self.links, req).await.unwrap();
        let rows: Vec<TrustReceiptRow> = checked
            .into_iter()
            .zip(batch)
            .zip(items.iter().zip(&out))
            .map(|(((_, day, items), r), (source, rct))| TrustReceiptRow {
                id: TrustReceiptId::generate(&self.ids),
                org: self.org,
                tag: node
                    .keys
                    .trust_tag(RESEARCH, &self.research.decrypt(&rct.ct).to_bytes()),
                source_ct: source.ct.to_bytes().to_vec(),
                research_ct: rct.ct.to_bytes().to_vec(),
                day,
                area: r.area.clone(),
                amount_cents: items.iter().map(|(_, a)| a).sum(),
                created_at: node.clock.now(),
                items,
            })
            .collect();
        let pseudonymise = t.elapsed().as_secs_f64();
        let t = Instant::now();
        match pool {
            Some(pool) => insert_batched(pool, &rows, 5).await.unwrap(),
            None => node.store.insert_trust_receipts(&rows, 5).await.unwrap(),
        }
        let store = t.elapsed().as_secs_f64();
        let t = Instant::now();
        node.audit
            .record(
                AuditEvent::new(Actor::Organisation(self.org), Action::TrustReceiptsSubmit)
                    .object(format!("{} receipts", batch.len()))
                    .outcome(Outcome::Ok),
            )
            .await
            .unwrap();
        Phases {
            pseudonymise,
            store,
            audit: t.elapsed().as_secs_f64(),
        }
    }
}
