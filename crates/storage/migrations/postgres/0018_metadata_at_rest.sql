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

ALTER TABLE members ADD COLUMN audit_salt BYTEA;

-- Sessions carry a data key wrapped for their token: members log in again.
DROP TABLE sessions;
CREATE TABLE sessions (
    token_hash  BYTEA PRIMARY KEY,
    member_loc  BYTEA NOT NULL,
    member_ct   BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    wrapped_dek BYTEA
);
CREATE INDEX sessions_by_member ON sessions (member_loc);

ALTER TABLE vault_records DROP CONSTRAINT vault_records_member_id_fkey;
ALTER TABLE vault_records RENAME COLUMN member_id TO member_loc;
ALTER TABLE vault_records ADD COLUMN legacy_member_id BYTEA;
UPDATE vault_records SET legacy_member_id = member_loc;
CREATE INDEX vault_records_legacy ON vault_records (legacy_member_id) WHERE legacy_member_id IS NOT NULL;

ALTER TABLE consents DROP CONSTRAINT consents_member_id_fkey;
ALTER TABLE consents RENAME COLUMN member_id TO member_loc;
ALTER TABLE consents ADD COLUMN member_ct BYTEA;
ALTER TABLE consents ADD COLUMN legacy_member_id BYTEA;
UPDATE consents SET legacy_member_id = member_loc;

DROP INDEX consent_envelopes_by_member;
ALTER TABLE consent_envelopes DROP COLUMN member_id;

ALTER TABLE member_gpc DROP CONSTRAINT member_gpc_member_id_fkey;
ALTER TABLE member_gpc RENAME COLUMN member_id TO member_loc;
ALTER TABLE member_gpc ADD COLUMN legacy_member_id BYTEA;
UPDATE member_gpc SET legacy_member_id = member_loc;

ALTER TABLE trust_enrolments DROP CONSTRAINT trust_enrolments_member_id_fkey;
ALTER TABLE trust_enrolments RENAME COLUMN member_id TO member_loc;
ALTER TABLE trust_enrolments ADD COLUMN legacy_member_id BYTEA;
UPDATE trust_enrolments SET legacy_member_id = member_loc;

ALTER TABLE trust_sharing DROP CONSTRAINT trust_sharing_member_id_fkey;
ALTER TABLE trust_sharing RENAME COLUMN member_id TO member_loc;
ALTER TABLE trust_sharing ADD COLUMN member_ct BYTEA;
ALTER TABLE trust_sharing ADD COLUMN legacy_member_id BYTEA;
UPDATE trust_sharing SET legacy_member_id = member_loc;
