//! BBS with 10 messages, 2 disclosed: the project's layer (the `Bbs` trait over
//! zkryptium, with its input validation and conversions) and raw zkryptium calls,
//! side by side in one group; throughput is in operations per second ("elem/s").
//! Both recompute the generators on every call (zkryptium 0.8, used without a
//! generator cache).
//! A second group measures the credential layer end to end (12 claims).
//!
//! `cargo bench -p me2b-credentials -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use me2b_credentials::bbs::Bbs;
use me2b_credentials::*;
use me2b_crypto::OsRandom;
use me2b_domain::OrgId;
use zkryptium::bbsplus::keys::{BBSplusPublicKey, BBSplusSecretKey};
use zkryptium::schemes::algorithms::BbsBls12381Sha256;
use zkryptium::schemes::generics::{PoKSignature, Signature};

const HEADER: &[u8] = b"me2b/credential/schema/1";
const PH: &[u8] = b"me2b/presentation-header/v1 nonce and verifier";
const DISCLOSED: [usize; 2] = [1, 6];

fn messages() -> Vec<Vec<u8>> {
    (0..10)
        .map(|i| format!("claim_{i}=value number {i}").into_bytes())
        .collect()
}

fn bbs_10_claims(c: &mut Criterion) {
    let rng = OsRandom;
    let bbs = RawZkryptiumBbs;
    let sk = bbs.key_gen_random(&rng).unwrap();
    let pk = bbs.public_key(&sk).unwrap();
    let msgs = messages();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let sig = bbs.sign(&sk, &pk, HEADER, &refs).unwrap();
    let proof = bbs
        .proof_gen(&pk, &sig, HEADER, PH, &refs, &DISCLOSED, &rng)
        .unwrap();
    let disclosed: Vec<(usize, &[u8])> = DISCLOSED.iter().map(|&i| (i, refs[i])).collect();

    // zkryptium's own types and calls.
    let zk_sk = BBSplusSecretKey::from_bytes(&sk.to_bytes()[..]).unwrap();
    let zk_pk = BBSplusPublicKey::from_bytes(pk.as_bytes()).unwrap();
    let zk_sig = Signature::<BbsBls12381Sha256>::from_bytes(sig.as_bytes()).unwrap();
    let zk_proof = PoKSignature::<BbsBls12381Sha256>::from_bytes(proof.as_bytes()).unwrap();
    let disclosed_msgs: Vec<Vec<u8>> = DISCLOSED.iter().map(|&i| msgs[i].clone()).collect();

    let mut g = c.benchmark_group("bbs_10_messages_2_disclosed");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign/me2b_layer", |b| {
        b.iter(|| bbs.sign(&sk, &pk, black_box(HEADER), &refs).unwrap())
    });
    g.bench_function("sign/zkryptium_raw", |b| {
        b.iter(|| {
            Signature::<BbsBls12381Sha256>::sign(
                Some(&msgs),
                &zk_sk,
                &zk_pk,
                Some(black_box(HEADER)),
            )
            .unwrap()
        })
    });
    g.bench_function("proof_gen/me2b_layer", |b| {
        b.iter(|| {
            bbs.proof_gen(&pk, &sig, HEADER, black_box(PH), &refs, &DISCLOSED, &rng)
                .unwrap()
        })
    });
    g.bench_function("proof_gen/zkryptium_raw", |b| {
        b.iter(|| {
            PoKSignature::<BbsBls12381Sha256>::proof_gen(
                &zk_pk,
                &zk_sig.to_bytes(),
                Some(HEADER),
                Some(black_box(PH)),
                Some(&msgs),
                Some(&DISCLOSED),
            )
            .unwrap()
        })
    });
    g.bench_function("proof_verify/me2b_layer", |b| {
        b.iter(|| {
            bbs.proof_verify(&pk, &proof, HEADER, black_box(PH), &disclosed)
                .unwrap()
        })
    });
    g.bench_function("proof_verify/zkryptium_raw", |b| {
        b.iter(|| {
            zk_proof
                .proof_verify(
                    &zk_pk,
                    Some(&disclosed_msgs),
                    Some(&DISCLOSED),
                    Some(HEADER),
                    Some(black_box(PH)),
                )
                .unwrap()
        })
    });
    g.finish();
}

fn credential_layer(c: &mut Criterion) {
    let rng = OsRandom;
    let bbs = default_bbs();
    let key_id = IssuerKeyId::new("coop-bench-1").unwrap();
    let issuer = IssuerKeyPair::generate(bbs, key_id.clone(), &rng).unwrap();
    let claims = Claims {
        issuer: OrgId::generate(&rng),
        credential_type: ClaimText::new("coop-membership").unwrap(),
        federation: ClaimText::new("F").unwrap(),
        member_since: MemberSince::new(2019).unwrap(),
        tier: ClaimText::new("standard").unwrap(),
        region: ClaimText::new("NL-NH").unwrap(),
        validity_epoch: Epoch::new(3000),
        status_index: StatusIndex::new(5),
        interests: Interests::none(),
    };
    let credential = issuer.issue(bbs, claims.clone()).unwrap();
    let challenge = Challenge::coop_membership(
        &rng,
        VerifierId::new("market.example").unwrap(),
        "F",
        [key_id.clone()],
    )
    .unwrap();
    let disclose = challenge.claims_to_disclose();
    let wire = credential
        .present(
            bbs,
            issuer.public_key(),
            challenge.nonce(),
            challenge.verifier_id(),
            &disclose,
            &rng,
        )
        .unwrap()
        .to_json();
    let mut keys = IssuerKeys::new();
    keys.insert(key_id, *issuer.public_key());
    let status = StatusLists::new();

    let mut g = c.benchmark_group("credential_12_claims_3_disclosed");
    g.throughput(Throughput::Elements(1));
    g.bench_function("issue", |b| {
        b.iter(|| issuer.issue(bbs, black_box(claims.clone())).unwrap())
    });
    g.bench_function("present", |b| {
        b.iter(|| {
            credential
                .present(
                    bbs,
                    issuer.public_key(),
                    challenge.nonce(),
                    challenge.verifier_id(),
                    &disclose,
                    &rng,
                )
                .unwrap()
        })
    });
    g.bench_function("parse_and_verify_presentation", |b| {
        b.iter(|| {
            let p = Presentation::parse(black_box(wire.as_bytes())).unwrap();
            verify_presentation(bbs, &challenge, &p, &keys, &status, Epoch::new(2999)).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bbs_10_claims, credential_layer);
criterion_main!(benches);
