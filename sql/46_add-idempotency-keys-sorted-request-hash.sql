-- The hash of a request with the keys of its free-form objects (metadata, variables, headers)
-- sorted, so that a retry whose JSON library orders them otherwise is known as the same request
-- (domain/request-hash.ts). Null when it equals request_hash (the keys were in order), and in the
-- rows of earlier releases, which go on writing request_hash alone during a rolling upgrade: the
-- hash as sent, which every release compares. Nullable, no default: a catalogue change.
alter table idempotency_keys
  add column sorted_request_hash text;
