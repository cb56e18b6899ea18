// The consumers of one process share one budget of claimed message bytes: each claim is bounded on
// its own, but sixteen consumers each holding a full claim of large messages once put hundreds of
// MiB in the process. Watched from outside: the jobs leased ('processing') while Mailjet holds the
// calls are what the process holds in memory.
import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { createMailjetClient } from '../../src/mailjet/client.js';
import { createSimulator, type Simulator } from '../../src/simulator/server.js';
import type { ConsumerPool, ConsumerPoolOptions } from '../../src/workers/consumer-pool.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { capturingLogger, testLogger } from '../support/log.js';
import { testConsumerPool, testSendingService } from '../support/sending.js';

const KiB = 1024;
const MESSAGES = 24;
/** Random text does not compress: each message is stored, and held, at about this size. */
const MESSAGE_CHARS = 256 * KiB;
const BUDGET = { totalBytes: 1024 * KiB, claimBytes: 512 * KiB };

describe('the consumers of a process share one budget of claimed bytes', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let simulator: Simulator;
  let consumers: ConsumerPool | undefined;

  beforeEach(async () => {
    db = await createTestDatabase();
    simulator = createSimulator({ apiKey: 'k', apiSecret: 's' });
    // Calls held long enough for every consumer to claim what it may meanwhile.
    simulator.faults.set({ latencyMs: 300 });
    await simulator.listen(0);
  });

  function consumersWith(options: Pick<ConsumerPoolOptions, 'concurrency' | 'batchSize' | 'claimBudget' | 'log'>, onClaim = () => {}): ConsumerPool {
    const sending = testSendingService(db.pool);
    // testConsumerPool's idle check is far longer than the test: a consumer that sleeps until then never takes part.
    return testConsumerPool({
      sending: {
        ...sending,
        claim: (...args) => {
          onClaim();
          return sending.claim(...args);
        },
      },
      mailjet: createMailjetClient({ apiKey: 'k', apiSecret: 's', baseUrl: simulator.url!, timeoutMs: 30_000 }),
      ...options,
    });
  }

  async function untilAllAccepted(count: number, watch: (leased: number) => void = () => {}): Promise<void> {
    for (;;) {
      const { rows } = await db.pool.query<{ leased: number; settled: number }>(
        `select count(*) filter (where status = 'processing')::int as leased, count(*) filter (where status = 'accepted')::int as settled from email_send_jobs`,
      );
      watch(rows[0]!.leased);
      if (rows[0]!.settled === count) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  afterEach(async () => {
    await consumers?.stop(10_000);
    consumers = undefined;
    await simulator.close();
    await db.drop();
  });

  it('when many consumers find large messages due, then together they hold no more than the budget plus one message per claim, and all are sent', async () => {
    const app = await makeApp(db.pool);
    for (let index = 0; index < MESSAGES; index += 1) {
      const text = randomBytes((MESSAGE_CHARS * 3) / 4).toString('base64');
      await makeJob(db.pool, {
        appId: app.id,
        to: [`big-${index}@example.com`],
        content: { from: { email: 'app@example.com' }, subject: `big ${index}`, text },
      });
    }
    consumers = consumersWith({ concurrency: 16, batchSize: 50, claimBudget: BUDGET, log: testLogger() });

    consumers.start();
    let mostLeased = 0;
    await untilAllAccepted(MESSAGES, (leased) => (mostLeased = Math.max(mostLeased, leased)));

    // Two claims of 512 KiB in flight at most, each taking what fits plus its first message.
    const claimsInFlight = BUDGET.totalBytes / BUDGET.claimBytes;
    const mostHeld = Math.floor(BUDGET.totalBytes / MESSAGE_CHARS) + claimsInFlight;
    expect(mostLeased, 'jobs leased at once').to.be.at.most(mostHeld);
    expect(simulator.messages).to.have.length(MESSAGES);
  });

  it('when claims return less than they reserved, then the consumers that found no room are woken to claim', async () => {
    const app = await makeApp(db.pool);
    for (let index = 0; index < 40; index += 1) {
      await makeJob(db.pool, { appId: app.id, to: [`small-${index}@example.com`] });
    }
    const { log, lines } = capturingLogger('debug');
    // Room for two claims in flight: the other two consumers find none at first.
    consumers = consumersWith({ concurrency: 4, batchSize: 5, claimBudget: { totalBytes: 2 * MESSAGE_CHARS, claimBytes: MESSAGE_CHARS }, log });

    consumers.start();
    await untilAllAccepted(40);

    const senders = new Set(
      lines()
        .map((line) => JSON.parse(line) as { message: string; consumer?: string })
        .filter((line) => line.message === 'send results recorded')
        .map((line) => line.consumer),
    );
    expect(senders.size, 'consumers that sent').to.equal(4);
  });

  it('when the queue is empty, then the consumers stop claiming, also those that found no room in the budget', async () => {
    let claims = 0;
    // Room for two claims in flight: the other two consumers find none, and each empty claim made room.
    consumers = consumersWith(
      { concurrency: 4, batchSize: 5, claimBudget: { totalBytes: 2 * MESSAGE_CHARS, claimBytes: MESSAGE_CHARS }, log: testLogger() },
      () => {
        claims += 1;
      },
    );

    consumers.start();
    await sleep(1_000);
    const afterFirstRound = claims;
    await sleep(1_000);

    // Each empty claim used to wake the consumers that found no room, whose empty claims woke the others: hundreds a second.
    expect(afterFirstRound, 'claims of the first round').to.be.at.most(8);
    expect(claims - afterFirstRound, 'claims of an idle process').to.equal(0);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
