-- Webhooks for erasure requests (issue 15, item 2). An organisation may name
-- one URL (https) where the node posts each of its erasure requests, signed,
-- once the request's batch is released. The pull endpoint stays, and the
-- organisation confirms through the API either way.
CREATE TABLE org_webhooks (
    org_id     BYTEA PRIMARY KEY NOT NULL REFERENCES organisations (org_id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The delivery of one erasure request to its organisation's webhook: the
-- attempts made and when the next is due (NULL once delivered or given up),
-- so that retries survive a restart. Keyed by the request, never a member.
CREATE TABLE webhook_deliveries (
    request_id   BYTEA PRIMARY KEY NOT NULL REFERENCES erasure_requests (request_id) ON DELETE CASCADE,
    attempts     BIGINT NOT NULL,
    next_at      BIGINT,
    delivered_at BIGINT,
    last_status  BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at);
