-- Member rights (issue 15): one-click and paper opt-out, and imports.
--
-- A member who opted out of all direct marketing (offers are not matched for
-- them until they opt back in); how they did it (web, api, paper).
CREATE TABLE marketing_optouts (
    member_id BLOB PRIMARY KEY NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    since     INTEGER NOT NULL,
    method    TEXT NOT NULL CHECK (method IN ('web', 'api', 'paper'))
);

-- A member's paper opt-out code, only as a keyed hash (HMAC under a key
-- derived from the master key): never in clear. One per member; a new one
-- replaces it.
CREATE TABLE optout_codes (
    member_id  BLOB PRIMARY KEY NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    code_index BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- What an import from another node brought back as history (its consents,
-- credentials, offer history, audit entries…), sealed under the member's
-- data key: readable only in their session, and gone with it at erasure.
CREATE TABLE imported_history (
    import_id   BLOB PRIMARY KEY NOT NULL,
    member_id   BLOB NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    imported_at INTEGER NOT NULL,
    sealed      BLOB NOT NULL
);
CREATE INDEX imported_history_by_member ON imported_history (member_id);
