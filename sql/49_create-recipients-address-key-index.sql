-- postgres-migrations disable-transaction
-- The dashboard finds a message by its recipient's address under the key suppressions use
-- (address_key(): any case, a domain in Unicode or ASCII, whatever the database's locale), newest
-- job first, a page at a time (keyset on job_id). Built concurrently: recipients are written by every
-- POST /queue. After sql/48, which sets the key this index holds.
create index concurrently if not exists email_recipients_address_key_job_id_idx
  on email_recipients (address_key(email), job_id desc);
