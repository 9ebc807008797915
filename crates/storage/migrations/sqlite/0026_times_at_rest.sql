-- Times at rest (issue 13, "coarsen stored times where exact ones are not
-- needed"): a member's rows keep whole hours, so that a thief with the file
-- cannot line up one member's rows across tables, with the audit log, or
-- with the times co-ops saw.
--
-- A session keeps its exact expiry sealed to its row (`expires_ct`, under
-- the node's metadata key); `expires_at` is the end of its hour, for the
-- sweep. Consents keep exact times in their sealed body, which decisions
-- read. The rows an older node wrote are floored here, in place: a session
-- of an older node (no sealed expiry) then ends up to an hour early.
--
-- Audit entries written before this migration keep their exact times: the
-- chain's hashes and signed heads cover them. New entries are dated to the
-- hour and ordered by their sequence number.

ALTER TABLE sessions ADD COLUMN expires_ct BLOB;
UPDATE sessions SET
    created_at = (created_at / 3600000) * 3600000,
    expires_at = (expires_at / 3600000) * 3600000;

-- A member's records keep the order they were written in (`ord`, per
-- member), since their times are hours now.
ALTER TABLE vault_records ADD COLUMN ord BIGINT NOT NULL DEFAULT 0;
UPDATE vault_records SET ord = (
    SELECT COUNT(*) FROM vault_records v
    WHERE v.member_loc = vault_records.member_loc
      AND (v.created_at < vault_records.created_at
           OR (v.created_at = vault_records.created_at AND v.record_id <= vault_records.record_id)));
UPDATE vault_records SET
    created_at = (created_at / 3600000) * 3600000,
    updated_at = (updated_at / 3600000) * 3600000;

UPDATE consents SET
    given_at = (given_at / 3600000) * 3600000,
    expires_at = (expires_at / 3600000) * 3600000,
    withdrawn_at = (withdrawn_at / 3600000) * 3600000;

UPDATE consent_envelopes SET
    expires_at = (expires_at / 3600000) * 3600000,
    updated_at = (updated_at / 3600000) * 3600000;

UPDATE imported_history SET imported_at = (imported_at / 3600000) * 3600000;

-- True offer counts are not stored in clear (issue 13): a row's counts are
-- each the true count plus a random mask, the masks sealed to the offer in
-- `counts_ct` (under the node's metadata key), and `released` (the noisy
-- figures and the true total they were drawn from) is sealed too. Counts
-- still add up in SQL. Rows with no `counts_ct` are an older node's, in
-- clear: the node masks and seals them at its next start.
ALTER TABLE offer_counters ADD COLUMN counts_ct BLOB;
