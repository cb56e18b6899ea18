// Ports for the children's HTTP APIs and their PostgreSQL servers.
import { createServer } from 'node:net';

/** Ports handed out in this run: never twice, since a scenario keeps its port across restarts. */
const usedPorts = new Set<number>();

/**
 * A port for a child's HTTP API, below Linux's ephemeral range (32768–60999): a port from `listen(0)`
 * would be released before the child binds it, and any server of this run listening on port 0 (a
 * simulator, another test's app) could take it in between.
 */
export async function scenarioPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (usedPorts.has(port)) {
      continue;
    }
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) {
      usedPorts.add(port);
      return port;
    }
  }
  throw new Error('no free port found between 20000 and 32000');
}
