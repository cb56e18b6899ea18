// Request counters shared by every replica (rate_limits): fixed windows, counted in PostgreSQL.
// Hits that arrive together are counted in one statement (a group commit): each request still
// learns its own exact count, as if the hits had been counted one after the other.
import type { Pool } from '../db/pool.js';
import { countHits, deleteExpiredWindows } from '../db/rate-limits-repo.js';
import { createGroupCommit } from './group-commit.js';

export interface HitCount {
  hits: number;
  /** How long until the window ends, in ms (the database's clock counts it: this host's may be set apart). */
  resetInMs: number;
}

export interface RateLimitCounters {
  /** Counts a hit of `key` in its window (a new window when the old one is over). */
  hit(key: string, windowMs: number): Promise<HitCount>;
  /** Removes windows long over; returns how many. */
  deleteExpired(): Promise<number>;
}

interface Hit {
  key: string;
  windowMs: number;
}

/** Hits counted in one statement at most (a bound on its size; it holds one row per key). */
const MAX_HITS_PER_STATEMENT = 1000;

async function countTogether(pool: Pool, hits: readonly Hit[]): Promise<HitCount[]> {
  const byKey = new Map<string, { hits: number; windowMs: number }>();
  for (const hit of hits) {
    const counted = byKey.get(hit.key);
    byKey.set(hit.key, { hits: (counted?.hits ?? 0) + 1, windowMs: hit.windowMs });
  }
  const totals = await countHits(
    pool,
    [...byKey].map(([key, counted]) => ({ key, ...counted })),
  );
  // The n hits of a key end at its total: the first of them is the total - n + 1, as if one at a time.
  const seen = new Map<string, number>();
  return hits.map((hit) => {
    const total = totals.get(hit.key)!;
    const before = seen.get(hit.key) ?? 0;
    seen.set(hit.key, before + 1);
    return { hits: total.hits - byKey.get(hit.key)!.hits + before + 1, resetInMs: total.resetInMs };
  });
}

export function createRateLimitCounters(pool: Pool): RateLimitCounters {
  const hit = createGroupCommit<Hit, HitCount>({
    write: (hits) => countTogether(pool, hits),
    weight: () => 1,
    maxWeight: MAX_HITS_PER_STATEMENT,
    maxInFlight: 2,
  });
  return {
    hit: (key, windowMs) => hit({ key, windowMs }),
    deleteExpired: () => deleteExpiredWindows(pool),
  };
}
