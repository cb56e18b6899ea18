-- Since when the look-ups of a job whose last send's outcome is unknown have not been answered (a
-- 5xx, a timeout, a reset, an answer without Mailjet's list): such a look-up says nothing of the
-- message, so it spends no attempt, and the job is looked up again with a back-off until Mailjet
-- answers or LOOKUP_RETRY_WINDOW_MS has passed since this time (domain/send-decision.ts,
-- waitForLookUp). Null while its look-ups are answered. Nullable without a default: added without
-- rewriting the table.
alter table email_send_jobs
  add column lookup_failing_since timestamptz;
