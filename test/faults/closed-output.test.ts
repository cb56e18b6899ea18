// A reader of jetpost's output that goes away: `npm start | head`, a log shipper restarting, a parent
// that closed its pipes (execFile's timeout does). jetpost's next line then failed with EPIPE, thrown
// as an unhandled 'error' event: the process died at once, mid-work, with exit code 1, and left its
// embedded PostgreSQL running. So did a log file on a full disk (ENOSPC). Now it goes on without its
// output, and a SIGTERM still stops it gracefully, database included.
import { expect } from 'chai';

import { useFaultHarness } from '../support/faults/harness.js';
import { waitForExit } from '../support/faults/wait.js';

/** A budget for a loaded machine, not an expectation of speed. */
const STOP_BUDGET_MS = 60_000;

describe('faults: the reader of jetpost’s output goes away', function () {
  this.timeout(240_000);
  const harness = useFaultHarness();

  it('when its stdout and stderr are closed, then it keeps serving, and SIGTERM stops it and its embedded PostgreSQL with exit code 0', async () => {
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    // Every request logged, so that the next one writes to the closed pipe.
    const child = await harness.jetpost({ name: 'closed-output', port, databaseUrl: undefined, simulator, env: { ...data.env, LOG_LEVEL: 'http' } });

    child.closeOutput();
    for (let request = 0; request < 3; request += 1) {
      expect((await fetch(`${child.url}/healthz`)).status).to.equal(200);
    }
    expect(child.exitStatus(), 'exited on a closed output').to.equal(undefined);
    child.signal('SIGTERM');
    const exit = await waitForExit(child, STOP_BUDGET_MS);

    expect(exit).to.deep.equal({ code: 0, signal: null });
    expect(await data.postgresRunning(), 'the embedded PostgreSQL left running').to.equal(false);
  });

  it('when its stdout is a file on a full disk (ENOSPC, /dev/full), then it starts and keeps serving, and SIGTERM stops it and its embedded PostgreSQL with exit code 0', async () => {
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const child = await harness.jetpost({
      name: 'full-disk-output',
      port,
      databaseUrl: undefined,
      simulator,
      env: { ...data.env, LOG_LEVEL: 'http' },
      stdoutFile: '/dev/full',
    });

    for (let request = 0; request < 3; request += 1) {
      expect((await fetch(`${child.url}/healthz`)).status).to.equal(200);
    }
    expect(child.exitStatus(), 'exited on a full disk under its output').to.equal(undefined);
    expect(child.output().join('\n')).to.include('its stdout cannot be written (ENOSPC)');
    child.signal('SIGTERM');
    const exit = await waitForExit(child, STOP_BUDGET_MS);

    expect(exit, child.output().join('\n')).to.deep.equal({ code: 0, signal: null });
    expect(await data.postgresRunning(), 'the embedded PostgreSQL left running').to.equal(false);
  });
});
