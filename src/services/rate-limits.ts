// Request counters shared by every replica (rate_limits): fixed windows, counted in PostgreSQL.
import type { Pool } from '../db/pool.js';
import { countHit, deleteExpiredWindows, findHits, resetHits, uncountHit } from '../db/rate-limits-repo.js';

export interface HitCount {
  hits: number;
  resetAt: Date;
}

export interface RateLimitCounters {
  /** Counts a hit of `key` in its window (a new window when the old one is over). */
  hit(key: string, windowMs: number): Promise<HitCount>;
  /** The hits of `key` in its current window, if it has one. */
  find(key: string): Promise<HitCount | undefined>;
  uncount(key: string): Promise<void>;
  reset(key: string): Promise<void>;
  /** Removes windows long over; returns how many. */
  deleteExpired(): Promise<number>;
}

export function createRateLimitCounters(pool: Pool): RateLimitCounters {
  return {
    hit: (key, windowMs) => countHit(pool, key, windowMs),
    find: (key) => findHits(pool, key),
    uncount: (key) => uncountHit(pool, key),
    reset: (key) => resetHits(pool, key),
    deleteExpired: () => deleteExpiredWindows(pool),
  };
}
