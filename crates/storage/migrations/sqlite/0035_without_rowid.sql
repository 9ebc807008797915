-- Insertion order at rest (issue 13; the re-check of adv6, rows 2 and 3).
--
-- A rowid table keeps its rows in the order they were written, so rows one
-- member writes one after the other sat side by side in the file: a grant at
-- co-op A then at co-op B (`consents`, `consent_envelopes`), the envelopes
-- one record correction re-seals for both co-ops (`consent_envelopes_pending`,
-- then `consent_envelopes` after the release). A thief with the file alone
-- paired 30 of 30 grants and 6 of 6 corrections by rowid.
--
-- Every table of member-derived rows is rebuilt WITHOUT ROWID, keyed by the
-- random id or keyed locator it already has (unique, drawn from the node's
-- `Random` or a keyed hash), so a row's place in the file is its key's and
-- not its time's (`consents`: a random rowid, below). Existing rows are
-- copied in key order. Secondary indexes are the same (they now point at
-- the key, not a rowid).
--
-- Left as they are: `audit_log` (a hash chain: its order is public by design,
-- its subject a per-member pseudonym), `consent_requests`, offers and the
-- organisations' tables (no member), aggregates (`trust_bin_totals`, `dp_*`),
-- `credential_status` (an index an organisation hands out in order),
-- `trust_receipts`/`trust_events` (a co-op's uploads, under per-co-op tags;
-- `trust_events` has no unique key to sort by). What remains (overflow pages,
-- the order of cells within a page, PostgreSQL's heap) is in ARCHITECTURE.md,
-- "Metadata at rest".

CREATE TABLE members_0035 (
    member_id       BLOB PRIMARY KEY NOT NULL,
    email_index     BLOB UNIQUE,
    email_ct        BLOB,
    passphrase_hash TEXT,
    wrapped_dek     BLOB,
    state           TEXT NOT NULL CHECK (state IN ('active', 'erasing')),
    created_at      INTEGER NOT NULL
, passphrase_wrap BLOB, recovery_wrap BLOB, last_login_at INTEGER, legacy_warned_at INTEGER, erased_at INTEGER, audit_salt BLOB) WITHOUT ROWID;
INSERT INTO members_0035 SELECT * FROM members ORDER BY member_id;
CREATE TABLE sessions_0035 (
    token_hash BLOB PRIMARY KEY NOT NULL,
    member_loc BLOB NOT NULL,
    member_ct  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    wrapped_dek BLOB
, expires_ct BLOB) WITHOUT ROWID;
INSERT INTO sessions_0035 SELECT * FROM sessions ORDER BY token_hash;
CREATE TABLE sign_ups_0035 (
    token_hash      BLOB PRIMARY KEY NOT NULL,
    member_id       BLOB NOT NULL,
    email_index     BLOB NOT NULL,
    email_ct        BLOB NOT NULL,
    passphrase_lock BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO sign_ups_0035 SELECT * FROM sign_ups ORDER BY token_hash;
CREATE TABLE vault_records_0035 (
    record_id        BLOB PRIMARY KEY NOT NULL,
    member_loc       BLOB NOT NULL,
    legacy_member_id BLOB,
    revision         INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    ciphertext       BLOB NOT NULL
, ord BIGINT NOT NULL DEFAULT 0) WITHOUT ROWID;
INSERT INTO vault_records_0035 SELECT * FROM vault_records ORDER BY record_id;
-- `consents` alone stays a rowid table, with a random rowid (`slot`, the low
-- 60 bits of the random consent id): a consent row is about 2.6 KB (5 KB once
-- released), more than an index b-tree keeps in its page (about 1,000 B of
-- 4,096), so WITHOUT ROWID would give each grant an overflow page, taken in
-- the order written (a thief reading pages paired half the grants by it). A
-- table b-tree keeps the grant's row whole in its page.
CREATE TABLE consents_0035 (
    consent_id       BLOB NOT NULL UNIQUE,
    request_id       BLOB NOT NULL REFERENCES consent_requests (request_id),
    org_id           BLOB NOT NULL,
    member_loc       BLOB NOT NULL,
    member_ct        BLOB,
    legacy_member_id BLOB,
    status           TEXT NOT NULL CHECK (status IN ('given', 'refused', 'withdrawn')),
    version          INTEGER NOT NULL,
    given_at         INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    withdrawn_at     INTEGER,
    body             BLOB NOT NULL,
    org_body         BLOB,
    org_version      INTEGER,
    org_legacy       INTEGER NOT NULL DEFAULT 0,
    loc_scoped       INTEGER NOT NULL DEFAULT 0,
    slot             INTEGER PRIMARY KEY NOT NULL
);
INSERT INTO consents_0035 SELECT *,
    (instr('0123456789ABCDEF', substr(hex(consent_id), 18, 1)) - 1) * 72057594037927936 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 19, 1)) - 1) * 4503599627370496 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 20, 1)) - 1) * 281474976710656 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 21, 1)) - 1) * 17592186044416 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 22, 1)) - 1) * 1099511627776 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 23, 1)) - 1) * 68719476736 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 24, 1)) - 1) * 4294967296 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 25, 1)) - 1) * 268435456 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 26, 1)) - 1) * 16777216 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 27, 1)) - 1) * 1048576 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 28, 1)) - 1) * 65536 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 29, 1)) - 1) * 4096 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 30, 1)) - 1) * 256 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 31, 1)) - 1) * 16 +
    (instr('0123456789ABCDEF', substr(hex(consent_id), 32, 1)) - 1) * 1
    FROM consents ORDER BY consent_id;
CREATE TABLE consent_envelopes_0035 (
    consent_id BLOB NOT NULL REFERENCES consents_0035 (consent_id) ON DELETE CASCADE,
    key_id     BLOB NOT NULL,
    category   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    sealed     BLOB NOT NULL, digest BLOB,
    PRIMARY KEY (consent_id, key_id, category)
) WITHOUT ROWID;
INSERT INTO consent_envelopes_0035 SELECT * FROM consent_envelopes ORDER BY consent_id, key_id, category;
CREATE TABLE consent_envelopes_pending_0035 (
    consent_id BLOB NOT NULL REFERENCES consents_0035 (consent_id) ON DELETE CASCADE,
    key_id     BLOB NOT NULL,
    category   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    changed_at INTEGER NOT NULL,
    sealed     BLOB,
    digest     BLOB,
    PRIMARY KEY (consent_id, key_id, category)
) WITHOUT ROWID;
INSERT INTO consent_envelopes_pending_0035 SELECT * FROM consent_envelopes_pending ORDER BY consent_id, key_id, category;
CREATE TABLE member_gpc_0035 (
    member_loc       BLOB PRIMARY KEY NOT NULL,
    legacy_member_id BLOB,
    since            INTEGER NOT NULL
, since_ct BLOB) WITHOUT ROWID;
INSERT INTO member_gpc_0035 SELECT * FROM member_gpc ORDER BY member_loc;
CREATE TABLE marketing_optouts_0035 (
    member_loc       BLOB PRIMARY KEY NOT NULL,
    legacy_member_id BLOB,
    since            INTEGER NOT NULL,
    method           TEXT NOT NULL CHECK (method IN ('web', 'api', 'paper'))
) WITHOUT ROWID;
INSERT INTO marketing_optouts_0035 SELECT * FROM marketing_optouts ORDER BY member_loc;
CREATE TABLE optout_codes_0035 (
    member_loc       BLOB PRIMARY KEY NOT NULL,
    member_ct        BLOB,
    legacy_member_id BLOB,
    code_index       BLOB NOT NULL UNIQUE,
    created_at       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO optout_codes_0035 SELECT * FROM optout_codes ORDER BY member_loc;
CREATE TABLE optout_jobs_0035 (
    job_id BLOB PRIMARY KEY NOT NULL,
    member_ct BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    lease_until INTEGER
) WITHOUT ROWID;
INSERT INTO optout_jobs_0035 SELECT * FROM optout_jobs ORDER BY job_id;
CREATE TABLE imported_history_0035 (
    import_id        BLOB PRIMARY KEY NOT NULL,
    member_loc       BLOB NOT NULL,
    legacy_member_id BLOB,
    imported_at      INTEGER NOT NULL,
    sealed           BLOB NOT NULL
) WITHOUT ROWID;
INSERT INTO imported_history_0035 SELECT * FROM imported_history ORDER BY import_id;
CREATE TABLE credential_codes_0035 (
    code_hash    BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES organisations (org_id),
    claims_json  BLOB NOT NULL,
    status_index INTEGER NOT NULL REFERENCES credential_status (status_index),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    redeemed_at  INTEGER
) WITHOUT ROWID;
INSERT INTO credential_codes_0035 SELECT * FROM credential_codes ORDER BY code_hash;
CREATE TABLE trust_enrolments_0035 (
    member_loc       BLOB PRIMARY KEY NOT NULL,
    legacy_member_id BLOB,
    origin_ct        BLOB NOT NULL,
    created_at       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO trust_enrolments_0035 SELECT * FROM trust_enrolments ORDER BY member_loc;
CREATE TABLE trust_sharing_0035 (
    sharing_id       BLOB PRIMARY KEY NOT NULL,
    member_loc       BLOB NOT NULL,
    member_ct        BLOB,
    legacy_member_id BLOB,
    from_org         BLOB NOT NULL REFERENCES organisations (org_id),
    to_org           BLOB NOT NULL REFERENCES organisations (org_id),
    purpose          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    withdrawn_at     INTEGER,
    research_tag     BLOB
) WITHOUT ROWID;
INSERT INTO trust_sharing_0035 SELECT * FROM trust_sharing ORDER BY sharing_id;
CREATE TABLE trust_loyalty_tokens_0035 (
    token_hash BLOB PRIMARY KEY NOT NULL,
    tag        BLOB NOT NULL,
    org_id     BLOB NOT NULL REFERENCES organisations (org_id),
    points     INTEGER NOT NULL CHECK (points > 0),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO trust_loyalty_tokens_0035 SELECT * FROM trust_loyalty_tokens ORDER BY token_hash;
CREATE TABLE trust_loyalty_balances_0035 (
    tag     BLOB PRIMARY KEY NOT NULL,
    balance INTEGER NOT NULL CHECK (balance >= 0)
) WITHOUT ROWID;
INSERT INTO trust_loyalty_balances_0035 SELECT * FROM trust_loyalty_balances ORDER BY tag;
CREATE TABLE trust_erased_0035 (
    tag       BLOB PRIMARY KEY NOT NULL,
    erased_at INTEGER NOT NULL
, released_at INTEGER) WITHOUT ROWID;
INSERT INTO trust_erased_0035 SELECT * FROM trust_erased ORDER BY tag;

DROP TABLE members;
DROP TABLE sessions;
DROP TABLE sign_ups;
DROP TABLE vault_records;
DROP TABLE consent_envelopes;
DROP TABLE consent_envelopes_pending;
DROP TABLE member_gpc;
DROP TABLE marketing_optouts;
DROP TABLE optout_codes;
DROP TABLE optout_jobs;
DROP TABLE imported_history;
DROP TABLE credential_codes;
DROP TABLE trust_enrolments;
DROP TABLE trust_sharing;
DROP TABLE trust_loyalty_tokens;
DROP TABLE trust_loyalty_balances;
DROP TABLE trust_erased;
DROP TABLE consents;
ALTER TABLE members_0035 RENAME TO members;
ALTER TABLE sessions_0035 RENAME TO sessions;
CREATE INDEX sessions_by_member ON sessions (member_loc);
ALTER TABLE sign_ups_0035 RENAME TO sign_ups;
CREATE INDEX sign_ups_by_expiry ON sign_ups (expires_at);
ALTER TABLE vault_records_0035 RENAME TO vault_records;
CREATE INDEX vault_records_by_member ON vault_records (member_loc, created_at, record_id);
CREATE INDEX vault_records_legacy ON vault_records (legacy_member_id) WHERE legacy_member_id IS NOT NULL;
ALTER TABLE consents_0035 RENAME TO consents;
CREATE INDEX consents_by_org_member ON consents (org_id, member_loc);
CREATE INDEX consents_by_member ON consents (member_loc);
CREATE INDEX consents_by_request ON consents (request_id, status);
ALTER TABLE consent_envelopes_0035 RENAME TO consent_envelopes;
CREATE INDEX consent_envelopes_by_expiry ON consent_envelopes (expires_at);
ALTER TABLE consent_envelopes_pending_0035 RENAME TO consent_envelopes_pending;
CREATE INDEX consent_envelopes_pending_by_change ON consent_envelopes_pending (changed_at);
CREATE INDEX consent_envelopes_pending_by_expiry ON consent_envelopes_pending (expires_at);
ALTER TABLE member_gpc_0035 RENAME TO member_gpc;
ALTER TABLE marketing_optouts_0035 RENAME TO marketing_optouts;
ALTER TABLE optout_codes_0035 RENAME TO optout_codes;
ALTER TABLE optout_jobs_0035 RENAME TO optout_jobs;
ALTER TABLE imported_history_0035 RENAME TO imported_history;
CREATE INDEX imported_history_by_member ON imported_history (member_loc);
ALTER TABLE credential_codes_0035 RENAME TO credential_codes;
CREATE INDEX credential_codes_by_expiry ON credential_codes (expires_at);
ALTER TABLE trust_enrolments_0035 RENAME TO trust_enrolments;
ALTER TABLE trust_sharing_0035 RENAME TO trust_sharing;
CREATE INDEX trust_sharing_by_partner ON trust_sharing (to_org, from_org);
CREATE INDEX trust_sharing_by_member ON trust_sharing (member_loc);
ALTER TABLE trust_loyalty_tokens_0035 RENAME TO trust_loyalty_tokens;
CREATE INDEX trust_loyalty_tokens_by_tag ON trust_loyalty_tokens (tag, expires_at);
ALTER TABLE trust_loyalty_balances_0035 RENAME TO trust_loyalty_balances;
ALTER TABLE trust_erased_0035 RENAME TO trust_erased;
