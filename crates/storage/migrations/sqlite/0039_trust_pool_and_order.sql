-- Issue 13, the trust's tables at rest (adv8: a thief with the file alone,
-- or with a co-op's own records).
--
-- 1. A `*` row of `trust_members` (the pool of all co-ops) kept the
--    member's totals over every co-op: the sum of their co-op rows. Subset
--    sums over the file linked a member's rows, and so their cards, across
--    co-ops (14 of 16). A `*` row now only says the member is in the pool;
--    the pooled sum is computed at query time from the co-op rows (each
--    holds the member's research tag sealed to it).
UPDATE trust_members SET total_cents = 0, receipts = 0 WHERE scope = '*';
-- Its bins were the union of the member's co-op values (up to the cap),
-- matched by a thief to pairs of co-op members: the `*` scope keeps no bins,
-- and the pooled histogram is computed at query time from the co-op bins.
DELETE FROM trust_bins WHERE scope = '*';
DELETE FROM trust_bin_totals WHERE scope = '*';

-- 2. `trust_receipts` and `trust_events` were rowid tables: the file kept
--    receipts in the order they came in, which is a co-op's sending order
--    (16 of 16 matched to its log). Both are rebuilt WITHOUT ROWID, keyed by
--    the receipt's id (random, or a keyed hash for a forwarded receipt), an
--    item by its position in the receipt; rows copied in key order. A
--    receipt row (about 250 bytes) stays whole in its page.
CREATE TABLE trust_receipts_0039 (
    receipt_id   BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES organisations (org_id),
    tag          BLOB NOT NULL,
    source_ct    BLOB NOT NULL,
    research_ct  BLOB NOT NULL,
    day          INTEGER NOT NULL,
    area         TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    tag_scoped   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO trust_receipts_0039
    (receipt_id, org_id, tag, source_ct, research_ct, day, area, amount_cents, created_at, tag_scoped)
    SELECT receipt_id, org_id, tag, source_ct, research_ct, day, area, amount_cents, created_at, tag_scoped
    FROM trust_receipts ORDER BY receipt_id;
CREATE TABLE trust_events_0039 (
    receipt_id   BLOB NOT NULL REFERENCES trust_receipts_0039 (receipt_id),
    item         INTEGER NOT NULL,
    category     INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    PRIMARY KEY (receipt_id, item)
) WITHOUT ROWID;
INSERT INTO trust_events_0039 (receipt_id, item, category, amount_cents)
    SELECT receipt_id, ROW_NUMBER() OVER (PARTITION BY receipt_id ORDER BY rowid) - 1,
           category, amount_cents
    FROM trust_events ORDER BY receipt_id, rowid;
DROP TABLE trust_events;
DROP TABLE trust_receipts;
ALTER TABLE trust_receipts_0039 RENAME TO trust_receipts;
CREATE INDEX trust_receipts_by_member ON trust_receipts (org_id, tag);
ALTER TABLE trust_events_0039 RENAME TO trust_events;
