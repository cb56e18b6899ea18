-- postgres-migrations disable-transaction
-- The claim index again (see 1_…), keyed on queue_status instead of status (19_…). Built
-- concurrently: consumers claim all the time. 25_… drops the old one and gives this one its name.
create index concurrently email_send_jobs_queue_claim_idx
  on email_send_jobs (priority desc, run_at, id)
  where queue_status in ('queued', 'scheduled', 'deferred');
