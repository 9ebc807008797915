//! Hot paths of the vault's cryptography: sealing and opening a record, and
//! unwrapping a member's data key from a session (done on every vault
//! request), next to the master-key unwrap it replaced.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use me2b_crypto::{member_key, Aad, DataKey, Keyring, MasterKey, OsRandom, SecretToken};
use me2b_domain::{MemberId, RecordId};

fn bench(c: &mut Criterion) {
    let rng = OsRandom;
    let ring = Keyring::derive(&MasterKey::generate(&rng));
    let member = MemberId::generate(&rng);
    let record = RecordId::generate(&rng);
    let dek = DataKey::generate(&rng);
    let wrapped = ring.legacy_wrap(member, &dek, &rng);
    let token = SecretToken::generate("me2b_s_", &rng);
    let session_wrap = member_key::wrap_for_session(token.expose(), member, &dek, &rng);
    let plaintext = vec![b'x'; 512];
    let aad = Aad::record(member, record);
    let sealed = dek.seal(&rng, &aad, &plaintext);

    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal_512B_record", |b| {
        b.iter(|| dek.seal(&rng, black_box(&aad), black_box(&plaintext)))
    });
    g.bench_function("open_512B_record", |b| {
        b.iter(|| dek.open(black_box(&aad), black_box(&sealed)).unwrap())
    });
    g.bench_function("unwrap_data_key_master_key_legacy", |b| {
        b.iter(|| ring.legacy_unwrap(member, black_box(&wrapped)).unwrap())
    });
    g.bench_function("unwrap_data_key_session_token", |b| {
        b.iter(|| {
            member_key::unwrap_for_session(token.expose(), member, black_box(&session_wrap))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
