-- postgres-migrations disable-transaction
-- The dead-letter list (see 2_…), keyed on queue_status (19_…).
create index concurrently email_send_jobs_queue_failed_idx
  on email_send_jobs (id desc)
  where queue_status = 'failed';
