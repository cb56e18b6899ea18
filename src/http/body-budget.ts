// POST /events: the callback bodies read and processed at once hold a process-wide budget of bytes
// (EVENTS_BODY_BUDGET), so that concurrent large callbacks cannot together exhaust the memory (four
// 30 MB callbacks at once peaked a process at 461 MiB, 324 MiB with the default budget). Placed
// after the credentials and the rate limit, before the body is read: a callback reserves its stated
// Content-Length, or the body limit when its length is unknown (chunked, compressed), and gives it
// back when its answer is finished or its connection closed, whatever the outcome.
//
// When the budget is full, a callback waits its turn (FIFO, domain/byte-budget.ts) for at most
// EVENTS_BODY_WAIT_MS (10 s by default), then is answered 503 with Retry-After. Waiting costs only a socket (the body
// stays in the kernel's buffers, unread), and it lets a burst of large callbacks, which Mailjet
// sends together after an outage, be stored one after another within seconds instead of being
// refused and each retried 30 s later. The bound keeps it short of a client's timeout and keeps
// waiting connections from piling up; a refused callback loses nothing (Mailjet retries it).
import type { IncomingHttpHeaders } from 'node:http';

import type { RequestHandler } from 'express';

import type { ByteBudget } from '../domain/byte-budget.js';
import { ServiceUnavailableError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { statedLength } from './declared-body.js';

/** A wait from which on an admitted callback is logged: the budget is then too small for the load. */
const LONG_WAIT_MS = 1_000;
/** Mailjet retries every 30 s whatever it is told; other callers are told the same. */
const RETRY_AFTER_S = 30;

export interface BodyBudgetOptions {
  budget: ByteBudget;
  /** The body limit, in bytes: what a body of unknown length may reach. */
  limit: number;
  /** How long a callback may wait for room before it is refused (EVENTS_BODY_WAIT_MS). */
  waitMs: number;
  log: Logger;
  /** A callback that had to wait: admitted in the end, or refused (metrics). */
  onWaited?: (wait: { outcome: 'admitted' | 'refused'; waitedMs: number }) => void;
}

/** The bytes a request's body may take: its stated length (up to the limit, above which it is refused unread), else the limit. */
export function reservedBytes(headers: IncomingHttpHeaders, limit: number): number {
  const length = statedLength(headers);
  return length === undefined ? limit : Math.min(length, limit);
}

export function bodyBudget({ budget, limit, waitMs, log, onWaited }: BodyBudgetOptions): RequestHandler {
  return (req, res, next) => {
    // The client may have left during the checks before (they await the database): its 'close' has
    // then been emitted already, and a reservation made now would never be given back.
    if (res.closed) {
      return;
    }
    const bytes = reservedBytes(req.headers, limit);
    const started = performance.now();
    const reservation = budget.reserve(bytes, () => {
      clearTimeout(timer);
      const waitedMs = Math.round(performance.now() - started);
      if (waitedMs >= LONG_WAIT_MS) {
        log.info('a callback waited for room in EVENTS_BODY_BUDGET', { component: 'events', bytes, waitedMs, waiting: budget.waiting() });
      }
      onWaited?.({ outcome: 'admitted', waitedMs });
      // Granted from within another request's release: go on in a turn of its own.
      setImmediate(next);
    });
    if (reservation.granted) {
      res.once('close', () => reservation.release());
      next();
      return;
    }
    // Whatever ends the request (answer sent, error answered, client gone) gives the bytes back.
    res.once('close', () => {
      clearTimeout(timer);
      reservation.release();
    });
    const timer = setTimeout(() => {
      reservation.release();
      const waitedMs = Math.round(performance.now() - started);
      log.warn('a callback was refused (503): EVENTS_BODY_BUDGET stayed full', {
        component: 'events',
        bytes,
        inUseBytes: budget.inUse(),
        waiting: budget.waiting(),
        waitedMs,
      });
      onWaited?.({ outcome: 'refused', waitedMs });
      next(
        new ServiceUnavailableError('too many large callbacks are in progress: retry later (nothing was read or stored)', {
          headers: { 'Retry-After': String(RETRY_AFTER_S) },
        }),
      );
    }, waitMs);
  };
}
