-- Erasure finds a member's intents (adv4 finding 2): an erased member's
-- intent was still published at the next batch. One row per intent: the
-- member's locator in this table and the intent id sealed under the node's
-- metadata key (bound to the locator), so the table joins to no intent
-- without the key and holds no time. Erasure opens them, deletes the held
-- intents at once and closes the published ones (seen closed from the next
-- hour), then deletes them and their answers at the release.
CREATE TABLE intent_owners (
    member_loc BLOB NOT NULL,
    intent_ct  BLOB NOT NULL,
    PRIMARY KEY (member_loc, intent_ct)
) WITHOUT ROWID;
