-- Intents: members' anonymous requests for proposal, organisations' answers
-- and subscriptions, members' reports of answers, and the released counts.
-- No table here holds a member id or anything joinable to one: a member's
-- link to an intent is a secret in their encrypted vault, of which only the
-- SHA-256 (`owner_check`) is stored. Times are whole hours. WITHOUT ROWID:
-- rows are kept in the order of their random ids, not of their insertion.

CREATE TABLE intents (
    intent_id         BLOB PRIMARY KEY NOT NULL,
    owner_check       BLOB NOT NULL,
    topic             TEXT NOT NULL,
    region            TEXT NOT NULL,
    body              BLOB NOT NULL,
    published_hour    INTEGER NOT NULL,
    deadline          INTEGER NOT NULL,
    closed            INTEGER NOT NULL DEFAULT 0,
    closed_visible_at INTEGER
) WITHOUT ROWID;

CREATE INDEX intents_by_topic ON intents (topic, deadline);
CREATE INDEX intents_by_deadline ON intents (deadline);
-- The feed of a subscription to many topics reads this index in the feed's
-- order and stops at a page; one to a few topics reads intents_by_topic and
-- sorts what it finds (storage/src/intents.rs, open_intents).
CREATE INDEX intents_by_hour ON intents
    (published_hour DESC, intent_id, topic, region, deadline, closed, closed_visible_at);

-- One answer per organisation and intent. No foreign key to the intent: the
-- accepted answer outlives it (until `keep_until`).
CREATE TABLE intent_answers (
    answer_id    BLOB PRIMARY KEY NOT NULL,
    intent_id    BLOB NOT NULL,
    org_id       BLOB NOT NULL REFERENCES organisations (org_id),
    created_hour INTEGER NOT NULL,
    valid_until  INTEGER NOT NULL,
    keep_until   INTEGER NOT NULL,
    body         BLOB NOT NULL,
    accepted     INTEGER NOT NULL DEFAULT 0,
    delivery     BLOB,
    UNIQUE (intent_id, org_id)
) WITHOUT ROWID;

CREATE INDEX intent_answers_by_org ON intent_answers (org_id, created_hour);
CREATE INDEX intent_answers_by_keep ON intent_answers (keep_until);

-- What each organisation follows: topic slugs and area codes, comma-separated.
CREATE TABLE intent_subscriptions (
    org_id     BLOB PRIMARY KEY NOT NULL REFERENCES organisations (org_id),
    topics     TEXT NOT NULL,
    regions    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Members' reports of answers, for the operator: the organisation and a copy
-- of its answer; no member, no intent.
CREATE TABLE intent_reports (
    report_id BLOB PRIMARY KEY NOT NULL,
    answer_id BLOB NOT NULL UNIQUE,
    org_id    BLOB NOT NULL,
    reason    TEXT NOT NULL,
    body      BLOB NOT NULL,
    at_hour   INTEGER NOT NULL
) WITHOUT ROWID;

-- Released counts of open intents, one per release window.
CREATE TABLE intent_releases (
    release_window INTEGER PRIMARY KEY NOT NULL,
    body           BLOB NOT NULL
);

-- Per-member publishing quota: one row per member and week, keyed by a tag
-- the node derives from the member and the week under its master key (a
-- thief cannot tell whose it is; tags of two weeks do not match). Only a
-- count: nothing in it points at an intent.
CREATE TABLE intent_quota (
    tag         BLOB PRIMARY KEY NOT NULL,
    week        INTEGER NOT NULL,
    n           INTEGER NOT NULL
) WITHOUT ROWID;
