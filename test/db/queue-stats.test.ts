// The queue figures /metrics reads at scrape time, against a real PostgreSQL: counted by status up
// to the cap, the oldest due job's wait, the webhook backlog, and one read for a storm of scrapes.
import { expect } from 'chai';

import type { Pool } from '../../src/db/pool.js';
import { createQueueStatsReader } from '../../src/services/queue-stats.js';
import { makeApp, makeJob } from '../factories.js';
import { installNodeClock } from '../support/clock-jump.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testLogger } from '../support/log.js';

describe('queue figures for /metrics', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when scraped, then jobs are counted by status up to the cap, and the oldest due job is measured from when it fell due', async () => {
    db = await createTestDatabase();
    const app = await makeApp(db.pool);
    for (let index = 0; index < 3; index += 1) {
      await makeJob(db.pool, { appId: app.id });
    }
    await makeJob(db.pool, { appId: app.id, sendAt: new Date(Date.now() + 3_600_000) });
    await makeJob(db.pool, { appId: app.id, status: 'failed' });
    await db.pool.query("update email_send_jobs set run_at = now() - interval '90 seconds' where status = 'queued'");

    const stats = await createQueueStatsReader({ pool: db.pool, timeoutMs: 10_000, log: testLogger(), cap: 2 }).current();

    expect(stats!.jobs.byStatus).to.deep.equal({ queued: 2, scheduled: 1, deferred: 0, processing: 0, failed: 1 });
    expect(stats!.jobs.oldestDueAgeSeconds).to.be.within(90, 120);
    expect(stats!.webhooks).to.deep.equal({ pending: 0, oldestDueAgeSeconds: 0 });
  });

  it('when many scrapes come at once and within the cache life, then the database is read once', async () => {
    db = await createTestDatabase();
    // Each read is two transactions (the queue depth, the webhook backlog), each on a connection of its own.
    let transactions = 0;
    const counting = new Proxy(db.pool, {
      get(target, property, receiver) {
        if (property === 'connect') {
          return (...args: Parameters<Pool['connect']>) => {
            transactions += 1;
            return (target.connect as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const reader = createQueueStatsReader({ pool: counting, timeoutMs: 10_000, log: testLogger(), ttlMs: 60_000 });

    const answers = await Promise.all(Array.from({ length: 20 }, () => reader.current()));
    await reader.current();

    expect(transactions).to.equal(2);
    expect(new Set(answers.map((stats) => stats!.readAt)).size).to.equal(1);
  });

  it('when the wall clock steps back an hour, then the next scrape after the cache life still reads the queue again', async () => {
    db = await createTestDatabase();
    const app = await makeApp(db.pool);
    const clock = installNodeClock();
    try {
      const reader = createQueueStatsReader({ pool: db.pool, timeoutMs: 10_000, log: testLogger(), ttlMs: 1 });
      expect((await reader.current())!.jobs.byStatus.queued).to.equal(0);
      clock.jump(-3_600_000);
      await makeJob(db.pool, { appId: app.id });
      await new Promise((resolve) => setTimeout(resolve, 5));

      expect((await reader.current())!.jobs.byStatus.queued).to.equal(1);
    } finally {
      clock.restore();
    }
  });
});
