// How a request body being read must keep coming: an idle timeout (HTTP_BODY_IDLE_TIMEOUT_MS) and a
// minimum rate (HTTP_BODY_MIN_RATE, judged over each HTTP_BODY_MIN_RATE_WINDOW_MS). Without them, a
// client that states a body and then stops sending it, or sends a byte a second, holds its socket
// and the buffer allocated for its stated length (http/declared-body.ts) until Node's
// requestTimeout (5 minutes). The idle timeout alone does not do: each chunk restarts it, however
// small. On POST /events, a body holding room in EVENTS_BODY_BUDGET is judged at the end of each
// window by the budget's own rate too (`room`, http/body-budget.ts), and every body being read is
// refused at once when the server stops (`stop`, http/body-stop.ts), and one that goes on past the
// parser's limit is refused as it comes (413), not read to its end; one whose Content-Length says so
// is refused before it is read (413 at once, where a slow one was held to the pace first and got a
// 408, and a client waiting for `100 Continue` need not send it). All of it covers the reading
// only, not the handler that runs once the body is whole (a 64 MB callback takes about 28 s to
// apply).
import type { Request, RequestHandler } from 'express';

import { type BodyStop, stopRefusal } from './body-stop.js';
import { bodyError, statedLength } from './declared-body.js';

export interface BodyPace {
  /** How long no chunk of the body may arrive (0: no limit). */
  idleMs: number;
  /** Bytes a second the body must bring, over each window, until it is whole (0: no minimum). */
  minBytesPerSecond: number;
  /** The window the rate is judged over: a slow start, or a pause within one, is not judged alone. */
  windowMs: number;
  /** Room the body holds that others may be waiting for (POST /events: http/body-budget.ts), judged at the end of each window too. */
  room?: HeldRoom;
  /** The server's stop: a body still arriving is then refused at once (http/body-stop.ts). */
  stop?: BodyStop;
}

export interface HeldRoom {
  /**
   * The error that refuses `req`, which brought `bytes` over the window of `windowMs` just over, so
   * that those waiting for its room get it: when some wait, and it brought too little to keep it.
   * Otherwise undefined, and the body reads on.
   */
  refusalOfSlow(req: Request, bytes: number, windowMs: number): Error | undefined;
}

/**
 * Whether `req`'s Content-Length tells, before any of its body is read, that it is refused: a plain
 * body over `limitBytes`, a compressed one past `cutBytes` (more than any body within the limit
 * takes on the wire).
 */
function statedOver(req: Request, limitBytes: number, cutBytes: number): boolean {
  const length = req.headers['content-length'];
  if (length === undefined || req.headers['transfer-encoding'] !== undefined || !/^[0-9]+$/.test(length)) {
    return false;
  }
  return Number(length) > (req.headers['content-encoding'] === undefined ? limitBytes : cutBytes);
}

/** A duration as a person reads it: `30 s`, `200 ms`. */
function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * `read`, a body parser (it passes the request on once its body is read or refused), refusing the
 * request with a 408 when no chunk of the body arrives for `idleMs`, or when, over a window of
 * `windowMs`, it brings fewer than `minBytesPerSecond` a second, while it reads; with the error of
 * `room` when that window brought too little to keep the room others wait for; with a 503 when the
 * server stops; with a 413 once it brings more than any body within `limitBytes` takes. The connection is then closed: the rest of the body will not be read. Whatever
 * `read` passes on after that (the client gone, its body cut short) is dropped.
 */
export function withBodyPace(pace: BodyPace, read: RequestHandler, limitBytes?: number): RequestHandler {
  const { idleMs, minBytesPerSecond, windowMs, room, stop } = pace;
  const judged = minBytesPerSecond > 0 || room !== undefined;
  if (idleMs === 0 && !judged && stop === undefined && limitBytes === undefined) {
    return read;
  }
  const minWindowBytes = Math.ceil((minBytesPerSecond * windowMs) / 1000);
  // Past `limitBytes`, body-parser answers 413 only once it has read the whole request off the
  // connection: a body without end was read for as long as it came. Cut here instead, past what any
  // body within the limit can take on the wire (compressed, incompressible data grows by far less).
  const cutBytes = limitBytes === undefined ? Number.POSITIVE_INFINITY : limitBytes + Math.ceil(limitBytes / 64) + 64 * 1024;
  const tooLarge = () => Object.assign(bodyError(413, 'entity.too.large', 'request entity too large'), { limit: limitBytes });
  return (req, res, next) => {
    // The whole body has come already (a small one comes with the headers, and is parsed while the
    // request waits on its rate limit): nothing can stall, so no timer or listener is spent on it.
    // Nearly every POST /queue takes this path (79,999 of 80,000 in a bench run).
    if (req.complete) {
      try {
        read(req, res, next);
      } catch (error) {
        next(error);
      }
      return;
    }
    if (stop?.begun()) {
      res.setHeader('Connection', 'close');
      next(stopRefusal());
      return;
    }
    if (limitBytes !== undefined && statedOver(req, limitBytes, cutBytes)) {
      res.setHeader('Connection', 'close');
      next(tooLarge());
      return;
    }
    let reading = true;
    let chunks = 0;
    let received = 0;
    let receivedBeforeWindow = 0;
    const stopReading = () => {
      reading = false;
      clearTimeout(idle);
      clearTimeout(rateWindow);
      req.off('data', onData);
      forgetStop?.();
    };
    const onData = (chunk: Buffer) => {
      chunks += 1;
      received += chunk.length;
      idle?.refresh();
      if (received > cutBytes) {
        refuse(tooLarge());
      }
    };
    const refuse = (error: Error) => {
      stopReading();
      if (!res.headersSent) {
        res.setHeader('Connection', 'close');
      }
      next(error);
    };
    const refuseAsLate = (message: string) =>
      refuse(Object.assign(bodyError(408, 'request.timeout', message), { receivedBytes: received, statedBytes: statedLength(req.headers) }));
    // Chunks that came while this process was busy are read only after its timers have run: the
    // next turn of the event loop, after the reads, decides.
    const afterReads = (decide: () => void) => setImmediate(() => reading && decide());
    const idle =
      idleMs === 0
        ? undefined
        : setTimeout(() => {
            const seen = chunks;
            afterReads(() => chunks === seen && refuseAsLate(`the request body stopped arriving: nothing of it came for ${formatMs(idleMs)}`));
          }, idleMs);
    const rateWindow = !judged
      ? undefined
      : setTimeout(() => {
          afterReads(() => {
            const brought = received - receivedBeforeWindow;
            if (brought < minWindowBytes) {
              refuseAsLate(
                `the request body came too slowly: ${brought} bytes in ${formatMs(windowMs)}, where at least ${minBytesPerSecond} bytes a second are needed`,
              );
              return;
            }
            const yielded = room?.refusalOfSlow(req, brought, windowMs);
            if (yielded !== undefined) {
              refuse(yielded);
              return;
            }
            // The next window starts now (a late timer only makes this one longer, never stricter).
            receivedBeforeWindow = received;
            rateWindow!.refresh();
          });
        }, windowMs);
    const forgetStop = stop?.onStop(() => refuse(stopRefusal()));
    const done = (error?: unknown) => {
      if (reading) {
        stopReading();
        next(error);
      }
    };
    try {
      read(req, res, done);
    } catch (error) {
      done(error);
      return;
    }
    // Listened to only once `read` reads (a parser that skips the body has passed the request on
    // already): a listener of its own would set the body flowing.
    if (reading) {
      req.on('data', onData);
    }
  };
}
