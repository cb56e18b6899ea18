-- postgres-migrations disable-transaction
-- An app's jobs by custom_id, in id order: the dashboard's search by custom_id (newest first, a page
-- at a time) and GET /status?custom_id= (lowest ids first) read a range of it and stop at their
-- limit. The (app_id, custom_id) index of 1_… gave a custom_id's jobs in no useful order, so a
-- custom_id shared by many jobs (a campaign's, set on every message) was read whole and sorted, or
-- the planner walked the table by id instead. Built concurrently: jobs are enqueued all the time.
-- 38_… drops the old index, of which this one is an extension.
create index concurrently email_send_jobs_app_id_custom_id_id_idx
  on email_send_jobs (app_id, custom_id, id)
  where custom_id is not null;
