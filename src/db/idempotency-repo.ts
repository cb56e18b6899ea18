// idempotency_keys: one row per (app, Idempotency-Key), holding the request's hash and its jobs.
import { query, type Queryable } from './pool.js';

export interface IdempotencyRecord {
  requestHash: string;
  jobIds: string[];
}

const CLAIM_KEY = `
  insert into idempotency_keys (app_id, key, request_hash, job_ids)
  values ($1::bigint, $2, $3, '{}')
  on conflict (app_id, key) do nothing
  returning key`;

const FIND_KEY = `
  select request_hash, job_ids::text[] as job_ids
  from idempotency_keys
  where app_id = $1::bigint
    and key = $2`;

/**
 * Takes the key for this request, or returns the request that took it first. A concurrent request
 * with the same key waits on the primary key until the first one commits, then sees its record.
 */
export async function claimIdempotencyKey(
  tx: Queryable,
  appId: string,
  key: string,
  requestHash: string,
): Promise<{ claimed: true } | { claimed: false; existing: IdempotencyRecord }> {
  const inserted = await query(tx, CLAIM_KEY, [appId, key, requestHash]);
  if (inserted.length > 0) {
    return { claimed: true };
  }
  const [row] = await query(tx, FIND_KEY, [appId, key]);
  return { claimed: false, existing: { requestHash: String(row!['request_hash']), jobIds: row!['job_ids'] as string[] } };
}

const SET_JOB_IDS = `
  update idempotency_keys
  set job_ids = $3::bigint[]
  where app_id = $1::bigint
    and key = $2`;

export async function setIdempotencyJobIds(tx: Queryable, appId: string, key: string, jobIds: readonly string[]): Promise<void> {
  await query(tx, SET_JOB_IDS, [appId, key, jobIds]);
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
