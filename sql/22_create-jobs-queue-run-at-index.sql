-- postgres-migrations disable-transaction
-- When the next claimable job falls due (see 1_…), keyed on queue_status (19_…).
create index concurrently email_send_jobs_queue_run_at_idx
  on email_send_jobs (run_at)
  where queue_status in ('queued', 'scheduled', 'deferred');
