//! Receipt ingest (pseudonymise + store, on SQLite) next to raw libpep
//! pseudonymisation, measured alternately in one run (issue 6). Run with
//!
//!     cargo bench -p me2b-trust --bench ingest
//!
//! * **raw**: exactly the cryptography ingest does, done the best way for a
//!   batch, in a plain loop on one thread calling the library directly. Per
//!   batch of 1,000 receipts: encrypt each co-op pseudonym for the co-op's
//!   domain; then for each of three transcryptors (`Policy::standard(None)`)
//!   one `Transcryptor::handle` call on the whole batch (policy check, the
//!   domain pair's factors derived once, the one key rekeyed once, each
//!   ciphertext pseudonymised); decrypt each in `trust:research`.
//! * **raw, per item**: the same cryptography one receipt at a time
//!   (`pseudonym::chain`, factors derived per item and step), for comparison
//!   with the earlier definition of raw.
//! * **ingest**: a real node (`Node::open`, SQLite in a temporary directory,
//!   three in-process transcryptors) and `node.trust.submit(org, batch)` in
//!   batches of 1,000 receipts with 3 items each, under the cards of 1,000
//!   signed-up members. Only the submit calls are timed: checks, encryption,
//!   the chain (each step on a blocking thread, with its durable audit entry),
//!   decryption and keyed hash, the durable batched insert of receipts, items,
//!   per-member totals, bins and bin totals, and the submission's audit entry.
//! * **store alone**: `insert_trust_receipts` on the node's store with rows of
//!   the same shape (random ciphertext bytes, 1,000 members), batches of 1,000.
//!
//! Rounds alternate the cases so they see the same machine state; medians over
//! the rounds are reported. Besides wall-clock receipts/s the bench reports
//! process CPU time per receipt (all threads, from `/proc/self/stat`), for the
//! "per core" ratio.
//!
//! `ME2B_BENCH_RECEIPTS` sets receipts per case and round (default 10,000, a
//! multiple of 1,000 is best).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_crypto::{PassphraseParams, SeededRandom};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;
use me2b_domain::{Clock, MemberId, OrgId, SystemClock, Timestamp, TrustReceiptId};
use me2b_node::{Node, NodeConfig};
use me2b_offers::Taxonomy;
use me2b_storage::TrustReceiptRow;
use me2b_trust::domain::Domain;
use me2b_trust::policy::Policy;
use me2b_trust::pseudonym::{
    chain, setup, DomainClient, Pseudonym, Transcryptor, ORIGIN, RESEARCH,
};
use me2b_trust::service::{ItemIn, ReceiptIn};
use me2b_trust::wire::{Item, TranscryptRequest};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

mod common;
use common::{Cdf, AREAS};

const SEED: u64 = 0x6d65_3262_7472_7374; // "me2btrst"
const BATCH: usize = 1_000;
const ITEMS: usize = 3;
const MEMBERS: usize = 1_000;
const ROUNDS: usize = 3;
/// Process CPU time (user + system, all threads, dead ones included), seconds.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 (utime, stime) in USER_HZ (100 on Linux).
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
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
        let node = me2b_crypto::Keyring::derive(&me2b_crypto::MasterKey::from_bytes([5; 32]));
        let policy = Policy::standard(Some(node.verifying_key()));
        let ts: Vec<Transcryptor> = secrets
            .into_iter()
            .map(|s| Transcryptor::with_policy(s, policy.clone()))
            .collect();
        let client = |d: &str| {
            let shares: Vec<_> = ts.iter().map(|t| t.share(d).unwrap()).collect();
            fed.client(&shares)
        };
        let domain = Domain::Coop(OrgId::generate(&SeededRandom::new(SEED))).to_string();
        let coop = client(&domain);
        let research = client(RESEARCH);
        let members = (0..MEMBERS)
            .map(|_| {
                let e = fed.enrol(rng);
                let asked = me2b_trust::policy::Grant {
                    v: 1,
                    consent: me2b_trust::policy::MEMBER_REQUEST.into(),
                    purpose: "card".into(),
                    from: ORIGIN.into(),
                    to: domain.clone(),
                    expires_at_ms: i64::MAX,
                }
                .sign(&node);
                let ct = chain(
                    &ts,
                    &e,
                    fed.origin_key(),
                    (ORIGIN, &domain),
                    Some(&asked),
                    rng,
                )
                .unwrap();
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

    /// Per batch of 1,000, from cards the co-op sealed beforehand (as it does
    /// for a submission; not timed, as the node no longer encrypts): one
    /// `handle` call per transcryptor on the whole batch, decrypt each.
    /// Returns the elapsed seconds.
    fn run(&self, n: usize, rng: &mut StdRng) -> f64 {
        let now_ms = SystemClock.now().unix_millis();
        let sealed: Vec<Item> = (0..n)
            .map(|i| Item {
                ct: self.coop.encrypt_pseudonym(&self.members[i % MEMBERS], rng),
                key: self.coop.key(),
            })
            .collect();
        let start = Instant::now();
        for first in (0..n).step_by(BATCH) {
            let items = sealed[first..n.min(first + BATCH)].to_vec();
            let mut req = TranscryptRequest {
                requester: "bench".to_owned(),
                from: self.domain.clone(),
                to: RESEARCH.to_owned(),
                grant: None,
                items,
            };
            for t in &self.ts {
                req.items = t.handle(&req, now_ms, rng).unwrap();
            }
            for i in &req.items {
                black_box(self.research.decrypt(&i.ct));
            }
        }
        start.elapsed().as_secs_f64()
    }

    /// The same, one receipt at a time through `pseudonym::chain` (the factors
    /// derived per item and step).
    fn run_per_item(&self, n: usize, rng: &mut StdRng) -> f64 {
        let sealed: Vec<_> = (0..n)
            .map(|i| self.coop.encrypt_pseudonym(&self.members[i % MEMBERS], rng))
            .collect();
        let start = Instant::now();
        for ct in &sealed {
            let out = chain(
                &self.ts,
                ct,
                self.coop.key(),
                (&self.domain, RESEARCH),
                None,
                rng,
            )
            .unwrap();
            black_box(self.research.decrypt(&out));
        }
        start.elapsed().as_secs_f64()
    }
}

/// Receipts as the co-op submits them: each member's pseudonym (the co-op
/// opened their card) sealed afresh.
fn receipts(
    shape: &Shape,
    coop: &me2b_coop::CoopKeys,
    pseudonyms: &[String],
    days: &[String],
    n: usize,
    rng: &mut StdRng,
) -> Vec<ReceiptIn> {
    let random = SeededRandom::new(rng.random());
    (0..n)
        .map(|_| ReceiptIn {
            card: coop
                .seal(&pseudonyms[rng.random_range(0..pseudonyms.len())], &random)
                .unwrap(),
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

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

/// Wall-clock receipts/s and CPU seconds per receipt of one case and round.
fn timed(n: usize, mut f: impl FnMut() -> f64) -> (f64, f64) {
    let c0 = cpu_seconds();
    let wall = f();
    (n as f64 / wall, (cpu_seconds() - c0) / n as f64)
}

#[derive(Default)]
struct Case {
    per_s: Vec<f64>,
    cpu: Vec<f64>,
}

impl Case {
    fn push(&mut self, (per_s, cpu): (f64, f64)) {
        self.per_s.push(per_s);
        self.cpu.push(cpu);
    }
    fn per_s(&self) -> f64 {
        median(&self.per_s)
    }
    fn cpu(&self) -> f64 {
        median(&self.cpu)
    }
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
    let outbox = Arc::new(me2b_vault::MemoryOutbox::default());
    cfg.outbox = Some(outbox.clone());
    let setup_start = Instant::now();
    let node = rt
        .block_on(Node::open(
            &cfg,
            Arc::new(SystemClock),
            Arc::new(SeededRandom::new(SEED)),
        ))
        .unwrap();
    let org = rt
        .block_on(node.orgs.create(
            Label::try_from("Bench Co-op").unwrap(),
            OrgKind::Coop,
            Roles::try_from(vec![Role::Insights]).unwrap(),
        ))
        .unwrap()
        .0
        .id;
    let members: Vec<MemberId> = (0..MEMBERS)
        .map(|i| {
            rt.block_on(outbox.sign_up(
                &node.vault,
                Email::parse(&format!("bench-{i}@example.org")).unwrap(),
                Passphrase::parse("bench passphrase".into()).unwrap(),
            ))
            .unwrap()
            .session
            .member
        })
        .collect();
    let coop = me2b_coop::CoopKeys::from_material(
        org,
        &rt.block_on(node.trust.coop_key_material(org)).unwrap(),
    )
    .unwrap();
    let cards: Vec<String> = members
        .iter()
        .map(|m| {
            coop.open_card(&rt.block_on(node.trust.card(*m, org)).unwrap())
                .unwrap()
        })
        .collect();
    let tags: Vec<[u8; 32]> = (0..MEMBERS)
        .map(|_| {
            let mut t = [0u8; 32];
            rng.fill(&mut t);
            t
        })
        .collect();
    let submit = |batch: &[ReceiptIn]| {
        let start = Instant::now();
        for b in batch.chunks(BATCH) {
            let done = rt.block_on(node.trust.submit(org, b)).unwrap();
            assert_eq!(done.stored, b.len());
        }
        start.elapsed().as_secs_f64()
    };
    let store = |rows: &[TrustReceiptRow]| {
        let start = Instant::now();
        for b in rows.chunks(BATCH) {
            rt.block_on(node.store.insert_trust_receipts(b, 5)).unwrap();
        }
        start.elapsed().as_secs_f64()
    };

    // Warm up every path once (domain clients, prepared statements, the raw world).
    submit(&receipts(&shape, &coop, &cards, &days, BATCH, &mut rng));
    store(&store_rows(&shape, org, &tags, BATCH, &mut rng));
    let raw = Raw::new(&mut rng);
    raw.run(BATCH, &mut rng);
    raw.run_per_item(BATCH, &mut rng);
    println!(
        "setup: node, {MEMBERS} members signed up with cards, warm-up: {:.1} s; {n} receipts of {ITEMS} items per case and round, batches of {BATCH}, {ROUNDS} rounds",
        setup_start.elapsed().as_secs_f64()
    );
    println!();
    println!("| round | raw | raw, per item | ingest (submit) | store alone | raw CPU ms | raw per item CPU ms | ingest CPU ms |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut r, mut rp, mut i, mut s) = (
        Case::default(),
        Case::default(),
        Case::default(),
        Case::default(),
    );
    for round in 1..=ROUNDS {
        r.push(timed(n, || raw.run(n, &mut rng)));
        rp.push(timed(n, || raw.run_per_item(n, &mut rng)));
        let batch = receipts(&shape, &coop, &cards, &days, n, &mut rng);
        i.push(timed(n, || submit(&batch)));
        let rows = store_rows(&shape, org, &tags, n, &mut rng);
        s.push(timed(n, || store(&rows)));
        let k = round - 1;
        println!(
            "| {round} | {:.0} | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} |",
            r.per_s[k],
            rp.per_s[k],
            i.per_s[k],
            s.per_s[k],
            r.cpu[k] * 1e3,
            rp.cpu[k] * 1e3,
            i.cpu[k] * 1e3
        );
    }
    println!(
        "| **median** | **{:.0}** | **{:.0}** | **{:.0}** | **{:.0}** | {:.3} | {:.3} | {:.3} |",
        r.per_s(),
        rp.per_s(),
        i.per_s(),
        s.per_s(),
        r.cpu() * 1e3,
        rp.cpu() * 1e3,
        i.cpu() * 1e3
    );
    println!();
    println!("(receipts/s; CPU ms = process CPU time per receipt, all threads)");
    println!();
    println!(
        "ingest / raw: wall clock {:.2}; per CPU-second {:.2}",
        i.per_s() / r.per_s(),
        r.cpu() / i.cpu()
    );
    println!(
        "ingest / raw per item: wall clock {:.2}; per CPU-second {:.2}",
        i.per_s() / rp.per_s(),
        rp.cpu() / i.cpu()
    );
    let us = |c: &Case| 1e6 / c.per_s();
    println!(
        "µs per receipt (medians): ingest {:.0} = raw {:.0} + store alone {:.0} + the rest {:.0} (parse, bytes, keyed hash, blocking threads and audit entries, the mutex)",
        us(&i),
        us(&r),
        us(&s),
        us(&i) - us(&r) - us(&s)
    );
    rt.block_on(node.shutdown());
}
