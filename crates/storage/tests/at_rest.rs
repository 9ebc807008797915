//! Privacy at rest (issue 13), on SQLite and a real PostgreSQL: the rights
//! tables keep no member id, and erasure's one list of a member's rows
//! covers every table that keeps any.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_domain::{MemberId, Timestamp};
use me2b_storage::*;
use me2b_testkit::{fresh, Db, TestDb};
use std::collections::BTreeSet;
use std::sync::Arc;

async fn stores() -> Vec<(Db, Arc<dyn Store>, TestDb)> {
    let mut out = Vec::new();
    for db in Db::ALL {
        if let Some(t) = fresh(db).await.unwrap() {
            let s = open(&t.url).await.unwrap();
            s.set_metadata_keys(me2b_testkit::metadata_keys());
            out.push((db, s, t));
        }
    }
    out
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

fn member(n: u8) -> NewMember {
    NewMember {
        id: MemberId::from_slice(&[n; 16]).unwrap(),
        email_index: [n; 32],
        email_ct: vec![1, 2, 3, n],
        passphrase_wrap: vec![9; 73],
        recovery_wrap: vec![8; 73],
        created_at: ts(86_400_000),
    }
}

/// Every value of every table's TEXT or BLOB columns, with its table.
async fn values(db: Db, url: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let cols: Vec<(String, String)> = sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' \
                 AND p.type IN ('BLOB', 'TEXT')",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            for (t, c) in cols {
                let vs: Vec<Option<Vec<u8>>> =
                    sqlx::query_scalar(&format!("SELECT CAST(\"{c}\" AS BLOB) FROM \"{t}\""))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                out.extend(vs.into_iter().flatten().map(|v| (t.clone(), v)));
            }
            pool.close().await;
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let cols: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%' \
                 AND data_type IN ('bytea', 'text')",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            for (t, c, ty) in cols {
                let sql = if ty == "text" {
                    format!("SELECT convert_to(\"{c}\", 'UTF8') FROM \"{t}\"")
                } else {
                    format!("SELECT \"{c}\" FROM \"{t}\"")
                };
                let vs: Vec<Option<Vec<u8>>> =
                    sqlx::query_scalar(&sql).fetch_all(&pool).await.unwrap();
                out.extend(vs.into_iter().flatten().map(|v| (t.clone(), v)));
            }
            pool.close().await;
        }
    }
    out
}

/// Tables with a column that finds or names a member.
async fn member_columns(db: Db, url: &str) -> BTreeSet<String> {
    let sql = match db {
        Db::Sqlite => {
            "SELECT DISTINCT m.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name IN ('member_loc', 'member_id', 'legacy_member_id')"
        }
        Db::Postgres => {
            "SELECT DISTINCT table_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() \
             AND column_name IN ('member_loc', 'member_id', 'legacy_member_id')"
        }
    };
    let names: Vec<String> = match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let v = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let v = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
    };
    names.into_iter().collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Issue 13 on the rights tables (issue 15): the opt-out, the paper code
/// and an import are found by locator, and no value anywhere but `members`
/// holds the member's id.
#[tokio::test]
async fn the_rights_tables_keep_no_member_id() {
    for (db, s, t) in stores().await {
        let m = member(3);
        s.insert_member(&m).await.unwrap();
        let other = member(4);
        s.insert_member(&other).await.unwrap();
        // Times are kept to the hour (issue 13).
        const H: i64 = 3_600_000;
        assert_eq!(
            s.marketing_opt_out(m.id, ts(5 * H + 5), "web")
                .await
                .unwrap(),
            ts(5 * H)
        );
        assert_eq!(
            s.marketing_opt_out(m.id, ts(6 * H + 6), "api")
                .await
                .unwrap(),
            ts(5 * H),
            "{db:?}: the first stays"
        );
        s.set_optout_code(m.id, &[0x31; 32], ts(7 * H + 7))
            .await
            .unwrap();
        s.set_optout_code(m.id, &[0x32; 32], ts(8 * H + 8))
            .await
            .unwrap();
        assert_eq!(s.member_by_optout_code(&[0x31; 32]).await.unwrap(), None);
        assert_eq!(
            s.member_by_optout_code(&[0x32; 32]).await.unwrap(),
            Some(m.id)
        );
        assert_eq!(s.optout_code_since(m.id).await.unwrap(), Some(ts(8 * H)));
        assert_eq!(s.optout_code_since(other.id).await.unwrap(), None);
        let history = ImportedHistoryRow {
            import_id: [0x41; 16],
            member: m.id,
            imported_at: ts(9),
            sealed: vec![0x42; 64],
        };
        let record = StoredRecord {
            id: me2b_domain::RecordId::from_slice(&[0x43; 16]).unwrap(),
            member: m.id,
            revision: 1,
            created_at: ts(9),
            updated_at: ts(9),
            ciphertext: vec![0x44; 64],
        };
        s.import_member_data(&[record], &history).await.unwrap();
        // Kept to the hour, as a member's other rows (issue 13).
        let stored = ImportedHistoryRow {
            imported_at: history.imported_at.hour(),
            ..history
        };
        assert_eq!(s.imported_history(m.id).await.unwrap(), vec![stored]);
        assert!(s.imported_history(other.id).await.unwrap().is_empty());

        let mut joinable = BTreeSet::new();
        for (table, v) in values(db, &t.url).await {
            if table != "members"
                && (contains(&v, m.id.as_bytes()) || contains(&v, m.id.to_string().as_bytes()))
            {
                joinable.insert(table);
            }
        }
        assert!(joinable.is_empty(), "{db:?}: member ids in {joinable:?}");

        assert!(s.marketing_opt_in(m.id).await.unwrap());
        assert!(!s.marketing_opt_in(m.id).await.unwrap());
        assert_eq!(s.marketing_opted_out_since(m.id).await.unwrap(), None);
        s.marketing_opt_out(m.id, ts(10), "paper").await.unwrap();

        // Erasure takes them all.
        s.delete_member_rows(m.id).await.unwrap();
        assert_eq!(s.marketing_opted_out_since(m.id).await.unwrap(), None);
        assert_eq!(s.member_by_optout_code(&[0x32; 32]).await.unwrap(), None);
        assert_eq!(s.optout_code_since(m.id).await.unwrap(), None);
        assert!(s.imported_history(m.id).await.unwrap().is_empty());
        s.close().await;
    }
}

/// Every table with a member locator or id is in erasure's one list of a
/// member's rows (a new one must be added there, or no erasure finds it).
#[tokio::test]
async fn every_member_table_is_in_erasures_list() {
    for (db, s, t) in stores().await {
        let listed: BTreeSet<String> = member_tables().map(str::to_owned).collect();
        let found = member_columns(db, &t.url).await;
        assert!(found.len() >= 10, "{db:?}: {found:?}");
        let missing: Vec<_> = found.difference(&listed).collect();
        assert!(missing.is_empty(), "{db:?}: not erased: {missing:?}");
        s.close().await;
    }
}

/// Runs `sql` on the store's database with blob binds (what an older node
/// wrote, or what the thief reads).
async fn raw(db: Db, url: &str, sql: &str, binds: &[Vec<u8>]) -> Vec<Vec<u8>> {
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let mut q = sqlx::query_scalar::<_, Vec<u8>>(sql);
            for b in binds {
                q = q.bind(b.clone());
            }
            let v = q.fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let mut q = sqlx::query_scalar::<_, Vec<u8>>(sql);
            for b in binds {
                q = q.bind(b.clone());
            }
            let v = q.fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
    }
}

/// Finding 4 of adv4 (the thief's joins): a member's consents at two
/// organisations carry two locators, so `consents` grouped by locator does
/// not show the member's set of co-ops (nor, with the co-ops' own consent
/// lists, link their pseudonyms); the node still finds them all, re-keys an
/// older node's rows at start, and erases them. A pending erasure's
/// requests do not name the member by the co-ops' pseudonyms in clear.
#[tokio::test]
async fn consent_locators_are_per_organisation_and_erasure_subjects_sealed() {
    use me2b_domain::meta::MetaTable;
    use me2b_domain::org::OrgKind;
    use me2b_domain::{ConsentId, ConsentRequestId, OrgId};
    let keys = me2b_testkit::metadata_keys();
    for (db, s, t) in stores().await {
        let m = member(5);
        s.insert_member(&m).await.unwrap();
        let mut orgs = Vec::new();
        for i in 0..2u8 {
            let org = OrgRow {
                id: OrgId::from_slice(&[0x50 + i; 16]).unwrap(),
                name: format!("Co-op {i}"),
                kind: OrgKind::Coop,
                created_at: ts(1),
                deleted_at: None,
            };
            s.insert_org(&org).await.unwrap();
            let request = ConsentRequestId::from_slice(&[0x60 + i; 16]).unwrap();
            s.insert_consent_request(&ConsentRequestRow {
                id: request,
                org: org.id,
                created_at: ts(1),
                body: b"{}".to_vec(),
            })
            .await
            .unwrap();
            s.insert_consent(&ConsentRow {
                id: ConsentId::from_slice(&[0x70 + i; 16]).unwrap(),
                request,
                org: org.id,
                member: m.id,
                status: "given".into(),
                version: 1,
                given_at: ts(2 + i64::from(i)),
                expires_at: ts(1000),
                withdrawn_at: None,
                body: b"{}".to_vec(),
            })
            .await
            .unwrap();
            orgs.push(org.id);
        }
        let distinct = |v: Vec<Vec<u8>>| v.into_iter().collect::<BTreeSet<_>>().len();
        let locs = "SELECT member_loc FROM consents";
        assert_eq!(distinct(raw(db, &t.url, locs, &[]).await), 2, "{db:?}");
        assert_eq!(s.consents_of_member(m.id).await.unwrap().len(), 2);
        for o in &orgs {
            assert_eq!(s.consents_between(*o, m.id).await.unwrap().len(), 1);
        }

        // An older node's rows (one locator per member) are re-keyed at
        // start, once.
        let unscoped = keys.locator(MetaTable::Consents, m.id).to_vec();
        raw(
            db,
            &t.url,
            "UPDATE consents SET member_loc = $1, loc_scoped = 0 RETURNING member_loc",
            std::slice::from_ref(&unscoped),
        )
        .await;
        assert_eq!(distinct(raw(db, &t.url, locs, &[]).await), 1, "{db:?}");
        assert_eq!(s.consents_of_member(m.id).await.unwrap().len(), 2);
        assert!(s.rekey_member_metadata().await.unwrap() >= 2, "{db:?}");
        assert_eq!(s.rekey_member_metadata().await.unwrap(), 0, "{db:?}: once");
        let after = raw(db, &t.url, locs, &[]).await;
        assert!(!after.contains(&unscoped), "{db:?}");
        assert_eq!(distinct(after), 2, "{db:?}");
        for o in &orgs {
            assert_eq!(s.consents_between(*o, m.id).await.unwrap().len(), 1);
        }

        // Rectification notices (attack 3a of adv5): the subject, consent
        // and member sealed, the locator scoped per co-op, the hour kept.
        let notices: Vec<_> = orgs
            .iter()
            .enumerate()
            .map(|(i, o)| RectificationRow {
                id: [0xb0 + i as u8; 16],
                org: *o,
                subject: format!("sub_member5at{i}"),
                consent: ConsentId::from_slice(&[0x70 + i as u8; 16]).unwrap(),
                category: "region".into(),
                member: m.id,
                created_at: ts(3_600_000 + 1234),
                released_at: None,
                confirmed_at: None,
            })
            .collect();
        assert_eq!(s.rectification_add(&notices).await.unwrap(), 2);
        assert_eq!(s.rectification_add(&notices).await.unwrap(), 0, "repeats");
        let tags = "SELECT member_tag FROM rectification_notices";
        assert_eq!(distinct(raw(db, &t.url, tags, &[]).await), 2, "{db:?}");
        let consents_in_clear = "SELECT consent_id FROM rectification_notices";
        assert!(raw(db, &t.url, consents_in_clear, &[])
            .await
            .iter()
            .all(Vec::is_empty));
        let mine = s.rectifications_of(m.id).await.unwrap();
        assert_eq!(mine.len(), 2, "{db:?}");
        assert_eq!(mine[0].created_at, ts(3_600_000));
        assert!(mine.iter().any(|n| n.subject == "sub_member5at1"));
        assert_eq!(
            s.rectification_pending_before(ts(7_200_000)).await.unwrap(),
            (1, Some(ts(3_600_000)))
        );
        // One an older node stored in clear is sealed at start, once.
        let old_tag = [0xc5; 32];
        raw(
            db,
            &t.url,
            "UPDATE rectification_notices SET sealed = NULL, subject = 'sub_member5at0', \
             consent_id = $1, member_tag = $2 WHERE notice_id = $3 RETURNING notice_id",
            &[vec![0x70; 16], old_tag.to_vec(), vec![0xb0; 16]],
        )
        .await;
        let tag_of = move |_: MemberId| old_tag;
        assert_eq!(s.rectification_rekey(&tag_of).await.unwrap(), 1, "{db:?}");
        assert_eq!(s.rectification_rekey(&tag_of).await.unwrap(), 0, "{db:?}");
        assert_eq!(distinct(raw(db, &t.url, tags, &[]).await), 2, "{db:?}");
        assert_eq!(s.rectifications_of(m.id).await.unwrap().len(), 2);

        // The erasure: its requests' subjects sealed, opened for the co-op.
        assert!(s.shred_member(m.id).await.unwrap());
        let requests: Vec<_> = orgs
            .iter()
            .enumerate()
            .map(|(i, o)| ErasureRequestRow {
                id: [0x80 + i as u8; 16],
                org: *o,
                subject: format!("sub_member5at{i}"),
                receipt_tag: [0x90 + i as u8; 32],
                released_at: None,
                confirmed_at: None,
            })
            .collect();
        assert!(s
            .erasure_hold(m.id, ts(10), &requests, &[0xa0; 32])
            .await
            .unwrap());
        let in_clear = |vs: Vec<(String, Vec<u8>)>| {
            vs.into_iter()
                .filter(|(_, v)| contains(v, b"sub_member5"))
                .count()
        };
        assert_eq!(in_clear(values(db, &t.url).await), 0, "{db:?}");
        // One an older node stored in clear is sealed at the first start
        // after the migration (the marker a start leaves, gone: as before).
        raw(
            db,
            &t.url,
            "UPDATE erasure_requests SET subject = 'sub_member5at0' WHERE request_id = $1 RETURNING request_id",
            &[vec![0x80; 16]],
        )
        .await;
        raw(
            db,
            &t.url,
            &format!("DELETE FROM node_meta WHERE key = '{REKEYED_CONSENTS}' RETURNING value"),
            &[],
        )
        .await;
        assert_eq!(in_clear(values(db, &t.url).await), 1, "{db:?}");
        assert_eq!(s.rekey_member_metadata().await.unwrap(), 1, "{db:?}");
        assert_eq!(in_clear(values(db, &t.url).await), 0, "{db:?}");
        assert_eq!(s.erasure_release(ts(20), ts(20)).await.unwrap(), 1);
        for (i, o) in orgs.iter().enumerate() {
            let sent = s.erasure_requests_pending(*o).await.unwrap();
            assert_eq!(sent.len(), 1, "{db:?}");
            assert_eq!(sent[0].subject, format!("sub_member5at{i}"));
        }
        // The release took both organisations' consents, and the notices.
        assert!(raw(db, &t.url, locs, &[]).await.is_empty(), "{db:?}");
        assert!(raw(db, &t.url, tags, &[]).await.is_empty(), "{db:?}");
        s.close().await;
    }
}

/// Issue 13, the thief with co-ops' own records (attack 10b of adv2): two
/// co-ops each note when they sent which card's receipt; with the file they
/// found their own rows by `created_at` (to the millisecond) and grouped the
/// rows by `tag`, shared by a member's rows at every co-op, so A's pseudonym
/// was linked to B's (6 of 6). The same for the loyalty history. Now a
/// member's rows at two co-ops carry two tags, times are whole hours, and
/// the trust still finds, delivers and erases every row.
#[tokio::test]
async fn trust_rows_of_one_member_at_two_coops_share_no_tag_nor_exact_time() {
    use me2b_domain::org::OrgKind;
    use me2b_domain::{OrgId, TrustReceiptId};
    const HOUR: i64 = 3_600_000;
    for (db, s, t) in stores().await {
        let tag = [0x33; 32];
        let loyalty = [0x44; 32];
        let mut orgs = Vec::new();
        for i in 0..2u8 {
            let org = OrgRow {
                id: OrgId::from_slice(&[0x50 + i; 16]).unwrap(),
                name: format!("Co-op {i}"),
                kind: OrgKind::Coop,
                created_at: ts(1),
                deleted_at: None,
            };
            s.insert_org(&org).await.unwrap();
            orgs.push(org.id);
        }
        s.loyalty_register(&loyalty).await.unwrap();
        for (i, org) in orgs.iter().enumerate() {
            let row = TrustReceiptRow {
                id: TrustReceiptId::from_slice(&[0x60 + i as u8; 16]).unwrap(),
                org: *org,
                tag,
                source_ct: vec![1; 8],
                research_ct: vec![2; 8],
                day: 20_000,
                area: "NL-NH".into(),
                amount_cents: 500,
                // What the co-op noted: its submission, to the millisecond.
                created_at: ts(5 * HOUR + 123 + 321 * i as i64),
                items: vec![(1, 500)],
            };
            s.insert_trust_receipts(&[row], 5).await.unwrap();
            assert!(s.loyalty_earn(&loyalty, *org, 10, 20_000).await.unwrap());
        }
        let distinct = |v: Vec<Vec<u8>>| v.into_iter().collect::<BTreeSet<_>>().len();
        // The thief: one tag per row, no time finer than the hour.
        let tags = raw(db, &t.url, "SELECT tag FROM trust_receipts", &[]).await;
        assert_eq!(tags.len(), 2, "{db:?}");
        assert_eq!(
            distinct(tags.clone()),
            2,
            "{db:?}: a member's receipts at two co-ops share a tag"
        );
        assert!(
            !tags.contains(&tag.to_vec()),
            "{db:?}: the trust's own tag stored"
        );
        let exact = raw(
            db,
            &t.url,
            "SELECT tag FROM trust_receipts WHERE created_at % 3600000 <> 0",
            &[],
        )
        .await;
        assert!(
            exact.is_empty(),
            "{db:?}: receipt times finer than the hour"
        );
        let days = raw(db, &t.url, "SELECT tag FROM trust_loyalty_days", &[]).await;
        assert_eq!(days.len(), 2, "{db:?}");
        assert_eq!(
            distinct(days),
            2,
            "{db:?}: a member's loyalty days at two co-ops share a tag"
        );

        // The trust still finds them: delivery, the member's history.
        for org in &orgs {
            let mine = s.trust_receipts_of(*org, &tag).await.unwrap();
            assert_eq!(mine.len(), 1, "{db:?}");
            assert_eq!(mine[0].tag, tag);
            assert_eq!(mine[0].created_at, ts(5 * HOUR));
        }
        let account = s.loyalty_account(&loyalty, ts(6 * HOUR)).await.unwrap();
        assert_eq!(account.balance, 20);
        assert_eq!(account.days.len(), 2, "{db:?}");
        // A sharing consent's times, to the hour (the member's sealed consent
        // keeps the exact ones).
        let m = member(9);
        s.insert_member(&m).await.unwrap();
        let sharing = TrustSharingRow {
            id: me2b_domain::SharingId::from_slice(&[0x70; 16]).unwrap(),
            member: m.id,
            from_org: orgs[0],
            to_org: orgs[1],
            purpose: "research".into(),
            created_at: ts(5 * HOUR + 1),
            expires_at: ts(9 * HOUR + 2),
            withdrawn_at: None,
            research_tag: Some(tag),
        };
        s.insert_trust_sharing(&sharing).await.unwrap();
        assert!(s
            .withdraw_trust_sharing(sharing.id, m.id, ts(6 * HOUR + 3))
            .await
            .unwrap());
        let exact = "SELECT sharing_id FROM trust_sharing WHERE created_at % 3600000 <> 0 \
                     OR expires_at % 3600000 <> 0 OR withdrawn_at % 3600000 <> 0";
        assert!(
            raw(db, &t.url, exact, &[]).await.is_empty(),
            "{db:?}: sharing times finer than the hour"
        );
        let stored = s.trust_sharing_of_member(m.id).await.unwrap();
        assert_eq!(
            stored[0].expires_at,
            ts(9 * HOUR),
            "{db:?}: an expiry floored, never later"
        );

        // An older node's rows (one tag at every co-op) are re-keyed at
        // start, once.
        raw(
            db,
            &t.url,
            "UPDATE trust_receipts SET tag = $1, tag_scoped = 0 RETURNING tag",
            &[tag.to_vec()],
        )
        .await;
        raw(
            db,
            &t.url,
            "UPDATE trust_loyalty_days SET tag = $1, tag_scoped = 0 RETURNING tag",
            &[loyalty.to_vec()],
        )
        .await;
        assert_eq!(
            distinct(raw(db, &t.url, "SELECT tag FROM trust_receipts", &[]).await),
            1,
            "{db:?}"
        );
        assert!(s.rekey_member_metadata().await.unwrap() >= 4, "{db:?}");
        assert_eq!(s.rekey_member_metadata().await.unwrap(), 0, "{db:?}: once");
        assert_eq!(
            distinct(raw(db, &t.url, "SELECT tag FROM trust_receipts", &[]).await),
            2,
            "{db:?}"
        );
        assert_eq!(
            distinct(raw(db, &t.url, "SELECT tag FROM trust_loyalty_days", &[]).await),
            2,
            "{db:?}"
        );
        for org in &orgs {
            assert_eq!(
                s.trust_receipts_of(*org, &tag).await.unwrap().len(),
                1,
                "{db:?}"
            );
        }
        assert_eq!(
            s.loyalty_account(&loyalty, ts(6 * HOUR))
                .await
                .unwrap()
                .days
                .len(),
            2
        );

        // Aggregates across co-ops are unchanged: one member, in both.
        assert_eq!(s.trust_member_count("*").await.unwrap(), 1);
        assert_eq!(
            s.trust_overlap(&orgs[0].to_string(), &orgs[1].to_string())
                .await
                .unwrap(),
            1
        );

        // Erasure finds every row.
        assert_eq!(
            s.trust_forget(&tag, &loyalty, ts(7 * HOUR)).await.unwrap(),
            2
        );
        assert!(
            raw(db, &t.url, "SELECT tag FROM trust_receipts", &[])
                .await
                .is_empty(),
            "{db:?}"
        );
        assert!(
            raw(db, &t.url, "SELECT tag FROM trust_loyalty_days", &[])
                .await
                .is_empty(),
            "{db:?}"
        );
        assert!(
            raw(db, &t.url, "SELECT receipt_id FROM trust_events", &[])
                .await
                .is_empty(),
            "{db:?}"
        );
        s.close().await;
    }
}

/// Adversary 5, 3c: right after an erasure answered, the SQLite WAL still
/// held the member's passphrase and recovery wraps and e-mail ciphertext
/// (the page images from before the erasure), and the main file kept the
/// row until a checkpoint: a copy of the data directory rebuilt the
/// account. Every byte of the files, not the live rows, is read here.
#[tokio::test]
async fn an_erasure_leaves_no_page_image_of_the_account_in_the_files() {
    let Some(t) = fresh(Db::Sqlite).await.unwrap() else {
        return;
    };
    let s = open(&t.url).await.unwrap();
    s.set_metadata_keys(me2b_testkit::metadata_keys());
    let wrap: Vec<u8> = b"PASSPHRASE-WRAP-OF-THE-ERASED-MEMBER-".repeat(2);
    let recovery: Vec<u8> = b"RECOVERY-WRAP-OF-THE-ERASED-MEMBER---".repeat(2);
    let email: Vec<u8> = b"EMAIL-CIPHERTEXT-OF-THE-ERASED-MEMBER".to_vec();
    let m = NewMember {
        passphrase_wrap: wrap.clone(),
        recovery_wrap: recovery.clone(),
        email_ct: email.clone(),
        ..member(7)
    };
    s.insert_member(&m).await.unwrap();
    // Another member's writes after the sign-up, as on a live node.
    for n in 20..40 {
        s.insert_member(&member(n)).await.unwrap();
    }
    let file = |suffix: &str| {
        let path = format!("{}{suffix}", t.url.trim_start_matches("sqlite://"));
        std::fs::read(path).unwrap_or_default()
    };
    let bytes = || [file(""), file("-wal")].concat();
    assert!(
        contains(&bytes(), &wrap[..24]),
        "the test must see the wrap in the files before the erasure"
    );
    assert!(s.shred_member(m.id).await.unwrap());
    s.delete_member_rows(m.id).await.unwrap();
    let all = bytes();
    for (what, needle) in [
        ("passphrase wrap", &wrap[..24]),
        ("recovery wrap", &recovery[..24]),
        ("e-mail ciphertext", &email[..24]),
    ] {
        assert!(
            !contains(&all, needle),
            "the erased member's {what} is still in the database files"
        );
    }
}

/// The integer values of one column (what the thief reads).
async fn ints(db: Db, url: &str, sql: &str) -> Vec<i64> {
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let v = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let v = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
    }
}

/// Issue 12/13 (adv4, "also confirmed"): a member's Global Privacy Control
/// signal is stored with its hour, not the millisecond it came with (which
/// lines up with the audit log and the moment the co-ops saw a change); the
/// decisions still compare the exact time, sealed to the row. A queued paper
/// opt-out keeps the hour too, and its member sealed.
#[tokio::test]
async fn gpc_and_queued_opt_outs_keep_the_hour_at_rest() {
    for (db, s, t) in stores().await {
        let m = member(5);
        s.insert_member(&m).await.unwrap();
        let exact = ts(1_790_000_000_000 + 1_234_567);
        assert_eq!(s.record_gpc(m.id, exact).await.unwrap(), exact);
        assert_eq!(s.gpc_since(m.id).await.unwrap(), Some(exact), "{db:?}");
        assert_eq!(
            ints(db, &t.url, "SELECT since FROM member_gpc").await,
            vec![exact.hour().unix_millis()],
            "{db:?}: member_gpc.since is the exact time"
        );
        s.enqueue_optout_job([7; 16], m.id, exact).await.unwrap();
        assert_eq!(
            ints(db, &t.url, "SELECT created_at FROM optout_jobs").await,
            vec![exact.hour().unix_millis()],
            "{db:?}"
        );
        for (table, v) in values(db, &t.url).await {
            assert!(
                table == "members" || !contains(&v, m.id.as_bytes()),
                "{db:?}: the member's id in {table}"
            );
        }
        let claimed = s.claim_optout_jobs(exact, exact, 8).await.unwrap();
        assert_eq!(claimed, vec![([7; 16], m.id)]);
        s.close().await;
    }
}

/// The re-check of 3c: another process (a backup tool, an `sqlite3` shell)
/// holding a read transaction during the erasure keeps the checkpoint from
/// emptying the log, and the account's wraps stay in it; the sweeper's
/// retry (`finish_scrub`) empties it once the reader is gone.
#[tokio::test]
async fn a_reader_during_an_erasure_only_delays_the_log_being_emptied() {
    let Some(t) = fresh(Db::Sqlite).await.unwrap() else {
        return;
    };
    let s = open(&t.url).await.unwrap();
    s.set_metadata_keys(me2b_testkit::metadata_keys());
    let wrap: Vec<u8> = b"PASSPHRASE-WRAP-OF-A-MEMBER-ERASED-WHILE-READ".to_vec();
    let m = NewMember {
        passphrase_wrap: wrap.clone(),
        ..member(8)
    };
    s.insert_member(&m).await.unwrap();
    let path = t.url.trim_start_matches("sqlite://").to_owned();
    let bytes = || {
        [
            std::fs::read(&path).unwrap_or_default(),
            std::fs::read(format!("{path}-wal")).unwrap_or_default(),
        ]
        .concat()
    };
    // Another process's read transaction, opened before the erasure.
    let reader = sqlx::SqlitePool::connect(&t.url).await.unwrap();
    let mut tx = reader.begin().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(s.shred_member(m.id).await.unwrap());
    s.delete_member_rows(m.id).await.unwrap();
    s.finish_scrub().await;
    assert!(
        contains(&bytes(), &wrap[..24]),
        "the reader should have kept the log (else this test proves nothing)"
    );
    tx.rollback().await.unwrap();
    reader.close().await;
    s.finish_scrub().await;
    assert!(
        !contains(&bytes(), &wrap[..24]),
        "the erased member's wrap is still in the database files after the retry"
    );
}
