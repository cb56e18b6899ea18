-- postgres-migrations disable-transaction
-- Retention deletes the idempotency keys older than RETENTION_IDEMPOTENCY_KEYS_HOURS, oldest first,
-- in small batches found through this index. Built concurrently: POST /queue writes this table.
create index concurrently idempotency_keys_created_at_idx
  on idempotency_keys (created_at);
