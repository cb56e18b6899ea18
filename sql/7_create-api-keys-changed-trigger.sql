-- Replicas keep the keys they have checked in memory (services/api-key-cache.ts). Every change to a
-- key that could make it refused (revocation, deletion with its app, anything done by hand in psql)
-- tells every replica at commit, so that each forgets the keys it knows. The channel is the one
-- db/notify.ts names for this schema.
create function notify_api_keys_changed() returns trigger
  language plpgsql
  as $$
begin
  perform pg_notify(tg_table_schema || '_keys_changed', '');
  return null;
end;
$$;

create trigger api_keys_changed
  after update or delete or truncate on api_keys
  for each statement
  execute function notify_api_keys_changed();
