//! The policy decision point with 1,000,000 stored consents (SQLite), and what
//! the decision adds to an organisation's data-access request.
//!
//!     cargo bench -p me2b-consent --features bench --bench pdp
//!
//! Prints p50/p99 of: the decision (record lookup + decide) over random
//! (organisation, member) pairs; the pure `decide` on in-memory records; and one
//! data-access request with real decisions vs. with decisions stubbed, measured
//! alternately in one run, with the ratio.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use me2b_audit::AuditLog;
use me2b_consent::model::{ConsentRecord, ConsentRequestInput, GrantInput, Method};
use me2b_consent::pdp::{decide, AccessQuery};
use me2b_consent::{Consents, Vocabulary};
use me2b_crypto::{Keyring, MasterKey, OsRandom, PassphraseHasher, PassphraseParams};
use me2b_domain::member::{Email, Passphrase};
use me2b_domain::org::OrgKind;
use me2b_domain::record::RecordContent;
use me2b_domain::{ConsentId, MemberId, OrgId, Random, SystemClock, Timestamp};
use me2b_storage::{OrgRow, Store};

/// A consent row's place in the SQLite file, as the store computes it
/// (migration 0035): the low 60 bits of its random id.
fn slot(id: &ConsentId) -> i64 {
    let b = id.as_bytes();
    let low = u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    (low & 0x0FFF_FFFF_FFFF_FFFF) as i64
}
use me2b_vault::Vault;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMBERS: usize = 100_000;
const ORGS: usize = 10;
const SAMPLES: usize = 20_000;

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn request_input() -> ConsentRequestInput {
    serde_json::from_value(serde_json::json!({
        "purposes": ["service-personalisation", "direct-marketing"],
        "categories": ["region", "interest", "purchase"],
        "processing": ["use"], "legal_basis": "consent", "retention_days": 365,
        "notice": "Offers that fit you.", "notice_version": "1"
    }))
    .unwrap()
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
    let store: Arc<dyn Store> = me2b_storage::open(&url).await.unwrap();
    let rng: Arc<dyn Random> = Arc::new(OsRandom);
    let clock = Arc::new(SystemClock);
    let keys = Arc::new(Keyring::derive(&MasterKey::generate(rng.as_ref())));
    store.set_metadata_keys(Arc::new(keys.metadata_keys(rng.clone())));
    let audit = AuditLog::start(store.clone(), clock.clone(), keys.clone(), 1000)
        .await
        .unwrap();
    let hasher = Arc::new(
        PassphraseHasher::new(PassphraseParams::INSECURE_FAST_FOR_TESTS, rng.as_ref()).unwrap(),
    );
    let vault = Vault::new(
        store.clone(),
        keys.clone(),
        audit.clone(),
        hasher,
        clock.clone(),
        rng.clone(),
        3600,
    );
    let vocab = Arc::new(Vocabulary::shipped().unwrap());
    let consents = Consents::new(
        store.clone(),
        keys.clone(),
        audit,
        vault.clone(),
        vocab.clone(),
        clock.clone(),
        rng.clone(),
    );
    let now = me2b_domain::Clock::now(clock.as_ref());

    // Organisations and their requests.
    let mut orgs = Vec::new();
    for i in 0..ORGS {
        let org = OrgRow {
            id: OrgId::generate(rng.as_ref()),
            name: format!("Co-op {i}"),
            kind: OrgKind::Coop,
            created_at: now,
            deleted_at: None,
        };
        me2b_storage::OrgStore::insert_org(store.as_ref(), &org)
            .await
            .unwrap();
        let req = consents
            .create_request(&org, request_input())
            .await
            .unwrap();
        orgs.push((org, req));
    }

    // 1,000,000 consents: 100,000 members × 10 organisations, bulk-loaded.
    eprintln!("loading {} consents …", MEMBERS * ORGS);
    let t0 = Instant::now();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let members: Vec<MemberId> = (0..MEMBERS)
        .map(|_| MemberId::generate(rng.as_ref()))
        .collect();
    for chunk in members.chunks(2000) {
        let mut tx = pool.begin().await.unwrap();
        let mut qb = sqlx::QueryBuilder::new("INSERT INTO members (member_id, state, created_at) ");
        qb.push_values(chunk, |mut b, m| {
            b.push_bind(m.as_bytes().to_vec())
                .push_bind("active")
                .push_bind(now.unix_millis());
        });
        qb.build().execute(&mut *tx).await.unwrap();
        let mut rows = Vec::new();
        for m in chunk {
            for (org, req) in &orgs {
                let r = ConsentRecord::grant(
                    ConsentId::generate(rng.as_ref()),
                    req,
                    *m,
                    GrantInput::default(),
                    Method::Api,
                    now,
                )
                .unwrap();
                rows.push((r.id, req.id, org.id, *m, r.expires_at, r.to_json()));
            }
        }
        for rs in rows.chunks(1000) {
            let mut qb = sqlx::QueryBuilder::new(
                // As an older node wrote them (by member id, body in clear): the
                // node's re-keying below moves them (issue 13).
                "INSERT INTO consents (consent_id, request_id, org_id, member_loc, legacy_member_id, status, version, given_at, expires_at, withdrawn_at, body, slot) ",
            );
            qb.push_values(rs, |mut b, (id, rq, o, m, exp, body)| {
                b.push_bind(id.as_bytes().to_vec())
                    .push_bind(rq.as_bytes().to_vec())
                    .push_bind(o.as_bytes().to_vec())
                    .push_bind(m.as_bytes().to_vec())
                    .push_bind(m.as_bytes().to_vec())
                    .push_bind("given")
                    .push_bind(1i64)
                    .push_bind(now.unix_millis())
                    .push_bind(exp.unix_millis())
                    .push_bind(None::<i64>)
                    .push_bind(body.clone())
                    // Its random place in the file (migration 0035).
                    .push_bind(slot(id));
            });
            qb.build().execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consents")
        .fetch_one(&pool)
        .await
        .unwrap();
    store.rekey_member_metadata().await.unwrap();
    eprintln!("loaded {n} consents in {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!(n as usize, MEMBERS * ORGS);

    // (a) The decision: lookup of the pair's records + decide, random pairs.
    let mut seed = [0u8; 8];
    let mut pick = |n: usize| {
        rng.fill(&mut seed);
        (u64::from_le_bytes(seed) % n as u64) as usize
    };
    let mut lat = Vec::with_capacity(SAMPLES);
    let mut permits = 0;
    for _ in 0..SAMPLES {
        let (org, _) = &orgs[pick(ORGS)];
        let m = members[pick(MEMBERS)];
        let t = Instant::now();
        let d = consents
            .decision(org.id, m, "direct-marketing", "interest", "use")
            .await
            .unwrap();
        lat.push(t.elapsed());
        permits += usize::from(d.is_permit());
    }
    assert_eq!(
        permits, SAMPLES,
        "every sampled pair has a consent in force"
    );
    println!(
        "decision with 1,000,000 stored consents (SQLite lookup + decide), {SAMPLES} random pairs:"
    );
    println!(
        "  p50 {:.1} µs   p99 {:.1} µs",
        pct(lat.clone(), 0.5),
        pct(lat, 0.99)
    );

    // (b) The pure function alone.
    let (org0, req0) = &orgs[0];
    let recs = vec![ConsentRecord::grant(
        ConsentId::generate(rng.as_ref()),
        req0,
        members[0],
        GrantInput::default(),
        Method::Api,
        now,
    )
    .unwrap()];
    let mut lat = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let q = AccessQuery {
            org: org0.id,
            member: members[0],
            purpose: "direct-marketing",
            category: "interest",
            processing: "use",
            at: Timestamp::from_unix_millis(now.unix_millis() + 1),
            cross_sell_from: None,
        };
        let t = Instant::now();
        let d = decide(&vocab, &recs, None, &q);
        lat.push(t.elapsed());
        assert!(d.is_permit());
    }
    println!("pure decide() on the pair's records (no I/O):");
    println!(
        "  p50 {:.2} µs   p99 {:.2} µs",
        pct(lat.clone(), 0.5),
        pct(lat, 0.99)
    );

    // (c) A data-access request: 50 consenting members with 3 disclosable records
    // each (150 decisions), real decisions vs. stubbed, alternating.
    let org = OrgRow {
        id: OrgId::generate(rng.as_ref()),
        name: "Access Co-op".into(),
        kind: OrgKind::Coop,
        created_at: now,
        deleted_at: None,
    };
    me2b_storage::OrgStore::insert_org(store.as_ref(), &org)
        .await
        .unwrap();
    let req = consents
        .create_request(&org, request_input())
        .await
        .unwrap();
    // Its API key: envelopes are sealed to it in each member's session.
    let api_key = me2b_crypto::SecretToken::generate("me2b_k_", rng.as_ref());
    let key_id = me2b_domain::ApiKeyId::generate(rng.as_ref());
    me2b_storage::OrgStore::insert_api_key(
        store.as_ref(),
        &me2b_storage::ApiKeyRow {
            id: key_id,
            org: org.id,
            key_hash: api_key.hash(),
            roles: me2b_domain::org::Roles::try_from(vec![me2b_domain::org::Role::Consent])
                .unwrap(),
            created_at: now,
            revoked_at: None,
            envelope_pk: Some(
                me2b_crypto::org_envelope::OrgEnvelopeKey::from_api_key(api_key.expose())
                    .public_key()
                    .to_bytes()
                    .to_vec(),
            ),
        },
    )
    .await
    .unwrap();
    let outbox = Arc::new(me2b_vault::MemoryOutbox::default());
    vault.set_outbox(outbox.clone());
    vault.set_session_hook(Arc::new(consents.session_hook()));
    for i in 0..50 {
        let s = outbox
            .sign_up(
                &vault,
                Email::parse(&format!("bench-{i}@example.org")).unwrap(),
                Passphrase::parse("bench passphrase".into()).unwrap(),
            )
            .await
            .unwrap()
            .session;
        let session = vault.authenticate(s.token.expose()).await.unwrap();
        for j in [
            serde_json::json!({"kind": "profile_attribute", "name": "region", "value": "Utrecht"}),
            serde_json::json!({"kind": "interest", "topic": "cycling"}),
            serde_json::json!({"kind": "receipt", "merchant": "M", "items": [{"name": "x", "category": "food", "quantity": 1, "unit_price": {"minor": 1, "currency": "EUR"}}], "total": {"minor": 1, "currency": "EUR"}, "purchased_at": "2026-11-01T00:00:00Z"}),
        ] {
            vault
                .create_record(
                    &session,
                    RecordContent::from_json(j.to_string().as_bytes()).unwrap(),
                )
                .await
                .unwrap();
        }
        consents
            .grant(&session, req.id, GrantInput::default(), Method::Api)
            .await
            .unwrap();
    }
    let stubbed = consents.with_stubbed_decisions();
    let (mut real, mut stub) = (Vec::new(), Vec::new());
    for round in 0..60 {
        let t = Instant::now();
        let d = consents
            .access(org.id, key_id, req.id, "direct-marketing", "use")
            .await
            .unwrap();
        let e = t.elapsed();
        assert_eq!(d.len(), 50);
        let t = Instant::now();
        let s = stubbed
            .access(org.id, key_id, req.id, "direct-marketing", "use")
            .await
            .unwrap();
        let e2 = t.elapsed();
        assert_eq!(s.len(), 50);
        if round >= 5 {
            real.push(e);
            stub.push(e2);
        }
    }
    let (r50, s50) = (pct(real.clone(), 0.5), pct(stub.clone(), 0.5));
    println!("data-access request (50 members, 150 decisions), 55 rounds each, alternating:");
    println!(
        "  with decisions:    p50 {:.2} ms   p99 {:.2} ms",
        r50 / 1000.0,
        pct(real, 0.99) / 1000.0
    );
    println!(
        "  decisions stubbed: p50 {:.2} ms   p99 {:.2} ms",
        s50 / 1000.0,
        pct(stub, 0.99) / 1000.0
    );
    println!(
        "  ratio (p50): {:.2}×, added per decision: {:.1} µs",
        r50 / s50,
        (r50 - s50) / 150.0
    );
}
