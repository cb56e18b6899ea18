-- The size of a job's message as jetpost wrote it (bytes of its JSON in UTF-8), for the claim's byte
-- budget (db/jobs-repo.ts, CLAIM_JOBS): the size as stored (pg_column_size) is compressed, and a
-- message that compresses well (an attachment of repeated bytes) is stored in a hundredth of its
-- size, so that a claim of fifty such read gigabytes and timed out on every try. Null in rows written
-- before: 31_… fills those still to be sent, and the claim counts the rest as stored. Nullable
-- without a default: added without rewriting the table.
alter table email_send_jobs
  add column message_bytes integer;
