-- Webhooks follow the Standard Webhooks specification: the HMAC key is the base64 text after
-- `whsec_`, decoded. Secrets were written in base64url without padding; the same random bytes are
-- rewritten in standard base64 so that every Standard Webhooks library decodes them.
update apps
set webhook_secret = 'whsec_' || rpad(translate(substr(webhook_secret, 7), '-_', '+/'), ((length(webhook_secret) - 6 + 3) / 4) * 4, '=')
where webhook_secret like 'whsec\_%';

-- The change types (status_changes.new_status) the app's webhook receives; null: every type.
alter table apps
  add column webhook_event_types text[],
  add constraint apps_webhook_event_types_check check (webhook_event_types is null or cardinality(webhook_event_types) > 0);

-- Secrets replaced by a rotation that still sign deliveries, next to the current one, until
-- expires_at: the receiving app has until then to switch to the new secret.
create table webhook_previous_secrets (
  id bigint generated always as identity,
  app_id bigint not null,
  secret text not null,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  constraint webhook_previous_secrets_pkey primary key (id),
  constraint webhook_previous_secrets_app_id_fkey foreign key (app_id) references apps (id) on delete cascade
);

create index webhook_previous_secrets_app_id_expires_at_idx
  on webhook_previous_secrets (app_id, expires_at);
