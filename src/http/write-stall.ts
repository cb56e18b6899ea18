// An answer its client does not take. Node never gives up writing to a socket: a client that sent
// a request and read nothing of an answer larger than the kernel's socket buffers (a GET /status of
// 100 jobs and their events, a page of the changes feed, four of them pipelined) kept its connection,
// and the answers in this process's memory, for ever; the keep-alive timeout counts only once an
// answer is written whole. A connection whose client has taken none of the bytes owed to it for
// HTTP_RESPONSE_IDLE_TIMEOUT_MS is now closed, and its answers freed with it. A client reading
// slowly is not cut: any byte it takes starts the time again. (The kernel takes bytes from the
// process in bursts, once a third of the connection's send buffer is free: the buffer follows the
// link's speed, a few KB on a slow link, up to 4 MB on a fast one.)
//
// One sweep over the open connections, a few times per timeout, judges them all: no timer, no
// listener per request. An answer that fits the socket buffers (every POST /queue) is written at
// once, and its connection never owes anything at a sweep. The drain (SIGTERM) needs none of it:
// main.ts cuts the connections still open at its deadline, such ones with the rest.
import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import type { Request } from 'express';

import type { Logger } from '../log.js';
import { routeTemplate } from './route-template.js';

/**
 * Node's socket counts the bytes it has handed to libuv (`_bytesDispatched`); libuv's handle, those
 * of them the kernel has not taken yet (`writeQueueSize`, lowered as each part of a write goes out,
 * where the socket's own `writableLength` is lowered only once a whole write is out). Node's server
 * keeps on the socket the answer being written (`_httpMessage`, as http/connections.ts reads it).
 */
type WritingSocket = Socket & {
  _bytesDispatched?: number;
  _handle?: { writeQueueSize?: number } | null;
  _httpMessage?: ServerResponse | null;
};

/** Bytes of the connection the kernel has taken: they grow while the client reads, however slowly. */
function bytesTaken(socket: WritingSocket): number {
  return (socket._bytesDispatched ?? 0) - (socket._handle?.writeQueueSize ?? 0);
}

interface Progress {
  taken: number;
  /** When the client last took a byte, or owed nothing (performance.now(): a clock that does not jump). */
  at: number;
}

/** Closes the connections of `server` whose client has taken nothing owed to it for `idleMs` (0: never). */
export function closeStalledWrites(server: Server, idleMs: number, log: Logger): void {
  if (idleMs === 0) {
    return;
  }
  const watched = new Map<WritingSocket, Progress>();
  server.on('connection', (socket: WritingSocket) => {
    watched.set(socket, { taken: 0, at: performance.now() });
    socket.once('close', () => watched.delete(socket));
  });
  const sweep = () => {
    const now = performance.now();
    for (const [socket, seen] of watched) {
      const taken = bytesTaken(socket);
      if (socket.writableLength === 0 || taken !== seen.taken) {
        seen.taken = taken;
        seen.at = now;
      } else if (now - seen.at >= idleMs) {
        watched.delete(socket);
        const res = socket._httpMessage;
        log.warn('a connection was closed: its client took nothing of the answer owed to it for HTTP_RESPONSE_IDLE_TIMEOUT_MS', {
          component: 'http',
          method: res?.req.method,
          route: (res && routeTemplate(res.req as Request)) ?? '-',
          status: res?.statusCode,
          owedBytes: socket.writableLength,
          idleMs,
        });
        socket.destroy();
      }
    }
  };
  // A quarter of the timeout apart: a connection is closed after idleMs to 1.25 idleMs without progress.
  const timer = setInterval(sweep, Math.max(100, Math.ceil(idleMs / 4)));
  timer.unref();
  server.once('close', () => clearInterval(timer));
}
