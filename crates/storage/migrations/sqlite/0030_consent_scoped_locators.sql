-- A consent's locator is per member and organisation (finding 4 of adv4):
-- grouping `consents` by `member_loc` no longer shows a member's set of
-- organisations. Rows written before carry the member's one locator
-- (`loc_scoped` 0); the node re-keys them at start, with the master key's
-- metadata keys, which a migration does not hold. Erasure requests'
-- subjects stored in clear are sealed at the same start (no schema change).
ALTER TABLE consents ADD COLUMN loc_scoped INTEGER NOT NULL DEFAULT 0;
