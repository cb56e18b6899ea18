-- What the look-ups of a job Mailjet took found so far, when they found some of its addresses only
-- (domain/send-plan.ts, lookUpResult): a JSON array of {email, messageId, messageUuid}, the ids as
-- decimal text. The job is looked up again after a backoff, and a MessageID found once stays found,
-- even when that look-up shows fewer addresses. Null otherwise. Nullable without a default: added
-- without rewriting the table.
alter table email_send_jobs
  add column found_message_ids jsonb;
