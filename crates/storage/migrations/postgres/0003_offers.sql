-- Offers published by organisations, and their aggregate counters. Nothing here
-- is per member: no column may ever hold a member id or anything derived from one.
CREATE TABLE offers (
    offer_id    BYTEA PRIMARY KEY,
    org_id      BYTEA NOT NULL REFERENCES organisations (org_id),
    status      TEXT NOT NULL CHECK (status IN ('pending_partners', 'active', 'withdrawn')),
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    valid_until BIGINT NOT NULL,
    body        BYTEA NOT NULL
);
CREATE INDEX offers_by_status ON offers (status, valid_until);
CREATE INDEX offers_by_org ON offers (org_id, created_at);

-- Aggregate counts only; `released` is opaque bytes, never read by storage.
CREATE TABLE offer_counters (
    offer_id BYTEA PRIMARY KEY REFERENCES offers (offer_id),
    reached  BIGINT NOT NULL DEFAULT 0,
    accepted BIGINT NOT NULL DEFAULT 0,
    released BYTEA
);
