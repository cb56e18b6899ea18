-- Fills accepted_unresolved (32_…) in the unsettled and failed jobs written before it, from the
-- wording their error had until then. One statement per partial index of queue_status (21_…, 23_…,
-- 24_…), whose predicate it repeats, so each reads its index, not the history; in a migration of its
-- own, so that 32_…'s exclusive lock is not held meanwhile.
update email_send_jobs
set accepted_unresolved = true
where queue_status in ('queued', 'scheduled', 'deferred')
  and outcome_unknown
  and last_error like 'Mailjet accepted it, but %';

update email_send_jobs
set accepted_unresolved = true
where queue_status = 'processing'
  and outcome_unknown
  and last_error like 'Mailjet accepted it, but %';

update email_send_jobs
set accepted_unresolved = true
where queue_status = 'failed'
  and outcome_unknown
  and last_error like 'Mailjet accepted it, but %';
