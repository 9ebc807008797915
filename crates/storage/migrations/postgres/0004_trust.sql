-- The data trust. Nothing here holds a plaintext pseudonym or a member's
-- identity next to their receipts: receipts are keyed by `tag`, a keyed hash
-- of the member's research-domain pseudonym, and carry only coarse attributes
-- (day, area, item categories, amounts).

-- Each member's enrolment pseudonym: random, encrypted to the federation's
-- global key (the "origin" domain no one can decrypt). Erased with the member.
CREATE TABLE trust_enrolments (
    member_id  BYTEA PRIMARY KEY REFERENCES members (member_id) ON DELETE CASCADE,
    origin_ct  BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE trust_receipts (
    receipt_id   BYTEA PRIMARY KEY,
    org_id       BYTEA NOT NULL REFERENCES organisations (org_id),
    tag          BYTEA NOT NULL,
    source_ct    BYTEA NOT NULL,
    research_ct  BYTEA NOT NULL,
    day          BIGINT NOT NULL,
    area         TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX trust_receipts_by_member ON trust_receipts (org_id, tag);

CREATE TABLE trust_events (
    receipt_id   BYTEA NOT NULL REFERENCES trust_receipts (receipt_id),
    category     BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL
);
CREATE INDEX trust_events_by_receipt ON trust_events (receipt_id);

-- Distinct members per (scope, dimension, value); scope is an organisation id
-- or '*' (all co-ops). A member enters at most a capped number of values per
-- (scope, dimension), which bounds a histogram's sensitivity.
CREATE TABLE trust_bins (
    scope TEXT NOT NULL,
    dim   BIGINT NOT NULL,
    value BIGINT NOT NULL,
    tag   BYTEA NOT NULL,
    PRIMARY KEY (scope, dim, value, tag)
);
CREATE INDEX trust_bins_by_member ON trust_bins (scope, tag);

-- Members per (scope, dimension, value), kept with the bins in the same
-- transaction: what a histogram reads.
CREATE TABLE trust_bin_totals (
    scope   TEXT NOT NULL,
    dim     BIGINT NOT NULL,
    value   BIGINT NOT NULL,
    members BIGINT NOT NULL CHECK (members >= 0),
    PRIMARY KEY (scope, dim, value)
);

-- Per member and scope: total spend and receipts (the inputs of bounded sums,
-- counts and overlaps).
CREATE TABLE trust_members (
    scope       TEXT NOT NULL,
    tag         BYTEA NOT NULL,
    total_cents BIGINT NOT NULL,
    receipts    BIGINT NOT NULL,
    PRIMARY KEY (scope, tag)
);

-- ε spent per requester, in micro-ε.
CREATE TABLE trust_budgets (
    requester   TEXT PRIMARY KEY NOT NULL,
    spent_micro BIGINT NOT NULL CHECK (spent_micro >= 0)
);

-- Members' consents to share one co-op's receipts with another.
CREATE TABLE trust_sharing (
    sharing_id   BYTEA PRIMARY KEY,
    member_id    BYTEA NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    from_org     BYTEA NOT NULL REFERENCES organisations (org_id),
    to_org       BYTEA NOT NULL REFERENCES organisations (org_id),
    purpose      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    withdrawn_at BIGINT
);
CREATE INDEX trust_sharing_by_partner ON trust_sharing (to_org, from_org);
CREATE INDEX trust_sharing_by_member ON trust_sharing (member_id);

-- The loyalty ledger, keyed by a keyed hash of the loyalty-domain pseudonym.
CREATE TABLE trust_loyalty (
    entry_id BIGSERIAL PRIMARY KEY,
    tag      BYTEA NOT NULL,
    org_id   BYTEA NOT NULL REFERENCES organisations (org_id),
    delta    BIGINT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX trust_loyalty_by_tag ON trust_loyalty (tag);
CREATE TABLE trust_loyalty_balances (
    tag     BYTEA PRIMARY KEY,
    balance BIGINT NOT NULL CHECK (balance >= 0)
);
