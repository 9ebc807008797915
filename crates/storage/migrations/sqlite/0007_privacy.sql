-- One privacy accountant for every noisy figure. Budgets belong to data pools
-- (a co-op's customers in the trust, the trust's pooled receipts, the offers'
-- audience), not to askers: every release is charged to each pool it reads,
-- per period and over the pool's life, and to the asker's allowance there.
CREATE TABLE dp_pool_periods (
    pool        TEXT NOT NULL,
    period      BIGINT NOT NULL,
    spent_micro BIGINT NOT NULL CHECK (spent_micro >= 0),
    PRIMARY KEY (pool, period)
);

CREATE TABLE dp_pool_lifetime (
    pool        TEXT PRIMARY KEY NOT NULL,
    spent_micro BIGINT NOT NULL CHECK (spent_micro >= 0)
);

CREATE TABLE dp_asker_spend (
    pool        TEXT NOT NULL,
    period      BIGINT NOT NULL,
    asker       TEXT NOT NULL,
    spent_micro BIGINT NOT NULL CHECK (spent_micro >= 0),
    releases    BIGINT NOT NULL CHECK (releases >= 0),
    PRIMARY KEY (pool, period, asker)
);

-- What was spent under the per-requester budgets stays spent: a co-op's
-- budget was its own customers' pool, a research purpose read the pooled
-- receipts.
INSERT INTO dp_pool_lifetime (pool, spent_micro)
    SELECT 'trust:coop:' || substr(requester, 5), spent_micro
    FROM trust_budgets WHERE requester LIKE 'org:%';
INSERT INTO dp_pool_lifetime (pool, spent_micro)
    SELECT 'trust:research', s
    FROM (SELECT SUM(spent_micro) AS s FROM trust_budgets WHERE requester LIKE 'research:%') t
    WHERE s IS NOT NULL;
DROP TABLE trust_budgets;

-- Offer statistics are released on a schedule: `released` holds the stream
-- (opaque bytes), `release_seq` makes each release a compare-and-swap (drawn
-- once, even by two nodes), `release_due` says when the next one is due.
ALTER TABLE offer_counters ADD COLUMN release_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE offer_counters ADD COLUMN release_due BIGINT;
CREATE INDEX offer_counters_due ON offer_counters (release_due);
