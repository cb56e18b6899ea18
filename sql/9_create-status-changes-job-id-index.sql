-- postgres-migrations disable-transaction
-- Status changes are read and deleted by job: the dashboard's timeline of a job reads them in order,
-- and retention deletes jobs, whose status changes ON DELETE CASCADE then finds by job_id. Without
-- this index each of those walks the whole log. Built concurrently (one index per file: CREATE INDEX
-- CONCURRENTLY cannot share a statement string), so that status changes, written in the same
-- transactions as every send and event, are not blocked while it is built.
create index concurrently status_changes_job_id_idx
  on status_changes (job_id, id);
