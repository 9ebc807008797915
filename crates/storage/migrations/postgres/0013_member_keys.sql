-- Member-held keys (issue 13) and sign-up by confirmation (issue 14).
--
-- A member's data key is wrapped under keys derived from their passphrase
-- and their recovery code, and per session under a key derived from the
-- session token; `wrapped_dek` (under the node's master key) and
-- `passphrase_hash` stay only for members who have not logged in since the
-- upgrade, and are cleared at their next login.
ALTER TABLE members ADD COLUMN passphrase_wrap BYTEA;
ALTER TABLE members ADD COLUMN recovery_wrap BYTEA;
ALTER TABLE members ADD COLUMN last_login_at BIGINT;
ALTER TABLE members ADD COLUMN legacy_warned_at BIGINT;
UPDATE members SET last_login_at = COALESCE(
    (SELECT MAX(s.created_at) FROM sessions s WHERE s.member_id = members.member_id),
    created_at);

-- Sessions of older nodes hold no key of their own: they end, and the
-- member's next login moves their key.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN wrapped_dek BYTEA;

-- The public key envelopes are sealed to (derived from the API key, which
-- is not stored); filled at creation, or at an older key's next use.
ALTER TABLE org_api_keys ADD COLUMN envelope_pk BYTEA;

-- Sign-ups waiting for their address to be confirmed. Nothing here opens a
-- vault: the e-mail is sealed under the confirmation token (which only the
-- message carries) and the passphrase is present only as the public half of
-- its wrap.
CREATE TABLE sign_ups (
    token_hash      BYTEA PRIMARY KEY,
    member_id       BYTEA NOT NULL,
    email_index     BYTEA NOT NULL,
    email_ct        BYTEA NOT NULL,
    passphrase_lock BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX sign_ups_by_expiry ON sign_ups (expires_at);

-- What a consent allows, sealed per category to each of the organisation's
-- API keys in the member's session; served by data access after the policy
-- decision point permits. Destroyed with the withdrawal, at expiry, and at
-- erasure.
CREATE TABLE consent_envelopes (
    consent_id BYTEA NOT NULL REFERENCES consents (consent_id) ON DELETE CASCADE,
    key_id     BYTEA NOT NULL,
    category   TEXT NOT NULL,
    member_id  BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sealed     BYTEA NOT NULL,
    PRIMARY KEY (consent_id, key_id, category)
);
CREATE INDEX consent_envelopes_by_member ON consent_envelopes (member_id);
CREATE INDEX consent_envelopes_by_expiry ON consent_envelopes (expires_at);
