-- postgres-migrations disable-transaction
-- Retention deletes jobs, and ON DELETE CASCADE then deletes their status changes by job_id: without
-- this index every deleted job would scan the whole table. Built concurrently (one index per file:
-- CREATE INDEX CONCURRENTLY cannot share a statement string), so that status changes, written in the
-- same transactions as every send and event, are not blocked while it is built.
create index concurrently status_changes_job_id_idx
  on status_changes (job_id);
