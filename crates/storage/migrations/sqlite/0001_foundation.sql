-- me2b foundation schema (SQLite). No column holds personal data in plaintext:
-- e-mails are a keyed hash plus ciphertext, vault records are ciphertext.
CREATE TABLE node_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);

CREATE TABLE members (
    member_id       BLOB PRIMARY KEY NOT NULL,
    email_index     BLOB UNIQUE,
    email_ct        BLOB,
    passphrase_hash TEXT,
    wrapped_dek     BLOB,
    state           TEXT NOT NULL CHECK (state IN ('active', 'erasing')),
    created_at      INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    member_id  BLOB NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_member ON sessions (member_id);

CREATE TABLE vault_records (
    record_id  BLOB PRIMARY KEY NOT NULL,
    member_id  BLOB NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ciphertext BLOB NOT NULL
);
CREATE INDEX vault_records_by_member ON vault_records (member_id, created_at, record_id);

CREATE TABLE organisations (
    org_id     BLOB PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);

CREATE TABLE org_api_keys (
    key_id     BLOB PRIMARY KEY NOT NULL,
    org_id     BLOB NOT NULL REFERENCES organisations (org_id),
    key_hash   BLOB NOT NULL UNIQUE,
    roles      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY NOT NULL,
    at         INTEGER NOT NULL,
    subject    BLOB,
    event      BLOB NOT NULL,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject, seq);

CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY NOT NULL,
    head_hash BLOB NOT NULL,
    at        INTEGER NOT NULL,
    signature BLOB NOT NULL
);

-- The audit log is append-only: the database itself refuses edits.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
