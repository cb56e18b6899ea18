-- postgres-migrations disable-transaction
-- The same for the cascade from a deleted recipient to its status changes (see 7_…).
create index concurrently status_changes_recipient_id_idx
  on status_changes (recipient_id)
  where recipient_id is not null;
