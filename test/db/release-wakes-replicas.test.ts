// Jobs a stopping replica gives back unsent (SIGTERM during a rolling restart), and those the lease
// reaper returns, are due at once: the other replicas' idle consumers, asleep until their idle check
// (IDLE_CHECK_MS) because those jobs were not claimable when they last looked, must be told, as an
// enqueue tells them.
import { expect } from 'chai';
import nock from 'nock';

import { CLAIM_MAX_BYTES } from '../../src/db/jobs-repo.js';
import { listen, type Listener, notifyChannels } from '../../src/db/notify.js';
import { createInFlightLimit } from '../../src/domain/in-flight-limit.js';
import type { SendingService } from '../../src/services/sending.js';
import type { ConsumerPool } from '../../src/workers/consumer-pool.js';
import { createWakeup } from '../../src/workers/wakeup.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { testLogger } from '../support/log.js';
import { isolateNetwork, restoreNetwork, type SendCall, sendResponseText } from '../support/mailjet-nock.js';
import { testConsumerPool, testSendingService } from '../support/sending.js';
import { MAILJET_TEST_KEY, MAILJET_TEST_ORIGIN, MAILJET_TEST_SECRET } from '../support/service.js';

describe('jobs given back by a stopping replica', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let consumers: ConsumerPool | undefined;
  let listener: Listener | undefined;

  beforeEach(async () => {
    db = await createTestDatabase();
    isolateNetwork();
  });

  afterEach(async () => {
    await consumers?.stop(10_000);
    consumers = undefined;
    await listener?.close();
    listener = undefined;
    restoreNetwork();
    await db.drop();
  });

  /** Mailjet, answering each send (and each look-up: none found); the calls are kept. */
  function mailjet(): SendCall[] {
    const sends: SendCall[] = [];
    nock(MAILJET_TEST_ORIGIN)
      .persist()
      .post('/v3.1/send')
      .basicAuth({ user: MAILJET_TEST_KEY, pass: MAILJET_TEST_SECRET })
      .reply((_uri, body) => {
        sends.push(body as SendCall);
        return [200, sendResponseText(body as SendCall).text, { 'content-type': 'application/json' }];
      })
      .get('/v3/REST/message')
      .query(true)
      .reply(200, { Count: 0, Data: [], Total: 0 });
    return sends;
  }

  /** Replica B's consumers, woken by NOTIFY as main.ts wires them; resolves once they found nothing to claim and went to sleep. */
  async function idleReplica(sending: SendingService): Promise<void> {
    const wakeup = createWakeup();
    listener = listen({ connectionString: db.url, channels: { [notifyChannels(TEST_SCHEMA).jobs]: () => wakeup.wake() }, log: testLogger() });
    await listener.firstAttempt;
    let bIdle!: () => void;
    const idle = new Promise<void>((resolve) => (bIdle = resolve));
    // Its idle check is far longer than the test: a job left to it is never sent in it.
    consumers = testConsumerPool({
      sending: {
        ...sending,
        nextRunAt: async () => {
          const next = await sending.nextRunAt();
          bIdle();
          return next;
        },
      },
      wakeup,
      inFlight: createInFlightLimit({ max: 1, callsPerSecond: 0 }),
    });
    consumers.start();
    await idle;
  }

  async function accepted(jobId: string): Promise<void> {
    for (;;) {
      const { rows } = await db.pool.query<{ status: string }>('select status from email_send_jobs where id = $1', [jobId]);
      if (rows[0]!.status === 'accepted') {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("when replica A gives back the jobs it held (it stops), then replica B's idle consumers send them at once, not at their idle check", async () => {
    const app = await makeApp(db.pool);
    const jobId = await makeJob(db.pool, { appId: app.id, to: ['ada@example.org'] });
    const sending = testSendingService(db.pool);
    // Replica A holds the job (a call of its batch still waiting at its send gate).
    const held = await sending.claim('replica-a/0', 50, CLAIM_MAX_BYTES);
    expect(held.map((job) => job.id)).to.deep.equal([jobId]);
    const sends = mailjet();
    await idleReplica(sending);

    // Replica A stops: its consumers give the job back unsent.
    expect(await sending.release('replica-a/0', [jobId])).to.deep.equal([jobId]);

    await accepted(jobId);
    expect(sends, 'calls made').to.have.length(1);
  });

  it("when a replica without consumers reaps the lease of a job whose replica died, then replica B's idle consumers send it at once, not at their idle check", async () => {
    const app = await makeApp(db.pool);
    const jobId = await makeJob(db.pool, { appId: app.id, to: ['ada@example.org'] });
    const sending = testSendingService(db.pool);
    // Replica A took the job and died (kill -9) mid-call: its lease runs out.
    await sending.claim('replica-a/0', 50, CLAIM_MAX_BYTES);
    await db.pool.query(`update email_send_jobs set locked_until = now() - interval '1 second' where id = $1`, [jobId]);
    const sends = mailjet();
    await idleReplica(sending);

    // The lease reaper of replica C (WORKER_CONCURRENCY=0: it wakes no consumer of its own).
    expect(await sending.reapExpiredLeases(100)).to.deep.equal([{ id: jobId, status: 'deferred' }]);

    await accepted(jobId);
    expect(sends, 'calls made').to.have.length(1);
  });
});
