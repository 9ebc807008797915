-- Paper opt-outs queued for the node's worker (issue 15, finding 5 of adv4):
-- a code typed at a desk or at the public page is answered after one insert
-- here, whatever the member holds; the worker withdraws the marketing
-- consents afterwards. The member's id is sealed, bound to the job's id; the
-- time is the hour (issue 13). `lease_until` (a whole hour) is set while a
-- worker holds the job, so a job a killed node held is taken up again.
CREATE TABLE optout_jobs (
    job_id BYTEA PRIMARY KEY,
    member_ct BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    lease_until BIGINT
);

-- A member's Global Privacy Control signal: `since` is stored as the hour
-- from now on, its exact time sealed to the row beside it (issue 13). Rows
-- written before keep their exact `since` and no `since_ct`.
ALTER TABLE member_gpc ADD COLUMN since_ct BYTEA;
