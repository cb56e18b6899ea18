// A "lingering close", as Apache and nginx make it: an answer that closes its connection while the
// client is still sending the request's body (a 503 when jetpost stops, a 413, a 408). Node closed
// the socket as soon as the answer was written, and the kernel answers the bytes that still arrive
// on a closed socket (or wait unread in it) with a reset: a client still sending saw EPIPE or
// ECONNRESET, not the 503 problem+json it was sent, and could not tell "not stored, send it again"
// from a crash. The connection is now shut for writing once the answer is out, and what the client
// still sends is read and thrown away, until it closes its side, for at most LINGER_MS and
// LINGER_BYTES; then it is closed. A stop is not held by it: the server's close cuts it with the
// other connections (main.ts's closeServer).
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';

/** How long the rest of a refused body is read off after its answer. */
const LINGER_MS = 2_000;
/** How much of it, at most: a client that keeps sending that much more has had time to read its answer. */
const LINGER_BYTES = 8 * 1024 * 1024;

/** Node's HTTP server keeps on each socket its parser, and on the parser the request it reads. */
type ServerSocket = Socket & { parser?: { incoming?: IncomingMessage | null } | null };

/**
 * Node's server closes a connection after an answer that says `Connection: close` with
 * `destroySoon()`: lingering, here, when the request of that answer has not come whole.
 */
function destroySoonLingering(this: ServerSocket): void {
  const incoming = this.parser?.incoming;
  if (!incoming || incoming.complete || !this.writable) {
    Socket.prototype.destroySoon.call(this);
    return;
  }
  linger(this);
}

function linger(socket: Socket): void {
  let discarded = 0;
  const close = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(close, LINGER_MS);
  const discard = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) {
      close();
    }
  };
  // Taken from Node's parser (adding a 'data' listener makes it hand the bytes over): the rest is a
  // body no one reads, and a request pipelined after it must not run on a connection that is over.
  socket.on('data', discard);
  for (const listener of socket.listeners('data')) {
    if (listener !== discard) {
      socket.off('data', listener as (chunk: Buffer) => void);
    }
  }
  socket.once('end', close);
  socket.once('close', () => clearTimeout(timer));
  socket.end();
  socket.resume();
}

/** Makes `socket`, a connection of jetpost's HTTP server, close lingering (above). */
export function lingerOnClose(socket: Socket): void {
  socket.destroySoon = destroySoonLingering;
}
