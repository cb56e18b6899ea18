// The embedded PostgreSQL killed under a running jetpost (the OOM killer, a `kill` of the wrong pid).
// jetpost ran on for ever: /healthz answered 200, so neither Docker's HEALTHCHECK nor a liveness
// probe restarted it, while nothing could be stored or sent. It now stops as for a signal and exits
// 1 with a line saying why, for its supervisor to start it again; that start recovers the database.
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';

import { useFaultHarness } from '../support/faults/harness.js';
import { waitForExit } from '../support/faults/wait.js';

/** A budget for a loaded machine, not an expectation of speed. */
const EXIT_BUDGET_MS = 60_000;

describe('faults: the embedded PostgreSQL killed under jetpost', function () {
  this.timeout(300_000);
  const harness = useFaultHarness();

  it('when its postmaster is killed (SIGKILL), then jetpost stops and exits 1 saying why, and the next start recovers the database', async () => {
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const env = { ...data.env, LOG_LEVEL: 'info' };
    const first = await harness.jetpost({ name: 'lost-postgres', port, databaseUrl: undefined, simulator, env });
    const postmaster = Number((await fs.readFile(path.join(data.dir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);

    process.kill(postmaster, 'SIGKILL');
    const exit = await waitForExit(first, EXIT_BUDGET_MS);

    expect(exit, first.output().join('\n')).to.deep.equal({ code: 1, signal: null });
    const last = first.output().filter((line) => line.includes('"component":"main"'));
    expect(last.at(-1)).to.include(`jetpost stopped because the embedded PostgreSQL (pid ${postmaster}) exited without being asked to; start it again`);
    const second = await harness.jetpost({ name: 'lost-postgres-restarted', port, databaseUrl: undefined, simulator, env });
    expect((await fetch(`${second.url}/readyz`)).status).to.equal(200);
  });
});
