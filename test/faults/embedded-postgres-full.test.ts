// The embedded PostgreSQL left running by a jetpost killed with SIGKILL, every one of its connection
// slots taken by other clients (max_connections), when jetpost starts again. The start waited 30 s
// for it to "accept connections", then tried to run a second server on the same directory and exited
// saying that EMBEDDED_PG_PORT was in use by another program: advice that sent the operator after a
// port. It now adopts the server, says at once that it has no connection left, and the next start
// once the clients are gone runs.
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';
import pg from 'pg';

import { useFaultHarness } from '../support/faults/harness.js';
import { waitForExit } from '../support/faults/wait.js';

/** A budget for a loaded machine, not an expectation of speed. */
const EXIT_BUDGET_MS = 60_000;

describe('faults: the embedded PostgreSQL out of connections at start', function () {
  this.timeout(300_000);
  const harness = useFaultHarness();
  const clients: pg.Client[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.end().catch(() => undefined)));
  });

  it('when every connection of the running embedded PostgreSQL is taken, then jetpost exits 1 saying so, and starts once they are closed', async () => {
    const data = await harness.dataDir();
    await data.startPostgres();
    const password = (await fs.readFile(path.join(data.dir, 'pg-password'), 'utf8')).trim();
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${data.pgPort}/postgres`;
    let refusal: unknown;
    while (refusal === undefined) {
      const client = new pg.Client({ connectionString: url, application_name: 'fault-filler' });
      client.on('error', () => undefined);
      refusal = await client.connect().then(
        () => void clients.push(client),
        (error: unknown) => error,
      );
    }
    expect((refusal as { code?: unknown }).code, 'the filler ran the server out of connections').to.equal('53300');

    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const refused = await harness.spawn({ name: 'refused', port, databaseUrl: undefined, simulator, env: data.env });
    const exit = await waitForExit(refused, EXIT_BUDGET_MS);
    const stderr = refused
      .output()
      .filter((line) => line.includes(' err]'))
      .map((line) => line.slice(line.indexOf(']') + 2));

    expect(exit.code, 'exit code').to.equal(1);
    expect(stderr, 'what it wrote on stderr').to.deep.equal([
      `the embedded PostgreSQL in ${path.join(data.dir, 'pg')} has no connection left for jetpost (sorry, too many clients already): other programs connected to it hold every one of its max_connections (pg_stat_activity lists them). Close them, then start jetpost again`,
    ]);

    await Promise.all(clients.splice(0).map((client) => client.end().catch(() => undefined)));
    const started = await harness.jetpost({ name: 'started', port, databaseUrl: undefined, simulator, env: data.env });
    expect(started.exitStatus(), 'jetpost exited').to.equal(undefined);
  });
});
