-- postgres-migrations disable-transaction
-- The dashboard's throughput chart counts the jobs Mailjet accepted in each minute of the last hour.
-- Built concurrently: consumers set accepted_at all the time.
create index concurrently if not exists email_send_jobs_accepted_at_idx
  on email_send_jobs (accepted_at)
  where accepted_at is not null;
