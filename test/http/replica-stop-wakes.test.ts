// A replica's consumers wait for the retries it deferred on timers of their own, which end with it:
// when it stops, the other replicas' consumers, asleep until their idle check (IDLE_CHECK_MS) since
// nothing was due when they last looked, must look again, or the retry waits that long.
import { expect } from 'chai';
import nock from 'nock';

import { makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { isolateNetwork, restoreNetwork, type SendCall, sendResponseText } from '../support/mailjet-nock.js';
import { eventually, MAILJET_TEST_KEY, MAILJET_TEST_ORIGIN, MAILJET_TEST_SECRET, startTestService, type TestService } from '../support/service.js';

describe('a replica that stops with a retry deferred', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  const services: TestService[] = [];

  beforeEach(async () => {
    isolateNetwork();
    db = await createTestDatabase();
  });

  afterEach(async () => {
    for (const service of services.splice(0)) {
      await service.stop();
    }
    await db.drop();
    restoreNetwork();
  });

  it("when replica A deferred a job and stops before its retry, then replica B's idle consumers retry it when due, not at their idle check", async () => {
    const sends: SendCall[] = [];
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .basicAuth({ user: MAILJET_TEST_KEY, pass: MAILJET_TEST_SECRET })
      .reply((_uri, body) => {
        sends.push(body as SendCall);
        return [503, '<html><body><h1>503 Service Unavailable</h1></body></html>', { 'content-type': 'text/html' }];
      })
      .post('/v3.1/send')
      .basicAuth({ user: MAILJET_TEST_KEY, pass: MAILJET_TEST_SECRET })
      .reply((_uri, body) => {
        sends.push(body as SendCall);
        return [200, sendResponseText(body as SendCall).text, { 'content-type': 'application/json' }];
      })
      // The 503 left its outcome unknown: it is looked up before it goes again.
      .get('/v3/REST/message')
      .query(true)
      .reply(200, { Count: 0, Data: [], Total: 0 });

    // Replica B starts with nothing to send and sleeps: far longer than the test.
    const b = await startTestService({ db, env: { IDLE_CHECK_MS: '600000' } });
    services.push(b);
    // Its consumers looked for the next job due (a connection's last statement, in pg_stat_activity) and found none.
    await eventually(async () => {
      const { rows } = await db.pool.query(`select 1 from pg_stat_activity where datname = current_database() and query like '%min(first.run_at)%' limit 1`);
      return rows.length > 0 ? true : undefined;
    });
    // A job B was not told of (stored without a NOTIFY), which replica A takes and defers for 2 s.
    const jobId = await makeJob(db.pool, { appId: b.appId, to: ['ada@example.org'] });
    const a = await startTestService({ db, env: { RETRY_BASE_MS: '2000', RETRY_JITTER: '0' } });
    services.push(a);
    await eventually(async () => {
      const { rows } = await db.pool.query<{ status: string }>('select status from email_send_jobs where id = $1', [jobId]);
      return rows[0]!.status === 'deferred' ? true : undefined;
    });

    services.splice(services.indexOf(a), 1);
    await a.stop();

    await eventually(
      async () => {
        const { rows } = await db.pool.query<{ status: string }>('select status from email_send_jobs where id = $1', [jobId]);
        return rows[0]!.status === 'accepted' ? true : undefined;
      },
      30_000,
      'the retry sent by replica B',
    );
    expect(sends, 'calls made').to.have.length(2);
  });
});
