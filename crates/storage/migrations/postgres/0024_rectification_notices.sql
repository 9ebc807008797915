-- Rectification notices (issue 15, item 3; GDPR Art. 16 and 19). When a
-- member corrects a record, each organisation that received data of the
-- record's category through one of their consents gets a notice naming its
-- own pseudonym for the member, the consent and the category (never a value
-- or a member id). Released in batches like erasure requests
-- (`released_at`, a period boundary), confirmed by the organisation through
-- the API. `member_tag` is a keyed hash of the member under the node's key,
-- so the member can follow their notices; organisations never see it.
CREATE TABLE rectification_notices (
    notice_id    BYTEA PRIMARY KEY NOT NULL,
    org_id       BYTEA NOT NULL REFERENCES organisations (org_id),
    subject      TEXT NOT NULL,
    consent_id   BYTEA NOT NULL,
    category     TEXT NOT NULL,
    member_tag   BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    released_at  BIGINT,
    confirmed_at BIGINT
);
CREATE INDEX rectification_notices_org ON rectification_notices (org_id, released_at);
CREATE INDEX rectification_notices_member ON rectification_notices (member_tag);
CREATE INDEX rectification_notices_release ON rectification_notices (released_at, created_at);

-- The delivery of one notice to its organisation's webhook (as
-- webhook_deliveries for erasure requests).
CREATE TABLE rectification_deliveries (
    notice_id    BYTEA PRIMARY KEY NOT NULL REFERENCES rectification_notices (notice_id) ON DELETE CASCADE,
    attempts     BIGINT NOT NULL,
    next_at      BIGINT,
    delivered_at BIGINT,
    last_status  BIGINT
);
CREATE INDEX rectification_deliveries_due ON rectification_deliveries (next_at);
