-- postgres-migrations disable-transaction
-- The queue counted by status (/metrics and the dashboard's overview: db/jobs-repo.ts, QUEUE_DEPTH).
-- Queued, scheduled and deferred jobs share the claim index (21_…), ordered by priority and due
-- time, not by status: a count of a status rare within a large backlog (a few scheduled among a
-- million queued) read the whole backlog, through that index or the table, past the statement
-- timeout, and /metrics kept its last figures exactly while the backlog was largest. Here each of
-- these statuses is a range of its own, in id order: a count reads at most its cap of entries, the
-- one plan left to it once sequential scans, bitmaps and sorts are off. A job gets one entry more
-- when it is queued, scheduled or deferred, none when it is claimed (a processing job is outside
-- it). Built concurrently: jobs are enqueued and claimed all the time.
create index concurrently email_send_jobs_queue_status_idx
  on email_send_jobs (queue_status, id)
  where queue_status in ('queued', 'scheduled', 'deferred');
