-- Addresses an app must not send to: hard bounces, spam complaints and unsubscribes reported by
-- Mailjet, and addresses added by hand. A send to one of them fails fast, without calling Mailjet.
create table suppressions (
  app_id bigint not null,
  -- Lower-cased: addresses compare case-insensitively here.
  email text not null,
  reason text not null,
  -- What added it: the Mailjet event's details, or the operator's note.
  detail text,
  created_at timestamptz not null default now(),
  constraint suppressions_pkey primary key (app_id, email),
  constraint suppressions_app_id_fkey foreign key (app_id) references apps (id) on delete cascade,
  constraint suppressions_reason_check check (reason in ('hard_bounce', 'spam', 'unsubscribed', 'manual')),
  constraint suppressions_email_check check (email = lower(email))
);

-- A recipient left out of a send because its address is suppressed.
alter table email_recipients
  drop constraint email_recipients_status_check,
  add constraint email_recipients_status_check check (status in (
    'pending', 'accepted', 'sent', 'opened', 'clicked', 'bounced', 'blocked', 'spam', 'unsubscribed',
    'failed', 'cancelled', 'suppressed'
  ));

-- Fixed-window request counters shared by every replica (express-rate-limit's store).
create table rate_limits (
  key text not null,
  hits integer not null,
  reset_at timestamptz not null,
  constraint rate_limits_pkey primary key (key)
);

create index rate_limits_reset_at_idx
  on rate_limits (reset_at);
