-- postgres-migrations disable-transaction
-- The run_at index (22_…) goes: the claim's planner chose it over the claim index whenever its
-- statistics were off, and read the whole backlog through it to sort it (db/jobs-repo.ts,
-- CLAIM_JOBS). What it served, the next due job and the oldest due one, is the first entry of each
-- priority's range of the claim index; and each job queued, deferred or returned by the reaper writes
-- one index entry fewer. Dropped concurrently: consumers claim all the time.
drop index concurrently email_send_jobs_run_at_idx;
