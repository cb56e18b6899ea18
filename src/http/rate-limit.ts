// Request rate limits. The budgets of callers who proved who they are (per app on POST /queue, the
// callback's credentials on POST /events) are counted in PostgreSQL, so that every replica shares
// them, and announced with RateLimit/RateLimit-Policy headers (IETF draft 8). Failed credentials
// are counted apart, in this process's memory, so that they never spend a genuine caller's budget
// nor write to the database. Nothing is keyed by a value a caller can forge at will (such as an
// X-Forwarded-For address) without the keys being folded into a fixed number of counters. Above a
// limit the answer is 429 problem+json with Retry-After.
import { createHash } from 'node:crypto';

import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';

import { AppError } from '../domain/errors.js';
import type { RateLimitCounters } from '../services/rate-limits.js';

const WINDOW_MS = 60_000;

export interface SharedLimitOptions {
  /** Where hits are counted: PostgreSQL, shared by every replica. */
  counters: RateLimitCounters;
  /** Keeps the counters of this limit apart from the others' (`${prefix}:${key}`). */
  prefix: string;
  /** Requests per minute; 0 turns the limit off. */
  perMinute: number;
  /** Who is counted. */
  keyOf: (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1]) => string;
  what: string;
}

/** Partition keys announced in RateLimit-Policy kept at most (a bound: a service has few apps). */
const MAX_PARTITION_KEYS = 10_000;

/**
 * A limit counted in PostgreSQL (services/rate-limits.ts), so that every replica shares it: each
 * request is one hit, announced with the RateLimit and RateLimit-Policy headers express-rate-limit
 * writes for draft 8 (same names, same partition keys), and above the limit a 429 with Retry-After.
 * Written here rather than through express-rate-limit, whose per-request bookkeeping (its checks,
 * debug calls and a hash of the key on every answer) cost more than the count on POST /queue.
 */
export function limitShared({ counters, prefix, perMinute, keyOf, what }: SharedLimitOptions): RequestHandler {
  if (perMinute <= 0) {
    return (_req, _res, next) => next();
  }
  const name = `"${perMinute}-in-${WINDOW_MS / 60_000}min"`;
  const policyPrefix = `${name}; q=${perMinute}; w=${WINDOW_MS / 1000}; pk=:`;
  const policies = new Map<string, string>();
  const policyOf = (key: string): string => {
    let policy = policies.get(key);
    if (policy === undefined) {
      if (policies.size >= MAX_PARTITION_KEYS) {
        policies.clear();
      }
      // express-rate-limit's partition key: the first 12 hex digits of the key's SHA-256, in base64.
      const partition = Buffer.from(createHash('sha256').update(key).digest('hex').slice(0, 12)).toString('base64');
      policy = `${policyPrefix}${partition}:`;
      policies.set(key, policy);
    }
    return policy;
  };
  return (req, res, next) => {
    const key = keyOf(req, res);
    counters.hit(`${prefix}:${key}`, WINDOW_MS).then(({ hits, resetInMs }) => {
      const secondsLeft = Math.ceil(resetInMs / 1000);
      res.setHeader('RateLimit', `${name}; r=${Math.max(perMinute - hits, 0)}; t=${Math.max(0, secondsLeft)}`);
      res.setHeader('RateLimit-Policy', policyOf(key));
      if (hits <= perMinute) {
        next();
        return;
      }
      const seconds = Math.max(1, secondsLeft);
      res.setHeader('Retry-After', String(seconds));
      next(new AppError('rate-limited', 429, `too many requests ${what}: at most ${perMinute} per minute; retry in ${seconds} s`));
      // A counting error goes to the error handler: a database that is away is a 503 at once, not
      // after the route's own wait (POST /queue may need no other database call before its insert).
    }, next);
  };
}

/** Source addresses fold into this many keys: a stream of forged addresses cannot grow a store. */
const SOURCE_BUCKETS = 1024;

/**
 * A key for the request's source address (IPv6 by its /56 network, as express-rate-limit does),
 * folded into SOURCE_BUCKETS buckets. Behind a proxy the address is what TRUST_PROXY lets express
 * read from X-Forwarded-For, which a client may forge when every hop is trusted: folding bounds what
 * forged values can cost, and only failed requests are ever counted this way.
 */
export function sourceBucket(address: string | undefined): string {
  const network = ipKeyGenerator(address ?? 'unknown');
  const bucket = createHash('sha256').update(network).digest().readUInt32BE(0) % SOURCE_BUCKETS;
  return `bucket-${bucket}`;
}

/**
 * Counts per key in windows of a minute, in this process's memory. The windows run on the monotonic
 * clock: a step of the wall clock (an NTP correction, `date -s`) by an hour neither lifts a limit
 * early nor holds one, and its Retry-After, for the hour. The keys are few (folded source buckets).
 */
function minuteWindows(): (key: string) => { hits: number; endsAt: number } {
  const windows = new Map<string, { hits: number; endsAt: number }>();
  return (key) => {
    const now = performance.now();
    let window = windows.get(key);
    if (window === undefined || window.endsAt <= now) {
      window = { hits: 0, endsAt: now + WINDOW_MS };
      windows.set(key, window);
    }
    return window;
  };
}

/** Each request is a hit on its key's window; past `perMinute` in the window, a 429. */
function limitInMemory({ perMinute, keyOf, what }: { perMinute: number; keyOf: (req: Request) => string; what: string }): RequestHandler {
  const windowOf = minuteWindows();
  return (req, res, next) => {
    const window = windowOf(keyOf(req));
    window.hits += 1;
    next(window.hits <= perMinute ? undefined : tooManyRequests(res, { what, perMinute, endsAt: window.endsAt }));
  };
}

/** The 429 of a limit counted in memory, with the Retry-After of the window's end (performance.now() ms). */
function tooManyRequests(res: Response, { what, perMinute, endsAt }: { what: string; perMinute: number; endsAt: number }): AppError {
  const seconds = Math.max(1, Math.ceil((endsAt - performance.now()) / 1000));
  res.setHeader('Retry-After', String(seconds));
  return new AppError('rate-limited', 429, `too many requests ${what}: at most ${perMinute} per minute; retry in ${seconds} s`);
}

/** Failed /events credentials per minute, per source address (folded into buckets) and from all sources. */
export const CALLBACK_AUTH_FAILURES = { perSource: 100, total: 1000 } as const;

/**
 * Wrong /events credentials, counted in this process's memory (an unauthenticated request never
 * writes to the database): past the per-source or the overall limit, a failure is a 429 instead of a
 * 401. Forged X-Forwarded-For values spread over the source buckets but not past the overall limit.
 */
export function limitFailedCallbackAuth(): RequestHandler {
  const total = limitInMemory({ perMinute: CALLBACK_AUTH_FAILURES.total, keyOf: () => 'all', what: 'with wrong credentials' });
  const perSource = limitInMemory({
    perMinute: CALLBACK_AUTH_FAILURES.perSource,
    // The address express derives, TRUST_PROXY permitting (sourceBucket folds it, IPv6 by network).
    keyOf: ({ ip }) => sourceBucket(ip),
    what: 'with wrong credentials from this address',
  });
  return (req, res, next) => {
    total(req, res, (error?: unknown) => (error ? next(error) : perSource(req, res, next)));
  };
}

/** The count of wrong admin keys per source address (limitWrongAdminKeys). */
export interface WrongAdminKeys {
  /** Past the limit, a 429 for the request, before its key is compared. */
  readonly guard: RequestHandler;
  /** Counts a wrong or missing key given from the request's address. */
  readonly count: (req: Request) => void;
}

/**
 * Wrong admin keys per minute (ADMIN_KEY_FAILURE_LIMIT), at the dashboard's login and the admin API
 * together, counted per source address (folded into SOURCE_BUCKETS) in this process's memory, as
 * for /events. Past the limit every request from the address is refused before its key is compared,
 * the right one too: a 429 for a wrong key and a success for the right one would let guessing go on.
 * Only a key found wrong (or missing) is counted, when it is compared: a request with the right key
 * never is, whatever becomes of it (a 404, a 400, a client that hangs up before its answer, which
 * counting on arrival and giving back on a good answer would have counted). One instance serves both
 * doors, so a guesser gets the limit once.
 */
export function limitWrongAdminKeys(perMinute: number): WrongAdminKeys {
  const what = 'with a wrong admin key from this address';
  /** Per source bucket: the wrong keys of its minute. */
  const windowOf = minuteWindows();
  if (perMinute <= 0) {
    return { guard: (_req, _res, next) => next(), count: () => {} };
  }
  return {
    guard: (req, res, next) => {
      const window = windowOf(sourceBucket(req.ip));
      next(window.hits < perMinute ? undefined : tooManyRequests(res, { what, perMinute, endsAt: window.endsAt }));
    },
    count: (req) => {
      windowOf(sourceBucket(req.ip)).hits += 1;
    },
  };
}
