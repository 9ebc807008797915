-- The data trust. Nothing here holds a plaintext pseudonym or a member's
-- identity next to their receipts: receipts are keyed by `tag`, a keyed hash
-- of the member's research-domain pseudonym, and carry only coarse attributes
-- (day, area, item categories, amounts).

-- Each member's enrolment pseudonym: random, encrypted to the federation's
-- global key (the "origin" domain no one can decrypt). Erased with the member.
CREATE TABLE trust_enrolments (
    member_id  BLOB PRIMARY KEY REFERENCES members (member_id) ON DELETE CASCADE,
    origin_ct  BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE trust_receipts (
    receipt_id   BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES organisations (org_id),
    tag          BLOB NOT NULL,
    source_ct    BLOB NOT NULL,
    research_ct  BLOB NOT NULL,
    day          INTEGER NOT NULL,
    area         TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX trust_receipts_by_member ON trust_receipts (org_id, tag);

CREATE TABLE trust_events (
    receipt_id   BLOB NOT NULL REFERENCES trust_receipts (receipt_id),
    category     INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL
);
CREATE INDEX trust_events_by_receipt ON trust_events (receipt_id);

-- Distinct members per (scope, dimension, value); scope is an organisation id
-- or '*' (all co-ops). A member enters at most a capped number of values per
-- (scope, dimension), which bounds a histogram's sensitivity.
CREATE TABLE trust_bins (
    scope TEXT NOT NULL,
    dim   INTEGER NOT NULL,
    value INTEGER NOT NULL,
    tag   BLOB NOT NULL,
    PRIMARY KEY (scope, dim, value, tag)
) WITHOUT ROWID;
CREATE INDEX trust_bins_by_member ON trust_bins (scope, tag);

-- Members per (scope, dimension, value), kept with the bins in the same
-- transaction: what a histogram reads.
CREATE TABLE trust_bin_totals (
    scope   TEXT NOT NULL,
    dim     INTEGER NOT NULL,
    value   INTEGER NOT NULL,
    members INTEGER NOT NULL CHECK (members >= 0),
    PRIMARY KEY (scope, dim, value)
);

-- Per member and scope: total spend and receipts (the inputs of bounded sums,
-- counts and overlaps).
CREATE TABLE trust_members (
    scope       TEXT NOT NULL,
    tag         BLOB NOT NULL,
    total_cents INTEGER NOT NULL,
    receipts    INTEGER NOT NULL,
    PRIMARY KEY (scope, tag)
) WITHOUT ROWID;

-- ε spent per requester, in micro-ε.
CREATE TABLE trust_budgets (
    requester   TEXT PRIMARY KEY NOT NULL,
    spent_micro INTEGER NOT NULL CHECK (spent_micro >= 0)
);

-- Members' consents to share one co-op's receipts with another.
CREATE TABLE trust_sharing (
    sharing_id   BLOB PRIMARY KEY NOT NULL,
    member_id    BLOB NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    from_org     BLOB NOT NULL REFERENCES organisations (org_id),
    to_org       BLOB NOT NULL REFERENCES organisations (org_id),
    purpose      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    withdrawn_at INTEGER
);
CREATE INDEX trust_sharing_by_partner ON trust_sharing (to_org, from_org);
CREATE INDEX trust_sharing_by_member ON trust_sharing (member_id);

-- The loyalty ledger, keyed by a keyed hash of the loyalty-domain pseudonym.
CREATE TABLE trust_loyalty (
    entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
    tag      BLOB NOT NULL,
    org_id   BLOB NOT NULL REFERENCES organisations (org_id),
    delta    INTEGER NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX trust_loyalty_by_tag ON trust_loyalty (tag);
CREATE TABLE trust_loyalty_balances (
    tag     BLOB PRIMARY KEY NOT NULL,
    balance INTEGER NOT NULL CHECK (balance >= 0)
);
