-- One tag per audit entry (issue 13 item 4, issue 12).
--
-- `audit_log.subject` named a member by one pseudonym on all their entries:
-- the file alone grouped each member's entries into a timeline. The node now
-- writes a keyed tag per entry (the member's audit subject and the entry's
-- number under it, `MetadataKeys::audit_entry_tag`), and re-keys the rows an
-- older node wrote once, at its first start (`rekeyed_audit_entry_tags` in
-- `node_meta`). The column is a finding aid only: the chain hash and the
-- signed heads cover the sequence number, time, sealed event and previous
-- hash, never it. So the append-only guard now lets `subject` alone change;
-- every other column is still refused.
DROP TRIGGER audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NEW.seq IS NOT OLD.seq OR NEW.at IS NOT OLD.at OR NEW.event IS NOT OLD.event
  OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.hash IS NOT OLD.hash
  OR NEW.head_sig IS NOT OLD.head_sig
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- A log with no entry under any subject has nothing to re-key: marked done
-- now, so that entries written from here on are never taken for an older
-- node's.
INSERT INTO node_meta (key, value)
SELECT 'rekeyed_audit_entry_tags', X'31'
WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE subject IS NOT NULL)
ON CONFLICT (key) DO NOTHING;
