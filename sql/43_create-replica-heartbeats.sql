-- Replicas started with different settings on one database (another MAX_ATTEMPTS, retention, rate
-- limit, Mailjet key or callback password) behaved inconsistently and nobody was told. Each process
-- writes its row here at start and every few seconds, with a fingerprint of each setting that must
-- agree across replicas (secrets as hashes, never in clear: domain/replica-settings.ts), reads the
-- rows of the others still beating, and warns of each difference (services/replica-settings.ts).
-- A stopped process deletes its row; one killed leaves it until it stops beating and is deleted by
-- the next process that beats.
create table replica_heartbeats (
  replica_id uuid not null,
  host text not null,
  pid integer not null,
  started_at timestamptz not null,
  seen_at timestamptz not null,
  settings jsonb not null,
  constraint replica_heartbeats_pkey primary key (replica_id)
);
