// An idle timeout on reading a request body (HTTP_BODY_IDLE_TIMEOUT_MS). Without it, a client that
// states a body and then stops sending it, or sends a byte a minute, holds its socket, the buffer
// allocated for its stated length (http/declared-body.ts) and, on POST /events, its share of
// EVENTS_BODY_BUDGET until Node's requestTimeout (5 minutes): one callback stating 64 MB would keep
// every other out for that long. Each chunk that arrives restarts the wait, so a slow upload that
// progresses goes on; the wait covers the reading only, not the handler that runs once the body is
// whole (a 64 MB callback takes about 28 s to apply).
import type { RequestHandler } from 'express';

import { bodyError } from './declared-body.js';

/** A duration as a person reads it: `30 s`, `200 ms`. */
function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * `read`, a body parser (it passes the request on once its body is read or refused), refusing the
 * request with a 408 when no chunk of the body arrives for `idleMs` while it reads (0: never). The
 * connection is then closed: the rest of the body will not be read. Whatever `read` passes on after
 * that (the client gone, its body cut short) is dropped.
 */
export function withBodyIdleTimeout(idleMs: number, read: RequestHandler): RequestHandler {
  if (idleMs === 0) {
    return read;
  }
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
    let reading = true;
    let chunks = 0;
    const stop = () => {
      reading = false;
      clearTimeout(timer);
      req.off('data', onData);
    };
    const onData = () => {
      chunks += 1;
      timer.refresh();
    };
    const timer = setTimeout(() => {
      // Chunks that came while this process was busy are read only after its timers have run: the
      // next turn of the event loop, after the reads, decides.
      const seen = chunks;
      setImmediate(() => {
        if (!reading || chunks !== seen) {
          return;
        }
        stop();
        if (!res.headersSent) {
          res.setHeader('Connection', 'close');
        }
        next(bodyError(408, 'request.timeout', `the request body stopped arriving: nothing of it came for ${formatMs(idleMs)}`));
      });
    }, idleMs);
    const done = (error?: unknown) => {
      if (reading) {
        stop();
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
