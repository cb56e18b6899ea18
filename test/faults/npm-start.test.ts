// Scenario 9: SIGTERM to the pid of `npm start`, as process managers and scripts send it. npm relays
// it to its child only; when that child was `sh -c "tsx …"`, the shell (dash) died of it without
// passing it on, npm exited, and jetpost ran on orphaned without a "shutting down" line. The start
// script now execs node, so npm's child is jetpost itself.
//
// Scenario 9b: `nohup npm start &`, then the terminal closed: the shell sends SIGHUP to the job's
// process group. nohup's "ignore SIGHUP" does not reach jetpost (Node sets every signal back to its
// default when it starts, npm's and jetpost's alike): npm dies of it at once, and jetpost, on its own,
// stops as on SIGTERM: calls in flight recorded, the rest back in the queue, its PostgreSQL stopped.
import fs from 'node:fs/promises';

import { expect } from 'chai';

import { serveNodeFlags } from '../../scripts/serve-flags.js';
import { messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { countStatus, queueMessages, statusCounts } from '../support/faults/jobs.js';
import { seconds, waitForExit, waitUntil } from '../support/faults/wait.js';

reportFiguresAfterRun();

/** Whether any process is left in the process group. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('faults: signals to npm start', function () {
  this.timeout(120_000);
  const harness = useFaultHarness();

  it('when SIGTERM is sent to the npm start pid, then jetpost shuts down gracefully and npm exits 0, leaving no process behind', async () => {
    const started = Date.now();
    const db = await harness.database();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const npm = await harness.jetpost({
      name: 'npm-start',
      port,
      databaseUrl: db.url,
      simulator,
      env: { LOG_LEVEL: 'info' },
      viaNpmStart: true,
      ownProcessGroup: true,
    });

    npm.signal('SIGTERM');
    const exit = await waitForExit(npm, 60_000);
    // npm waits for its child: once it is gone, nothing of jetpost may be left.
    const left = await waitUntil('the process group to be empty', () => !groupAlive(npm.pid), { timeoutMs: 10_000 }).then(
      () => 0,
      () => 1,
    );
    const healthz = await fetch(`${npm.url}/healthz`).then(
      (response) => String(response.status),
      () => 'refused',
    );
    const said = npm.output().some((line) => line.includes('"message":"shutting down'));

    recordFigures(
      '9 SIGTERM to the npm start pid',
      `npm exit ${exit.signal ?? exit.code}`,
      `jetpost logged shutting down: ${said ? 'yes' : 'no'}`,
      `group left running: ${left ? 'yes' : 'no'}, /healthz after ${healthz}`,
      seconds(started),
    );
    expect(exit, 'exit of npm start').to.deep.equal({ code: 0, signal: null });
    expect(said, 'jetpost logged "shutting down"').to.equal(true);
    expect(left, 'processes left in the group of npm start').to.equal(0);
    expect(healthz).to.equal('refused');
  });
  it('when the terminal of `nohup npm start &` closes (SIGHUP to its process group) with calls in flight, then npm dies at once, and jetpost finishes them, stops its PostgreSQL and says every part finished', async () => {
    const started = Date.now();
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    simulator.faults.set({ latencyMs: 2_000 });
    const env = { ...data.env, LOG_LEVEL: 'info', WORKER_CONCURRENCY: '2', BATCH_SIZE: '5', SHUTDOWN_TIMEOUT_MS: '20000', LEASE_MS: '120000' };
    const npm = await harness.jetpost({ name: 'nohup-npm-start', port, databaseUrl: undefined, simulator, env, viaNpmStart: true, ownProcessGroup: true });
    const pool = await data.connect();
    const { key } = await harness.app(pool);
    await queueMessages(
      npm.url,
      key,
      Array.from({ length: 40 }, (_, index) => messageTo(`noevents-${index}@example.com`)),
    );
    await waitUntil('calls in flight', async () => simulator.sendCallLog().length > 0 && (await countStatus(pool, 'processing')) > 0, {
      timeoutMs: 60_000,
      intervalMs: 10,
      watch: [npm],
    });
    const callsAtSignal = simulator.sendCallLog().length;
    await pool.end();

    npm.signalGroup('SIGHUP');
    const npmExit = await waitForExit(npm, 60_000);
    await waitUntil('the process group to be empty', () => !groupAlive(npm.pid), { timeoutMs: 60_000 });
    const last =
      npm
        .output()
        .filter((line) => line.includes('"message":"'))
        .at(-1) ?? '';
    const postgresAfter = await data.postgresRunning();
    await data.startPostgres();
    const after = await statusCounts(await data.connect());

    recordFigures(
      '9b SIGHUP to the process group of nohup npm start, calls in flight',
      `npm exit ${npmExit.signal ?? npmExit.code}`,
      `calls at the signal ${callsAtSignal}, jobs after ${JSON.stringify(after)}`,
      `PostgreSQL left running ${postgresAfter ? 'yes' : 'no'}`,
      seconds(started),
    );
    expect(npmExit, 'npm, whose SIGHUP nohup cannot keep ignored').to.deep.equal({ code: null, signal: 'SIGHUP' });
    expect(last, 'the last line of jetpost').to.match(/"message":"jetpost stopped: every part finished its work".*"signal":"SIGHUP"/);
    expect(postgresAfter, 'PostgreSQL still running after jetpost exited').to.equal(false);
    expect(after['processing'] ?? 0, 'jobs left processing').to.equal(0);
    expect((after['accepted'] ?? 0) + (after['queued'] ?? 0), JSON.stringify(after)).to.equal(40);
  });
  it('when the harness starts jetpost itself (not through npm), then it runs with npm start’s Node flags', async () => {
    const db = await harness.database();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const jetpost = await harness.jetpost({ name: 'flags', port, databaseUrl: db.url, simulator });

    const args = (await fs.readFile(`/proc/${jetpost.pid}/cmdline`, 'utf8')).split('\0');

    expect(serveNodeFlags()).not.to.deep.equal([]);
    expect(args).to.include.members(serveNodeFlags());
  });
  it('when jetpost gets SIGHUP (its terminal closed), SIGUSR2 or SIGQUIT, then it shuts down gracefully and exits 0, as on SIGTERM', async () => {
    const db = await harness.database();
    const exits: string[] = [];
    for (const signal of ['SIGHUP', 'SIGUSR2', 'SIGQUIT'] as const) {
      const port = await harness.port();
      const simulator = await harness.simulator(port);
      const jetpost = await harness.jetpost({ name: signal, port, databaseUrl: db.url, simulator, env: { LOG_LEVEL: 'info' } });
      jetpost.signal(signal);
      const exit = await waitForExit(jetpost, 60_000);
      const said = jetpost.output().some((line) => line.includes('"message":"shutting down') && line.includes(`"signal":"${signal}"`));
      exits.push(`${signal}: exit ${exit.signal ?? exit.code}, said shutting down: ${said}`);
    }

    expect(exits).to.deep.equal([
      'SIGHUP: exit 0, said shutting down: true',
      'SIGUSR2: exit 0, said shutting down: true',
      'SIGQUIT: exit 0, said shutting down: true',
    ]);
  });

  it('when jetpost gets SIGUSR1, then it opens no debugger (Node’s default), says it ignored it, and goes on serving', async () => {
    const db = await harness.database();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const jetpost = await harness.jetpost({ name: 'sigusr1', port, databaseUrl: db.url, simulator, env: { LOG_LEVEL: 'info' } });
    jetpost.signal('SIGUSR1');
    // Node says on stderr that its inspector listens (or could not, its port taken): either is the fault.
    const inspector = (line: string) => /Debugger listening|Starting inspector/.test(line);
    const outcome = await waitUntil(
      'jetpost to answer SIGUSR1',
      () => jetpost.output().find((line) => inspector(line) || (line.includes('SIGUSR1 ignored') && line.includes('"signal":"SIGUSR1"'))),
      { timeoutMs: 30_000, watch: [jetpost] },
    );
    const healthz = (await fetch(`${jetpost.url}/healthz`)).status;
    jetpost.signal('SIGTERM');
    const exit = await waitForExit(jetpost, 60_000);

    expect(inspector(outcome), outcome).to.equal(false);
    expect({ healthz, exit: exit.signal ?? exit.code }).to.deep.equal({ healthz: 200, exit: 0 });
    expect(jetpost.output().filter(inspector)).to.deep.equal([]);
  });
});
