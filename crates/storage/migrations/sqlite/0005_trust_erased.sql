-- Members who erased their data, as the keyed hashes the trust keeps their
-- receipts (research domain) and points (loyalty domain) under. A co-op still
-- holds its card for an erased member; with this list the trust drops what
-- that card brings instead of starting a new profile of the member. A tag is a
-- keyed hash of a random pseudonym: nothing here links back to a person.
CREATE TABLE trust_erased (
    tag       BLOB PRIMARY KEY NOT NULL,
    erased_at INTEGER NOT NULL
);
