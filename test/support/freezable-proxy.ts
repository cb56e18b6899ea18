// A TCP proxy in front of the test PostgreSQL that can be frozen: it keeps accepting connections and
// reading what both sides send, but passes nothing on until thawed. To jetpost that is a database
// that stops answering (as under SIGSTOP): no error, no closed socket, only silence. On thaw the held
// bytes go through in order, and a side that closed meanwhile is closed on the other end after them,
// the way a stopped server finds the data and the close in its socket when it continues.
import { connect, createServer, type Server, type Socket } from 'node:net';

import { trackOpen } from './open-resources.js';

export interface FreezableProxy {
  /** `databaseUrl` with its host and port replaced by the proxy's. */
  url(databaseUrl: string): string;
  /** How many connections it has accepted so far. */
  connections(): number;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

/** One direction of one connection: what `from` sent, held while frozen. */
class Direction {
  private held: Buffer[] = [];
  private ended = false;

  constructor(
    private readonly to: Socket,
    private readonly isFrozen: () => boolean,
  ) {}

  data(chunk: Buffer): void {
    this.held.push(chunk);
    this.flush();
  }

  end(): void {
    this.ended = true;
    this.flush();
  }

  flush(): void {
    if (this.isFrozen() || this.to.destroyed) {
      return;
    }
    for (const chunk of this.held.splice(0)) {
      this.to.write(chunk);
    }
    if (this.ended) {
      this.to.end();
    }
  }
}

export async function startFreezableProxy(target: { host: string; port: number }): Promise<FreezableProxy> {
  let frozen = false;
  const directions = new Set<Direction>();
  const sockets = new Set<Socket>();
  const isFrozen = () => frozen;
  let accepted = 0;

  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = connect(target.port, target.host);
    // Each direction reads one socket and writes the other; it lives as long as the one it writes.
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      const direction = new Direction(to, isFrozen);
      sockets.add(from);
      directions.add(direction);
      from.on('data', (chunk: Buffer) => direction.data(chunk));
      from.on('end', () => direction.end());
      // A reset or a refused connection: the other side learns of it as a close, after what was held.
      from.on('error', () => direction.end());
      from.on('close', () => sockets.delete(from));
      to.on('close', () => directions.delete(direction));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const untrack = trackOpen(`database proxy on port ${port}`);

  return {
    url(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    connections: () => accepted,
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const direction of directions) {
        direction.flush();
      }
    },
    async close() {
      untrack();
      frozen = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) {
        socket.destroy();
      }
      await closed;
    },
  };
}
