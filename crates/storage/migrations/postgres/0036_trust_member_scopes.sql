-- Issue 13, the trust's aggregates at rest. `trust_members` and `trust_bins`
-- kept a member under one research tag in every scope (each co-op and `*`):
-- a thief with the file and two co-ops' own per-card totals found one
-- co-op's row by its total and followed the tag to the other co-op's row.
-- Rows are now stored under the tag scoped to their scope (a keyed hash of
-- the tag and the scope, `tag_scoped` 1). The overlap between two co-ops
-- needs to know which rows are one member's: a co-op scope's row keeps the
-- research tag sealed to the row (`tag_ct`, a fresh nonce per row, opened
-- by the node at query time), never a value two rows share. Rows written
-- before are re-keyed once at start, with the master key's metadata keys,
-- which a migration does not hold.
ALTER TABLE trust_members ADD COLUMN tag_ct BYTEA;
ALTER TABLE trust_members ADD COLUMN tag_scoped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE trust_bins ADD COLUMN tag_scoped BIGINT NOT NULL DEFAULT 0;
-- Pending redemption tokens kept the member's one loyalty tag (that of their
-- balance): with two co-ops' redeemed tokens (a co-op hashes the token it
-- was handed) a backup's pending rows paired their cards. Now under the tag
-- scoped to the token's co-op, the member's tag sealed to the token (what a
-- redemption credits); older rows re-keyed once at start.
ALTER TABLE trust_loyalty_tokens ADD COLUMN tag_ct BYTEA;
ALTER TABLE trust_loyalty_tokens ADD COLUMN tag_scoped BIGINT NOT NULL DEFAULT 0;
-- The erased list put a held erasure's research and loyalty tags under one
-- hour. Now the day. (PostgreSQL keeps rows in the heap in written order:
-- see ARCHITECTURE, "Metadata at rest".)
UPDATE trust_erased SET erased_at = (erased_at / 86400000) * 86400000;
