// A job deferred by a failed call falls due after its backoff (RETRY_BASE_MS), not after the idle
// check: the consumer that made the call may find itself past the in-flight limit its own failure
// cut, and then sleeps; the consumers that may still claim were asleep on a timer set before the
// deferral, so they must be told of it.
import { expect } from 'chai';
import nock from 'nock';

import { createInFlightLimit } from '../../src/domain/in-flight-limit.js';
import type { ConsumerPool } from '../../src/workers/consumer-pool.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { isolateNetwork, restoreNetwork, type SendCall, sendResponseText } from '../support/mailjet-nock.js';
import { testConsumerPool, testSendingService } from '../support/sending.js';
import { MAILJET_TEST_KEY, MAILJET_TEST_ORIGIN, MAILJET_TEST_SECRET } from '../support/service.js';

describe('a job deferred by a failed call', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let consumers: ConsumerPool | undefined;

  beforeEach(async () => {
    db = await createTestDatabase();
    isolateNetwork();
  });

  afterEach(async () => {
    await consumers?.stop(10_000);
    consumers = undefined;
    restoreNetwork();
    await db.drop();
  });

  it('when the consumer whose call got a 502 is past the in-flight limit that cut, then the job is still retried after its backoff, not after the idle check', async () => {
    const app = await makeApp(db.pool);
    const jobId = await makeJob(db.pool, { appId: app.id, to: ['ada@example.org'] });

    // Consumer 1 takes the job; consumer 0 claims after it (finding nothing) and goes to sleep until
    // the idle check; only then does Mailjet answer consumer 1's call, with a proxy's 502.
    let consumer1Claimed!: () => void;
    const claimedBy1 = new Promise<void>((resolve) => (consumer1Claimed = resolve));
    let consumer0Idle!: () => void;
    const idleAt0 = new Promise<void>((resolve) => (consumer0Idle = resolve));
    let claimedOnce = false;
    const sending = testSendingService(db.pool);
    const sends: SendCall[] = [];
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .basicAuth({ user: MAILJET_TEST_KEY, pass: MAILJET_TEST_SECRET })
      .reply(async (_uri, body) => {
        sends.push(body as SendCall);
        await idleAt0;
        return [502, '<html><body><h1>502 Bad Gateway</h1></body></html>', { 'content-type': 'text/html' }];
      })
      .post('/v3.1/send')
      .basicAuth({ user: MAILJET_TEST_KEY, pass: MAILJET_TEST_SECRET })
      .reply((_uri, body) => {
        sends.push(body as SendCall);
        return [200, sendResponseText(body as SendCall).text, { 'content-type': 'application/json' }];
      })
      // The 502 left its outcome unknown: it is looked up before it goes again.
      .get('/v3/REST/message')
      .query(true)
      .reply(200, { Count: 0, Data: [], Total: 0 });

    // testConsumerPool's idle check is far longer than the test: a job left to it is never retried in it.
    consumers = testConsumerPool({
      sending: {
        ...sending,
        claim: async (workerId, limit, maxBytes) => {
          if (workerId.endsWith('/0') && !claimedOnce) {
            await claimedBy1;
          }
          const jobs = await sending.claim(workerId, limit, maxBytes);
          if (workerId.endsWith('/1') && !claimedOnce) {
            claimedOnce = true;
            consumer1Claimed();
          }
          return jobs;
        },
        nextRunAt: async () => {
          const next = await sending.nextRunAt();
          if (claimedOnce) {
            consumer0Idle();
          }
          return next;
        },
      },
      concurrency: 2,
      inFlight: createInFlightLimit({ max: 2, callsPerSecond: 0 }),
    });
    consumers.start();

    for (;;) {
      const { rows } = await db.pool.query<{ status: string }>('select status from email_send_jobs where id = $1', [jobId]);
      if (rows[0]!.status === 'accepted') {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(sends, 'calls made').to.have.length(2);
  });
});
