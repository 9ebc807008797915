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
-- every other column is still refused, and rows are never deleted.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND NEW.seq = OLD.seq AND NEW.at = OLD.at AND NEW.event = OLD.event
        AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
        AND NEW.head_sig IS NOT DISTINCT FROM OLD.head_sig THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END $$;

-- A log with no entry under any subject has nothing to re-key: marked done
-- now, so that entries written from here on are never taken for an older
-- node's.
INSERT INTO node_meta (key, value)
SELECT 'rekeyed_audit_entry_tags', '\x31'::bytea
WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE subject IS NOT NULL)
ON CONFLICT (key) DO NOTHING;
