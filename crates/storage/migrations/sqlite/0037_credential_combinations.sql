-- How many credentials share a combination of disclosed claim values
-- (issue 12: a rare combination is a tag a colluding issuer and verifier can
-- read). One row per combination of one co-op's credentials in one validity
-- epoch: `combination` is a keyed hash (under the node's key) of the co-op,
-- the epoch and the claim values of one subset of the claims a verifier can
-- ask for (tier, region, member_since, interest_1, interest_2). A redeemed
-- credential adds one to each of its 32 subsets. No member id, no time, no
-- code, no status index: aggregates only. WITHOUT ROWID, so the file keeps
-- the rows in hash order, not in the order credentials were redeemed.
CREATE TABLE credential_combinations (
    combination BLOB PRIMARY KEY NOT NULL,
    -- The validity epoch (week number) the counts are for: expired ones are
    -- deleted. The same for everyone issued in one federation period.
    epoch       INTEGER NOT NULL,
    shared_by   INTEGER NOT NULL
) WITHOUT ROWID;
