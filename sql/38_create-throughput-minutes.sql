-- The dashboard's throughput chart (jobs enqueued and accepted per minute over the last hour) counted
-- the jobs of each minute from the jobs table: at a busy service's pace (a million jobs in the last
-- hour) that visited every one of them and their rows, 5 to 12 s, past the statement timeout. Each
-- process now counts what it enqueues and what Mailjet accepts, and adds its counts here every few
-- seconds (services/throughput.ts): the chart reads at most 60 rows. Rows older than a day go with
-- the next addition.
create table throughput_minutes (
  minute timestamptz not null,
  enqueued bigint not null default 0,
  accepted bigint not null default 0,
  constraint throughput_minutes_pkey primary key (minute),
  constraint throughput_minutes_counts_check check (enqueued >= 0 and accepted >= 0)
);

-- What only the chart read: accepted_at's index (15_…), one entry per accepted job. The old
-- (app_id, custom_id) index is the first part of 37_…'s (app_id, custom_id, id), which serves every
-- read it served. Dropping an index is a catalogue change: the lock it takes lasts milliseconds
-- (as in 25_…), once the transactions using the table at that moment end.
drop index email_send_jobs_accepted_at_idx;
drop index email_send_jobs_app_id_custom_id_idx;
