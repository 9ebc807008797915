-- me2b foundation schema (PostgreSQL). No column holds personal data in plaintext:
-- e-mails are a keyed hash plus ciphertext, vault records are ciphertext.
CREATE TABLE node_meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE members (
    member_id       BYTEA PRIMARY KEY,
    email_index     BYTEA UNIQUE,
    email_ct        BYTEA,
    passphrase_hash TEXT,
    wrapped_dek     BYTEA,
    state           TEXT NOT NULL CHECK (state IN ('active', 'erasing')),
    created_at      BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    member_id  BYTEA NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_member ON sessions (member_id);

CREATE TABLE vault_records (
    record_id  BYTEA PRIMARY KEY,
    member_id  BYTEA NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    revision   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    ciphertext BYTEA NOT NULL
);
CREATE INDEX vault_records_by_member ON vault_records (member_id, created_at, record_id);

CREATE TABLE organisations (
    org_id     BYTEA PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);

CREATE TABLE org_api_keys (
    key_id     BYTEA PRIMARY KEY,
    org_id     BYTEA NOT NULL REFERENCES organisations (org_id),
    key_hash   BYTEA NOT NULL UNIQUE,
    roles      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    subject    BYTEA,
    event      BYTEA NOT NULL,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject, seq);

CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    head_hash BYTEA NOT NULL,
    at        BIGINT NOT NULL,
    signature BYTEA NOT NULL
);

-- The audit log is append-only: the database itself refuses edits.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
