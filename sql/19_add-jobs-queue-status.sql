-- A job's row is rewritten by every Mailjet event that moves its message forward (sent, opened,
-- clicked…). The update can stay on its page and write no index entry (a HOT update) only if no
-- index names a column it changes; the partial indexes of the queue (claim, run_at, lease, failed)
-- named `status` in their predicates, so each event inserted new entries into the table's other
-- indexes, at random places in a long history. queue_status is the status while the job is in the
-- queue's hands (queued, scheduled, deferred, processing, failed), null once settled otherwise; the
-- queue's indexes are rebuilt on it (sql/21_… to sql/25_…), and an event, which only moves a settled
-- status, leaves it null.
-- Adding a nullable column with no default is instant (no rewrite). The trigger keeps the column
-- right for every writer, this release's and the earlier one's (which writes status only, during a
-- rolling upgrade); its WHEN clause is a plain expression, so a write that leaves the queue status
-- as it is (every event) calls no function. Rows written before it are filled in by sql/20_….
alter table email_send_jobs
  add column queue_status text;

create function email_send_jobs_queue_status() returns trigger
  language plpgsql
as $$
begin
  new.queue_status := case when new.status in ('queued', 'scheduled', 'deferred', 'processing', 'failed') then new.status end;
  return new;
end
$$;

create trigger email_send_jobs_queue_status
  before insert or update of status, queue_status on email_send_jobs
  for each row
  when (new.queue_status is distinct from
    case when new.status in ('queued', 'scheduled', 'deferred', 'processing', 'failed') then new.status end)
  execute function email_send_jobs_queue_status();

-- Room for the new version of a row on its own page, where a HOT update must put it. Only pages
-- written from now on keep it (no rewrite): the jobs of an existing history stay packed.
alter table email_send_jobs set (fillfactor = 80);
