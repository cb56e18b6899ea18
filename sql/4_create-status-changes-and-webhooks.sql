-- Every status change an app may want to hear about, in one log that feeds both the polling feed
-- (GET /status?after=…) and the webhook outbox. Rows are written in the same transaction as the
-- change itself, so none is lost and none describes a change that rolled back.
create table status_changes (
  id bigint generated always as identity,
  -- The writing transaction's id: the feed only hands out rows of transactions older than every
  -- transaction still running, so a late commit can never be skipped (see status-changes-repo.ts).
  txid xid8 not null default pg_current_xact_id(),
  app_id bigint not null,
  job_id bigint not null,
  -- Null for a change of the job itself (accepted, failed, cancelled).
  recipient_id bigint,
  old_status text,
  new_status text not null,
  -- The Mailjet event's fields behind the change, or the error of a failed job.
  details jsonb,
  created_at timestamptz not null default now(),
  constraint status_changes_pkey primary key (id),
  constraint status_changes_app_id_fkey foreign key (app_id) references apps (id) on delete cascade,
  constraint status_changes_job_id_fkey foreign key (job_id) references email_send_jobs (id) on delete cascade,
  constraint status_changes_recipient_id_fkey foreign key (recipient_id) references email_recipients (id) on delete cascade
);

create index status_changes_feed_idx
  on status_changes (app_id, txid, id);

alter table apps
  add column webhook_url text,
  -- HMAC-SHA256 key for the webhook signature; the receiving app keeps a copy to verify with.
  add column webhook_secret text,
  add constraint apps_webhook_check check ((webhook_url is null) = (webhook_secret is null));

-- The outbox: one delivery per status change for an app with a webhook URL.
create table webhook_deliveries (
  id bigint generated always as identity,
  change_id bigint not null,
  app_id bigint not null,
  url text not null,
  status text not null default 'pending',
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  -- Set while a dispatcher is posting it, so that replicas do not post it at the same time.
  locked_until timestamptz,
  last_status_code integer,
  last_error text,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  constraint webhook_deliveries_pkey primary key (id),
  constraint webhook_deliveries_change_id_fkey foreign key (change_id) references status_changes (id) on delete cascade,
  constraint webhook_deliveries_app_id_fkey foreign key (app_id) references apps (id) on delete cascade,
  constraint webhook_deliveries_status_check check (status in ('pending', 'delivered', 'failed'))
);

create index webhook_deliveries_due_idx
  on webhook_deliveries (next_attempt_at)
  where status = 'pending';

create index webhook_deliveries_app_id_idx
  on webhook_deliveries (app_id, id desc);
