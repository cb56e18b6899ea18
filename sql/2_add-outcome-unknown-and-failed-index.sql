-- A job whose last send attempt ended without a clear answer (a timeout, a 5xx, a consumer that
-- died holding it) may have been sent. Before sending it again a consumer looks it up at Mailjet
-- by CustomID, so a slow Mailjet or a crash does not become a duplicate email.
alter table email_send_jobs
  add column outcome_unknown boolean not null default false;

-- The dead-letter list (failed jobs, newest first) for the admin API and CLI.
create index email_send_jobs_failed_idx
  on email_send_jobs (id desc)
  where status = 'failed';
