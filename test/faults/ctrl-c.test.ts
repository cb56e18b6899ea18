// Scenario 7: Ctrl-C in the terminal that runs `npm start`, mid-drain, with the embedded PostgreSQL.
// A terminal sends SIGINT to its whole foreground process group: npm, jetpost, and (before issue 8)
// the PostgreSQL jetpost had started, which then stopped mid-batch while jetpost retried recording
// forever. Now the database runs in a session of its own, jetpost finishes its calls in flight,
// gives the rest back, stops the database last and exits 0 within SHUTDOWN_TIMEOUT_MS; npm's relay
// of the same SIGINT is not taken for a second Ctrl-C. A restart sends the rest, each message once.
//
// Scenario 7b: a second signal, sent while the shutdown waits on a call Mailjet holds for a minute,
// makes jetpost exit at once.
//
// Scenario 7c: Ctrl-C reaches an admin command while it starts the embedded PostgreSQL (no jetpost
// running on the data directory). The command ended at once, and the server it had started, in a
// session of its own, ran on without a jetpost until the next start adopted it. Now the command
// stops it before it exits.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { compiledBin } from '../support/compiled-bin.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { countStatus, describeCounts, jobFacts, queueMessages, statusCounts, waitForJobs } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { neverSent, sentTwice } from '../support/faults/simulator.js';
import { seconds, waitForExit, waitUntil } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { messages: 300, concurrency: 2 },
  full: { messages: 2000, concurrency: 4 },
});
const BATCH_SIZE = 20;
const LATENCY_MS = 1_000;
const SHUTDOWN_TIMEOUT_MS = 5_000;
/** "A few seconds" past SHUTDOWN_TIMEOUT_MS, generous for a loaded 2-core machine. */
const EXIT_BUDGET_MS = SHUTDOWN_TIMEOUT_MS + 20_000;

describe(`faults: Ctrl-C and signals (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 180_000, full: 600_000 }));
  const harness = useFaultHarness();

  it(`when Ctrl-C reaches the process group of \`npm start\` mid-drain, then jetpost exits 0 in time, stops its PostgreSQL last, leaves no job processing, and a restart sends the rest once`, async () => {
    const started = Date.now();
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    simulator.faults.set({ latencyMs: LATENCY_MS });
    const env = {
      ...data.env,
      WORKER_CONCURRENCY: String(SIZE.concurrency),
      BATCH_SIZE: String(BATCH_SIZE),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      // Longer than the scenario: nothing may come back through the reaper, only through the release.
      LEASE_MS: '120000',
    };
    const first = await harness.jetpost({ name: 'npm-start-1', port, databaseUrl: undefined, simulator, env, viaNpmStart: true, ownProcessGroup: true });
    const pool = await data.connect();
    const { key } = await harness.app(pool);
    const jobIds = await queueMessages(
      first.url,
      key,
      Array.from({ length: SIZE.messages }, (_, index) => messageTo(`noevents-${index}@example.com`)),
    );
    await waitUntil(
      'jobs accepted and a call in flight',
      async () => {
        const newest = simulator.sendCallLog().at(-1);
        return newest !== undefined && Date.now() - newest.at.getTime() >= 100 && (await countStatus(pool, 'accepted')) > 0;
      },
      { timeoutMs: 60_000, intervalMs: 10, watch: [first] },
    );
    const heldAtSignal = await countStatus(pool, 'processing');
    await pool.end();

    const signalled = Date.now();
    first.signalGroup('SIGINT');
    const exit = await waitForExit(first, EXIT_BUDGET_MS);
    const exitMs = Date.now() - signalled;
    const postgresAfterExit = await data.postgresRunning();
    const output = first.output().join('\n');

    expect(exit, `exit of npm start after Ctrl-C; output:\n${output}`).to.deep.equal({ code: 0, signal: null });
    expect(output, 'a relayed SIGINT taken for a second Ctrl-C').not.to.contain('second signal');
    expect(postgresAfterExit, 'PostgreSQL still running after jetpost exited').to.equal(false);

    // The database as jetpost left it: read through a server the test starts (the restart adopts it).
    await data.startPostgres();
    const check = await data.connect();
    const afterStop = await statusCounts(check);
    const facts = await jobFacts(check);
    expect(afterStop['processing'] ?? 0, `jobs left processing (${describeCounts(afterStop)})`).to.equal(0);
    expect(facts.filter((job) => !['accepted', 'queued'].includes(job.status)).map((job) => `${job.id} ${job.status}`)).to.deep.equal([]);
    expect(
      facts.filter((job) => job.status === 'queued' && job.attempts !== 0).map((job) => job.id),
      'released jobs whose attempt counted',
    ).to.deep.equal([]);

    const second = await harness.jetpost({ name: 'jetpost-2', port, databaseUrl: undefined, simulator, env });
    const final = await waitForJobs(check, SIZE.messages, ['accepted'], { timeoutMs: byScale({ fast: 90_000, full: 300_000 }), watch: [second] });
    // It adopted the server the test started, and stops it on its way out.
    second.signal('SIGTERM');
    const secondExit = await waitForExit(second, EXIT_BUDGET_MS);

    const twice = sentTwice(simulator);
    recordFigures(
      `7 Ctrl-C to the npm start process group mid-drain, ${SIZE.messages} messages, latency ${LATENCY_MS} ms`,
      `exit code ${exit.code} after ${exitMs} ms (limit ${SHUTDOWN_TIMEOUT_MS} + a few s)`,
      `PostgreSQL stopped by jetpost ${postgresAfterExit ? 'no' : 'yes'}`,
      `processing at signal ${heldAtSignal}, after exit ${afterStop['processing'] ?? 0} (${describeCounts(afterStop)})`,
      `after restart accepted ${final['accepted']}/${SIZE.messages}`,
      `sent twice ${twice.length}`,
      seconds(started),
    );
    expect(secondExit, 'exit of the restarted jetpost after SIGTERM').to.deep.equal({ code: 0, signal: null });
    expect(twice, 'CustomIDs the simulator accepted more than once').to.deep.equal([]);
    expect(neverSent(simulator, jobIds)).to.deep.equal([]);
  });

  it('when a second signal comes while the shutdown waits on a call Mailjet holds, then jetpost exits at once; a fast repeat (a double Ctrl-C) does not, as its first line says', async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    // A minute per call, and every deadline longer still: only the second signal can end this soon.
    simulator.faults.set({ latencyMs: 60_000 });
    const env = { MAILJET_TIMEOUT_MS: '120000', SHUTDOWN_TIMEOUT_MS: '120000', WORKER_CONCURRENCY: '1', LOG_LEVEL: 'info' };
    const child = await harness.jetpost({ name: 'jetpost', port, databaseUrl: db.url, simulator, env });
    await queueMessages(child.url, key, [messageTo('noevents-1@example.com')]);
    await waitUntil('the call to reach Mailjet', () => simulator.sendCallLog().length > 0, { timeoutMs: 30_000, watch: [child] });

    child.signal('SIGTERM');
    // A double Ctrl-C: within the window in which a repeat counts as the same signal relayed (npm start does that).
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.signal('SIGTERM');
    // Past that window.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(child.exitStatus(), 'jetpost exited before the call it waits for ended').to.equal(undefined);
    const first = child.output().find((line) => line.includes('"message":"shutting down')) ?? '';
    expect(first, 'what the first line promises').to.contain('a second signal, 2 s or more after this one, exits at once');
    const signalled = Date.now();
    child.signal('SIGTERM');
    const exit = await waitForExit(child, 20_000);
    const exitMs = Date.now() - signalled;

    recordFigures(
      '7b second signal during a shutdown held by a 60 s Mailjet call',
      `exit code ${exit.code} ${exitMs} ms after the second signal`,
      seconds(started),
    );
    expect(exit, 'exit after the second signal').to.deep.equal({ code: 1, signal: null });
    expect(child.output().join('\n')).to.contain('second signal: exiting without finishing the shutdown');
  });

  it('when Ctrl-C reaches an admin command while it starts the embedded PostgreSQL, then the command stops that PostgreSQL before it exits', async () => {
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    // A cluster on the directory and no server running: a jetpost made it, and stopped.
    const maker = await harness.jetpost({ name: 'makes-the-cluster', port, databaseUrl: undefined, simulator, env: data.env });
    maker.signal('SIGTERM');
    await waitForExit(maker, EXIT_BUDGET_MS);
    expect(await data.postgresRunning(), 'a server before the command').to.equal(false);

    // As a shell runs it: the leader of its own process group, which a terminal's Ctrl-C reaches whole.
    const admin = spawn(process.execPath, [await compiledBin('admin'), 'apps', 'list'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'test', ...data.env },
      stdio: 'ignore',
      detached: true,
    });
    const exited = new Promise<number | null>((resolve) => admin.once('exit', (code) => resolve(code)));
    try {
      await waitUntil('the command to start the embedded PostgreSQL', () => data.postgresRunning(), { timeoutMs: 60_000, intervalMs: 10 });
      process.kill(-admin.pid!, 'SIGINT');
      const code = await exited;

      await waitUntil('the PostgreSQL the command started to stop', async () => !(await data.postgresRunning()), { timeoutMs: 20_000 });
      expect(code, 'exit code of the interrupted command').to.equal(130);
    } finally {
      admin.kill('SIGKILL');
    }
  });
});
