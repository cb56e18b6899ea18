-- postgres-migrations disable-transaction
-- The same for the cascade from a deleted status change to its webhook deliveries, and for the
-- retention's check that a job has no delivery still pending (see 7_…).
create index concurrently webhook_deliveries_change_id_idx
  on webhook_deliveries (change_id);
