//! Hot paths of the vault's cryptography: sealing and opening a record, and
//! unwrapping a member's data key (done on every vault request).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use me2b_crypto::{Aad, DataKey, Keyring, MasterKey, OsRandom};
use me2b_domain::{MemberId, RecordId};

fn bench(c: &mut Criterion) {
    let rng = OsRandom;
    let ring = Keyring::derive(&MasterKey::generate(&rng));
    let member = MemberId::generate(&rng);
    let record = RecordId::generate(&rng);
    let dek = DataKey::generate(&rng);
    let wrapped = ring.wrap(member, &dek, &rng);
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
    g.bench_function("unwrap_data_key", |b| {
        b.iter(|| ring.unwrap(member, black_box(&wrapped)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
