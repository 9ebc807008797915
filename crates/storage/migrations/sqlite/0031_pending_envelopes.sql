-- Envelopes re-sealed by a change of content (a record written, an
-- interest changed) wait here until the next release of consent changes
-- (adv4 finding 1, second half): sealed at once at every co-op, they let two
-- co-ops polling data access link the member's pseudonyms by the moment
-- both changed. `consent_release` swaps them into `consent_envelopes` in
-- the same transaction as the consent records of the period. Only a
-- released consent's envelopes wait here (one not yet released is served
-- to no one). `sealed` NULL: the envelope goes at the release. Times to the
-- hour; `changed_at` is the first pending change's (the batch's clock).
-- No member column: a withdrawal, an expiry or an erasure deletes these
-- with the released ones, through the consent.
CREATE TABLE consent_envelopes_pending (
    consent_id BLOB NOT NULL REFERENCES consents (consent_id) ON DELETE CASCADE,
    key_id     BLOB NOT NULL,
    category   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    changed_at INTEGER NOT NULL,
    sealed     BLOB,
    digest     BLOB,
    PRIMARY KEY (consent_id, key_id, category)
);
CREATE INDEX consent_envelopes_pending_by_change ON consent_envelopes_pending (changed_at);
CREATE INDEX consent_envelopes_pending_by_expiry ON consent_envelopes_pending (expires_at);
