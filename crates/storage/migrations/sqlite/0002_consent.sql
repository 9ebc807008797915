-- Consent: requests published by organisations, members' answers with their
-- history (as JSON), and Global Privacy Control opt-outs.
CREATE TABLE consent_requests (
    request_id BLOB PRIMARY KEY NOT NULL,
    org_id     BLOB NOT NULL REFERENCES organisations (org_id),
    created_at INTEGER NOT NULL,
    body       BLOB NOT NULL
);
CREATE INDEX consent_requests_by_org ON consent_requests (org_id, created_at);

CREATE TABLE consents (
    consent_id   BLOB PRIMARY KEY NOT NULL,
    request_id   BLOB NOT NULL REFERENCES consent_requests (request_id),
    org_id       BLOB NOT NULL,
    member_id    BLOB NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    status       TEXT NOT NULL CHECK (status IN ('given', 'refused', 'withdrawn')),
    version      INTEGER NOT NULL,
    given_at     INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    withdrawn_at INTEGER,
    body         BLOB NOT NULL
);
CREATE INDEX consents_by_org_member ON consents (org_id, member_id);
CREATE INDEX consents_by_member ON consents (member_id);
CREATE INDEX consents_by_request ON consents (request_id, status);

CREATE TABLE member_gpc (
    member_id BLOB PRIMARY KEY NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    since     INTEGER NOT NULL
);
