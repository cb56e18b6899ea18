// rejected_events: Mailjet events (and callback bodies) that can never be applied, kept with the reason.
import type { RejectionKind } from '../domain/event-parse.js';
import type { Queryable } from './pool.js';

export interface RejectedEventRow {
  /** SHA-256 of the full source text (of the event's dedupe key, for an event kept aside for its address): a repeat is stored once. */
  dedupeKey: string;
  /** Null for a body that is not JSON. */
  position: number | null;
  kind: RejectionKind;
  /** At most 2,000 characters, storable (no NUL, no unpaired surrogate). */
  reason: string;
  /** At most 8,192 characters, storable. */
  source: string;
  sourceLength: number;
}

const INSERT_REJECTED = `
  insert into rejected_events (dedupe_key, position, kind, reason, source, source_length)
  select r.dedupe_key, r.position, r.kind, r.reason, r.source, r.source_length
  from unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::int[])
    as r(dedupe_key, position, kind, reason, source, source_length)
  on conflict (dedupe_key) do nothing`;

/** Stores rejected elements; returns how many were new. */
export async function insertRejectedEvents(db: Queryable, rows: readonly RejectedEventRow[]): Promise<number> {
  if (rows.length === 0) {
    return 0;
  }
  const result = await db.query(INSERT_REJECTED, [
    rows.map((r) => r.dedupeKey),
    rows.map((r) => r.position),
    rows.map((r) => r.kind),
    rows.map((r) => r.reason),
    rows.map((r) => r.source),
    rows.map((r) => r.sourceLength),
  ]);
  return result.rowCount ?? 0;
}

// Retention: up to `$2` rows received more than `$1` ms ago, oldest first (rejected_events_received_at_idx).
const PRUNE_REJECTED = `
  delete from rejected_events
  where id in (
    select id
    from rejected_events
    where received_at < now() - make_interval(secs => $1::double precision / 1000)
    order by received_at
    limit $2)`;

/** Deletes up to `limit` rows older than `retentionMs`; returns how many. */
export async function pruneRejectedEvents(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  return (await db.query(PRUNE_REJECTED, [retentionMs, limit])).rowCount ?? 0;
}
