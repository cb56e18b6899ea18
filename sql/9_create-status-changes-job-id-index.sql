-- postgres-migrations disable-transaction
-- A job's timeline on the dashboard reads its status changes; the foreign key had no index, so that
-- read (and the cascade of a job's deletion) walked the whole log. Built concurrently: status changes
-- are written with every event.
create index concurrently if not exists status_changes_job_id_idx
  on status_changes (job_id, id);
