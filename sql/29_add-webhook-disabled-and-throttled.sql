-- What a receiver's answer says about its whole endpoint (Standard Webhooks): `410 Gone` disables
-- the app's webhook until it is set again (no delivery is queued or attempted meanwhile), and `429`,
-- `502`, `503` or `504` hold back every delivery of the app until the retry the answer called for.
-- Nullable columns without a default: added without rewriting the table.
alter table apps
  add column webhook_disabled_at timestamptz,
  add column webhook_disabled_reason text,
  add column webhook_throttled_until timestamptz;
