-- postgres-migrations disable-transaction
-- The dashboard lists one app's jobs newest first, a page at a time (keyset on id): without this
-- index a rare app's page would walk the whole table. Built concurrently: jobs are written all the time.
create index concurrently if not exists email_send_jobs_app_id_id_idx
  on email_send_jobs (app_id, id desc);
