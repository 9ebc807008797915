-- Consent: requests published by organisations, members' answers with their
-- history (as JSON), and Global Privacy Control opt-outs.
CREATE TABLE consent_requests (
    request_id BYTEA PRIMARY KEY,
    org_id     BYTEA NOT NULL REFERENCES organisations (org_id),
    created_at BIGINT NOT NULL,
    body       BYTEA NOT NULL
);
CREATE INDEX consent_requests_by_org ON consent_requests (org_id, created_at);

CREATE TABLE consents (
    consent_id   BYTEA PRIMARY KEY,
    request_id   BYTEA NOT NULL REFERENCES consent_requests (request_id),
    org_id       BYTEA NOT NULL,
    member_id    BYTEA NOT NULL REFERENCES members (member_id) ON DELETE CASCADE,
    status       TEXT NOT NULL CHECK (status IN ('given', 'refused', 'withdrawn')),
    version      BIGINT NOT NULL,
    given_at     BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    withdrawn_at BIGINT,
    body         BYTEA NOT NULL
);
CREATE INDEX consents_by_org_member ON consents (org_id, member_id);
CREATE INDEX consents_by_member ON consents (member_id);
CREATE INDEX consents_by_request ON consents (request_id, status);

CREATE TABLE member_gpc (
    member_id BYTEA PRIMARY KEY REFERENCES members (member_id) ON DELETE CASCADE,
    since     BIGINT NOT NULL
);
