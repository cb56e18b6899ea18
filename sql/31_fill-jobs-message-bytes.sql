-- Fills message_bytes (30_…) in the unsettled jobs written before it, so that a queue stuck on
-- messages that compress well (every claim asked for all of them, and timed out) drains after the
-- upgrade. Settled jobs are never claimed again and keep null. One statement per partial index of
-- queue_status (21_…, 23_…, 24_…), whose predicate it repeats, so each reads its index, not the
-- history; in a migration of its own, so that 30_…'s exclusive lock is not held meanwhile.
update email_send_jobs
set message_bytes = octet_length(message::text)
where queue_status in ('queued', 'scheduled', 'deferred')
  and message_bytes is null;

update email_send_jobs
set message_bytes = octet_length(message::text)
where queue_status = 'processing'
  and message_bytes is null;

update email_send_jobs
set message_bytes = octet_length(message::text)
where queue_status = 'failed'
  and message_bytes is null;
