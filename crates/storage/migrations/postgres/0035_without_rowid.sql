-- Insertion order at rest (issue 13; the re-check of adv6, rows 2 and 3).
-- On SQLite the same tables are rebuilt WITHOUT ROWID, keyed by their random
-- id or keyed locator, so a row's place in the file is its key's.
--
-- PostgreSQL has no such table: its heap takes new rows where there is room
-- (at the end, or a page with free space), in time order whatever the key,
-- and `ctid` shows it. What is cheap and sound here: rewrite the rows
-- written so far in primary key order, once (CLUSTER), which also marks the
-- primary key as each table's clustering index, so an operator's periodic
-- `CLUSTER;` (or `pg_repack`) re-sorts them. Rows written after this keep
-- insertion order until then: ARCHITECTURE.md, "Metadata at rest". The
-- schema stays that of SQLite.

-- SQLite keeps `consents` by a random rowid, `slot` (the low 60 bits of the
-- random consent id); the column is here too, unique, for the same inserts.
ALTER TABLE consents ADD COLUMN slot BIGINT;
UPDATE consents SET slot = ('x' || substr(encode(consent_id, 'hex'), 18, 15))::bit(60)::bigint;
ALTER TABLE consents ALTER COLUMN slot SET NOT NULL;
ALTER TABLE consents ADD CONSTRAINT consents_slot_key UNIQUE (slot);

DO $$
DECLARE
    t text;
    i text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'members', 'sessions', 'sign_ups', 'vault_records', 'consents',
        'consent_envelopes', 'consent_envelopes_pending', 'member_gpc',
        'marketing_optouts', 'optout_codes', 'optout_jobs', 'imported_history',
        'credential_codes', 'trust_enrolments', 'trust_sharing',
        'trust_loyalty_tokens', 'trust_loyalty_balances', 'trust_erased'
    ] LOOP
        SELECT c.relname INTO i
        FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        WHERE x.indrelid = t::regclass AND x.indisprimary;
        EXECUTE format('CLUSTER %I USING %I', t, i);
    END LOOP;
END
$$;
