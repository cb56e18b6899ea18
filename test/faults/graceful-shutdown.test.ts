// Scenario 6: SIGTERM while jetpost drains through a slow Mailjet (500 ms a call). Each claimed batch
// holds several calls' worth of recipients, so at the signal every consumer has a call in flight and
// more of its batch waiting. The process must finish the calls in flight, give the rest back unsent
// (queued, attempt not counted), and exit 0 within SHUTDOWN_TIMEOUT_MS; a restart then sends the rest,
// each message exactly once.
import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { countStatus, jobFacts, queueMessages, waitForJobs } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { customIdOf, neverSent, sentTwice } from '../support/faults/simulator.js';
import { seconds, waitForExit, waitUntil } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { messages: 80, concurrency: 2 },
  full: { messages: 600, concurrency: 4 },
});
/** 10 recipients a message and 20 messages a batch: 200 recipients, i.e. 4 calls of 50 per batch. */
const RECIPIENTS = 10;
const BATCH_SIZE = 20;
const LATENCY_MS = 500;
const SHUTDOWN_TIMEOUT_MS = 5_000;

function tenRecipients(index: number): Record<string, unknown> {
  const address = (slot: number) => `noevents-${index}-${slot}@example.com`;
  return messageTo([address(0), address(1)], {
    cc: [2, 3, 4, 5].map(address),
    bcc: Array.from({ length: RECIPIENTS - 6 }, (_, slot) => address(slot + 6)),
  });
}

describe(`faults: graceful shutdown while draining (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 90_000, full: 600_000 }));
  const harness = useFaultHarness();

  it(`when SIGTERM arrives mid-drain with ${LATENCY_MS} ms Mailjet latency, then jetpost exits 0 in time, releases unsent claims without counting them, and a restart sends the rest once`, async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    simulator.faults.set({ latencyMs: LATENCY_MS });
    const env = {
      WORKER_CONCURRENCY: String(SIZE.concurrency),
      BATCH_SIZE: String(BATCH_SIZE),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      // Longer than the whole scenario: nothing may come back through the reaper, only through the release.
      LEASE_MS: '120000',
    };
    const first = await harness.jetpost({ name: 'jetpost-1', port, databaseUrl: db.url, simulator, env });
    const jobIds = await queueMessages(
      first.url,
      key,
      Array.from({ length: SIZE.messages }, (_, index) => tenRecipients(index)),
    );

    // The signal lands mid-call: some jobs are accepted already (the consumers are on a later call of their
    // batches), and the newest call went out at least 100 ms ago, so no consumer is between two calls.
    await waitUntil(
      'jobs accepted and every consumer in the middle of a call',
      async () => {
        const newest = simulator.sendCallLog().at(-1);
        return newest !== undefined && Date.now() - newest.at.getTime() >= 100 && (await countStatus(db.pool, 'accepted')) > 0;
      },
      { timeoutMs: 30_000, intervalMs: 10, watch: [first] },
    );
    const { rows: held } = await db.pool.query<{ id: string }>("select id::text from email_send_jobs where status = 'processing'");
    const signalled = Date.now();
    first.signal('SIGTERM');
    const exit = await waitForExit(first, SHUTDOWN_TIMEOUT_MS + 10_000);
    const exitMs = Date.now() - signalled;
    // A consumer already past its "stopping?" check when the signal lands may still start one call.
    const callsAfterSignal = simulator.sendCallLog().filter((call) => call.at.getTime() >= signalled).length;

    const afterStop = await jobFacts(db.pool);
    const heldIds = new Set(held.map((row) => row.id));
    const released = afterStop.filter((job) => heldIds.has(job.id) && job.status === 'queued');
    const acceptedBeforeRestart = afterStop.filter((job) => job.status === 'accepted').length;

    expect(exit, 'exit of jetpost after SIGTERM').to.deep.equal({ code: 0, signal: null });
    expect(exitMs, 'time from SIGTERM to exit').to.be.below(SHUTDOWN_TIMEOUT_MS);
    expect(
      afterStop.filter((job) => !['accepted', 'queued'].includes(job.status)).map((job) => `${job.id} ${job.status}`),
      'jobs neither accepted nor queued',
    ).to.deep.equal([]);
    expect(held.length, 'jobs claimed when SIGTERM arrived').to.be.above(0);
    expect(released.length, 'claimed jobs given back unsent (a batch had calls left)').to.be.above(0);
    for (const job of afterStop.filter((candidate) => candidate.status === 'queued')) {
      expect(job.attempts, `attempts of queued job ${job.id}`).to.equal(0);
    }
    // Released means not sent: the simulator never saw them.
    const copies = new Set(simulator.messages.map((accepted) => accepted.customId));
    expect(
      released.filter((job) => copies.has(customIdOf(job.id))).map((job) => job.id),
      'released jobs that were sent anyway',
    ).to.deep.equal([]);

    const second = await harness.jetpost({ name: 'jetpost-2', port, databaseUrl: db.url, simulator, env });
    await waitForJobs(db.pool, SIZE.messages, ['accepted'], { timeoutMs: byScale({ fast: 60_000, full: 300_000 }), watch: [second] });

    const twice = sentTwice(simulator);
    const final = await jobFacts(db.pool);
    recordFigures(
      `6 SIGTERM mid-drain, ${SIZE.messages}×${RECIPIENTS} recipients, latency ${LATENCY_MS} ms`,
      `exit code ${exit.code} after ${exitMs} ms (limit ${SHUTDOWN_TIMEOUT_MS})`,
      `claimed at SIGTERM ${held.length}: accepted ${held.length - released.length}, released ${released.length} (attempts 0)`,
      `calls started after SIGTERM ${callsAfterSignal}`,
      `accepted before restart ${acceptedBeforeRestart}, after ${final.filter((job) => job.status === 'accepted').length}/${SIZE.messages}`,
      `sent twice ${twice.length}`,
      seconds(started),
    );
    expect(twice, 'CustomIDs the simulator accepted more than once').to.deep.equal([]);
    expect(neverSent(simulator, jobIds)).to.deep.equal([]);
    expect(
      final.filter((job) => job.attempts !== 1).map((job) => `${job.id}: ${job.attempts}`),
      'jobs not sent in exactly one attempt',
    ).to.deep.equal([]);
  });
});
