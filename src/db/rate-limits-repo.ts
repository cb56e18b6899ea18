// rate_limits: fixed-window request counters shared by every replica.
import { type PreparedStatement, query, type Queryable } from './pool.js';

// One statement counts the hits of many keys (each key once, with its number of hits) and starts a
// new window for a key whose old one is over. In key order: concurrent statements never deadlock.
// Prepared once per connection: it runs for every batch of requests. Its commit does not wait for
// the WAL flush (synchronous_commit off for its transaction alone): a request waits for one flush,
// its messages', not two; a database crash may forget the last moment's hits, which only a rate
// limit counts, never a message.
const HIT_MANY_TEXT = `
  insert into rate_limits (key, hits, reset_at)
  select h.key, h.hits, now() + make_interval(secs => h.window_ms::double precision / 1000)
  from unnest($1::text[], $2::int[], $3::int[]) as h(key, hits, window_ms),
    (select set_config('synchronous_commit', 'off', true)) as asynchronous_commit
  order by h.key
  on conflict (key) do update
    set hits = case when rate_limits.reset_at <= now() then excluded.hits else rate_limits.hits + excluded.hits end,
      reset_at = case when rate_limits.reset_at <= now() then excluded.reset_at else rate_limits.reset_at end
  returning key, hits, extract(epoch from reset_at - now())::float8 * 1000 as reset_in_ms`;
const HIT_MANY: PreparedStatement = { name: 'rate_limits_hit', text: HIT_MANY_TEXT };

export interface HitsToCount {
  key: string;
  hits: number;
  windowMs: number;
}

/**
 * Counts hits of distinct keys; returns each key's hits in its window after them, and how long until
 * the window ends, in ms, on the database's clock (this host's may be set apart from it).
 */
export async function countHits(db: Queryable, counts: readonly HitsToCount[]): Promise<Map<string, { hits: number; resetInMs: number }>> {
  const rows = await query(db, HIT_MANY, [counts.map((c) => c.key), counts.map((c) => c.hits), counts.map((c) => c.windowMs)]);
  return new Map(rows.map((row) => [String(row['key']), { hits: Number(row['hits']), resetInMs: Number(row['reset_in_ms']) }]));
}

const DELETE_EXPIRED = `
  delete from rate_limits
  where reset_at < now() - interval '1 minute'`;

export async function deleteExpiredWindows(db: Queryable): Promise<number> {
  const result = await db.query(DELETE_EXPIRED);
  return result.rowCount ?? 0;
}
