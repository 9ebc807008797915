-- Issue 13 for rectification notices (attack 3a of adv5): the table kept
-- the co-op's pseudonym for the member (`subject`), the consent id and one
-- tag per member in clear, with exact times, so a copy of the file paired a
-- member's pseudonyms across co-ops. A notice now keeps them sealed under
-- the node's metadata key, bound to the notice (`sealed`: the member id,
-- the consent id, the subject), `subject` and `consent_id` empty, and in
-- `member_tag` the member's locator scoped to the notice's organisation
-- (a keyed hash of the member and the organisation). Rows written before
-- (`sealed` NULL) are sealed at start, with the master key's metadata keys,
-- which a migration does not hold. Times are whole hours from here on, and
-- floored now.
ALTER TABLE rectification_notices ADD COLUMN sealed BLOB;
UPDATE rectification_notices SET created_at = (created_at / 3600000) * 3600000;
UPDATE rectification_deliveries SET delivered_at = (delivered_at / 3600000) * 3600000;
