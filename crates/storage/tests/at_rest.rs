//! Privacy at rest (issue 13), on SQLite and a real PostgreSQL: the rights
//! tables keep no member id, and erasure's one list of a member's rows
//! covers every table that keeps any.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_domain::MemberId;
use me2b_storage::*;
use me2b_testkit::{fresh, Db};
use std::collections::BTreeSet;

mod common;
use common::{member, stores, ts};

// Each case below as a test per engine: `sqlite::case` and `postgres::case`.
me2b_testkit::per_engine! {
    #[tokio::test] {
        the_rights_tables_keep_no_member_id,
        every_member_table_is_in_erasures_list,
        consent_locators_are_per_organisation_and_erasure_subjects_sealed,
        trust_rows_of_one_member_at_two_coops_share_no_tag_nor_exact_time,
        gpc_and_queued_opt_outs_keep_the_hour_at_rest,
        insertion_order_does_not_pair_a_members_rows_at_two_coops,
        an_erasure_deletes_the_members_pending_opt_out_job,
        audit_events_read_nothing_from_the_file_alone,
        plain_audit_entries_of_an_older_node_still_read_and_verify,
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
async fn the_rights_tables_keep_no_member_id(db: Db) {
    for (db, s, t) in stores(db).await {
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
async fn every_member_table_is_in_erasures_list(db: Db) {
    for (db, s, t) in stores(db).await {
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
async fn consent_locators_are_per_organisation_and_erasure_subjects_sealed(db: Db) {
    use me2b_domain::meta::MetaTable;
    use me2b_domain::org::OrgKind;
    use me2b_domain::{ConsentId, ConsentRequestId, OrgId};
    let keys = me2b_testkit::metadata_keys();
    for (db, s, t) in stores(db).await {
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
async fn trust_rows_of_one_member_at_two_coops_share_no_tag_nor_exact_time(db: Db) {
    use me2b_domain::org::OrgKind;
    use me2b_domain::{OrgId, TrustReceiptId};
    const HOUR: i64 = 3_600_000;
    for (db, s, t) in stores(db).await {
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
        // adv9 (1i/1j): the balance in clear is the sum of both co-ops'
        // own points: two of them solved a + b = balance and paired cards.
        let balances = raw(
            db,
            &t.url,
            "SELECT tag FROM trust_loyalty_balances WHERE balance <> 0 OR balance_ct IS NULL",
            &[],
        )
        .await;
        assert!(
            balances.is_empty(),
            "{db:?}: {} loyalty balance(s) stored in clear",
            balances.len()
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

/// adv9 (1b/1c/1e): a copy of a running node's write-ahead log ordered every
/// row by the commit that wrote it (each member's rows, their session and
/// their audit entries in one commit: 16 of 16 paired). The sweeper trims
/// the log every minute: after `trim_log` the log holds no frame.
#[tokio::test]
async fn the_sweepers_trim_leaves_no_commit_in_the_log() {
    let Some(t) = fresh(Db::Sqlite).await.unwrap() else {
        return;
    };
    let s = open(&t.url).await.unwrap();
    s.set_metadata_keys(me2b_testkit::metadata_keys());
    for n in 20..40 {
        s.insert_member(&member(n)).await.unwrap();
    }
    let wal = || {
        let path = format!("{}-wal", t.url.trim_start_matches("sqlite://"));
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    };
    assert!(wal() > 0, "the test must see commits in the log first");
    s.trim_log().await;
    assert_eq!(wal(), 0, "the log still holds the commits, in order");
    s.close().await;
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
async fn gpc_and_queued_opt_outs_keep_the_hour_at_rest(db: Db) {
    for (db, s, t) in stores(db).await {
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

/// A deterministic stand-in for the node's random source (splitmix64).
#[derive(Debug, Default)]
struct Splitmix(std::sync::atomic::AtomicU64);
impl me2b_domain::Random for Splitmix {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Each row of `audit_log` with the file alone: (subject, event bytes).
async fn audit_rows(db: Db, url: &str) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    let sql = "SELECT subject, event FROM audit_log ORDER BY seq";
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let v = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let v = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }
    }
}

/// The thief's pairing by insertion order: each row's place in the file
/// (its rowid, where the table has one, and its place in a plain
/// `SELECT *`), each consent placed by its first row; every consent of
/// co-op A paired with a consent of co-op B near it. The correct pairs, the
/// better of the two orders.
async fn pair_by_order(
    url: &str,
    table: &str,
    org_of: &dyn Fn(&[u8]) -> Option<bool>,
    partner: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
) -> usize {
    use sqlx::Row;
    let col = if table == "consents" {
        "org_id"
    } else {
        "key_id"
    };
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let mut orders: Vec<Vec<(Vec<u8>, Vec<u8>)>> = Vec::new();
    // By rowid, read as the thief would (no ORDER BY, sorted after).
    if let Ok(rows) = sqlx::query(&format!(
        "SELECT rowid AS r, consent_id, {col} FROM {table}"
    ))
    .fetch_all(&pool)
    .await
    {
        let mut v: Vec<(i64, Vec<u8>, Vec<u8>)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        v.sort();
        orders.push(v.into_iter().map(|(_, c, o)| (c, o)).collect());
    }
    // The table's own scan order.
    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(&pool)
        .await
        .unwrap();
    orders.push(
        rows.iter()
            .map(|r| (r.get("consent_id"), r.get(col)))
            .collect(),
    );
    pool.close().await;
    let mut best = 0;
    for order in orders {
        let placed = order.into_iter().enumerate().map(|(i, (c, o))| (i, c, o));
        best = best.max(nearest_pairs(placed, org_of, partner));
    }
    best
}

/// Places each consent by its first row (`rows`: place, consent id, org or
/// key), pairs every consent of co-op A with the co-op B consent near it, and
/// counts the correct pairs. Near: the nearest B after it, before it, or on
/// either side; the thief keeps the pairing of least total distance (which
/// they can compute), the first of these on a tie.
fn nearest_pairs(
    rows: impl Iterator<Item = (usize, Vec<u8>, Vec<u8>)>,
    org_of: &dyn Fn(&[u8]) -> Option<bool>,
    partner: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
) -> usize {
    let mut placed: Vec<(usize, Vec<u8>, bool)> = Vec::new();
    for (i, c, o) in rows {
        if placed.iter().any(|(_, p, _)| *p == c) {
            continue;
        }
        if let Some(a) = org_of(&o) {
            placed.push((i, c, a));
        }
    }
    let a_side: Vec<_> = placed.iter().filter(|p| p.2).collect();
    let b_side: Vec<_> = placed.iter().filter(|p| !p.2).collect();
    let mut chosen: Option<(usize, usize)> = None;
    for direction in [1i8, -1, 0] {
        let (mut cost, mut correct) = (0, 0);
        for (i, c, _) in &a_side {
            let nearest = b_side
                .iter()
                .filter(|(j, _, _)| match direction {
                    1 => j > i,
                    -1 => j < i,
                    _ => true,
                })
                .min_by_key(|(j, _, _)| i.abs_diff(*j));
            match nearest {
                Some((j, b, _)) => {
                    cost += i.abs_diff(*j);
                    if partner.get(c) == Some(b) {
                        correct += 1;
                    }
                }
                None => cost += placed.len(),
            }
        }
        if chosen.is_none_or(|(least, _)| cost < least) {
            chosen = Some((cost, correct));
        }
    }
    chosen.map_or(0, |(_, c)| c)
}

/// On PostgreSQL: each row placed by its `ctid` (heap page, item).
async fn pair_by_ctid(
    url: &str,
    table: &str,
    org_of: &dyn Fn(&[u8]) -> Option<bool>,
    partner: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
) -> usize {
    let col = if table == "consents" {
        "org_id"
    } else {
        "key_id"
    };
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut rows: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(&format!(
        "SELECT ctid::text, consent_id, {col} FROM {table}"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let place = |c: &str| -> (usize, usize) {
        let (page, item) = c
            .trim_matches(|x| x == '(' || x == ')')
            .split_once(',')
            .unwrap();
        (page.parse().unwrap(), item.parse().unwrap())
    };
    rows.sort_by_key(|r| place(&r.0));
    let rows = rows.into_iter().enumerate().map(|(i, (_, c, o))| (i, c, o));
    nearest_pairs(rows, org_of, partner)
}

/// The thief who reads pages, not rows: SQLite's `dbstat` gives each
/// b-tree page and each cell's overflow pages, in key order, and a new page
/// is taken where the file ends, so page numbers follow time. Each row (in
/// key order; `rowid` order for a rowid table) is placed by its leaf page's
/// number, then by its first overflow page's, and paired as above. The
/// better of the two.
async fn pair_by_pages(
    url: &str,
    table: &str,
    org_of: &dyn Fn(&[u8]) -> Option<bool>,
    partner: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
) -> usize {
    use sqlx::Row;
    let col = if table == "consents" {
        "org_id"
    } else {
        "key_id"
    };
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let without_rowid: bool =
        sqlx::query_scalar("SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = $1")
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap();
    let order = if without_rowid { "" } else { " ORDER BY rowid" };
    let rows: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query(&format!("SELECT consent_id, {col} FROM {table}{order}"))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let stat: Vec<(String, i64, String, i64)> = sqlx::query_as(
        "SELECT path, pageno, pagetype, ncell FROM dbstat WHERE name = $1 ORDER BY path",
    )
    .bind(table)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let pages: std::collections::BTreeMap<&str, (i64, bool, i64)> = stat
        .iter()
        .filter(|s| s.2 != "overflow")
        .map(|s| (s.0.as_str(), (s.1, s.2 == "leaf", s.3)))
        .collect();
    let overflow: std::collections::BTreeMap<&str, i64> = stat
        .iter()
        .filter(|s| s.2 == "overflow")
        .map(|s| (s.0.as_str(), s.1))
        .collect();
    // The cells in key order: an index b-tree (WITHOUT ROWID) keeps rows in
    // its interior pages too, between their children.
    fn walk(
        path: String,
        pages: &std::collections::BTreeMap<&str, (i64, bool, i64)>,
        interior_rows: bool,
        out: &mut Vec<(String, i64)>,
    ) {
        let (page, leaf, n) = pages[path.as_str()];
        for i in 0..n {
            if !leaf {
                walk(format!("{path}{i:03x}/"), pages, interior_rows, out);
            }
            if leaf || interior_rows {
                out.push((format!("{path}{i:03x}+000000"), page));
            }
        }
        if !leaf {
            walk(format!("{path}{n:03x}/"), pages, interior_rows, out);
        }
    }
    let mut cells = Vec::new();
    walk("/".into(), &pages, without_rowid, &mut cells);
    assert_eq!(cells.len(), rows.len(), "{table}: one cell per row");
    let by_leaf = cells
        .iter()
        .zip(&rows)
        .map(|((_, page), (c, o))| (usize::try_from(*page).unwrap(), c.clone(), o.clone()));
    let mut best = nearest_pairs(by_leaf, org_of, partner);
    let by_overflow: Vec<_> = cells
        .iter()
        .zip(&rows)
        .filter_map(|((cell, _), (c, o))| {
            let page = overflow.get(cell.as_str())?;
            Some((usize::try_from(*page).unwrap(), c.clone(), o.clone()))
        })
        .collect();
    if !by_overflow.is_empty() {
        best = best.max(nearest_pairs(by_overflow.into_iter(), org_of, partner));
    }
    best
}

/// The open finding of the re-check (adv6, rows 2 and 3): with the file
/// alone, a thief paired a member's consents and envelopes at two co-ops by
/// insertion order (`consents`, `consent_envelopes` and
/// `consent_envelopes_pending` were rowid tables): 30 of 30 grants, 6 of 6
/// corrections, still paired after the release swapped them in. Here 16
/// members each grant at co-op A then at co-op B, one member after the
/// other; the release; then each corrects a record (new envelopes at both,
/// pending); the next release swaps them in. After each step the thief
/// pairs every A consent with the nearest B consent in rowid order and in
/// `SELECT *` order, and, reading pages (`dbstat`), by the numbers of the
/// pages that hold the rows (`consents` keeps a grant whole in its page: a
/// WITHOUT ROWID table would put most of it on an overflow page, taken in
/// the order written).
///
/// Under a random order, A's nearest B is its partner with probability
/// about 1/16, so the correct pairs are about Poisson(1): at most 4 is
/// chance plus three standard deviations (P(≥ 5) ≈ 0.4 %); insertion order
/// gave 16 of 16 (the best of the thief's four views: P(≥ 5) under 2 %).
/// The ids come from a fixed seed, so the count does not change between
/// runs. On PostgreSQL the heap keeps insertion order whatever the key
/// (ARCHITECTURE.md, "Metadata at rest"): the test prints how many grants
/// pair by `ctid` there (it varies between runs; not asserted).
#[allow(clippy::print_stdout)] // the thief's counts, shown with --nocapture
async fn insertion_order_does_not_pair_a_members_rows_at_two_coops(db: Db) {
    use me2b_domain::org::{OrgKind, Role, Roles};
    use me2b_domain::{ApiKeyId, ConsentId, ConsentRequestId, OrgId};
    use std::collections::BTreeMap;
    const N: usize = 16;
    const H: i64 = 3_600_000;
    for (db, s, t) in stores(db).await {
        let rng = Splitmix::default();
        if db == Db::Sqlite {
            // No free pages: every page the scenario needs comes from the
            // end of the file, in the order taken (the thief's best case).
            raw(db, &t.url, "VACUUM", &[]).await;
        }
        let mut coops = Vec::new();
        for i in 0..2u8 {
            let org = OrgRow {
                id: OrgId::generate(&rng),
                name: format!("Co-op {i}"),
                kind: OrgKind::Coop,
                created_at: ts(1),
                deleted_at: None,
            };
            s.insert_org(&org).await.unwrap();
            let key = ApiKeyRow {
                id: ApiKeyId::generate(&rng),
                org: org.id,
                key_hash: [0x40 + i; 32],
                roles: Roles::try_from(vec![Role::Consent]).unwrap(),
                created_at: ts(1),
                revoked_at: None,
                envelope_pk: None,
            };
            s.insert_api_key(&key).await.unwrap();
            let request = ConsentRequestId::generate(&rng);
            s.insert_consent_request(&ConsentRequestRow {
                id: request,
                org: org.id,
                created_at: ts(1),
                body: b"{}".to_vec(),
            })
            .await
            .unwrap();
            coops.push((org.id, key.id, request));
        }
        let cats = vec!["region".to_owned(), "interest".to_owned()];
        let envelopes = |c: ConsentId, k: ApiKeyId, m: MemberId, b: u8, at: i64| {
            cats.iter()
                .map(|cat| EnvelopeRow {
                    consent: c,
                    key: k,
                    category: cat.clone(),
                    member: m,
                    expires_at: ts(1000 * H),
                    updated_at: ts(at),
                    sealed: vec![b; 561],
                    digest: Some([b; 32]),
                })
                .collect::<Vec<_>>()
        };
        // The grants: one member after the other, A then B.
        let mut members = Vec::new();
        let mut partner = BTreeMap::new();
        for n in 0..N {
            let id = MemberId::generate(&rng);
            s.insert_member(&NewMember {
                id,
                email_index: [n as u8; 32],
                email_ct: vec![n as u8; 40],
                passphrase_wrap: vec![9; 73],
                recovery_wrap: vec![8; 73],
                created_at: ts(H),
            })
            .await
            .unwrap();
            let mut mine = Vec::new();
            for (org, key, request) in &coops {
                let c = ConsentId::generate(&rng);
                let at = 2 * H + n as i64 * 1000;
                s.insert_consent(&ConsentRow {
                    id: c,
                    request: *request,
                    org: *org,
                    member: id,
                    status: "given".into(),
                    version: 1,
                    given_at: ts(at),
                    expires_at: ts(1000 * H),
                    withdrawn_at: None,
                    body: vec![7; 2434],
                })
                .await
                .unwrap();
                let w = s
                    .replace_envelopes(c, Some(&cats), &envelopes(c, *key, id, 1, at), ts(at))
                    .await
                    .unwrap();
                assert_eq!(w, EnvelopeWrite::Changed);
                mine.push(c);
            }
            partner.insert(mine[0].as_bytes().to_vec(), mine[1].as_bytes().to_vec());
            members.push((id, mine));
        }
        let (a_org, a_key) = (coops[0].0, coops[0].1);
        let (b_org, b_key) = (coops[1].0, coops[1].1);
        let side = move |v: &[u8]| -> Option<bool> {
            if v == a_org.as_bytes() || v == a_key.as_bytes() {
                Some(true)
            } else if v == b_org.as_bytes() || v == b_key.as_bytes() {
                Some(false)
            } else {
                None
            }
        };
        if db == Db::Postgres {
            // The residual ARCHITECTURE.md names: the heap keeps the grants
            // in the order written, and `ctid` shows it. Shown, not
            // asserted: where the heap puts rows varies from run to run
            // (16 of 16 and 1 of 16 were both seen), and the residual stands
            // whatever one run finds.
            let n = pair_by_ctid(&t.url, "consents", &side, &partner).await;
            println!("{db:?}: {n} of {N} grants paired by the ctid of consents");
            s.close().await;
            continue;
        }
        let mut found = Vec::new();
        for table in ["consents", "consent_envelopes"] {
            found.push((
                "grants",
                table,
                pair_by_order(&t.url, table, &side, &partner).await,
            ));
            found.push((
                "grants, pages",
                table,
                pair_by_pages(&t.url, table, &side, &partner).await,
            ));
        }
        assert_eq!(s.consent_release(ts(3 * H)).await.unwrap(), 2 * N as u64);
        // The corrections: each member's record changes, and with it the
        // envelopes at both co-ops (pending until the next release).
        for (n, (id, mine)) in members.iter().enumerate() {
            for (c, (_, key, _)) in mine.iter().zip(&coops) {
                let at = 4 * H + n as i64 * 1000;
                let w = s
                    .replace_envelopes(*c, Some(&cats), &envelopes(*c, *key, *id, 2, at), ts(at))
                    .await
                    .unwrap();
                assert_eq!(w, EnvelopeWrite::Changed);
            }
        }
        found.push((
            "corrections",
            "consent_envelopes_pending",
            pair_by_order(&t.url, "consent_envelopes_pending", &side, &partner).await,
        ));
        found.push((
            "corrections, pages",
            "consent_envelopes_pending",
            pair_by_pages(&t.url, "consent_envelopes_pending", &side, &partner).await,
        ));
        assert_eq!(s.consent_release(ts(5 * H)).await.unwrap(), 2 * N as u64);
        for table in ["consents", "consent_envelopes"] {
            found.push((
                "released corrections",
                table,
                pair_by_order(&t.url, table, &side, &partner).await,
            ));
            found.push((
                "released corrections, pages",
                table,
                pair_by_pages(&t.url, table, &side, &partner).await,
            ));
        }
        println!("{db:?}: correct pairs of {N} by insertion order: {found:?}");
        for (what, table, correct) in found {
            assert!(
                correct <= 4,
                "{what}: {correct} of {N} members paired by the order of {table}"
            );
        }
        s.close().await;
    }
}

/// Review of 50bef2c: the erasure's inline checkpoint waited on the busy
/// handler while a reader held the file, so each erasure call took the
/// whole busy timeout (10 s, twice per `DELETE /v1/me`) and held every
/// writer with it. Now the inline attempt does not wait: the erasure
/// completes while the reader still holds its transaction, and the
/// sweeper's retry empties the log once the reader is gone. The deadline
/// is no measurement: a checkpoint that waits sleeps at least the 10 s
/// busy timeout per call (two calls here) before giving up, one that does
/// not wait takes milliseconds.
#[tokio::test]
async fn an_erasure_does_not_wait_on_a_reader_of_the_file() {
    let Some(t) = fresh(Db::Sqlite).await.unwrap() else {
        return;
    };
    let s = open(&t.url).await.unwrap();
    s.set_metadata_keys(me2b_testkit::metadata_keys());
    let wrap: Vec<u8> = b"PASSPHRASE-WRAP-OF-A-MEMBER-ERASED-PROMPTLY".to_vec();
    let m = NewMember {
        passphrase_wrap: wrap.clone(),
        ..member(9)
    };
    s.insert_member(&m).await.unwrap();
    let reader = sqlx::SqlitePool::connect(&t.url).await.unwrap();
    let mut tx = reader.begin().await.unwrap();
    let count = "SELECT COUNT(*) FROM members";
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 1);
    let erasure = async {
        assert!(s.shred_member(m.id).await.unwrap());
        s.delete_member_rows(m.id).await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), erasure)
        .await
        .expect("the erasure waited on the reader's transaction");
    // The reader still holds its snapshot: the member is there for it.
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 1, "the reader's transaction should still be open");
    tx.rollback().await.unwrap();
    reader.close().await;
    s.finish_scrub().await;
    let path = t.url.trim_start_matches("sqlite://").to_owned();
    let all = [
        std::fs::read(&path).unwrap_or_default(),
        std::fs::read(format!("{path}-wal")).unwrap_or_default(),
    ]
    .concat();
    assert!(
        !contains(&all, &wrap[..24]),
        "the erased member's wrap is still in the database files after the retry"
    );
}

/// Review of session 5: `optout_jobs` kept no locator, so an erasure left a
/// member's pending paper opt-out (their sealed id) for the worker to drop.
/// Now it carries the member's locator for the table and the erasure
/// deletes it with the rest; another member's job stays.
async fn an_erasure_deletes_the_members_pending_opt_out_job(db: Db) {
    for (db, s, _t) in stores(db).await {
        let (m, other) = (member(11), member(12));
        s.insert_member(&m).await.unwrap();
        s.insert_member(&other).await.unwrap();
        let at = ts(1_790_000_000_000);
        s.enqueue_optout_job([1; 16], m.id, at).await.unwrap();
        s.enqueue_optout_job([2; 16], other.id, at).await.unwrap();
        assert_eq!(s.optout_jobs_pending().await.unwrap(), 2, "{db:?}");
        assert!(s.shred_member(m.id).await.unwrap());
        s.delete_member_rows(m.id).await.unwrap();
        assert_eq!(
            s.optout_jobs_pending().await.unwrap(),
            1,
            "{db:?}: the erased member's job is still queued"
        );
        let claimed = s.claim_optout_jobs(at, at, 8).await.unwrap();
        assert_eq!(claimed, vec![([2; 16], other.id)], "{db:?}");
        s.close().await;
    }
}

/// adv7, sections A and D: the audit log's events read with the database
/// file alone. A member grants at two co-ops, refuses a third, sends GPC,
/// shares A's receipts with B and earns loyalty at A and B; the thief reads
/// `audit_log` and looks, in every entry, for a co-op's id, an action's
/// name, a purpose or category, an object or an amount. Nothing of it is
/// there, and the event's length tells no action apart; the node still
/// reads every entry back (the member's view, the whole log) and the chain
/// still verifies.
async fn audit_events_read_nothing_from_the_file_alone(db: Db) {
    use me2b_domain::audit::{Action, Actor, AuditEvent};
    use me2b_domain::OrgId;
    for (db, s, t) in stores(db).await {
        let m = member(6);
        s.insert_member(&m).await.unwrap();
        let org = |b: u8| OrgId::from_slice(&[b; 16]).unwrap();
        let (a, b, c) = (org(0xa1), org(0xb2), org(0xc3));
        // The loyalty view's subject: a trust pseudonym with no account.
        let loyalty = MemberId::from_slice(&[0x5c; 16]).unwrap();
        let (purpose, category) = ("dpv:DirectMarketing", "dpv:PurchasesAndSpending");
        let grant = |o: &str| {
            AuditEvent::new(Actor::Member(m.id), Action::ConsentGrant)
                .subject(m.id)
                .object(o)
                .terms(purpose, category, "dpv:Use")
        };
        let events = vec![
            grant("consent-at-a"),
            grant("consent-at-b"),
            AuditEvent::new(Actor::Member(m.id), Action::ConsentRefuse)
                .subject(m.id)
                .object(format!("refused {c}")),
            AuditEvent::new(Actor::Member(m.id), Action::ConsentGpc)
                .subject(m.id)
                .object("gpc"),
            AuditEvent::new(Actor::Organisation(b), Action::TrustCrossSell)
                .subject(m.id)
                .object(a)
                .terms(purpose, category, "dpv:Share"),
            AuditEvent::new(Actor::Organisation(a), Action::TrustLoyalty)
                .subject(loyalty)
                .object("earn 150"),
            AuditEvent::new(Actor::Organisation(b), Action::TrustLoyalty)
                .subject(loyalty)
                .object("earn 75"),
            AuditEvent::new(Actor::Operator, Action::OrgCreate).object(c),
        ];
        let written = s.append_audit(ts(3_600_000), &events).await.unwrap();
        let rows = audit_rows(db, &t.url).await;
        assert_eq!(rows.len(), events.len(), "{db:?}");
        let mut needles: Vec<String> = vec![
            "consent.grant".into(),
            "consent.refuse".into(),
            "consent.gpc".into(),
            "trust.cross_sell".into(),
            "trust.loyalty".into(),
            "org.create".into(),
            purpose.into(),
            category.into(),
            "earn 150".into(),
            "earn 75".into(),
            "organisation".into(),
            "member".into(),
        ];
        needles.extend([a, b, c].iter().map(ToString::to_string));
        let mut found = BTreeSet::new();
        for (_, event) in &rows {
            for n in &needles {
                if contains(event, n.as_bytes()) {
                    found.insert(n.clone());
                }
            }
            for o in [a, b, c] {
                if contains(event, o.as_bytes()) {
                    found.insert(format!("{o} (raw)"));
                }
            }
        }
        assert!(found.is_empty(), "{db:?}: the file alone reads {found:?}");
        let lengths: BTreeSet<usize> = rows.iter().map(|(_, e)| e.len()).collect();
        assert_eq!(
            lengths.len(),
            1,
            "{db:?}: lengths tell entries apart: {lengths:?}"
        );

        // The node reads them all back, and the chain verifies.
        let all = s.audit_entries(0, 100).await.unwrap();
        assert_eq!(all.len(), events.len());
        for (e, w) in all.iter().zip(&written) {
            assert_eq!(e, w, "{db:?}: read back as appended");
            assert_eq!(e.recompute(), e.hash, "{db:?}: entry {} verifies", e.seq);
        }
        let actions: Vec<Action> = all.iter().map(|e| e.event().unwrap().action).collect();
        let expected: Vec<Action> = events.iter().map(|e| e.action).collect();
        assert_eq!(actions, expected, "{db:?}");
        let mine = s.audit_entries_for(m.id, 0, 100).await.unwrap();
        assert_eq!(mine.len(), 5, "{db:?}: the member's own view");
        assert_eq!(
            mine[0].event().unwrap().object.as_deref(),
            Some("consent-at-a"),
            "{db:?}: opened for the member"
        );
        let earns = s.audit_entries_of(&[loyalty], 0, 100).await.unwrap();
        let objects: Vec<Option<String>> =
            earns.iter().map(|e| e.event().unwrap().object).collect();
        assert_eq!(
            objects,
            vec![Some("earn 150".into()), Some("earn 75".into())],
            "{db:?}: the loyalty history"
        );

        // After erasure the entries still verify, and nothing finds them
        // under the member.
        s.delete_member_rows(m.id).await.unwrap();
        assert!(s.audit_entries_for(m.id, 0, 100).await.unwrap().is_empty());
        let after = s.audit_entries(0, 100).await.unwrap();
        assert_eq!(after, written, "{db:?}: the log is as written");
        assert!(after.iter().all(|e| e.recompute() == e.hash));
        s.close().await;
    }
}

/// An older node's plain entries stay as they are, and read and verify in
/// one chain with the sealed ones after them (nothing rewrites them: the
/// chain hashes and signed heads cover their bytes).
async fn plain_audit_entries_of_an_older_node_still_read_and_verify(db: Db) {
    use me2b_domain::audit::{Action, Actor, AuditEvent, GENESIS};
    for db in [db] {
        let Some(t) = fresh(db).await.unwrap() else {
            continue;
        };
        let old = open(&t.url).await.unwrap();
        let ev = |o: &str| AuditEvent::new(Actor::Operator, Action::OrgCreate).object(o);
        old.append_audit(ts(1), &[ev("one"), ev("two")])
            .await
            .unwrap();
        old.close().await;
        let s = open(&t.url).await.unwrap();
        s.set_metadata_keys(me2b_testkit::metadata_keys());
        s.append_audit(ts(2), &[ev("three")]).await.unwrap();
        let rows = audit_rows(db, &t.url).await;
        assert_eq!(rows[0].1.first(), Some(&b'{'), "{db:?}: plain as written");
        assert_eq!(rows[2].1.first(), Some(&1), "{db:?}: sealed, version 1");
        let all = s.audit_entries(0, 10).await.unwrap();
        let mut prev = GENESIS;
        for (e, want) in all.iter().zip(["one", "two", "three"]) {
            assert_eq!(e.prev_hash, prev, "{db:?}");
            assert_eq!(e.recompute(), e.hash, "{db:?}: entry {}", e.seq);
            assert_eq!(e.event().unwrap().object.as_deref(), Some(want));
            prev = e.hash;
        }
        assert_eq!(all[2].stored.as_deref(), Some(rows[2].1.as_slice()));
        // Without the keys (`me2b audit verify` with the public key only),
        // the sealed entry's hash still verifies; its event is not read.
        s.close().await;
        let keyless = open(&t.url).await.unwrap();
        let all = keyless.audit_entries(0, 10).await.unwrap();
        assert!(all.iter().all(|e| e.recompute() == e.hash), "{db:?}");
        assert!(all[2].event_json.is_empty() && all[0].event().is_ok());
        keyless.close().await;
    }
}
