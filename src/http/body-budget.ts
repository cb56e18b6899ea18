// POST /events: the callback bodies read and processed at once hold a process-wide budget of bytes
// (EVENTS_BODY_BUDGET), so that concurrent large callbacks cannot together exhaust the memory (four
// 30 MB callbacks at once peaked a process at 461 MiB, 324 MiB with the default budget). Placed
// after the credentials and the rate limit, around the body's reader: a callback reserves its stated
// Content-Length before its body is read, and gives it back when its answer is finished or its
// connection closed, whatever the outcome.
//
// A chunked body (Mailjet may send one) states no length: it reserves its first read's worth, then
// grows its reservation by each chunk as it arrives, ahead of the callbacks waiting (it is what will
// make room). Reserving the whole body limit for it instead, as before, let one chunked callback
// hold every other one off, however small it was. A chunked body that finds no room part-way is
// refused at once with the same 503 (waiting there could deadlock: two bodies each holding half the
// budget, each waiting for the other); nothing of it is stored, and its connection is closed, the
// rest of its body unread. A compressed body still reserves the whole limit: its size in memory is
// known only once inflated.
//
// When the budget is full, a callback waits its turn (FIFO, domain/byte-budget.ts) for at most
// EVENTS_BODY_WAIT_MS (10 s by default), then is answered 503 with Retry-After. Waiting costs only a socket (the body
// stays in the kernel's buffers, unread), and it lets a burst of large callbacks, which Mailjet
// sends together after an outage, be stored one after another within seconds instead of being
// refused and each retried 30 s later. The bound keeps it short of a client's timeout and keeps
// waiting connections from piling up; a refused callback loses nothing (Mailjet retries it).
import type { IncomingHttpHeaders } from 'node:http';

import type { Request, RequestHandler, Response } from 'express';

import type { ByteBudget, Reservation } from '../domain/byte-budget.js';
import { ServiceUnavailableError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { statedLength } from './declared-body.js';

/** A wait from which on an admitted callback is logged: the budget is then too small for the load. */
const LONG_WAIT_MS = 1_000;
/** Mailjet retries every 30 s whatever it is told; other callers are told the same. */
const RETRY_AFTER_S = 30;
/** What a chunked body reserves before it is read: one read from its socket (a small body is whole in it). */
const FIRST_CHUNK_BYTES = 64 * 1024;

export interface BodyBudgetOptions {
  budget: ByteBudget;
  /** The body limit, in bytes: what a body of unknown length may reach. */
  limit: number;
  /** How long a callback may wait for room before it is refused (EVENTS_BODY_WAIT_MS). */
  waitMs: number;
  log: Logger;
  /** A callback that found no room: admitted after waiting, refused after waiting, or refused part-way (chunked, at once) (metrics). */
  onWaited?: (wait: { outcome: 'admitted' | 'refused' | 'refused_part_way'; waitedMs: number }) => void;
}

/**
 * What a body reserves before it is read: its stated length (within the limit), 64 KiB when it is chunked (it then grows as it arrives), or, compressed, the limit.
 */
function firstBytes(headers: IncomingHttpHeaders, limit: number): number {
  const length = statedLength(headers);
  if (length !== undefined) {
    return length;
  }
  return isGrowing(headers) ? Math.min(FIRST_CHUNK_BYTES, limit) : limit;
}

/** Whether a body's bytes are counted as they arrive: chunked, not compressed. */
function isGrowing(headers: IncomingHttpHeaders): boolean {
  const encoding = headers['content-encoding'];
  return headers['transfer-encoding'] !== undefined && (encoding === undefined || encoding === 'identity');
}

function refusal(detail: string): ServiceUnavailableError {
  return new ServiceUnavailableError(detail, { headers: { 'Retry-After': String(RETRY_AFTER_S) } });
}

/** `read`, the body's parser, run once the body has room in the budget. */
export function bodyBudget({ budget, limit, waitMs, log, onWaited }: BodyBudgetOptions): (read: RequestHandler) => RequestHandler {
  /** Runs `read` on a body admitted with `reserved` bytes. */
  const readWithin = (req: Request, res: Response, next: (error?: unknown) => void, read: RequestHandler, reservation: Reservation, reserved: number): void => {
    if (isGrowing(req.headers)) {
      readGrowing(req, res, next, read, reservation, reserved);
    } else {
      read(req, res, next);
    }
  };

  /**
   * Runs `read` on a body of unknown length, growing `reservation` (which holds `reserved` bytes) by
   * each chunk past those as it arrives. A chunk that finds no room refuses the request: the body is
   * read no further, the connection is closed once answered, and whatever `read` passes on after that
   * is dropped. The reservation is given back when the answer is over, as for any callback.
   */
  const readGrowing = (
    req: Request,
    res: Response,
    next: (error?: unknown) => void,
    read: RequestHandler,
    reservation: Reservation,
    reserved: number,
  ): void => {
    let reading = true;
    let received = 0;
    let held = reserved;
    const stop = () => {
      reading = false;
      req.off('data', onData);
    };
    const onData = (chunk: Buffer) => {
      // Still called for the chunk during which `read` finished or failed (listeners are run from a copy).
      if (!reading) {
        return;
      }
      received += chunk.length;
      // Past the limit, `read` refuses the body (413) and keeps none of it: it needs no more room.
      const needed = Math.min(received, limit);
      if (needed <= held) {
        return;
      }
      if (reservation.grow(needed - held)) {
        held = needed;
        return;
      }
      stop();
      req.pause();
      log.warn('a chunked callback was refused part-way (503): no room left in EVENTS_BODY_BUDGET', { component: 'events', receivedBytes: received });
      onWaited?.({ outcome: 'refused_part_way', waitedMs: 0 });
      if (!res.headersSent) {
        res.setHeader('Connection', 'close');
      }
      next(refusal('too many large callbacks are in progress: retry later (nothing was stored)'));
    };
    const done = (error?: unknown) => {
      if (reading) {
        stop();
        next(error);
      }
    };
    read(req, res, done);
    // Listened to only once `read` reads: a listener of its own would set the body flowing before.
    if (reading) {
      req.on('data', onData);
    }
  };

  return (read) => (req, res, next) => {
    // The client may have left during the checks before (they await the database): its 'close' has
    // then been emitted already, and a reservation made now would never be given back.
    if (res.closed) {
      return;
    }
    // A body stated over the limit is refused unread, or read off without being kept: it needs no room.
    if ((statedLength(req.headers) ?? 0) > limit) {
      read(req, res, next);
      return;
    }
    const bytes = firstBytes(req.headers, limit);
    const started = performance.now();
    const reservation = budget.reserve(bytes, () => {
      stopWaiting();
      const waitedMs = Math.round(performance.now() - started);
      if (waitedMs >= LONG_WAIT_MS) {
        log.info('a callback waited for room in EVENTS_BODY_BUDGET', { component: 'events', bytes, waitedMs, waiting: budget.waiting() });
      }
      onWaited?.({ outcome: 'admitted', waitedMs });
      // Granted from within another request's release: go on in a turn of its own.
      setImmediate(() => {
        try {
          readWithin(req, res, next, read, reservation, bytes);
        } catch (error) {
          next(error);
        }
      });
    });
    // Whatever ends the request (answer sent, error answered, client gone) gives the bytes back.
    if (reservation.granted) {
      res.once('close', () => reservation.release());
      readWithin(req, res, next, read, reservation, bytes);
      return;
    }
    const stopWaiting = () => {
      clearTimeout(timer);
      req.socket.off('end', onEnd);
    };
    res.once('close', () => {
      stopWaiting();
      reservation.release();
    });
    // A client that shuts its side of the connection keeps it open for its answer
    // (http/connections.ts), so one that has gone is not told from one that waits: either is
    // answered at once rather than keep its turn, with nothing read or stored.
    const onEnd = () => {
      stopWaiting();
      reservation.release();
      res.setHeader('Connection', 'close');
      next(refusal('the connection was shut on the client side while this callback waited for room: retry later (nothing was read or stored)'));
    };
    const timer = setTimeout(() => {
      req.socket.off('end', onEnd);
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
      next(refusal('too many large callbacks are in progress: retry later (nothing was read or stored)'));
    }, waitMs);
    if (req.socket.readableEnded) {
      onEnd();
    } else {
      req.socket.once('end', onEnd);
    }
  };
}
