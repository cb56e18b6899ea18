// Scenario 2: PostgreSQL stops in the middle of a drain and comes back a few seconds later (same data
// directory, same port). jetpost must ride it out in the same process: while the database is away it
// answers POST /queue and /readyz with a quick 503 (not a hang), and once it is back the drain
// finishes with every job accepted and none lost.
import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { countStatus, jobFacts, queueMessages, waitForJobs } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { neverSent, sentTwice } from '../support/faults/simulator.js';
import { seconds, waitUntil } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { messages: 300, outageMs: 3_000, batchSize: 10, latencyMs: 100 },
  full: { messages: 1500, outageMs: 8_000, batchSize: 25, latencyMs: 150 },
});
/** "A few seconds": with the database down, a request must be answered within this. */
const ANSWER_WITHIN_MS = 5_000;

interface Probe {
  status: number;
  contentType: string;
  ms: number;
}

async function probe(url: string, init: RequestInit = {}): Promise<Probe> {
  const started = Date.now();
  // The abort only bounds a hang; the assertion on `ms` is what checks the promise.
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(ANSWER_WITHIN_MS * 3) });
  await response.text();
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', ms: Date.now() - started };
}

describe(`faults: PostgreSQL restart mid-drain (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 90_000, full: 600_000 }));
  const harness = useFaultHarness();

  it(`when PostgreSQL is down for ${SIZE.outageMs / 1000} s mid-drain, then jetpost stays up, answers 503 meanwhile, and drains every job after the restart`, async () => {
    const started = Date.now();
    const pg = await harness.ownPostgres();
    const { key } = await harness.app(pg.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    simulator.faults.set({ latencyMs: SIZE.latencyMs });
    const child = await harness.jetpost({ name: 'jetpost', port, databaseUrl: pg.url, simulator, env: { BATCH_SIZE: String(SIZE.batchSize) } });
    const jobIds = await queueMessages(
      child.url,
      key,
      Array.from({ length: SIZE.messages }, (_, index) => messageTo(`noevents-${index}@example.com`)),
    );

    const stoppedAt = await waitUntil(
      'a quarter of the jobs to be accepted',
      async () => {
        const count = await countStatus(pg.pool, 'accepted');
        return count >= SIZE.messages / 4 ? count : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20, watch: [child] },
    );
    await pg.stop();
    const outageStarted = Date.now();

    // Probe the API for the whole outage: every answer a quick 503 problem+json.
    const queueProbes: Probe[] = [];
    const readyProbes: Probe[] = [];
    const queueInit: RequestInit = {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(messageTo('noevents-outage@example.com')),
    };
    while (Date.now() - outageStarted < SIZE.outageMs) {
      queueProbes.push(await probe(`${child.url}/queue`, queueInit));
      readyProbes.push(await probe(`${child.url}/readyz`));
      expect(child.exitStatus(), 'jetpost exited while PostgreSQL was down').to.equal(undefined);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const outageMs = Date.now() - outageStarted;
    await pg.start();
    const restartedAt = Date.now();

    // The API recovers: a new message is queued again (the pool reconnects on demand).
    const [lateJob] = await waitUntil(
      'POST /queue to answer 202 after the restart',
      async () => queueMessages(child.url, key, [messageTo('noevents-after@example.com')]),
      { timeoutMs: 20_000, intervalMs: 200, watch: [child] },
    );
    const recoveredMs = Date.now() - restartedAt;
    const total = SIZE.messages + 1;
    await waitForJobs(pg.pool, total, ['accepted'], { timeoutMs: byScale({ fast: 60_000, full: 300_000 }), watch: [child] });
    const drainedMs = Date.now() - restartedAt;

    expect(child.exitStatus(), 'jetpost exited').to.equal(undefined);
    const jobs = await jobFacts(pg.pool);
    expect(jobs.length, 'jobs in the database (queued before and after the outage; none from the 503s)').to.equal(total);
    expect(neverSent(simulator, [...jobIds, lateJob!]), 'accepted jobs the simulator never received').to.deep.equal([]);
    const twice = sentTwice(simulator);
    const slowest = Math.max(...queueProbes.map((p) => p.ms));
    recordFigures(
      `2 PostgreSQL down ${(outageMs / 1000).toFixed(1)} s mid-drain of ${SIZE.messages}`,
      `stopped at ${stoppedAt} accepted`,
      `POST /queue in outage: ${describeProbes(queueProbes)}, slowest ${slowest} ms`,
      `/readyz: ${describeProbes(readyProbes)}`,
      `pid ${child.pid} alive throughout`,
      `API back ${(recoveredMs / 1000).toFixed(1)} s, drained ${(drainedMs / 1000).toFixed(1)} s after restart`,
      `accepted ${jobs.filter((job) => job.status === 'accepted').length}/${total}`,
      `sent twice ${twice.length}`,
      seconds(started),
    );

    expect(queueProbes.length).to.be.above(0);
    for (const answer of queueProbes) {
      expect(answer.status, 'POST /queue while PostgreSQL is down').to.equal(503);
      expect(answer.contentType).to.match(/^application\/problem\+json/);
      expect(answer.ms, 'POST /queue answered within a few seconds').to.be.below(ANSWER_WITHIN_MS);
    }
    for (const answer of readyProbes) {
      expect(answer.status, '/readyz while PostgreSQL is down').to.equal(503);
      expect(answer.ms, '/readyz answered within a few seconds').to.be.below(ANSWER_WITHIN_MS);
    }
  });
  it("when PostgreSQL terminates jetpost's connections repeatedly mid-drain, then jetpost stays up and drains every job", async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    // Small, quick batches: many short transactions, hence many moments between two of their queries.
    const child = await harness.jetpost({ name: 'jetpost', port, databaseUrl: db.url, simulator, env: { BATCH_SIZE: '2' } });
    const total = byScale({ fast: 600, full: 3000 });
    await queueMessages(
      child.url,
      key,
      Array.from({ length: total }, (_, index) => messageTo(`noevents-${index}@example.com`)),
    );

    let waves = 0;
    let terminated = 0;
    const until = Date.now() + byScale({ fast: 4_000, full: 10_000 });
    while (Date.now() < until && child.exitStatus() === undefined && (await countStatus(db.pool, 'accepted')) < total) {
      const { rows } = await db.pool.query<{ ended: boolean }>(
        "select pg_terminate_backend(pid) as ended from pg_stat_activity where application_name = 'jetpost' and datname = current_database() and pid <> pg_backend_pid()",
      );
      waves += 1;
      terminated += rows.filter((row) => row.ended).length;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const exit = child.exitStatus();
    recordFigures(
      '2b backends terminated repeatedly mid-drain',
      `${waves} waves, ${terminated} connections ended`,
      exit ? `jetpost EXITED (${exit.signal ?? `code ${exit.code}`})` : `pid ${child.pid} alive`,
      `accepted ${await countStatus(db.pool, 'accepted')}/${total}`,
      seconds(started),
    );
    expect(exit, 'jetpost exited while its connections were being terminated').to.equal(undefined);
    await waitForJobs(db.pool, total, ['accepted'], { timeoutMs: 60_000, watch: [child] });
  });
});

function describeProbes(probes: readonly Probe[]): string {
  const byStatus = new Map<number, number>();
  for (const { status } of probes) {
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  }
  return [...byStatus].map(([status, count]) => `${status} ×${count}`).join(', ');
}
