-- Erasures released in batches (issue 12, finding A). From the moment of an
-- erasure the member's data is unreadable and unusable at the node; what
-- organisations can observe of it (their consent leaving the consent lists,
-- the trust naming their cards as erased) waits for the next release, at a
-- period boundary, together with every member erased in that period.
--
-- Members erased but not yet released: their account row (every secret
-- already cleared, state 'erasing') and consent records stay until the
-- release deletes them; `erased_at` is set once the erasure is done.
ALTER TABLE members ADD COLUMN erased_at BIGINT;
-- A tag on the erased list is named to co-ops (410 member_erased, a
-- receipt's position in `erased`) only once released. Tags erased before
-- this migration were named at once.
ALTER TABLE trust_erased ADD COLUMN released_at BIGINT;
UPDATE trust_erased SET released_at = erased_at;

-- Erasure requests to the organisations that received a member's data
-- (GDPR Art. 17 and 19), one per recipient, naming the member by that
-- recipient's own pseudonym. Released with the batch (`released_at`, the
-- boundary), confirmed by the recipient through the API. Nothing groups one
-- member's requests but `receipt_tag`, a keyed hash under the erasure
-- receipt only the member holds.
CREATE TABLE erasure_requests (
    request_id   BYTEA PRIMARY KEY NOT NULL,
    org_id       BYTEA NOT NULL REFERENCES organisations (org_id),
    subject      TEXT NOT NULL,
    receipt_tag  BYTEA NOT NULL UNIQUE,
    released_at  BIGINT,
    confirmed_at BIGINT
);
CREATE INDEX erasure_requests_org ON erasure_requests (org_id, released_at);
-- An erasure receipt: the SHA-256 of its secret, and how many requests it
-- covers (their tags are derived from the secret).
CREATE TABLE erasure_receipts (
    receipt_hash BYTEA PRIMARY KEY NOT NULL,
    recipients   BIGINT NOT NULL
);
