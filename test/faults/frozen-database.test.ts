// Scenario 7: every PostgreSQL process is stopped (SIGSTOP) in the middle of a drain: the server
// keeps its sockets open and answers nothing, like a database host that hangs rather than goes down.
// Nothing tells jetpost the database is gone, so only its own timeouts can. While it is frozen,
// POST /queue, GET /status and GET /readyz must answer 503 with Retry-After within a few seconds
// (not hang, not 500); the process must not pile up connections or crash; once the database is
// continued, the API answers again and the drain finishes with every job sent exactly once.
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
  fast: { messages: 300, freezeMs: 10_000, batchSize: 10, latencyMs: 100 },
  full: { messages: 1500, freezeMs: 20_000, batchSize: 25, latencyMs: 150 },
});
/**
 * The answer must come from jetpost's timeouts (connect and query: about 2.5 s by default), not
 * from the end of the freeze: this bound is generous for a loaded machine and still well short of
 * the freeze.
 */
const ANSWER_WITHIN_MS = 7_000;
const POOL_SIZE = 10;

interface Probe {
  route: string;
  status: number;
  contentType: string;
  retryAfter: string | null;
  ms: number;
}

async function probe(route: string, url: string, init: RequestInit = {}): Promise<Probe> {
  const started = Date.now();
  // The abort only ends a hang (it shows as status 0); the assertion on `ms` is what checks the promise.
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(SIZE.freezeMs * 2) }).catch(() => undefined);
  await response?.text();
  return {
    route,
    status: response?.status ?? 0,
    contentType: response?.headers.get('content-type') ?? '',
    retryAfter: response?.headers.get('retry-after') ?? null,
    ms: Date.now() - started,
  };
}

describe(`faults: frozen database (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 120_000, full: 600_000 }));
  const harness = useFaultHarness();

  it(`when every PostgreSQL process is stopped for ${SIZE.freezeMs / 1000} s mid-drain, then requests get a quick 503 with Retry-After and the drain resumes once it continues`, async () => {
    const started = Date.now();
    const pg = await harness.ownPostgres();
    const { key } = await harness.app(pg.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    simulator.faults.set({ latencyMs: SIZE.latencyMs });
    const child = await harness.jetpost({
      name: 'jetpost',
      port,
      databaseUrl: pg.url,
      simulator,
      // The database timeouts stay at their defaults: they are what this scenario checks.
      env: { BATCH_SIZE: String(SIZE.batchSize), DATABASE_POOL_SIZE: String(POOL_SIZE) },
    });
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

    const frozen = await pg.freeze();
    const frozenAt = Date.now();
    // Three callers, each asking again as soon as it has its answer, for the whole freeze.
    const probeLoop = async (route: string, url: string, init?: RequestInit) => {
      const probes: Probe[] = [];
      while (Date.now() - frozenAt < SIZE.freezeMs) {
        probes.push(await probe(route, url, init));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return probes;
    };
    const auth = { authorization: `Bearer ${key}` };
    const probes = (
      await Promise.all([
        probeLoop('POST /queue', `${child.url}/queue`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify(messageTo('noevents-frozen@example.com')),
        }),
        probeLoop('GET /status', `${child.url}/status/${jobIds[0]}`, { headers: auth }),
        probeLoop('GET /readyz', `${child.url}/readyz`),
      ])
    ).flat();
    const aliveThroughout = child.exitStatus() === undefined;
    pg.thaw();
    const thawedAt = Date.now();

    const [lateJob] = await waitUntil(
      'POST /queue to answer 202 once the database continues',
      async () => queueMessages(child.url, key, [messageTo('noevents-after@example.com')]),
      { timeoutMs: 30_000, intervalMs: 200, watch: [child] },
    );
    const resumedMs = Date.now() - thawedAt;
    const total = SIZE.messages + 1;
    await waitForJobs(pg.pool, total, ['accepted'], { timeoutMs: byScale({ fast: 60_000, full: 300_000 }), watch: [child] });
    const drainedMs = Date.now() - thawedAt;
    // Connections the process holds once it settled: a pile-up during the freeze would show here.
    const { rows } = await pg.pool.query<{ count: number }>(
      "select count(*)::int as count from pg_stat_activity where application_name = 'jetpost' and state is not null",
    );
    const connections = rows[0]!.count;

    const jobs = await jobFacts(pg.pool);
    const twice = sentTwice(simulator);
    const during = (route: string) => probes.filter((p) => p.route === route);
    const describe = (route: string) => {
      const answers = during(route);
      const byStatus = new Map<number, number>();
      answers.forEach(({ status }) => byStatus.set(status, (byStatus.get(status) ?? 0) + 1));
      return `${route} ${[...byStatus].map(([status, count]) => `${status || 'no answer'} ×${count}`).join(', ')}, slowest ${Math.max(...answers.map((p) => p.ms))} ms`;
    };
    recordFigures(
      `7 PostgreSQL frozen (SIGSTOP ${frozen.length} processes) ${(SIZE.freezeMs / 1000).toFixed(0)} s mid-drain of ${SIZE.messages}`,
      `frozen at ${stoppedAt} accepted`,
      `during the freeze: ${describe('POST /queue')}; ${describe('GET /status')}; ${describe('GET /readyz')}`,
      aliveThroughout ? `pid ${child.pid} alive throughout` : 'jetpost EXITED during the freeze',
      `API back ${(resumedMs / 1000).toFixed(1)} s, drained ${(drainedMs / 1000).toFixed(1)} s after the freeze`,
      `accepted ${jobs.filter((job) => job.status === 'accepted').length}/${total}`,
      `sent twice ${twice.length}`,
      `connections after ${connections} (pool ${POOL_SIZE})`,
      seconds(started),
    );

    expect(aliveThroughout, 'jetpost exited while the database was frozen').to.equal(true);
    for (const route of ['POST /queue', 'GET /status', 'GET /readyz']) {
      expect(during(route).length, `${route} probes`).to.be.above(0);
    }
    for (const answer of probes) {
      const what = `${answer.route} while the database is frozen`;
      expect(answer.status, what).to.equal(503);
      expect(answer.retryAfter, `${what}: Retry-After`).to.match(/^\d+$/);
      expect(answer.ms, `${what}: answered within a few seconds`).to.be.below(ANSWER_WITHIN_MS);
      if (answer.route !== 'GET /readyz') {
        expect(answer.contentType, what).to.match(/^application\/problem\+json/);
      }
    }
    expect(jobs.length, 'jobs stored (none from the 503s)').to.equal(total);
    expect(neverSent(simulator, [...jobIds, lateJob!]), 'accepted jobs the simulator never received').to.deep.equal([]);
    expect(twice, 'messages sent twice').to.deep.equal([]);
    expect(connections, 'connections held once settled').to.be.at.most(POOL_SIZE + 1);
  });
});
