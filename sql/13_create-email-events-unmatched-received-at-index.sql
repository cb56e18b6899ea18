-- postgres-migrations disable-transaction
-- Retention deletes the events never matched to a message after RETENTION_UNMATCHED_EVENTS_DAYS,
-- oldest first, found through this index (small: only unmatched events are in it). Built
-- concurrently: every callback writes this table.
create index concurrently email_events_unmatched_received_at_idx
  on email_events (received_at)
  where recipient_id is null;
