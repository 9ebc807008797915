//! The trust's aggregate tables at rest (issue 13), on SQLite and a real
//! PostgreSQL: `trust_members` and `trust_bins` key a member by a tag per
//! scope, so a thief holding the file and two co-ops' own per-card totals
//! cannot follow one member's row from one co-op's scope to another's; the
//! trust's aggregates, overlaps and erasure still work, an older node's rows
//! are re-keyed once, and a started node's next start re-keys nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use me2b_domain::meta::MetaTable;
use me2b_domain::org::OrgKind;
use me2b_domain::{OrgId, TrustReceiptId};
use me2b_storage::*;
use me2b_testkit::Db;
use std::collections::BTreeSet;
use std::sync::Arc;

mod common;
use common::{stores, ts};

// Each case below as a test per engine: `sqlite::case` and `postgres::case`.
me2b_testkit::per_engine! {
    #[tokio::test] {
        a_members_rows_in_two_scopes_share_no_tag,
        an_older_nodes_aggregates_are_re_keyed_once_and_the_next_start_scans_nothing,
        a_members_pending_tokens_at_two_coops_share_no_tag,
        the_erased_list_pairs_no_two_tags_of_one_erasure,
        the_pooled_scope_keeps_no_members_totals,
        the_receipts_file_order_is_not_their_ingest_order,
        the_pooled_scope_keeps_no_members_values,
    }
}

/// Rows of one byte-string column, as the thief reads them (`binds` bound
/// in order).
async fn raw(db: Db, url: &str, sql: &str, binds: &[Vec<u8>]) -> Vec<Vec<u8>> {
    macro_rules! run {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let mut q = sqlx::query_scalar::<_, Vec<u8>>(sql);
            for b in binds {
                q = q.bind(b.clone());
            }
            let v = q.fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }};
    }
    match db {
        Db::Sqlite => run!(sqlx::SqlitePool),
        Db::Postgres => run!(sqlx::PgPool),
    }
}

/// A statement run as the thief (or an older node) would.
async fn exec(db: Db, url: &str, sql: &str, binds: &[Vec<u8>]) {
    macro_rules! run {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b.clone());
            }
            q.execute(&pool).await.unwrap();
            pool.close().await;
        }};
    }
    match db {
        Db::Sqlite => run!(sqlx::SqlitePool),
        Db::Postgres => run!(sqlx::PgPool),
    }
}

async fn coops(s: &Arc<dyn Store>) -> Vec<OrgId> {
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
    orgs
}

/// Two members, each with one receipt at each of two co-ops; totals
/// (cents) per member and co-op as the co-ops know them per card.
const TOTALS: [[i64; 2]; 2] = [[500, 700], [300, 1_000]];
const TAGS: [[u8; 32]; 2] = [[0x33; 32], [0x34; 32]];

async fn ingest(s: &Arc<dyn Store>, orgs: &[OrgId]) {
    for (m, tag) in TAGS.iter().enumerate() {
        for (i, org) in orgs.iter().enumerate() {
            let row = TrustReceiptRow {
                id: TrustReceiptId::from_slice(&[0x60 + (m * 2 + i) as u8; 16]).unwrap(),
                org: *org,
                tag: *tag,
                source_ct: vec![1; 8],
                research_ct: vec![2; 8],
                day: 20_000,
                area: "NL-NH".into(),
                amount_cents: TOTALS[m][i],
                created_at: ts(5 * 3_600_000),
                items: vec![(1 + i as i64, TOTALS[m][i])],
            };
            s.insert_trust_receipts(&[row], 5).await.unwrap();
        }
    }
}

/// What the trust answers from the aggregates, for both members.
async fn aggregates_hold(db: Db, s: &Arc<dyn Store>, orgs: &[OrgId], members: u64) {
    let (a, b) = (orgs[0].to_string(), orgs[1].to_string());
    for scope in [&a, &b, &"*".to_owned()] {
        assert_eq!(
            s.trust_member_count(scope).await.unwrap(),
            members,
            "{db:?}"
        );
    }
    assert_eq!(s.trust_overlap(&a, &b).await.unwrap(), members, "{db:?}");
    assert_eq!(s.trust_overlap(&b, &a).await.unwrap(), members, "{db:?}");
    let sum: i64 = TOTALS.iter().skip(2 - members as usize).flatten().sum();
    assert_eq!(
        s.trust_clamped_sum("*", 1_000_000).await.unwrap(),
        (members, sum),
        "{db:?}"
    );
    // Category 1 at co-op A, 2 at B, both in `*`; the area everywhere.
    let cats = s
        .trust_pooled_bin_counts(TrustDim::Category, 5)
        .await
        .unwrap();
    assert_eq!(cats, vec![(1, members), (2, members)], "{db:?}");
    // A member counts for at most the cap over all co-ops (the smallest).
    let capped = s
        .trust_pooled_bin_counts(TrustDim::Category, 1)
        .await
        .unwrap();
    assert_eq!(capped, vec![(1, members)], "{db:?}");
    let area = s.trust_pooled_bin_counts(TrustDim::Area, 5).await.unwrap();
    assert_eq!(area.len(), 1, "{db:?}");
    assert_eq!(area[0].1, members, "{db:?}");
    let area = s.trust_bin_counts(&a, TrustDim::Area).await.unwrap();
    assert_eq!(area.len(), 1, "{db:?}");
    assert_eq!(area[0].1, members, "{db:?}");
    let mut scopes = vec![a.clone(), b.clone(), "*".to_owned()];
    scopes.sort();
    assert_eq!(
        s.trust_member_scopes(&TAGS[1]).await.unwrap(),
        scopes,
        "{db:?}"
    );
}

/// The thief's join: the stored tags of the rows (any scope) of one member
/// that also appear in another scope, in `table`.
async fn shared_tags(db: Db, url: &str, table: &str) -> Vec<Vec<u8>> {
    raw(
        db,
        url,
        &format!("SELECT tag FROM {table} GROUP BY tag HAVING COUNT(DISTINCT scope) > 1"),
        &[],
    )
    .await
}

/// Issue 13 (trust13's report, "noticed, not fixed"): `trust_members` and
/// `trust_bins` kept a member under one research tag in every scope. A
/// thief with the file and co-op A's total for its card found A's row by
/// the total, followed the tag to B's row and matched B's card by its
/// total: A's and B's pseudonyms linked. Each scope now has its own tag;
/// the trust's answers are unchanged and erasure still finds every row.
async fn a_members_rows_in_two_scopes_share_no_tag(db: Db) {
    for (db, s, t) in stores(db).await {
        let orgs = coops(&s).await;
        ingest(&s, &orgs).await;
        // The thief's attack, as run: A's card with 500 spent, followed to B.
        let followed = thief_follows(db, &t.url, &orgs).await;
        assert!(
            followed.is_empty(),
            "{db:?}: A's row followed to B's by its tag"
        );
        for table in ["trust_members", "trust_bins"] {
            assert!(
                shared_tags(db, &t.url, table).await.is_empty(),
                "{db:?}: {table} keys a member by one tag in two scopes"
            );
        }
        let stored: BTreeSet<Vec<u8>> = raw(db, &t.url, "SELECT tag FROM trust_members", &[])
            .await
            .into_iter()
            .chain(raw(db, &t.url, "SELECT tag FROM trust_bins", &[]).await)
            .collect();
        for tag in TAGS {
            assert!(
                !stored.contains(tag.as_slice()),
                "{db:?}: the research tag stored"
            );
        }
        aggregates_hold(db, &s, &orgs, 2).await;

        // Erasure finds every row of the member, in every scope.
        assert_eq!(
            s.trust_forget(&TAGS[0], &[0x44; 32], ts(7 * 3_600_000))
                .await
                .unwrap(),
            2,
            "{db:?}"
        );
        aggregates_hold(db, &s, &orgs, 1).await;
        assert!(s.trust_member_scopes(&TAGS[0]).await.unwrap().is_empty());
        s.close().await;
    }
}

/// The totals B's rows have that A's 500-cent row leads to by its tag.
async fn thief_follows(db: Db, url: &str, orgs: &[OrgId]) -> Vec<i64> {
    let sql = "SELECT y.total_cents FROM trust_members x JOIN trust_members y \
               ON y.tag = x.tag AND y.scope = $2 WHERE x.scope = $1 AND x.total_cents = 500";
    macro_rules! run {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let v: Vec<i64> = sqlx::query_scalar(sql)
                .bind(orgs[0].to_string())
                .bind(orgs[1].to_string())
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            v
        }};
    }
    match db {
        Db::Sqlite => run!(sqlx::SqlitePool),
        Db::Postgres => run!(sqlx::PgPool),
    }
}

/// One integer (a count) as the thief reads it.
async fn count(db: Db, url: &str, sql: &str) -> i64 {
    macro_rules! run {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let v: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            v
        }};
    }
    match db {
        Db::Sqlite => run!(sqlx::SqlitePool),
        Db::Postgres => run!(sqlx::PgPool),
    }
}

/// What a node's start re-keys (`Node::open`): rows changed.
async fn start(s: &Arc<dyn Store>) -> u64 {
    let tag_of = |_: me2b_domain::MemberId| [0u8; 32];
    s.rekey_member_metadata().await.unwrap() + s.rectification_rekey(&tag_of).await.unwrap()
}

/// Rows an older node wrote (one research tag in every scope) are re-keyed
/// at the first start after the migration, and the trust's answers and
/// erasure hold after. That start marks the re-keying done: the next start
/// reads no table row by row (issue 13: `rekey_trust_tags` and
/// `rekey_consents_and_subjects` scanned every receipt, loyalty day and
/// erasure request at every start). A row left as an older node's after the
/// first start stays as it is: nothing looked at it.
async fn an_older_nodes_aggregates_are_re_keyed_once_and_the_next_start_scans_nothing(db: Db) {
    for (db, s, t) in stores(db).await {
        let orgs = coops(&s).await;
        ingest(&s, &orgs).await;
        // As an older node stored them: the research tag in every scope.
        for (m, tag) in TAGS.iter().enumerate() {
            let scopes = [
                (orgs[0].to_string(), TOTALS[m][0]),
                (orgs[1].to_string(), TOTALS[m][1]),
                ("*".to_owned(), TOTALS[m][0] + TOTALS[m][1]),
            ];
            for (scope, total) in scopes {
                // A co-op's row found by its total; a `*` row (no totals
                // since adv8) by its tag, computed here with the test keys.
                let (row, binds) = if scope == "*" {
                    let keys = me2b_testkit::metadata_keys();
                    let stored = keys.scoped_tag(MetaTable::TrustMembers, tag, b"*");
                    ("tag = $2".to_owned(), vec![tag.to_vec(), stored.to_vec()])
                } else {
                    (format!("total_cents = {total}"), vec![tag.to_vec()])
                };
                exec(
                    db,
                    &t.url,
                    &format!(
                        "UPDATE trust_bins SET tag = $1, tag_scoped = 0 WHERE scope = '{scope}' AND tag = \
                         (SELECT tag FROM trust_members WHERE scope = '{scope}' AND {row})"
                    ),
                    &binds,
                )
                .await;
                exec(
                    db,
                    &t.url,
                    &format!(
                        "UPDATE trust_members SET tag = $1, tag_ct = NULL, tag_scoped = 0 \
                         WHERE scope = '{scope}' AND {row}"
                    ),
                    &binds,
                )
                .await;
            }
        }
        assert_eq!(
            shared_tags(db, &t.url, "trust_members").await.len(),
            2,
            "{db:?}"
        );
        assert_eq!(
            shared_tags(db, &t.url, "trust_bins").await.len(),
            2,
            "{db:?}"
        );

        // The first start after the migration.
        let moved = start(&s).await;
        assert!(moved >= 6 + 8, "{db:?}: {moved} rows re-keyed");
        for table in ["trust_members", "trust_bins"] {
            assert!(
                shared_tags(db, &t.url, table).await.is_empty(),
                "{db:?}: {table}"
            );
        }
        assert!(thief_follows(db, &t.url, &orgs).await.is_empty(), "{db:?}");
        aggregates_hold(db, &s, &orgs, 2).await;
        if db == Db::Sqlite {
            // adv8: the re-keyed rows' old cells stayed in the pages' free
            // space, and carving them linked 14 of 14 members across
            // co-ops. The node's start compacts the file after a re-keying.
            s.compact().await.unwrap();
            let path = t.url.trim_start_matches("sqlite://").to_owned();
            let file = [
                std::fs::read(&path).unwrap_or_default(),
                std::fs::read(format!("{path}-wal")).unwrap_or_default(),
            ]
            .concat();
            for tag in TAGS.iter() {
                assert!(
                    !file.windows(tag.len()).any(|w| w == &tag[..]),
                    "an older node's shared tag is still in the file after the re-keying"
                );
            }
        }

        // The next start: rows left as an older node's (which no node of
        // this version writes) are not even looked at.
        exec(db, &t.url, "UPDATE trust_receipts SET tag_scoped = 0", &[]).await;
        exec(
            db,
            &t.url,
            "UPDATE trust_members SET tag_scoped = 0 WHERE scope = '*'",
            &[],
        )
        .await;
        assert_eq!(start(&s).await, 0, "{db:?}: the second start re-keyed rows");
        let untouched = "SELECT COUNT(*) FROM trust_receipts WHERE tag_scoped = 0";
        assert_eq!(count(db, &t.url, untouched).await, 4, "{db:?}");
        let untouched = "SELECT COUNT(*) FROM trust_members WHERE tag_scoped = 0";
        assert_eq!(count(db, &t.url, untouched).await, 2, "{db:?}");
        for marker in [REKEYED_CONSENTS, REKEYED_TRUST, REKEYED_RECTIFICATIONS] {
            assert!(s.meta(marker).await.unwrap().is_some(), "{db:?}");
        }

        // Erasure finds the re-keyed rows.
        assert_eq!(
            s.trust_forget(&TAGS[0], &[0x44; 32], ts(7 * 3_600_000))
                .await
                .unwrap(),
            2,
            "{db:?}"
        );
        aggregates_hold(db, &s, &orgs, 1).await;
        s.close().await;
    }
}

/// Issue 13 (trust13's report): a member's pending redemption tokens were
/// stored under their one loyalty tag (their balance's). A co-op hashes a
/// token it is handed at the till: with a copy of the file from before, it
/// found the token's row, followed the tag to the member's pending token at
/// another co-op and, once that co-op redeemed it, paired the two cards.
/// Each token is now under the tag scoped to its co-op, the member's tag
/// sealed to it; redemption, the member's account, the re-keying of an older
/// node's tokens and erasure still work.
async fn a_members_pending_tokens_at_two_coops_share_no_tag(db: Db) {
    const HOUR: i64 = 3_600_000;
    for (db, s, t) in stores(db).await {
        let orgs = coops(&s).await;
        let loyalty = [0x44; 32];
        s.loyalty_register(&loyalty).await.unwrap();
        let token = |i: u8, org: OrgId| NewRedemptionToken {
            token_hash: [0x90 + i; 32],
            tag: loyalty,
            org,
            points: 10,
            expires_at: ts(10 * HOUR),
        };
        for (i, org) in orgs.iter().enumerate() {
            assert!(s.loyalty_earn(&loyalty, *org, 50, 20_000).await.unwrap());
            let tk = token(i as u8, *org);
            assert!(s.loyalty_reserve(&tk, ts(HOUR)).await.unwrap(), "{db:?}");
        }
        // The thief: co-op A's token, hashed, followed to another token.
        let followed = raw(
            db,
            &t.url,
            "SELECT y.token_hash FROM trust_loyalty_tokens x JOIN trust_loyalty_tokens y \
             ON y.tag = x.tag AND y.token_hash <> x.token_hash WHERE x.token_hash = $1",
            &[vec![0x90; 32]],
        )
        .await;
        assert!(followed.is_empty(), "{db:?}: A's token led to B's");
        let tags = raw(db, &t.url, "SELECT tag FROM trust_loyalty_tokens", &[]).await;
        assert!(
            !tags.contains(&loyalty.to_vec()),
            "{db:?}: the balance's tag"
        );
        let account = s.loyalty_account(&loyalty, ts(HOUR)).await.unwrap();
        assert_eq!((account.balance, account.reserved), (80, 20), "{db:?}");
        let redeemed = s
            .loyalty_redeem(&[0x90; 32], orgs[0], 10, ts(2 * HOUR), 20_001)
            .await
            .unwrap();
        assert_eq!(redeemed, Some(loyalty), "{db:?}");

        // An older node's token (the member's tag) is re-keyed at start.
        exec(
            db,
            &t.url,
            "UPDATE trust_loyalty_tokens SET tag = $1, tag_ct = NULL, tag_scoped = 0",
            &[loyalty.to_vec()],
        )
        .await;
        assert!(s.rekey_member_metadata().await.unwrap() >= 1, "{db:?}");
        let tags = raw(db, &t.url, "SELECT tag FROM trust_loyalty_tokens", &[]).await;
        assert!(!tags.contains(&loyalty.to_vec()), "{db:?}: not re-keyed");
        let account = s.loyalty_account(&loyalty, ts(2 * HOUR)).await.unwrap();
        assert_eq!((account.balance, account.reserved), (80, 10), "{db:?}");
        let redeemed = s
            .loyalty_redeem(&[0x91; 32], orgs[1], 10, ts(2 * HOUR), 20_001)
            .await
            .unwrap();
        assert_eq!(redeemed, Some(loyalty), "{db:?}");

        // An expired token's points come back; erasure takes pending ones.
        let late = NewRedemptionToken {
            expires_at: ts(3 * HOUR),
            ..token(2, orgs[0])
        };
        assert!(s.loyalty_reserve(&late, ts(2 * HOUR)).await.unwrap());
        let account = s.loyalty_account(&loyalty, ts(4 * HOUR)).await.unwrap();
        assert_eq!((account.balance, account.reserved), (80, 0), "{db:?}");
        assert!(s
            .loyalty_reserve(&token(3, orgs[1]), ts(4 * HOUR))
            .await
            .unwrap());
        s.trust_forget(&[0x33; 32], &loyalty, ts(5 * HOUR))
            .await
            .unwrap();
        assert!(
            raw(db, &t.url, "SELECT tag FROM trust_loyalty_tokens", &[])
                .await
                .is_empty(),
            "{db:?}: a pending token outlived the erasure"
        );
        s.close().await;
    }
}

/// Issue 13 (trust13's report): the erased list put a held erasure's two
/// tags (research, loyalty) under one hour, written one after the other:
/// the file paired them. Now every tag erased that day has the same day,
/// and SQLite keeps the rows in tag order (PostgreSQL's heap keeps written
/// order: a documented residual, not checked here).
async fn the_erased_list_pairs_no_two_tags_of_one_erasure(db: Db) {
    const HOUR: i64 = 3_600_000;
    for (db, s, t) in stores(db).await {
        // Written A0, 10, then B0, 20: in tag order the pairs are apart.
        let erasures = [([0xA0; 32], [0x10; 32], 7), ([0xB0; 32], [0x20; 32], 9)];
        for (research, loyalty, hour) in erasures {
            s.trust_forget(&research, &loyalty, ts(20_000 * 24 * HOUR + hour * HOUR))
                .await
                .unwrap();
        }
        let days = "SELECT COUNT(DISTINCT erased_at) FROM trust_erased";
        assert_eq!(
            count(db, &t.url, days).await,
            1,
            "{db:?}: one erasure's hour"
        );
        if db == Db::Sqlite {
            let order = raw(db, &t.url, "SELECT tag FROM trust_erased", &[]).await;
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(order, sorted, "{db:?}: rows in the order written");
        }
        let erased = s
            .trust_erased_among(&[[0xA0; 32], [0x20; 32], [0x55; 32]])
            .await
            .unwrap();
        assert_eq!(erased.len(), 2, "{db:?}");
        s.close().await;
    }
}

/// The thief's subset sums (adv8): each pair of a row of co-op A and a row
/// of co-op B whose totals add up to a `*` row's, as (A's total, B's).
async fn thief_sums(db: Db, url: &str, orgs: &[OrgId]) -> Vec<(i64, i64)> {
    let sql = "SELECT x.total_cents, y.total_cents FROM trust_members p \
               JOIN trust_members x ON x.scope = $1 JOIN trust_members y ON y.scope = $2 \
               WHERE p.scope = '*' AND x.total_cents + y.total_cents = p.total_cents \
               AND x.receipts + y.receipts = p.receipts";
    macro_rules! run {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let v: Vec<(i64, i64)> = sqlx::query_as(sql)
                .bind(orgs[0].to_string())
                .bind(orgs[1].to_string())
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            v
        }};
    }
    match db {
        Db::Sqlite => run!(sqlx::SqlitePool),
        Db::Postgres => run!(sqlx::PgPool),
    }
}

/// adv8 (issue 13): `trust_members` kept, in the `*` scope, each member's
/// totals (spend, receipts) over all co-ops: the sum of their co-op rows'.
/// A thief with the file alone found, for each `*` row, the one pair of a
/// row of co-op A and one of co-op B adding up to it, and so linked the
/// member's rows (their cards) across co-ops: 14 of 16 members. A `*` row
/// now says only that the member is in the pool (for the distinct count);
/// the pooled sum is computed at query time from the co-op rows, each
/// member's total over co-ops clamped as before.
async fn the_pooled_scope_keeps_no_members_totals(db: Db) {
    for (db, s, t) in stores(db).await {
        let orgs = coops(&s).await;
        ingest(&s, &orgs).await;
        let linked = thief_sums(db, &t.url, &orgs).await;
        assert!(
            linked.is_empty(),
            "{db:?}: {} of 2 members' co-op rows linked by their `*` totals: {linked:?}",
            linked.len()
        );
        let totals = "SELECT COUNT(*) FROM trust_members WHERE scope = '*' \
                      AND (total_cents <> 0 OR receipts <> 0)";
        assert_eq!(count(db, &t.url, totals).await, 0, "{db:?}: `*` totals");
        aggregates_hold(db, &s, &orgs, 2).await;
        // Each member's total over both co-ops is clamped, not each row:
        // 1,200 and 1,300 to 1,000 each (the sensitivity stays `upper`).
        assert_eq!(
            s.trust_clamped_sum("*", 1_000).await.unwrap(),
            (2, 2_000),
            "{db:?}"
        );
        assert_eq!(
            s.trust_clamped_sum(&orgs[1].to_string(), 800)
                .await
                .unwrap(),
            (2, 1_500),
            "{db:?}"
        );
        s.trust_forget(&TAGS[1], &[0x45; 32], ts(7 * 3_600_000))
            .await
            .unwrap();
        assert_eq!(
            s.trust_clamped_sum("*", 1_000_000).await.unwrap(),
            (1, 1_200),
            "{db:?}"
        );
        assert_eq!(s.trust_member_count("*").await.unwrap(), 1, "{db:?}");
        s.close().await;
    }
}

/// The receipt ids of `table` in the order a scan of the file meets them
/// (`day`/`amount_cents` in the filter: no index covers the query).
async fn file_order(db: Db, url: &str, table: &str) -> Vec<Vec<u8>> {
    let filter = match table {
        "trust_receipts" => "day + 0 >= 0",
        _ => "amount_cents + 0 >= 0",
    };
    raw(
        db,
        url,
        &format!("SELECT receipt_id FROM {table} WHERE {filter}"),
        &[],
    )
    .await
}

/// adv8 (issue 13): `trust_receipts` and `trust_events` were rowid tables,
/// so the file kept receipts in the order they came in, and a co-op's
/// uploads (or a member's forwarded receipts) in the order it sent them:
/// with its own sending log, a co-op matched 16 of 16 of its receipts to
/// their rows. SQLite now keeps both tables WITHOUT ROWID, in the order of
/// the receipt's random id; PostgreSQL rewrote them in key order once and
/// marks the key as the clustering index (rows written since keep heap
/// order until an operator's `CLUSTER`: the documented residual).
async fn the_receipts_file_order_is_not_their_ingest_order(db: Db) {
    for (db, s, t) in stores(db).await {
        let orgs = coops(&s).await;
        // Sent one by one, ids descending: in id order the log is reversed.
        let mut sent = Vec::new();
        for i in 0..16u8 {
            let id = [0xF0 - i * 8; 16];
            let row = TrustReceiptRow {
                id: TrustReceiptId::from_slice(&id).unwrap(),
                org: orgs[usize::from(i % 2)],
                tag: [0x40 + i; 32],
                source_ct: vec![1; 8],
                research_ct: vec![2; 8],
                day: 20_000,
                area: "NL-NH".into(),
                amount_cents: 300,
                created_at: ts(5 * 3_600_000),
                items: vec![(2, 200), (1, 100)],
            };
            s.insert_trust_receipts(&[row], 5).await.unwrap();
            sent.push(id.to_vec());
        }
        let mut sorted = sent.clone();
        sorted.sort();
        if db == Db::Sqlite {
            let order = file_order(db, &t.url, "trust_receipts").await;
            assert_ne!(order, sent, "{db:?}: trust_receipts in the order sent");
            assert_eq!(order, sorted, "{db:?}: trust_receipts not in id order");
            let order = file_order(db, &t.url, "trust_events").await;
            let twice: Vec<Vec<u8>> = sorted.iter().flat_map(|i| [i.clone(), i.clone()]).collect();
            assert_eq!(order, twice, "{db:?}: trust_events not in id order");
        } else {
            for table in ["trust_receipts", "trust_events"] {
                let clustered = format!(
                    "SELECT COUNT(*) FROM pg_index WHERE indrelid = '{table}'::regclass \
                     AND indisprimary AND indisclustered"
                );
                assert_eq!(count(db, &t.url, &clustered).await, 1, "{db:?}: {table}");
            }
        }
        // The receipts read back whole, items in the order sent.
        let back = s.trust_receipts_of(orgs[1], &[0x41; 32]).await.unwrap();
        assert_eq!(back.len(), 1, "{db:?}");
        assert_eq!(back[0].items, vec![(2, 200), (1, 100)], "{db:?}");
        assert_eq!(
            s.trust_forget(&[0x41; 32], &[0x45; 32], ts(7 * 3_600_000))
                .await
                .unwrap(),
            1,
            "{db:?}"
        );
        let left = "SELECT COUNT(*) FROM trust_events";
        assert_eq!(count(db, &t.url, left).await, 30, "{db:?}");
        s.close().await;
    }
}

/// Each member's category values per (scope, stored tag), as the thief
/// groups `trust_bins`.
async fn bin_sets(db: Db, url: &str) -> Vec<(String, BTreeSet<i64>)> {
    let sql = "SELECT scope, tag, value FROM trust_bins WHERE dim = 1";
    macro_rules! run {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let v: Vec<(String, Vec<u8>, i64)> =
                sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            v
        }};
    }
    let rows = match db {
        Db::Sqlite => run!(sqlx::SqlitePool),
        Db::Postgres => run!(sqlx::PgPool),
    };
    let mut sets: std::collections::BTreeMap<(String, Vec<u8>), BTreeSet<i64>> = Default::default();
    for (scope, tag, value) in rows {
        sets.entry((scope, tag)).or_default().insert(value);
    }
    sets.into_iter().map(|((scope, _), v)| (scope, v)).collect()
}

/// adv8 (issue 13), the `*` bins: a member's values in the `*` scope were
/// the union of their values at each co-op (up to the cap), so a thief with
/// the file alone matched each `*` member's set to the one pair of a co-op
/// A member and a co-op B member whose sets make it up. The `*` scope now
/// keeps no bins; the pooled histogram is computed at query time from the
/// co-op scopes' bins, each member capped as before.
async fn the_pooled_scope_keeps_no_members_values(db: Db) {
    for (db, s, t) in stores(db).await {
        let orgs = coops(&s).await;
        // Member m buys category 10 + m at A and 20 + m at B.
        for m in 0..4u8 {
            for (i, org) in orgs.iter().enumerate() {
                let c = 10 * (i as i64 + 1) + i64::from(m);
                let row = TrustReceiptRow {
                    id: TrustReceiptId::from_slice(&[0x80 + m * 2 + i as u8; 16]).unwrap(),
                    org: *org,
                    tag: [0x70 + m; 32],
                    source_ct: vec![1; 8],
                    research_ct: vec![2; 8],
                    day: 20_000,
                    area: "NL-NH".into(),
                    amount_cents: 100,
                    created_at: ts(5 * 3_600_000),
                    items: vec![(c, 100)],
                };
                s.insert_trust_receipts(&[row], 5).await.unwrap();
            }
        }
        let sets = bin_sets(db, &t.url).await;
        let of = |scope: &str| -> Vec<BTreeSet<i64>> {
            sets.iter()
                .filter(|(s, _)| s == scope)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let (a, b) = (of(&orgs[0].to_string()), of(&orgs[1].to_string()));
        let mut linked = 0;
        for pooled in of("*") {
            let pairs = a
                .iter()
                .flat_map(|x| {
                    b.iter()
                        .map(move |y| x.union(y).copied().collect::<BTreeSet<i64>>())
                })
                .filter(|u| *u == pooled)
                .count();
            linked += usize::from(pairs == 1);
        }
        assert_eq!(
            linked, 0,
            "{db:?}: {linked} of 4 members linked by their `*` values"
        );
        let kept = "SELECT COUNT(*) FROM trust_bins WHERE scope = '*'";
        assert_eq!(count(db, &t.url, kept).await, 0, "{db:?}: `*` bins kept");
        s.close().await;
    }
}
