// Scenario 5: two jetpost processes (two ports, one database) drain one queue. Claims use
// FOR UPDATE SKIP LOCKED, so no message may go to Mailjet twice, and both replicas must take part
// (work queued through one wakes the other through LISTEN/NOTIFY).
import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { jobFacts, metric, queueMessages, waitForJobs } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { neverSent, sentTwice } from '../support/faults/simulator.js';
import { seconds } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { messages: 600, batchSize: 10, latencyMs: 50 },
  full: { messages: 3000, batchSize: 25, latencyMs: 100 },
});

describe(`faults: two replicas, one queue (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 90_000, full: 600_000 }));
  const harness = useFaultHarness();

  it(`when two replicas drain ${SIZE.messages} messages from one database, then no message is sent twice and both take part`, async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const [portA, portB] = [await harness.port(), await harness.port()];
    // Events (none here: "noevents" addresses) would go to replica A.
    const simulator = await harness.simulator(portA);
    simulator.faults.set({ latencyMs: SIZE.latencyMs });
    const env = { BATCH_SIZE: String(SIZE.batchSize) };
    const [a, b] = await Promise.all([
      harness.jetpost({ name: 'replica-a', port: portA, databaseUrl: db.url, simulator, env }),
      harness.jetpost({ name: 'replica-b', port: portB, databaseUrl: db.url, simulator, env }),
    ]);

    // Half through each replica, interleaved, so each one's enqueue has to wake the other.
    const all = Array.from({ length: SIZE.messages }, (_, index) => messageTo(`noevents-${index}@example.com`));
    const ids: string[] = [];
    for (let start = 0; start < all.length; start += 100) {
      ids.push(...(await queueMessages((start / 100) % 2 === 0 ? a.url : b.url, key, all.slice(start, start + 100))));
    }

    await waitForJobs(db.pool, SIZE.messages, ['accepted'], { timeoutMs: byScale({ fast: 60_000, full: 300_000 }), watch: [a, b] });

    const claimedA = await metric(a, 'jetpost_jobs_claimed_total');
    const claimedB = await metric(b, 'jetpost_jobs_claimed_total');
    const twice = sentTwice(simulator);
    recordFigures(
      `5 two replicas drain ${SIZE.messages}`,
      `claimed by A ${claimedA}, by B ${claimedB}`,
      `send calls ${simulator.sendCalls()}`,
      `accepted ${(await jobFacts(db.pool)).filter((job) => job.status === 'accepted').length}/${SIZE.messages}`,
      `sent twice ${twice.length}`,
      seconds(started),
    );
    expect(twice, 'CustomIDs the simulator accepted more than once').to.deep.equal([]);
    expect(neverSent(simulator, ids)).to.deep.equal([]);
    expect(claimedA + claimedB, 'claims: each job exactly once').to.equal(SIZE.messages);
    expect(claimedA, 'jobs claimed by replica A').to.be.above(0);
    expect(claimedB, 'jobs claimed by replica B').to.be.above(0);
  });
});
