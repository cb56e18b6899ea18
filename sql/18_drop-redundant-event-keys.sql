-- Each applied Mailjet event inserts an email_events row and a status_changes row; these foreign keys
-- and indexes cost every one of them a check or an entry (at a random place in a large history) and
-- protect nothing the job's own foreign key does not:
-- - status_changes.app_id: the job it belongs to references the same app, and an app is never
--   deleted while it has jobs. Its check took a key-share lock on the app's row in every ingest, so
--   concurrent callbacks of one app shared that lock through a multixact.
-- - email_events.recipient_id and status_changes.recipient_id: a recipient is only ever deleted with
--   its job, whose ON DELETE CASCADE removes both rows by job_id. Their indexes served only those
--   cascades; no query reads either table by recipient.
alter table status_changes drop constraint status_changes_app_id_fkey;
alter table status_changes drop constraint status_changes_recipient_id_fkey;
drop index status_changes_recipient_id_idx;
alter table email_events drop constraint email_events_recipient_id_fkey;
drop index email_events_recipient_id_idx;
-- The dedupe key alone: 17_… indexes it after the event's time, where new events stay together.
alter table email_events drop constraint email_events_dedupe_key_key;
