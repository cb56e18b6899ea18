-- Fills queue_status in the jobs written before sql/19_…'s trigger: only the unsettled ones, found
-- through the partial indexes on status (one statement per index, whose predicate it repeats, so each
-- reads its index, not the history). Other writers keep going: this locks only these rows, and a
-- row another writer changes meanwhile already has its queue_status from the trigger.
update email_send_jobs
set queue_status = status
where status in ('queued', 'scheduled', 'deferred')
  and queue_status is null;

update email_send_jobs
set queue_status = status
where status = 'processing'
  and queue_status is null;

update email_send_jobs
set queue_status = status
where status = 'failed'
  and queue_status is null;
