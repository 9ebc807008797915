-- Offers published by organisations, and their aggregate counters. Nothing here
-- is per member: no column may ever hold a member id or anything derived from one.
CREATE TABLE offers (
    offer_id    BLOB PRIMARY KEY NOT NULL,
    org_id      BLOB NOT NULL REFERENCES organisations (org_id),
    status      TEXT NOT NULL CHECK (status IN ('pending_partners', 'active', 'withdrawn')),
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX offers_by_status ON offers (status, valid_until);
CREATE INDEX offers_by_org ON offers (org_id, created_at);

-- Aggregate counts only; `released` is opaque bytes, never read by storage.
CREATE TABLE offer_counters (
    offer_id BLOB PRIMARY KEY NOT NULL REFERENCES offers (offer_id),
    reached  INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0,
    released BLOB
);
