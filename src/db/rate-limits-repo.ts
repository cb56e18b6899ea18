// rate_limits: fixed-window request counters shared by every replica.
import { query, type Queryable } from './pool.js';

// One statement counts the hit and starts a new window when the old one is over.
const HIT = `
  insert into rate_limits (key, hits, reset_at)
  values ($1, 1, now() + make_interval(secs => $2::double precision / 1000))
  on conflict (key) do update
    set hits = case when rate_limits.reset_at <= now() then 1 else rate_limits.hits + 1 end,
      reset_at = case when rate_limits.reset_at <= now() then excluded.reset_at else rate_limits.reset_at end
  returning hits, reset_at`;

export async function countHit(db: Queryable, key: string, windowMs: number): Promise<{ hits: number; resetAt: Date }> {
  const [row] = await query(db, HIT, [key, windowMs]);
  return { hits: Number(row!['hits']), resetAt: row!['reset_at'] as Date };
}

const FIND = `
  select hits, reset_at
  from rate_limits
  where key = $1
    and reset_at > now()`;

export async function findHits(db: Queryable, key: string): Promise<{ hits: number; resetAt: Date } | undefined> {
  const [row] = await query(db, FIND, [key]);
  return row && { hits: Number(row['hits']), resetAt: row['reset_at'] as Date };
}

const UNCOUNT = `
  update rate_limits
  set hits = greatest(hits - 1, 0)
  where key = $1`;

export async function uncountHit(db: Queryable, key: string): Promise<void> {
  await query(db, UNCOUNT, [key]);
}

const RESET = `
  delete from rate_limits
  where key = $1`;

export async function resetHits(db: Queryable, key: string): Promise<void> {
  await query(db, RESET, [key]);
}

const DELETE_EXPIRED = `
  delete from rate_limits
  where reset_at < now() - interval '1 minute'`;

export async function deleteExpiredWindows(db: Queryable): Promise<number> {
  const result = await db.query(DELETE_EXPIRED);
  return result.rowCount ?? 0;
}
