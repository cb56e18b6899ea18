-- An app's name is unique whatever its case: "Billing" and "billing" would be two apps that the CLI,
-- the dashboard and /admin/apps/{app} tell apart by one letter's case, and an operator typing the
-- name from memory reaches the other one. Names are looked up whatever their case too (apps-repo.ts).
--
-- Names stored before this release may already differ by case only. In each such group the oldest
-- app keeps its name and every later one gets "-" and its id appended (cut to fit 100 characters,
-- and "-1", "-2"... after that in the unlikely case the result is taken too): "billing" (id 7) next
-- to an older "Billing" becomes "billing-7". Nothing else of the apps changes: their keys, jobs,
-- suppressions and webhooks hang off their ids, and apps send by key, never by name.
do $$
declare
  later record;
  suffix text;
  attempt int;
  candidate text;
begin
  for later in
    select a.id, a.name
    from apps a
    where exists (select 1 from apps b where lower(b.name) = lower(a.name) and b.id < a.id)
    order by a.id
  loop
    attempt := 0;
    loop
      suffix := '-' || later.id || case when attempt > 0 then '-' || attempt else '' end;
      candidate := left(later.name, 100 - length(suffix)) || suffix;
      exit when not exists (select 1 from apps where lower(name) = lower(candidate));
      attempt := attempt + 1;
    end loop;
    update apps set name = candidate where id = later.id;
  end loop;
end
$$;

-- Not concurrently: apps holds one row per internal service, so the build takes milliseconds, and in
-- the migration's transaction no app can be created between the renames above and the index. Its
-- lock (SHARE) lets every read and row lock of apps through; only a write to apps (an app created,
-- a webhook set) waits for it. The exact-name constraint stays: dropping it would take an ACCESS
-- EXCLUSIVE lock, which waits behind any open reader of apps and stops every later one meanwhile.
create unique index apps_name_lower_key on apps (lower(name));
