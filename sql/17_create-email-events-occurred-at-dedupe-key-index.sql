-- postgres-migrations disable-transaction
-- A repeat of a Mailjet event is found by its dedupe key, a hash: keyed by it alone, each new event
-- goes to a random leaf of an index as large as the whole history, which in a long history is not in
-- memory. The key hashes the event's time, so a repeat also has the same occurred_at: led by it, the
-- index finds the same repeats while new events (which happened lately) all go to its last few
-- leaves. Built concurrently: every callback writes this table. The old unique key goes in 18_….
create unique index concurrently email_events_occurred_at_dedupe_key_idx
  on email_events (occurred_at, dedupe_key);
