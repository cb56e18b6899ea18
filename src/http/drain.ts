// The server's drain (SIGTERM): the port stays open until the drain is done. Closed at once, it made
// a load balancer's or Kubernetes' probe see "connection refused" rather than "not ready", and
// Prometheus lost the last scrape of a draining replica. While it drains, /healthz, /readyz (503,
// services/readiness.ts) and /metrics answer as ever; any other request is refused at once (503,
// Retry-After, Connection: close: nothing of it stored), so nothing is accepted once the drain has
// begun, and the requests begun before it are answered. The port closes once they and the consumers
// are done (main.ts).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

import type { RequestHandler } from 'express';

import { ServiceUnavailableError } from '../domain/errors.js';
import type { BodyStop } from './body-stop.js';

/** What a draining server still answers: the probes and the scrape. */
const ANSWERED_WHILE_DRAINING = new Set(['/healthz', '/readyz', '/metrics']);

/** Refuses, once the drain has begun (`stop`), every request but the probes and the scrape. */
export function refuseWhileDraining(stop: BodyStop | undefined): RequestHandler {
  return (req, res, next) => {
    if (stop?.begun() && !ANSWERED_WHILE_DRAINING.has(req.path)) {
      res.setHeader('Connection', 'close');
      next(
        new ServiceUnavailableError(
          'jetpost is stopping (draining): this request was not read and nothing of it was stored; send it again, to another replica or once this one is back',
        ),
      );
      return;
    }
    next();
  };
}

export interface InFlight {
  /** Resolves once every request in flight now is answered (or its connection gone). */
  settled(): Promise<void>;
}

/** Keeps count of `server`'s requests in flight, for the drain to wait for those begun before it. */
export function trackInFlight(server: Server): InFlight {
  const inFlight = new Map<ServerResponse, Promise<void>>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    // Read with others after its connection was closed (the pipelining limit, http/connections.ts):
    // nothing answers it.
    if (socket.destroyed) {
      return;
    }
    inFlight.set(
      res,
      new Promise<void>((resolve) => {
        // An answer queued behind another on a connection that closes never emits its own 'close'.
        const done = () => {
          inFlight.delete(res);
          socket.off('close', done);
          resolve();
        };
        res.once('close', done);
        socket.once('close', done);
      }),
    );
  });
  return {
    async settled() {
      await Promise.all(inFlight.values());
    },
  };
}
