//! Transcryption per operation: one transcryptor step, and in-process chains of
//! two and three transcryptors (issue 6 asks for the chains). The move is a
//! card's, out of the origin with the member's request (a signed grant each
//! transcryptor checks). Run with
//! `cargo bench -p me2b-trust --bench transcrypt`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use me2b_trust::policy::{Grant, Policy, MEMBER_REQUEST};
use me2b_trust::pseudonym::{chain, setup, Transcryptor, ORIGIN};
use rand::SeedableRng;
use std::time::Instant;

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let node = me2b_crypto::Keyring::derive(&me2b_crypto::MasterKey::from_bytes([7; 32]));
    let domain = "coop:6f1c1e2a-0000-4000-8000-000000000001";
    let grant = Grant {
        v: 1,
        consent: MEMBER_REQUEST.into(),
        purpose: "card".into(),
        from: ORIGIN.into(),
        to: domain.into(),
        expires_at_ms: i64::MAX,
    }
    .sign(&node);
    let iters = 4_000usize;
    println!("| transcryptors | per operation (median of 5 runs of {iters}) | operations/s |");
    println!("| ---: | ---: | ---: |");
    for n in [1usize, 2, 3] {
        let (fed, secrets) = setup(n, &mut rng);
        let policy = Policy::standard(Some(node.verifying_key()));
        let ts: Vec<Transcryptor> = secrets
            .into_iter()
            .map(|s| Transcryptor::with_policy(s, policy.clone()))
            .collect();
        let member = fed.enrol(&mut rng);
        let key = fed.origin_key();
        let mut runs = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..iters {
                let ct =
                    chain(&ts, &member, key, (ORIGIN, domain), Some(&grant), &mut rng).unwrap();
                std::hint::black_box(ct);
            }
            runs.push(start.elapsed().as_secs_f64() / iters as f64);
        }
        runs.sort_by(|a, b| a.total_cmp(b));
        let per = runs[2];
        println!("| {n} | {:.1} µs | {:.0} |", per * 1e6, 1.0 / per);
    }
}
