-- Issue 13, the trust's tables at rest (adv8); SQLite's 0039 says why.
--
-- 1. A `*` row of `trust_members` keeps no totals (they were the sum of the
--    member's co-op rows); the pooled sum is computed at query time.
UPDATE trust_members SET total_cents = 0, receipts = 0 WHERE scope = '*';
-- Nor bins (the union of the member's co-op values).
DELETE FROM trust_bins WHERE scope = '*';
DELETE FROM trust_bin_totals WHERE scope = '*';

-- 2. An item is keyed by its receipt and its position in it (SQLite keeps
--    `trust_events` WITHOUT ROWID by that key; the column is here too).
ALTER TABLE trust_events ADD COLUMN item BIGINT;
UPDATE trust_events SET item = n.item
    FROM (SELECT ctid AS c, ROW_NUMBER() OVER (PARTITION BY receipt_id ORDER BY ctid) - 1 AS item
          FROM trust_events) n
    WHERE trust_events.ctid = n.c;
ALTER TABLE trust_events ALTER COLUMN item SET NOT NULL;
ALTER TABLE trust_events ADD PRIMARY KEY (receipt_id, item);
DROP INDEX trust_events_by_receipt;

-- The heap keeps rows in the order written, whatever the key (0035): the
-- receipts and items written so far are rewritten in key order once, and the
-- key marked as each table's clustering index, so an operator's periodic
-- `CLUSTER;` re-sorts what came after (ARCHITECTURE.md, "Metadata at rest").
-- `trust_members` and `trust_bins` are rewritten too: the old `*` totals and
-- bins leave their heaps (the WAL keeps them until recycled).
DO $$
DECLARE
    t text;
    i text;
BEGIN
    FOREACH t IN ARRAY ARRAY['trust_receipts', 'trust_events', 'trust_members', 'trust_bins'] LOOP
        SELECT c.relname INTO i
        FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        WHERE x.indrelid = t::regclass AND x.indisprimary;
        EXECUTE format('CLUSTER %I USING %I', t, i);
    END LOOP;
END
$$;
