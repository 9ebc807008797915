-- Issue 12 (adv9): the combination counts counted credentials, so one
-- account holding ten codes with the same values made a set look shared by
-- ten. A member now counts once per issuing co-op and validity epoch:
-- `holder` is a keyed hash of (co-op, epoch) under the member's own data key
-- (no one without the member's key can test a member against it; erasure
-- destroys that key). No member id, no time.
CREATE TABLE credential_holders (
    holder BYTEA PRIMARY KEY,
    epoch  BIGINT NOT NULL
);
