-- One issuer key for the federation (issue 12). Migration 0006 gave every
-- co-op its own BBS key, whose id named the co-op in every presentation. Now
-- one key, the federation's, signs every co-op's credentials and the co-op is
-- an ordinary claim the member may keep hidden; status (revocation) indexes
-- are drawn from one federation-wide space, each owned by the co-op that
-- reserved it.
--
-- The per-co-op keys are retired with what was made for them: credentials
-- they signed no longer verify (members redeem a new code), codes not yet
-- redeemed are void, and the retired secret keys are deleted.
DROP TABLE credential_codes;
DROP TABLE credential_status;
DROP TABLE credential_issuers;

-- The federation's issuer key: one row. The secret key is sealed by the
-- node's keyring (never stored in the clear).
CREATE TABLE credential_federation_issuer (
    slot          INTEGER PRIMARY KEY NOT NULL CHECK (slot = 1),
    key_id        TEXT NOT NULL,
    public_key    BLOB NOT NULL,
    sealed_secret BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);

-- The federation's status list: every index reserved for a credential, the
-- co-op that reserved it (the only one that may revoke it), and when it was
-- revoked (NULL while in force).
CREATE TABLE credential_status (
    status_index INTEGER PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES organisations (org_id),
    revoked_at   INTEGER
);
CREATE INDEX credential_status_by_org ON credential_status (org_id);

-- One-time issuance codes, by a hash of the code: the claims the credential
-- will carry, its status index, and when it was redeemed (NULL until then).
CREATE TABLE credential_codes (
    code_hash    BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES organisations (org_id),
    claims_json  BLOB NOT NULL,
    status_index INTEGER NOT NULL REFERENCES credential_status (status_index),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    redeemed_at  INTEGER
);
CREATE INDEX credential_codes_by_expiry ON credential_codes (expires_at);
