-- A paper opt-out job carries the member's locator for this table (issue 13;
-- the review of session 5): an erasure deletes the member's pending jobs with
-- the rest of their rows (storage/src/member_rows.rs) instead of leaving them
-- for the worker to drop. Jobs queued before keep no locator: the worker
-- takes them up at the next start as before.
ALTER TABLE optout_jobs ADD COLUMN member_loc BYTEA;
CREATE INDEX optout_jobs_by_member ON optout_jobs (member_loc);
