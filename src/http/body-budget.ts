// POST /events and POST /queue: the bodies read and processed at once on each route hold a
// process-wide budget of bytes (EVENTS_BODY_BUDGET, QUEUE_BODY_BUDGET), so that concurrent large
// bodies cannot together exhaust the memory (four 30 MB callbacks at once peaked a process at
// 461 MiB, 324 MiB with the default budget; two 9.3 MB POST /queue at once crashed a process capped
// at a 96 MB heap, and 120 of them took one to 2.1 GB). Placed after the credentials and the rate
// limit, around the body's reader: a request reserves its stated Content-Length before its body is
// read, and gives it back when its answer is finished or its connection closed, whatever the
// outcome (on /queue, its messages' wait for their insert is within it).
//
// What follows is told of callbacks, which wait for room; a POST /queue request waits none
// (QUEUE_BODY_BUDGET: `waitMs` 0, no minimum rate): one that finds no room is answered 503 at once,
// its body unread, and its client retries it, as any 503 asks.
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
//
// Slow clients with the callback credentials. One that states a large Content-Length and sends just
// above HTTP_BODY_MIN_RATE held its stated length for up to 5 minutes (Node's requestTimeout), and a
// few, taking turns, kept Mailjet's callbacks waiting until they were refused. Two rules keep them
// from it, and leave a burst of callbacks arriving at a callback's pace as it was (each reserving
// its length and waiting its turn unread, none refused part-way):
// - a body that came whole with its headers (a small one: nearly every callback) is in memory
//   already, so it is counted at once (ByteBudget.take), ahead of the waiting ones, past the budget
//   if need be, rather than wait for the room it already takes;
// - a body being read in room others wait for must bring EVENTS_BODY_MIN_RATE (256 KiB a second by
//   default) over each window of its pace (http/body-pace.ts); slower, it is refused 503 and the
//   room goes to those waiting. A slow body nobody waits for is left alone;
// - a callback from an address (folded as for the rate limits) one was refused so for, in the last
//   SLOW_SOURCE_MS, waits behind the others. Cut and connecting again at once, slow clients filled
//   the queue, each holding the room a window before it was cut: with 40 of them stating 5 MB each
//   at 50 kB/s, 4 of 11 callbacks of 5 MB sent at full speed were refused after waiting 10 s.
// Charging every body only the bytes it has received instead (tried) let a burst start all its
// bodies at once and refuse most of them part-way: 4 callbacks of 3 MB in a budget of 4 MB got
// 48 refusals instead of none, and took more memory.
import type { IncomingHttpHeaders } from 'node:http';

import type { Request, RequestHandler, Response } from 'express';

import type { ByteBudget, Reservation } from '../domain/byte-budget.js';
import { ServiceUnavailableError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import type { HeldRoom } from './body-pace.js';
import { type BodyStop, stopRefusal } from './body-stop.js';
import { statedLength } from './declared-body.js';
import { sourceBucket } from './rate-limit.js';

/** A wait from which on an admitted callback is logged: the budget is then too small for the load. */
const LONG_WAIT_MS = 1_000;
/** Mailjet retries every 30 s whatever it is told; other callers are told the same. */
const RETRY_AFTER_S = 30;
/** What a chunked body reserves before it is read: one read from its socket (a small body is whole in it). */
const FIRST_CHUNK_BYTES = 64 * 1024;
/** How long the callbacks from an address whose body was refused for its pace wait behind the others. */
const SLOW_SOURCE_MS = 60_000;

/** How a budget's logs and answers name it. */
export interface BodyBudgetNames {
  /** Its setting, e.g. EVENTS_BODY_BUDGET. */
  setting: string;
  /** The setting of `minBytesPerSecond`, when that is not 0. */
  minRateSetting?: string;
  /** What it admits, e.g. callback. */
  request: string;
  /** The log component. */
  component: string;
}

export interface BodyBudgetOptions {
  budget: ByteBudget;
  names: BodyBudgetNames;
  /** The body limit, in bytes: what a body of unknown length may reach. */
  limit: number;
  /** How long a request may wait for room before it is refused (EVENTS_BODY_WAIT_MS; 0 on /queue: at once). */
  waitMs: number;
  /** Bytes a second a body must bring, over each window of its pace, to keep its room while others wait for it (EVENTS_BODY_MIN_RATE; 0: no minimum, as on /queue). */
  minBytesPerSecond: number;
  /** The server's stop: a callback waiting for room is then refused at once. */
  stop?: BodyStop;
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

/** Whether a body is not compressed: its size in memory is the size it comes at. */
function isPlain(headers: IncomingHttpHeaders): boolean {
  const encoding = headers['content-encoding'];
  return encoding === undefined || encoding === 'identity';
}

/** Whether a body's bytes are counted as they arrive: chunked, not compressed. */
function isGrowing(headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined && isPlain(headers);
}

function refusal(detail: string): ServiceUnavailableError {
  return new ServiceUnavailableError(detail, { headers: { 'Retry-After': String(RETRY_AFTER_S) } });
}

export interface BodyBudget {
  /** `read`, the body's parser, run once the body has room in the budget. */
  around(read: RequestHandler): RequestHandler;
  /** What the body's pace asks of a body that holds room (http/body-pace.ts): its refusal when it is slow and others wait. */
  room: HeldRoom;
}

export function bodyBudget({ budget, names, limit, waitMs, minBytesPerSecond, stop, log, onWaited }: BodyBudgetOptions): BodyBudget {
  const { setting, request: what, component } = names;
  /** The callbacks whose bodies are read in room reserved for them (not those read whole with their headers). */
  const holding = new WeakSet<Request>();
  /** Until when (performance.now() ms) each source (at most SOURCE_BUCKETS of them) waits behind the others. */
  const slowSources = new Map<string, number>();
  const isSlowSource = (req: Request): boolean => {
    const source = sourceBucket(req.ip);
    const until = slowSources.get(source);
    if (until !== undefined && until <= performance.now()) {
      slowSources.delete(source);
    }
    return until !== undefined && until > performance.now();
  };

  const room: HeldRoom = {
    refusalOfSlow(req, bytes, windowMs) {
      const waiting = budget.waiting();
      if (minBytesPerSecond === 0 || waiting === 0 || !holding.has(req) || bytes * 1000 >= minBytesPerSecond * windowMs) {
        return undefined;
      }
      slowSources.set(sourceBucket(req.ip), performance.now() + SLOW_SOURCE_MS);
      log.warn(`a ${what} arriving slowly was refused (503) to give its room in ${setting} to the ${what}s waiting`, {
        component,
        broughtBytes: bytes,
        windowMs,
        statedBytes: statedLength(req.headers),
        waiting,
      });
      return refusal(
        `this ${what}'s body came at fewer than ${minBytesPerSecond} bytes a second (${names.minRateSetting}) while other ${what}s waited for its room: retry later (nothing was stored)`,
      );
    },
  };

  /** Runs `read` on a body admitted with `reserved` bytes. */
  const readWithin = (req: Request, res: Response, next: (error?: unknown) => void, read: RequestHandler, reservation: Reservation, reserved: number): void => {
    holding.add(req);
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
      log.warn(`a chunked ${what} was refused part-way (503): no room left in ${setting}`, { component, receivedBytes: received });
      onWaited?.({ outcome: 'refused_part_way', waitedMs: 0 });
      if (!res.headersSent) {
        res.setHeader('Connection', 'close');
      }
      next(refusal(`too many large ${what}s are in progress: retry later (nothing was stored)`));
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

  const around =
    (read: RequestHandler): RequestHandler =>
    (req, res, next) => {
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
      // A body that came whole with its headers (only a small one can: Node stops reading a socket
      // once 16 KiB of its body wait unread) is in memory already, waiting or not: it is counted at
      // once, ahead of the callbacks waiting, past the budget if need be. So Mailjet's callbacks, nearly
      // all of that size, get in however long the bodies holding the budget take.
      if (req.complete && isPlain(req.headers)) {
        const taken = budget.take(req.readableLength);
        res.once('close', () => taken.release());
        read(req, res, next);
        return;
      }
      const bytes = firstBytes(req.headers, limit);
      const started = performance.now();
      const reservation = budget.reserve(
        bytes,
        () => {
          stopWaiting();
          const waitedMs = Math.round(performance.now() - started);
          if (waitedMs >= LONG_WAIT_MS) {
            log.info(`a ${what} waited for room in ${setting}`, { component, bytes, waitedMs, waiting: budget.waiting() });
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
        },
        { behind: isSlowSource(req) },
      );
      // Whatever ends the request (answer sent, error answered, client gone) gives the bytes back.
      if (reservation.granted) {
        res.once('close', () => reservation.release());
        readWithin(req, res, next, read, reservation, bytes);
        return;
      }
      // The server stops: a callback still waiting will not be read (its body has not come whole).
      if (stop?.begun()) {
        reservation.release();
        res.setHeader('Connection', 'close');
        next(stopRefusal());
        return;
      }
      const stopWaiting = () => {
        clearTimeout(timer);
        req.socket.off('end', onEnd);
        forgetStop?.();
      };
      res.once('close', () => {
        stopWaiting();
        reservation.release();
      });
      // A client that shuts its side of the connection keeps it open for its answer
      // (http/connections.ts), so one that has gone is not told from one that waits: either is
      // answered at once rather than keep its turn, with nothing read or stored.
      /** Answers a callback that will not be read (its connection closed after the answer), giving up its turn. */
      const refuseWaiting = (error: ServiceUnavailableError) => {
        stopWaiting();
        reservation.release();
        res.setHeader('Connection', 'close');
        next(error);
      };
      const onEnd = () =>
        refuseWaiting(refusal(`the connection was shut on the client side while this ${what} waited for room: retry later (nothing was read or stored)`));
      const timer = setTimeout(() => {
        stopWaiting();
        reservation.release();
        const waitedMs = Math.round(performance.now() - started);
        log.warn(`a ${what} was refused (503): ${setting} stayed full`, {
          component,
          bytes,
          inUseBytes: budget.inUse(),
          waiting: budget.waiting(),
          waitedMs,
        });
        onWaited?.({ outcome: 'refused', waitedMs });
        next(refusal(`too many large ${what}s are in progress: retry later (nothing was read or stored)`));
      }, waitMs);
      const forgetStop = stop?.onStop(() => refuseWaiting(stopRefusal()));
      if (req.socket.readableEnded) {
        onEnd();
      } else {
        req.socket.once('end', onEnd);
      }
    };

  return { around, room };
}
