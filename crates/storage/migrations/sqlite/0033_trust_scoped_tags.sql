-- Issue 13, the trust's tables at rest. A member's receipts and loyalty
-- days at two co-ops were stored under one tag, and receipts with the time
-- to the millisecond: a thief holding co-ops' own records of when they sent
-- which card found their rows by time and linked the co-ops' pseudonyms by
-- the shared tag. Rows are now stored under the tag scoped to their co-op
-- (a keyed hash of the tag and the co-op, `tag_scoped` 1); rows written
-- before are re-keyed at start, with the master key's metadata keys, which
-- a migration does not hold. Times a member's trust and rights rows keep
-- are whole hours from here on, and floored now.
ALTER TABLE trust_receipts ADD COLUMN tag_scoped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trust_loyalty_days ADD COLUMN tag_scoped INTEGER NOT NULL DEFAULT 0;
UPDATE trust_receipts SET created_at = (created_at / 3600000) * 3600000;
UPDATE trust_enrolments SET created_at = (created_at / 3600000) * 3600000;
UPDATE trust_erased SET erased_at = (erased_at / 3600000) * 3600000;
UPDATE trust_sharing SET
    created_at = (created_at / 3600000) * 3600000,
    expires_at = (expires_at / 3600000) * 3600000,
    withdrawn_at = (withdrawn_at / 3600000) * 3600000;
UPDATE marketing_optouts SET since = (since / 3600000) * 3600000;
UPDATE optout_codes SET created_at = (created_at / 3600000) * 3600000;
