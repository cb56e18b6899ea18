-- The queue's indexes on status give way to those on queue_status (21_… to 24_…), which take their
-- names: from now on no index names status, and an event's update of a job can be HOT (19_…).
-- Dropping an index and renaming one are catalogue changes: the locks they take last milliseconds.
drop index email_send_jobs_claim_idx;
drop index email_send_jobs_run_at_idx;
drop index email_send_jobs_lease_idx;
drop index email_send_jobs_failed_idx;
alter index email_send_jobs_queue_claim_idx rename to email_send_jobs_claim_idx;
alter index email_send_jobs_queue_run_at_idx rename to email_send_jobs_run_at_idx;
alter index email_send_jobs_queue_lease_idx rename to email_send_jobs_lease_idx;
alter index email_send_jobs_queue_failed_idx rename to email_send_jobs_failed_idx;
