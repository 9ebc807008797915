-- Privacy at rest, the rest (issue 13): the rights tables (issue 15) move
-- from member ids to locators like the others (0018).
--
-- `marketing_optouts` and `imported_history` are found by the member's
-- locator; `optout_codes` also keeps the member id sealed (bound to the
-- code's keyed hash), since a paper code names its member. Rows an older
-- node wrote keep their member id in `legacy_member_id` (and, for now, as
-- their locator) until the node re-keys them at its next start. No row
-- references `members` any more: erasure deletes them (one list of a
-- member's rows, storage's `member_rows.rs`).

CREATE TABLE marketing_optouts_0021 (
    member_loc       BYTEA PRIMARY KEY NOT NULL,
    legacy_member_id BYTEA,
    since            BIGINT NOT NULL,
    method           TEXT NOT NULL CHECK (method IN ('web', 'api', 'paper'))
);
INSERT INTO marketing_optouts_0021 SELECT member_id, member_id, since, method FROM marketing_optouts;
DROP TABLE marketing_optouts;
ALTER TABLE marketing_optouts_0021 RENAME TO marketing_optouts;

CREATE TABLE optout_codes_0021 (
    member_loc       BYTEA PRIMARY KEY NOT NULL,
    member_ct        BYTEA,
    legacy_member_id BYTEA,
    code_index       BYTEA NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL
);
INSERT INTO optout_codes_0021
    SELECT member_id, NULL, member_id, code_index, created_at FROM optout_codes;
DROP TABLE optout_codes;
ALTER TABLE optout_codes_0021 RENAME TO optout_codes;

CREATE TABLE imported_history_0021 (
    import_id        BYTEA PRIMARY KEY NOT NULL,
    member_loc       BYTEA NOT NULL,
    legacy_member_id BYTEA,
    imported_at      BIGINT NOT NULL,
    sealed           BYTEA NOT NULL
);
INSERT INTO imported_history_0021
    SELECT import_id, member_id, member_id, imported_at, sealed FROM imported_history;
DROP TABLE imported_history;
ALTER TABLE imported_history_0021 RENAME TO imported_history;
CREATE INDEX imported_history_by_member ON imported_history (member_loc);
