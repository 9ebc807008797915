-- Consent changes released in batches (issue 12: the links polling finds).
-- What an organisation sees of a member's consent (its consent lists, the
-- consent's receipts, whether data access serves it) is the record as of
-- the last release, not the record now: a grant appears, and a withdrawal
-- shows as one, only at a release, together with every other change of the
-- period. Data access stops at once on withdrawal all the same (it reads the
-- record now as well).
--
-- `org_body`: the record (sealed as `body` is, or in clear when
-- `org_legacy` is 1) at the last release; NULL: not released yet.
-- `org_version`: its version; a row whose version differs has a change
-- waiting for the next release.
ALTER TABLE consents ADD COLUMN org_body BYTEA;
ALTER TABLE consents ADD COLUMN org_version BIGINT;
ALTER TABLE consents ADD COLUMN org_legacy BIGINT NOT NULL DEFAULT 0;
-- What organisations could see before this migration is released already.
UPDATE consents SET org_body = body, org_version = version,
    org_legacy = CASE WHEN legacy_member_id IS NULL THEN 0 ELSE 1 END
    WHERE status IN ('given', 'withdrawn');
