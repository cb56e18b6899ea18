-- postgres-migrations disable-transaction
-- The leases the reaper watches (see 1_…), keyed on queue_status (19_…).
create index concurrently email_send_jobs_queue_lease_idx
  on email_send_jobs (locked_until)
  where queue_status = 'processing';
