// idempotency_keys: one row per (app, Idempotency-Key), holding the request's hashes and its jobs.
import type { StoredRequestHashes } from '../domain/request-hash.js';
import { query, type Queryable } from './pool.js';

export interface IdempotencyRecord extends StoredRequestHashes {
  jobIds: string[];
}

export interface IdempotencyClaim extends StoredRequestHashes {
  appId: string;
  key: string;
}

// In key order, so that two transactions claiming overlapping keys wait on each other instead of deadlocking.
const CLAIM_KEYS = `
  insert into idempotency_keys (app_id, key, request_hash, sorted_request_hash, job_ids)
  select c.app_id, c.key, c.request_hash, c.sorted_request_hash, '{}'
  from unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) as c(app_id, key, request_hash, sorted_request_hash)
  order by c.app_id, c.key
  on conflict (app_id, key) do nothing
  returning app_id::text, key`;

// jobs_gone: retention deleted some of the key's jobs. It deletes them in the same pass as the
// keys, just before: such a key is past its retention too, only not deleted yet.
const FIND_KEYS = `
  select i.app_id::text, i.key, i.request_hash, i.sorted_request_hash, i.job_ids::text[] as job_ids,
    exists (
      select 1
      from unnest(i.job_ids) as kept(id)
      where not exists (select 1 from email_send_jobs j where j.id = kept.id)
    ) as jobs_gone
  from idempotency_keys i
  join unnest($1::bigint[], $2::text[]) as c(app_id, key) on i.app_id = c.app_id and i.key = c.key`;

// Only while the key still holds the jobs that are gone: a request that claimed it again first
// changed them, and this one waits for it to commit and then finds them changed.
const RECLAIM_KEYS = `
  update idempotency_keys i
  set request_hash = c.request_hash, sorted_request_hash = c.sorted_request_hash, job_ids = '{}', created_at = now()
  from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) as c(app_id, key, request_hash, sorted_request_hash, job_ids)
  where i.app_id = c.app_id
    and i.key = c.key
    and i.job_ids = string_to_array(c.job_ids, ',')::bigint[]
  returning i.app_id::text, i.key`;

/** How the records are keyed: `${appId}:${key}`. */
const claimKey = (claim: { appId: string; key: string }) => `${claim.appId}:${claim.key}`;
const rowKey = (row: Record<string, unknown>) => claimKey({ appId: String(row['app_id']), key: String(row['key']) });

/** The records of these (app, key) pairs, by `${appId}:${key}`, with whether retention deleted some of their jobs. */
export async function findIdempotencyKeys(
  tx: Queryable,
  claims: ReadonlyArray<{ appId: string; key: string }>,
): Promise<Map<string, IdempotencyRecord & { jobsGone: boolean }>> {
  const rows = await query(tx, FIND_KEYS, [claims.map((c) => c.appId), claims.map((c) => c.key)]);
  return new Map(
    rows.map((row) => [
      rowKey(row),
      {
        requestHash: String(row['request_hash']),
        sortedRequestHash: (row['sorted_request_hash'] as string | null) ?? null,
        jobIds: row['job_ids'] as string[],
        jobsGone: row['jobs_gone'] === true,
      },
    ]),
  );
}

/**
 * claimIdempotencyKey for many (app, key) pairs, each at most once: the record of each key that
 * another request took first, by `${appId}:${key}` (a claimed key has none). A key whose jobs
 * retention deleted is claimed again, as for a new request: its request is past retention, and a
 * replay would have no job to answer with.
 */
export async function claimIdempotencyKeys(tx: Queryable, claims: readonly IdempotencyClaim[]): Promise<Map<string, IdempotencyRecord>> {
  const claimed = await query(tx, CLAIM_KEYS, [
    claims.map((c) => c.appId),
    claims.map((c) => c.key),
    claims.map((c) => c.requestHash),
    claims.map((c) => c.sortedRequestHash),
  ]);
  const taken = new Set(claimed.map(rowKey));
  const others = claims.filter((c) => !taken.has(claimKey(c)));
  if (others.length === 0) {
    return new Map();
  }
  const records = await findIdempotencyKeys(tx, others);
  const stale = others.filter((c) => records.get(claimKey(c))?.jobsGone === true);
  if (stale.length === 0) {
    return records;
  }
  const reclaimed = await query(tx, RECLAIM_KEYS, [
    stale.map((c) => c.appId),
    stale.map((c) => c.key),
    stale.map((c) => c.requestHash),
    stale.map((c) => c.sortedRequestHash),
    stale.map((c) => records.get(claimKey(c))!.jobIds.join(',')),
  ]);
  for (const row of reclaimed) {
    records.delete(rowKey(row));
  }
  // Claimed again by another request meanwhile: its record now, with jobs just stored.
  const lost = stale.filter((c) => records.has(claimKey(c)));
  if (lost.length > 0) {
    for (const [key, record] of await findIdempotencyKeys(tx, lost)) {
      records.set(key, record);
    }
  }
  return records;
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
