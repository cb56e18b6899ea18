-- Each applied Mailjet event inserts an email_events row and a status_changes row, and the foreign key
-- of each to its job ran a check per row (a query and a row lock): about a quarter of the events
-- statement's time. Neither check can fail there: the statement locks the jobs of its events and
-- returns the events whose job it could not lock (deleted meanwhile), and the ingest then rolls back
-- and tries again (db/events-repo.ts, STORE_AND_APPLY); every other writer of these rows writes or
-- locks the job in the same transaction. What the foreign keys also did, deleting a job's events and
-- status changes with it, this trigger does for every deleter, this release's and the earlier one's
-- (retention, during a rolling upgrade), in one statement per table for all the jobs a statement
-- deleted, through the job_id indexes (the explicit `is not null` lets the partial one serve).
-- Dropping a foreign key only removes its triggers: no table is scanned or rewritten.
create function delete_history_of_deleted_jobs() returns trigger
  language plpgsql
  set search_path from current
as $$
begin
  delete from email_events
  where job_id is not null
    and job_id = any (array(select id from deleted_jobs));
  delete from status_changes
  where job_id = any (array(select id from deleted_jobs));
  return null;
end
$$;

create trigger email_send_jobs_delete_history
  after delete on email_send_jobs
  referencing old table as deleted_jobs
  for each statement
  execute function delete_history_of_deleted_jobs();

alter table email_events drop constraint email_events_job_id_fkey;
alter table status_changes drop constraint status_changes_job_id_fkey;
