// Request rate limits with express-rate-limit, counted in PostgreSQL so that every replica shares
// them: per app on POST /queue, per source address on POST /events. Answers 429 problem+json with
// RateLimit/RateLimit-Policy headers (IETF draft 8) and Retry-After.
import type { RequestHandler } from 'express';
import { rateLimit, type Store } from 'express-rate-limit';

import type { Pool } from '../db/pool.js';
import { countHit, deleteExpiredWindows, findHits, resetHits, uncountHit } from '../db/rate-limits-repo.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

const WINDOW_MS = 60_000;

export function postgresStore(pool: Pool, prefix: string, log: Logger): Store {
  let windowMs = WINDOW_MS;
  const key = (client: string) => `${prefix}:${client}`;
  return {
    prefix,
    localKeys: false,
    init(options) {
      windowMs = options.windowMs;
      // Old windows are removed now and then; a missed pass only leaves a few dead rows.
      setInterval(() => {
        deleteExpiredWindows(pool).catch((error: unknown) =>
          log.debug('could not delete expired rate-limit windows', { component: 'rate-limit', error: (error as Error).message }),
        );
      }, Math.max(windowMs, 60_000)).unref();
    },
    async get(client) {
      const found = await findHits(pool, key(client));
      return found && { totalHits: found.hits, resetTime: found.resetAt };
    },
    async increment(client) {
      const { hits, resetAt } = await countHit(pool, key(client), windowMs);
      return { totalHits: hits, resetTime: resetAt };
    },
    async decrement(client) {
      await uncountHit(pool, key(client));
    },
    async resetKey(client) {
      await resetHits(pool, key(client));
    },
  };
}

export interface LimitOptions {
  log: Logger;
  /** Requests per minute; 0 turns the limit off. */
  perMinute: number;
  store: Store;
  /** Who is counted: default is the source address. */
  keyOf?: (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1]) => string;
  what: string;
}

export function limitRequests({ perMinute, store, keyOf, what, log }: LimitOptions): RequestHandler {
  if (perMinute <= 0) {
    return (_req, _res, next) => next();
  }
  return rateLimit({
    windowMs: WINDOW_MS,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    store,
    // When the database is away the route itself answers 503; the limiter must not turn that into a 500.
    passOnStoreError: true,
    // The proxy set-up is TRUST_PROXY's business (README); no console warnings from the library.
    validate: { xForwardedForHeader: false },
    ...(keyOf ? { keyGenerator: keyOf } : {}),
    logger: {
      error: (error, message) => log.warn(message ?? 'rate limit store error', { component: 'rate-limit', error: (error as Error)?.message ?? String(error) }),
      warn: (error, message) => log.warn(message ?? 'rate limit warning', { component: 'rate-limit', error: (error as Error)?.message ?? String(error) }),
    },
    handler: (req, res, next) => {
      const resetTime = (req as unknown as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = Math.max(1, Math.ceil(((resetTime?.getTime() ?? Date.now() + WINDOW_MS) - Date.now()) / 1000));
      res.setHeader('Retry-After', String(seconds));
      next(new AppError('rate-limited', 429, `too many requests ${what}: at most ${perMinute} per minute; retry in ${seconds} s`));
    },
  });
}
