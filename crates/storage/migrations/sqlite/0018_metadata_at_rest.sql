-- Metadata at rest (issue 13): no member id beside a member's rows.
--
-- Each table that was found by member id now holds a locator (a keyed hash
-- of the member id under a node key, one per table) in `member_loc`, and,
-- where the member id must be read back, the id sealed (AEAD) in
-- `member_ct`. Consent bodies are sealed too. Rows written by an older node
-- keep their member id in `legacy_member_id` (and, for now, as their
-- locator) until the node re-keys them at its next start, which needs the
-- master key the migration does not have.
--
-- Audit entries name a member by a keyed hash of their id and
-- `members.audit_salt`, which erasure deletes with the row.

-- The account's times, floored to the day: exact ones would match the
-- audit entries written at sign-up and login.
UPDATE members SET
    created_at = (created_at / 86400000) * 86400000,
    last_login_at = (last_login_at / 86400000) * 86400000,
    legacy_warned_at = (legacy_warned_at / 86400000) * 86400000;

ALTER TABLE members ADD COLUMN audit_salt BLOB;

-- Sessions carry a data key wrapped for their token: members log in again.
DROP TABLE sessions;
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    member_loc BLOB NOT NULL,
    member_ct  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    wrapped_dek BLOB
);
CREATE INDEX sessions_by_member ON sessions (member_loc);

CREATE TABLE vault_records_0018 (
    record_id        BLOB PRIMARY KEY NOT NULL,
    member_loc       BLOB NOT NULL,
    legacy_member_id BLOB,
    revision         INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    ciphertext       BLOB NOT NULL
);
INSERT INTO vault_records_0018
    SELECT record_id, member_id, member_id, revision, created_at, updated_at, ciphertext
    FROM vault_records;
DROP TABLE vault_records;
ALTER TABLE vault_records_0018 RENAME TO vault_records;
CREATE INDEX vault_records_by_member ON vault_records (member_loc, created_at, record_id);
CREATE INDEX vault_records_legacy ON vault_records (legacy_member_id) WHERE legacy_member_id IS NOT NULL;

CREATE TABLE consents_0018 (
    consent_id       BLOB PRIMARY KEY NOT NULL,
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
    body             BLOB NOT NULL
);
INSERT INTO consents_0018
    SELECT consent_id, request_id, org_id, member_id, NULL, member_id, status, version,
           given_at, expires_at, withdrawn_at, body
    FROM consents;

CREATE TABLE consent_envelopes_0018 (
    consent_id BLOB NOT NULL REFERENCES consents_0018 (consent_id) ON DELETE CASCADE,
    key_id     BLOB NOT NULL,
    category   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    sealed     BLOB NOT NULL,
    PRIMARY KEY (consent_id, key_id, category)
);
INSERT INTO consent_envelopes_0018
    SELECT consent_id, key_id, category, expires_at, updated_at, sealed FROM consent_envelopes;
DROP TABLE consent_envelopes;
DROP TABLE consents;
ALTER TABLE consents_0018 RENAME TO consents;
ALTER TABLE consent_envelopes_0018 RENAME TO consent_envelopes;
CREATE INDEX consents_by_org_member ON consents (org_id, member_loc);
CREATE INDEX consents_by_member ON consents (member_loc);
CREATE INDEX consents_by_request ON consents (request_id, status);
CREATE INDEX consent_envelopes_by_expiry ON consent_envelopes (expires_at);

CREATE TABLE member_gpc_0018 (
    member_loc       BLOB PRIMARY KEY NOT NULL,
    legacy_member_id BLOB,
    since            INTEGER NOT NULL
);
INSERT INTO member_gpc_0018 SELECT member_id, member_id, since FROM member_gpc;
DROP TABLE member_gpc;
ALTER TABLE member_gpc_0018 RENAME TO member_gpc;

CREATE TABLE trust_enrolments_0018 (
    member_loc       BLOB PRIMARY KEY NOT NULL,
    legacy_member_id BLOB,
    origin_ct        BLOB NOT NULL,
    created_at       INTEGER NOT NULL
);
INSERT INTO trust_enrolments_0018 SELECT member_id, member_id, origin_ct, created_at FROM trust_enrolments;
DROP TABLE trust_enrolments;
ALTER TABLE trust_enrolments_0018 RENAME TO trust_enrolments;

CREATE TABLE trust_sharing_0018 (
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
);
INSERT INTO trust_sharing_0018
    SELECT sharing_id, member_id, NULL, member_id, from_org, to_org, purpose, created_at,
           expires_at, withdrawn_at, research_tag
    FROM trust_sharing;
DROP TABLE trust_sharing;
ALTER TABLE trust_sharing_0018 RENAME TO trust_sharing;
CREATE INDEX trust_sharing_by_partner ON trust_sharing (to_org, from_org);
CREATE INDEX trust_sharing_by_member ON trust_sharing (member_loc);
