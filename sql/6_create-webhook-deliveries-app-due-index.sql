-- postgres-migrations disable-transaction
-- The dispatcher claims due deliveries app by app, at most a few of one app in flight at a time,
-- so that one slow receiver cannot take every slot. This index finds an app's due deliveries
-- without walking its delivered history or other apps' backlogs. Built concurrently: the outbox is
-- written in the same transactions as status changes, which a plain build would block.
create index concurrently webhook_deliveries_app_id_next_attempt_at_idx
  on webhook_deliveries (app_id, next_attempt_at, id)
  where status = 'pending';
