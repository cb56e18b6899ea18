-- A job Mailjet answered "success" for without a usable MessageID for each recipient (domain/
-- send-decision.ts, unresolvedAcceptance): it is never sent again, only looked up by CustomID, and a
-- look-up that does not find it ends it failed as "may well have been delivered", not "never sent".
-- Its last_error's wording said so before; a state does not hang on an error's text. 33_… fills it in
-- the jobs waiting for their look-up. With a constant default: added without rewriting the table.
alter table email_send_jobs
  add column accepted_unresolved boolean not null default false;
