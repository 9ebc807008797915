-- Intents only organisations holding a credential may see and answer
-- (issue 17, item 1). An organisation with the `credentials` role vouches
-- for another organisation (a certification of the federation's list, or
-- membership of the federation); the node signs the attestation with the
-- federation's BBS key (credential schema 2) and keeps it sealed for its
-- holder. Nothing here describes a person.

CREATE TABLE org_credentials (
    credential_id BLOB PRIMARY KEY NOT NULL,
    org_id        BLOB NOT NULL REFERENCES organisations (org_id),
    issuer_id     BLOB NOT NULL REFERENCES organisations (org_id),
    -- The credential's JSON, sealed under the node's key.
    sealed        BLOB NOT NULL,
    -- The end of its validity epoch (Unix ms, a week boundary).
    valid_until   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX org_credentials_by_org ON org_credentials (org_id);

-- What an organisation proved with a presentation bound to a node challenge:
-- the outcome only (issuer, claim, value, until when), never the
-- presentation. It opens the intents of that audience to the organisation
-- until valid_until (a whole hour: 24 hours at most, and never past the
-- credential's validity epoch).
CREATE TABLE org_audience_proofs (
    org_id      BLOB NOT NULL REFERENCES organisations (org_id),
    issuer_id   BLOB NOT NULL,
    claim       TEXT NOT NULL,
    claim_value TEXT NOT NULL,
    valid_until INTEGER NOT NULL,
    PRIMARY KEY (org_id, issuer_id, claim, claim_value)
);

-- The credential audience of an intent, for the feed's query:
-- `claim=value` or `claim=value@issuer-id`; NULL for every other audience.
ALTER TABLE intents ADD COLUMN audience_key TEXT;
