-- A signed head for every group commit (issue 14): the last entry a batch
-- appends carries the node's Ed25519 signature over (seq, hash, at), written in
-- the batch's own transaction. NULL on every other entry (and on entries
-- written before this migration).
ALTER TABLE audit_log ADD COLUMN head_sig BYTEA;
