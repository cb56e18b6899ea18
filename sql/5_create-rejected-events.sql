-- Mailjet events that can never be applied (not an event object, a required field missing or of
-- the wrong type, a NUL character or an unpaired surrogate, nesting or size beyond the limits), and
-- callback bodies that are not JSON at all. They are kept here, with the reason, instead of being
-- dropped: POST /events answers 200 for them (Mailjet would otherwise retry them for a day), and an
-- operator can still read what was received.
create table rejected_events (
  id bigint generated always as identity,
  -- SHA-256 of the element's full source text: a retried callback (or a repeated element) is stored once.
  dedupe_key text not null,
  -- Position of the element in its callback body; null for a body that is not JSON.
  position integer,
  -- What was wrong, by kind (counted in jetpost_events_rejected_total), and in words.
  kind text not null,
  reason text not null,
  -- The element's source text, with NUL and unpaired surrogates written as \uXXXX escapes so that
  -- the row can always be stored, cut to its first 8,192 characters.
  source text not null,
  source_length integer not null,
  received_at timestamptz not null default now(),
  constraint rejected_events_pkey primary key (id),
  constraint rejected_events_dedupe_key_key unique (dedupe_key),
  constraint rejected_events_kind_check check (kind in ('not-json', 'too-deep', 'too-large', 'unstorable-text', 'not-an-object', 'invalid')),
  constraint rejected_events_source_check check (length(source) <= 8192 and length(reason) <= 2000)
);

create index rejected_events_received_at_idx
  on rejected_events (received_at);
