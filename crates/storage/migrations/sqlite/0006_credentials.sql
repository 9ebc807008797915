-- Co-op credentials. An organisation issues its members BBS credentials
-- through one-time codes; members present them to verifiers with unlinkable
-- proofs. No member id is stored here: the issuer learns nothing about which
-- vault member redeemed a code, and a code (kept as a hash) names only its
-- organisation, its claims and its status index.

-- Each organisation's issuer key: the public key, and the secret key sealed
-- by the node's keyring (never stored in the clear).
CREATE TABLE credential_issuers (
    org_id        BLOB PRIMARY KEY NOT NULL REFERENCES organisations (org_id),
    key_id        TEXT NOT NULL UNIQUE,
    public_key    BLOB NOT NULL,
    sealed_secret BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);

-- The status (revocation) list: every index an organisation reserved for a
-- credential, and when it was revoked (NULL while in force).
CREATE TABLE credential_status (
    org_id       BLOB NOT NULL REFERENCES organisations (org_id),
    status_index INTEGER NOT NULL,
    revoked_at   INTEGER,
    PRIMARY KEY (org_id, status_index)
) WITHOUT ROWID;

-- One-time issuance codes, by a hash of the code: the claims the credential
-- will carry, its status index, and when it was redeemed (NULL until then).
CREATE TABLE credential_codes (
    code_hash    BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES organisations (org_id),
    claims_json  BLOB NOT NULL,
    status_index INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    redeemed_at  INTEGER,
    FOREIGN KEY (org_id, status_index) REFERENCES credential_status (org_id, status_index)
);

-- Verifiers' challenges, by their single-use nonce.
CREATE TABLE credential_challenges (
    nonce          BLOB PRIMARY KEY NOT NULL,
    org_id         BLOB NOT NULL REFERENCES organisations (org_id),
    challenge_json BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);

-- Expired codes and challenges are purged (`purge_expired_credentials`).
CREATE INDEX credential_codes_by_expiry ON credential_codes (expires_at);
CREATE INDEX credential_challenges_by_expiry ON credential_challenges (expires_at);
