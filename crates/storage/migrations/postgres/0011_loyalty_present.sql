-- Loyalty with the member present (issue 12). Co-ops earn on their cards and
-- redeem only one-time tokens a member made; they never see a balance.

-- The loyalty tags (keyed hashes of loyalty-domain pseudonyms) of enrolled
-- members, added in the member's session when they get a card. A co-op's card
-- that does not move to one of these belongs to no enrolled member and is
-- refused. No member id and no time (PostgreSQL's heap still keeps rows
-- roughly in insertion order: a limit, see ARCHITECTURE.md). Members who
-- earned before this migration are taken over from their balances.
CREATE TABLE trust_loyalty_members (
    tag BYTEA PRIMARY KEY NOT NULL
);
INSERT INTO trust_loyalty_members (tag)
    SELECT tag FROM trust_loyalty_balances WHERE tag NOT IN (SELECT tag FROM trust_erased);

-- What the member sees of their history: points earned and redeemed per
-- co-op and day (UTC), no finer. Replaces the per-operation ledger.
CREATE TABLE trust_loyalty_days (
    tag      BYTEA NOT NULL,
    org_id   BYTEA NOT NULL REFERENCES organisations (org_id),
    day      BIGINT NOT NULL,
    earned   BIGINT NOT NULL,
    redeemed BIGINT NOT NULL,
    PRIMARY KEY (tag, org_id, day)
);
INSERT INTO trust_loyalty_days (tag, org_id, day, earned, redeemed)
    SELECT tag, org_id, at / 86400000,
           SUM(CASE WHEN delta > 0 THEN delta ELSE 0 END),
           SUM(CASE WHEN delta < 0 THEN -delta ELSE 0 END)
    FROM trust_loyalty
    GROUP BY tag, org_id, at / 86400000;
DROP TABLE trust_loyalty;

-- One-time redemption tokens a member made for one amount at one co-op: the
-- token's SHA-256, never the token. Its points are taken from the balance when
-- it is made (so a redemption never fails for want of points, and tells the
-- co-op nothing about the balance) and given back if it expires unused.
CREATE TABLE trust_loyalty_tokens (
    token_hash BYTEA PRIMARY KEY NOT NULL,
    tag        BYTEA NOT NULL,
    org_id     BYTEA NOT NULL REFERENCES organisations (org_id),
    points     BIGINT NOT NULL CHECK (points > 0),
    expires_at BIGINT NOT NULL
);
CREATE INDEX trust_loyalty_tokens_by_tag ON trust_loyalty_tokens (tag, expires_at);
