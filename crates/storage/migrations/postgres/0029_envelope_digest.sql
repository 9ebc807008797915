-- Envelopes keep a digest of their plaintext, keyed by the member's data
-- key (adv4 finding 1): a session that would seal the same plaintext again
-- leaves the stored envelope as it is, so organisations polling data access
-- do not see a member's envelopes change at every co-op when they log in.
-- NULL: an envelope an older node sealed (replaced at its next session).
ALTER TABLE consent_envelopes ADD COLUMN digest BYTEA;
