// The webhook outbox's claim token: only the claim that made an attempt may record its outcome. A
// dispatcher whose claim lapsed (a receiver slower than the claim) or whose delivery was redelivered
// meanwhile must not overwrite what the newer claim does.
import { expect } from 'chai';

import { insertJobs } from '../../src/db/jobs-repo.js';
import { notifyChannels } from '../../src/db/notify.js';
import { type Pool, withTransaction } from '../../src/db/pool.js';
import { recordStatusChanges } from '../../src/db/status-changes-repo.js';
import { claimDueDeliveries, redeliver, settleDelivery } from '../../src/db/webhook-deliveries-repo.js';
import type { DueDelivery } from '../../src/domain/webhook-delivery.js';
import { createAppWithKey } from '../../src/services/apps.js';
import { queueWebhookDeliveries } from '../../src/services/webhook-outbox.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';

/** An app with a webhook and one status change queued for it; returns the app's id. */
async function oneDelivery(pool: Pool): Promise<string> {
  const { app } = await createAppWithKey(pool, `outbox-${Math.random().toString(36).slice(2, 8)}`);
  await pool.query("update apps set webhook_url = 'https://hooks.example.com/jetpost', webhook_secret = 'whsec_test' where id = $1", [app.id]);
  const [jobId] = await insertJobs(pool, app.id, [
    {
      job: { content: { from: { email: 'a@example.com' }, text: 'x' }, recipients: [{ kind: 'to', email: 'b@example.com' }], priority: 0 },
      status: 'queued',
      runAt: new Date(),
      maxAttempts: 3,
    },
  ]);
  await withTransaction(pool, async (tx) => {
    const changes = await recordStatusChanges(tx, [{ jobId: jobId!, recipientId: null, oldStatus: 'queued', newStatus: 'cancelled', details: null }]);
    await queueWebhookDeliveries(tx, notifyChannels(TEST_SCHEMA), changes);
  });
  return app.id;
}

async function claimOne(pool: Pool, lockMs: number): Promise<DueDelivery> {
  const [claimed] = await claimDueDeliveries(pool, { limit: 1, perApp: 1, inFlight: new Map(), lockMs });
  expect(claimed, 'a due delivery').not.to.equal(undefined);
  return claimed!;
}

const deliveryRow = async (pool: Pool) =>
  (
    await pool.query<{ status: string; attempts: number; locked: boolean }>(
      'select status, attempts, locked_until is not null as locked from webhook_deliveries',
    )
  ).rows;

describe('webhook deliveries: recording an attempt', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when a claim lapsed and another dispatcher claimed the delivery, then the first one records nothing and the second one does', async () => {
    db = await createTestDatabase();
    await oneDelivery(db.pool);
    const first = await claimOne(db.pool, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = await claimOne(db.pool, 60_000);

    const firstRecorded = await settleDelivery(db.pool, first, { kind: 'delivered', statusCode: 200 });
    const rowAfterFirst = await deliveryRow(db.pool);
    const secondRecorded = await settleDelivery(db.pool, second, {
      kind: 'retry',
      nextAttemptAt: new Date(Date.now() + 60_000),
      statusCode: 503,
      error: 'the receiver answered 503',
    });

    expect([first.attempts, second.attempts]).to.deep.equal([1, 2]);
    expect(firstRecorded).to.equal(false);
    expect(rowAfterFirst).to.deep.equal([{ status: 'pending', attempts: 2, locked: true }]);
    expect(secondRecorded).to.equal(true);
    expect(await deliveryRow(db.pool)).to.deep.equal([{ status: 'pending', attempts: 2, locked: false }]);
  });

  it('when a delivery is redelivered while an attempt is in flight, then that attempt records nothing and the delivery stays due', async () => {
    db = await createTestDatabase();
    const appId = await oneDelivery(db.pool);
    const inFlight = await claimOne(db.pool, 60_000);

    expect(await redeliver(db.pool, appId, inFlight.id)).to.equal(true);
    const recorded = await settleDelivery(db.pool, inFlight, { kind: 'failed', statusCode: 410, error: 'gave up after 1 attempts: the receiver answered 410' });

    expect(recorded).to.equal(false);
    expect(await deliveryRow(db.pool)).to.deep.equal([{ status: 'pending', attempts: 1, locked: false }]);
  });
});
