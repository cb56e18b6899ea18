-- postgres-migrations disable-transaction
-- The dashboard finds a message by its recipient's address, in any case, newest job first, a page
-- at a time (keyset on job_id). Built concurrently: recipients are written by every POST /queue.
create index concurrently if not exists email_recipients_lower_email_job_id_idx
  on email_recipients (lower(email), job_id desc);
