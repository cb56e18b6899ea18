// idempotency_keys: one row per (app, Idempotency-Key), holding the request's hash and its jobs.
import { query, type Queryable } from './pool.js';

export interface IdempotencyRecord {
  requestHash: string;
  jobIds: string[];
}

export interface IdempotencyClaim {
  appId: string;
  key: string;
  requestHash: string;
}

// In key order, so that two transactions claiming overlapping keys wait on each other instead of deadlocking.
const CLAIM_KEYS = `
  insert into idempotency_keys (app_id, key, request_hash, job_ids)
  select c.app_id, c.key, c.request_hash, '{}'
  from unnest($1::bigint[], $2::text[], $3::text[]) as c(app_id, key, request_hash)
  order by c.app_id, c.key
  on conflict (app_id, key) do nothing
  returning app_id::text, key`;

const FIND_KEYS = `
  select i.app_id::text, i.key, i.request_hash, i.job_ids::text[] as job_ids
  from idempotency_keys i
  join unnest($1::bigint[], $2::text[]) as c(app_id, key) on i.app_id = c.app_id and i.key = c.key`;

/**
 * claimIdempotencyKey for many (app, key) pairs, each at most once: the record of each key that
 * another request took first, by `${appId}:${key}` (a claimed key has none).
 */
export async function claimIdempotencyKeys(tx: Queryable, claims: readonly IdempotencyClaim[]): Promise<Map<string, IdempotencyRecord>> {
  const claimed = await query(tx, CLAIM_KEYS, [claims.map((c) => c.appId), claims.map((c) => c.key), claims.map((c) => c.requestHash)]);
  const taken = new Set(claimed.map((row) => `${String(row['app_id'])}:${String(row['key'])}`));
  const others = claims.filter((c) => !taken.has(`${c.appId}:${c.key}`));
  if (others.length === 0) {
    return new Map();
  }
  const rows = await query(tx, FIND_KEYS, [others.map((c) => c.appId), others.map((c) => c.key)]);
  return new Map(
    rows.map((row) => [`${String(row['app_id'])}:${String(row['key'])}`, { requestHash: String(row['request_hash']), jobIds: row['job_ids'] as string[] }]),
  );
}

const SET_MANY_JOB_IDS = `
  update idempotency_keys i
  set job_ids = string_to_array(c.job_ids, ',')::bigint[]
  from unnest($1::bigint[], $2::text[], $3::text[]) as c(app_id, key, job_ids)
  where i.app_id = c.app_id
    and i.key = c.key`;

/** setIdempotencyJobIds for many keys in one statement. */
export async function setManyIdempotencyJobIds(
  tx: Queryable,
  entries: ReadonlyArray<{ appId: string; key: string; jobIds: readonly string[] }>,
): Promise<void> {
  // A two-dimensional array cannot be ragged: each key's ids travel as one comma-separated text.
  await query(tx, SET_MANY_JOB_IDS, [entries.map((e) => e.appId), entries.map((e) => e.key), entries.map((e) => e.jobIds.join(','))]);
}

// Retention: up to `$2` keys older than `$1` ms, oldest first (idempotency_keys_created_at_idx).
const PRUNE_KEYS = `
  delete from idempotency_keys k
  using (
    select app_id, key
    from idempotency_keys
    where created_at < now() - make_interval(secs => $1::double precision / 1000)
    order by created_at
    limit $2
    for update skip locked
  ) old
  where k.app_id = old.app_id
    and k.key = old.key`;

/** Deletes up to `limit` keys older than `retentionMs`; returns how many. */
export async function pruneIdempotencyKeys(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  return (await db.query(PRUNE_KEYS, [retentionMs, limit])).rowCount ?? 0;
}
