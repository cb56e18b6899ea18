-- POST /queue inserts a job and a row per recipient, and the foreign key of each ran a check per
-- row (a query and a row lock): a quarter of PostgreSQL's CPU in a bulk enqueue (8 of 33 µs per
-- message). Each job's check also took a key-share lock on its app's row, shared by concurrent
-- enqueues through a multixact, and waited behind a webhook change holding that row. Neither check
-- can fail:
-- - email_recipients.job_id: recipients are only ever inserted by the statement that inserts their
--   job (db/jobs-repo.ts, INSERT_JOBS), for the ids it draws; no writer changes a recipient's job_id.
--   What the foreign key also did, deleting a job's recipients with it, sql/26_…'s trigger now does
--   too, for every deleter, this release's and the earlier one's (retention, during a rolling upgrade).
-- - email_send_jobs.app_id: a job's app comes from the API key that sent it, or from the app's row;
--   and an app is never deleted, which triggers below now make sure of (its jobs, keys, suppressions
--   and webhook deliveries would otherwise go, or be left pointing at nothing).
-- Dropping a foreign key only removes its triggers: no table is scanned or rewritten.
create or replace function delete_history_of_deleted_jobs() returns trigger
  language plpgsql
  set search_path from current
as $$
begin
  delete from email_events
  where job_id is not null
    and job_id = any (array(select id from deleted_jobs));
  delete from status_changes
  where job_id = any (array(select id from deleted_jobs));
  delete from email_recipients
  where job_id = any (array(select id from deleted_jobs));
  return null;
end
$$;

-- TRUNCATE fires no delete trigger: emptying the jobs empties what hangs off them (as TRUNCATE …
-- CASCADE did for the recipients, and refused without it).
create function delete_history_of_truncated_jobs() returns trigger
  language plpgsql
  set search_path from current
as $$
begin
  delete from email_events
  where job_id is not null;
  delete from status_changes;
  truncate email_recipients;
  return null;
end
$$;

create trigger email_send_jobs_truncate_history
  after truncate on email_send_jobs
  for each statement
  execute function delete_history_of_truncated_jobs();

create function refuse_app_deletion() returns trigger
  language plpgsql
as $$
begin
  raise exception 'an app is never deleted: its jobs refer to it (revoke its API keys instead)'
    using errcode = 'foreign_key_violation';
end
$$;

create trigger apps_refuse_delete
  before delete on apps
  for each row
  execute function refuse_app_deletion();

create trigger apps_refuse_truncate
  before truncate on apps
  for each statement
  execute function refuse_app_deletion();

alter table email_recipients drop constraint email_recipients_job_id_fkey;
alter table email_send_jobs drop constraint email_send_jobs_app_id_fkey;
