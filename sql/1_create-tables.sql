-- jetpost's tables. They live in the schema named by DATABASE_SCHEMA (search_path is set by the
-- migration runner and the pool), so nothing here is schema-qualified.

create table apps (
  id bigint generated always as identity,
  name text not null,
  created_at timestamptz not null default now(),
  constraint apps_pkey primary key (id),
  constraint apps_name_key unique (name),
  constraint apps_name_check check (length(name) between 1 and 100)
);

-- Keys are shown once, at creation: only a SHA-256 of the whole key is kept. The prefix is the
-- key's public part, used to find the row before the constant-time comparison of the hash.
create table api_keys (
  id bigint generated always as identity,
  app_id bigint not null,
  prefix text not null,
  key_hash bytea not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  constraint api_keys_pkey primary key (id),
  constraint api_keys_prefix_key unique (prefix),
  constraint api_keys_app_id_fkey foreign key (app_id) references apps (id) on delete cascade
);

create index api_keys_app_id_idx
  on api_keys (app_id);

-- One row per requested message (one Mailjet message object).
create table email_send_jobs (
  id bigint generated always as identity,
  app_id bigint not null,
  status text not null,
  -- The message as accepted by POST /queue (sender, content, headers, attachments); recipients
  -- live in email_recipients.
  message jsonb not null,
  custom_id text,
  metadata jsonb,
  priority smallint not null default 0,
  send_at timestamptz,
  -- Earliest time a consumer may claim the job: now, send_at, or a retry's backoff.
  run_at timestamptz not null default now(),
  attempts integer not null default 0,
  max_attempts integer not null,
  locked_by text,
  locked_until timestamptz,
  last_error text,
  recipient_count integer not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  accepted_at timestamptz,
  constraint email_send_jobs_pkey primary key (id),
  constraint email_send_jobs_app_id_fkey foreign key (app_id) references apps (id),
  constraint email_send_jobs_status_check check (status in (
    'queued', 'scheduled', 'processing', 'deferred', 'accepted', 'sent', 'opened', 'clicked',
    'bounced', 'blocked', 'spam', 'unsubscribed', 'failed', 'cancelled'
  )),
  -- A lease exists exactly while a consumer holds the job.
  constraint email_send_jobs_lease_check check (
    (status = 'processing') = (locked_by is not null and locked_until is not null)
  ),
  constraint email_send_jobs_priority_check check (priority between 0 and 3),
  constraint email_send_jobs_attempts_check check (attempts >= 0 and max_attempts >= 1),
  constraint email_send_jobs_recipient_count_check check (recipient_count between 1 and 50)
);

-- The claim query reads only this partial index: claimable rows, highest priority first, then
-- oldest run_at. Its size is the backlog, not the history, so claiming stays O(log n).
create index email_send_jobs_claim_idx
  on email_send_jobs (priority desc, run_at, id)
  where status in ('queued', 'scheduled', 'deferred');

-- When the next claimable job falls due: idle consumers sleep until then.
create index email_send_jobs_run_at_idx
  on email_send_jobs (run_at)
  where status in ('queued', 'scheduled', 'deferred');

create index email_send_jobs_lease_idx
  on email_send_jobs (locked_until)
  where status = 'processing';

create index email_send_jobs_app_id_custom_id_idx
  on email_send_jobs (app_id, custom_id)
  where custom_id is not null;

create index email_send_jobs_app_id_created_at_idx
  on email_send_jobs (app_id, created_at desc);

-- One Idempotency-Key covers one POST /queue (a single message or a bulk request).
create table idempotency_keys (
  app_id bigint not null,
  key text not null,
  -- SHA-256 of the canonical request body: the same key with another body is a conflict.
  request_hash text not null,
  job_ids bigint[] not null,
  created_at timestamptz not null default now(),
  constraint idempotency_keys_pkey primary key (app_id, key),
  constraint idempotency_keys_app_id_fkey foreign key (app_id) references apps (id) on delete cascade
);

-- One row per recipient (To, Cc, Bcc) of a job: Mailjet gives each its own MessageID and UUID.
create table email_recipients (
  id bigint generated always as identity,
  job_id bigint not null,
  -- Order within the job: To first, then Cc, then Bcc, each in request order.
  position smallint not null,
  kind text not null,
  email text not null,
  name text,
  status text not null default 'pending',
  -- 64-bit and routinely above 2^53: read as text, never as a JS number.
  mailjet_message_id bigint,
  mailjet_message_uuid text,
  updated_at timestamptz not null default now(),
  constraint email_recipients_pkey primary key (id),
  constraint email_recipients_job_id_fkey foreign key (job_id) references email_send_jobs (id) on delete cascade,
  constraint email_recipients_job_id_position_key unique (job_id, position),
  constraint email_recipients_kind_check check (kind in ('to', 'cc', 'bcc')),
  constraint email_recipients_status_check check (status in (
    'pending', 'accepted', 'sent', 'opened', 'clicked', 'bounced', 'blocked', 'spam', 'unsubscribed',
    'failed', 'cancelled'
  ))
);

create index email_recipients_mailjet_message_id_idx
  on email_recipients (mailjet_message_id)
  where mailjet_message_id is not null;

create index email_recipients_mailjet_message_uuid_idx
  on email_recipients (mailjet_message_uuid)
  where mailjet_message_uuid is not null;

-- Append-only history of Mailjet events. An event whose message is not known yet (its send result
-- is still being recorded, or it is not ours) is kept with recipient_id null and matched later.
create table email_events (
  id bigint generated always as identity,
  -- Mailjet sends no event id: a hash of message, type, time, address and URL identifies a repeat.
  dedupe_key text not null,
  event_type text not null,
  occurred_at timestamptz not null,
  mailjet_message_id bigint,
  mailjet_message_uuid text,
  email text,
  recipient_id bigint,
  job_id bigint,
  -- The event as Mailjet sent it, with big integers kept as strings.
  payload jsonb not null,
  received_at timestamptz not null default now(),
  constraint email_events_pkey primary key (id),
  constraint email_events_dedupe_key_key unique (dedupe_key),
  constraint email_events_recipient_id_fkey foreign key (recipient_id) references email_recipients (id) on delete cascade,
  constraint email_events_job_id_fkey foreign key (job_id) references email_send_jobs (id) on delete cascade,
  constraint email_events_event_type_check check (event_type in ('sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub'))
);

create index email_events_job_id_idx
  on email_events (job_id, occurred_at)
  where job_id is not null;

create index email_events_recipient_id_idx
  on email_events (recipient_id)
  where recipient_id is not null;

create index email_events_unmatched_message_id_idx
  on email_events (mailjet_message_id)
  where recipient_id is null;

create index email_events_unmatched_message_uuid_idx
  on email_events (mailjet_message_uuid)
  where recipient_id is null;
