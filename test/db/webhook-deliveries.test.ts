// The webhook outbox's claim token: only the claim that made an attempt may record its outcome. A
// dispatcher whose claim lapsed (a receiver slower than the claim) or whose delivery was redelivered
// meanwhile must not overwrite what the newer claim does. And the answers that speak for a whole
// endpoint: a throttle holds back the app's deliveries, a 410 Gone disables its webhook.
import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import { setWebhook } from '../../src/db/apps-repo.js';
import { insertJobs } from '../../src/db/jobs-repo.js';
import { notifyChannels } from '../../src/db/notify.js';
import { type Pool, withTransaction } from '../../src/db/pool.js';
import { recordStatusChanges } from '../../src/db/status-changes-repo.js';
import { claimDueDeliveries, redeliver, settleDelivery } from '../../src/db/webhook-deliveries-repo.js';
import { type AttemptResult, deliveryOutcome, type DueDelivery } from '../../src/domain/webhook-delivery.js';
import { createAppWithKey } from '../../src/services/apps.js';
import { queueWebhookDeliveries } from '../../src/services/webhook-outbox.js';
import { createWebhookDeliveries, redeliverAppDelivery } from '../../src/services/webhooks.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';

/** An app with a webhook and one status change queued for it; returns the app's id. */
async function oneDelivery(pool: Pool): Promise<string> {
  const { app } = await createAppWithKey(pool, `outbox-${Math.random().toString(36).slice(2, 8)}`);
  await pool.query("update apps set webhook_url = 'https://hooks.example.com/jetpost', webhook_secret = 'whsec_test' where id = $1", [app.id]);
  await queueChange(pool, app.id);
  return app.id;
}

/** One more status change of the app's, with its delivery queued as sends and events queue them. */
async function queueChange(pool: Pool, appId: string): Promise<void> {
  const [jobId] = await insertJobs(pool, appId, [
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

describe('webhook deliveries: sharing the slots between apps', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it("when an app has a backlog due for long and others have fresh deliveries, then the apps take turns: each app's next delivery goes before another's second in flight", async () => {
    db = await createTestDatabase();
    const backlogged = await oneDelivery(db.pool);
    for (let i = 0; i < 5; i++) {
      await queueChange(db.pool, backlogged);
    }
    // The backlog has been due for an hour (a slow receiver's); the others' changes just came.
    await db.pool.query("update webhook_deliveries set next_attempt_at = now() - interval '1 hour' where app_id = $1", [backlogged]);
    const fresh = [await oneDelivery(db.pool), await oneDelivery(db.pool)];
    const claim = async (limit: number, inFlight: Map<string, number>) =>
      (await claimDueDeliveries(db.pool, { limit, perApp: 4, inFlight, lockMs: 60_000 })).map((delivery) => delivery.appId);

    // Three slots: one for each app, the backlog's first (the longest due) first.
    expect(await claim(3, new Map())).to.have.members([backlogged, ...fresh]);
    // The backlogged app has one in flight here: a free slot goes to an app with none, however long the backlog has been due.
    await db.pool.query('update webhook_deliveries set locked_until = null');
    expect(await claim(1, new Map([[backlogged, 1]]))).to.deep.equal([fresh[0]]);
  });
});

describe('webhook deliveries: answers that speak for the endpoint', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it("when an app's receiver throttled it, then its due deliveries are not claimed until then, another app's are, and the next due time waits for the throttle", async () => {
    db = await createTestDatabase();
    const throttledApp = await oneDelivery(db.pool);
    const otherApp = await oneDelivery(db.pool);
    const until = new Date(Date.now() + 60_000);
    const deliveries = createWebhookDeliveries(db.pool, createBus(), notifyChannels(TEST_SCHEMA));
    const [first] = await claimDueDeliveries(db.pool, { limit: 1, perApp: 1, inFlight: new Map(), lockMs: 60_000 });
    expect(first?.appId).to.equal(throttledApp);

    await deliveries.settle(first!, { kind: 'retry', nextAttemptAt: until, statusCode: 429, error: 'the receiver answered 429', throttledUntil: until });
    await queueChange(db.pool, throttledApp);
    await db.pool.query('update webhook_deliveries set next_attempt_at = now() where app_id = $1', [throttledApp]);
    const claimed = await claimDueDeliveries(db.pool, { limit: 10, perApp: 10, inFlight: new Map(), lockMs: 60_000 });

    expect(claimed.map((delivery) => delivery.appId))
      .to.include(otherApp)
      .and.not.include(throttledApp);
    // Every other app's delivery is in flight now: the next due one is the throttled app's, at its throttle's end.
    const next = await deliveries.nextDueAt({ perApp: 1, inFlight: new Map(claimed.map((delivery) => [delivery.appId, 1])) });
    expect(next?.getTime()).to.be.within(until.getTime() - 1, until.getTime() + 1);
  });

  it("when a delivery is redelivered while its app's deliveries are paused, then the pause is over: the delivery goes now, alone, and its answer decides", async () => {
    db = await createTestDatabase();
    const appId = await oneDelivery(db.pool);
    const deliveries = createWebhookDeliveries(db.pool, createBus(), notifyChannels(TEST_SCHEMA));
    const first = await claimOne(db.pool, 60_000);
    const anHourOn = new Date(Date.now() + 3_600_000);
    await deliveries.settle(first, { kind: 'retry', nextAttemptAt: anHourOn, statusCode: 503, error: 'the receiver answered 503', throttledUntil: anHourOn });
    expect(await claimDueDeliveries(db.pool, { limit: 10, perApp: 10, inFlight: new Map(), lockMs: 60_000 }), 'paused').to.deep.equal([]);
    const { rows } = await db.pool.query<{ name: string }>('select name from apps where id = $1', [appId]);

    await redeliverAppDelivery(db.pool, notifyChannels(TEST_SCHEMA), rows[0]!.name, first.id);
    await queueChange(db.pool, appId);
    const claimed = await claimDueDeliveries(db.pool, { limit: 10, perApp: 10, inFlight: new Map(), lockMs: 60_000 });

    expect(claimed.map((delivery) => [delivery.id, delivery.probe])).to.deep.equal([[first.id, true]]);
  });

  it("when an app's pause is over, then one delivery goes alone until an answer: no answer pauses the app again, an answer ends the pause and the rest go", async () => {
    db = await createTestDatabase();
    const appId = await oneDelivery(db.pool);
    for (let i = 0; i < 3; i++) {
      await queueChange(db.pool, appId);
    }
    const deliveries = createWebhookDeliveries(db.pool, createBus(), notifyChannels(TEST_SCHEMA));
    // A pause that has just ended.
    await db.pool.query("update apps set webhook_throttled_until = now() - interval '1 second' where id = $1", [appId]);
    const claim = (inFlight: Map<string, number>) => claimDueDeliveries(db.pool, { limit: 10, perApp: 4, inFlight, lockMs: 60_000 });

    // Another app's fresh delivery goes first: the lone attempt after a pause waits for the apps whose receivers answer.
    const fresh = await oneDelivery(db.pool);
    expect((await claimDueDeliveries(db.pool, { limit: 1, perApp: 4, inFlight: new Map(), lockMs: 60_000 })).map((d) => d.appId)).to.deep.equal([fresh]);

    const [probe, ...more] = await claim(new Map([[fresh, 1]]));
    expect(more, 'one alone after the pause').to.deep.equal([]);
    expect(probe!.probe).to.equal(true);
    // While it is in flight, the app has no room: nothing more to claim, and no due time to wake up for.
    expect(await claim(new Map([[appId, 1]]))).to.deep.equal([]);
    expect(await deliveries.nextDueAt({ perApp: 4, inFlight: new Map([[appId, 1]]) })).to.equal(null);

    // No answer (refused): paused again.
    const until = new Date(Date.now() + 60_000);
    const refused = { kind: 'retry', nextAttemptAt: until, statusCode: null, error: 'connect ECONNREFUSED 127.0.0.1:9', throttledUntil: until } as const;
    expect(await deliveries.settle(probe!, refused)).to.equal(true);
    expect(await claim(new Map())).to.deep.equal([]);
    expect((await deliveries.nextDueAt({ perApp: 4, inFlight: new Map() }))?.getTime()).to.be.within(until.getTime() - 1, until.getTime() + 1);

    // Over again: the next one goes alone, and its answer (even a 500, which speaks for the delivery only) ends the pause.
    await db.pool.query("update apps set webhook_throttled_until = now() - interval '1 second' where id = $1", [appId]);
    const [second, ...none] = await claim(new Map());
    expect(none).to.deep.equal([]);
    await deliveries.settle(second!, { kind: 'retry', nextAttemptAt: until, statusCode: 500, error: 'the receiver answered 500' });
    const rest = await claim(new Map());
    expect(rest.map((delivery) => delivery.probe)).to.deep.equal([false, false]);
    expect((await db.pool.query('select webhook_throttled_until from apps where id = $1', [appId])).rows[0].webhook_throttled_until).to.equal(null);
  });

  it("when an app's receiver stays down, then each pause after a lone attempt that failed is twice the last (10 s, 20 s, 40 s), the deliveries in flight at the start count one pause, and an answer starts again from 10 s", async () => {
    db = await createTestDatabase();
    const appId = await oneDelivery(db.pool);
    for (let i = 0; i < 5; i++) {
      await queueChange(db.pool, appId);
    }
    const deliveries = createWebhookDeliveries(db.pool, createBus(), notifyChannels(TEST_SCHEMA));
    const retry = { baseMs: 10_000, factor: 2, maxMs: 3_600_000, jitter: 0 };
    const settleAt = async (delivery: DueDelivery, result: AttemptResult) => {
      const now = new Date();
      await deliveries.settle(delivery, deliveryOutcome(delivery, result, { retry, retryWindowMs: 24 * 3_600_000, now, random: () => 0.5 }));
      return now.getTime();
    };
    const pause = async () => {
      const { rows } = await db.pool.query<{ pauses: number; until: Date | null }>(
        'select webhook_pauses as pauses, webhook_throttled_until as until from apps where id = $1',
        [appId],
      );
      return { pauses: rows[0]!.pauses, until: rows[0]!.until?.getTime() ?? null };
    };
    const overAndProbe = async () => {
      await db.pool.query("update apps set webhook_throttled_until = now() - interval '1 second' where id = $1", [appId]);
      const claimed = await claimDueDeliveries(db.pool, { limit: 10, perApp: 4, inFlight: new Map(), lockMs: 60_000 });
      expect(claimed.map((delivery) => delivery.probe)).to.deep.equal([true]);
      return claimed[0]!;
    };
    const refused = { error: 'connect ECONNREFUSED 127.0.0.1:9' };

    // Two in flight when the receiver goes down: one pause of 10 s (from the later answer), counted once.
    const [first, second] = await claimDueDeliveries(db.pool, { limit: 2, perApp: 4, inFlight: new Map(), lockMs: 60_000 });
    expect([first!.pauses, second!.pauses]).to.deep.equal([0, 0]);
    await settleAt(first!, refused);
    const secondAt = await settleAt(second!, refused);
    expect(await pause()).to.deep.equal({ pauses: 1, until: secondAt + 10_000 });

    // The lone attempt after each pause fails: the next pause is twice as long.
    const probe = await overAndProbe();
    expect(probe.pauses).to.equal(1);
    const probeAt = await settleAt(probe, refused);
    expect(await pause()).to.deep.equal({ pauses: 2, until: probeAt + 20_000 });
    const overloaded = await overAndProbe();
    const overloadedAt = await settleAt(overloaded, { statusCode: 503 });
    expect(await pause()).to.deep.equal({ pauses: 3, until: overloadedAt + 40_000 });

    // An answer ends the pauses: the next outage starts again from 10 s.
    await settleAt(await overAndProbe(), { statusCode: 500 });
    expect(await pause()).to.deep.equal({ pauses: 0, until: null });
    const [afterwards] = await claimDueDeliveries(db.pool, { limit: 1, perApp: 4, inFlight: new Map(), lockMs: 60_000 });
    const afterwardsAt = await settleAt(afterwards!, refused);
    expect(await pause()).to.deep.equal({ pauses: 1, until: afterwardsAt + 10_000 });

    // A new URL is a new receiver: no pause, none counted.
    await db.pool.query("update apps set webhook_throttled_until = now() + interval '1 hour', webhook_pauses = 7 where id = $1", [appId]);
    await setWebhook(db.pool, appId, { url: 'https://other.example.com/jetpost', secret: 'whsec_test', eventTypes: null, disabled: null });
    expect(await pause()).to.deep.equal({ pauses: 0, until: null });
  });

  it('when a replica of a release before sql/39 ended the pauses (a rolling upgrade), then the count it left does not lengthen the next outage: its first pause is 10 s', async () => {
    db = await createTestDatabase();
    const appId = await oneDelivery(db.pool);
    const deliveries = createWebhookDeliveries(db.pool, createBus(), notifyChannels(TEST_SCHEMA));
    const retry = { baseMs: 10_000, factor: 2, maxMs: 3_600_000, jitter: 0 };
    // Such a replica ends a pause (or sets a new URL) with webhook_throttled_until = null only.
    await db.pool.query('update apps set webhook_throttled_until = null, webhook_pauses = 6 where id = $1', [appId]);

    const [delivery] = await claimDueDeliveries(db.pool, { limit: 1, perApp: 4, inFlight: new Map(), lockMs: 60_000 });
    expect(delivery!.pauses).to.equal(0);
    const now = new Date();
    const outcome = deliveryOutcome(delivery!, { error: 'connect ECONNREFUSED 127.0.0.1:9' }, { retry, retryWindowMs: 24 * 3_600_000, now, random: () => 0.5 });
    await deliveries.settle(delivery!, outcome);

    const { rows } = await db.pool.query<{ pauses: number; until: Date }>(
      'select webhook_pauses as pauses, webhook_throttled_until as until from apps where id = $1',
      [appId],
    );
    expect({ pauses: rows[0]!.pauses, until: rows[0]!.until.getTime() }).to.deep.equal({ pauses: 1, until: now.getTime() + 10_000 });
  });

  it('when a receiver answers 410 Gone, then its webhook is disabled, its pending deliveries fail, and new changes queue none; an answer from a replaced URL disables nothing and leaves its delivery due again', async () => {
    db = await createTestDatabase();
    const appId = await oneDelivery(db.pool);
    const deliveries = createWebhookDeliveries(db.pool, createBus(), notifyChannels(TEST_SCHEMA));
    const gone = { kind: 'failed', statusCode: 410, error: 'the receiver answered 410 Gone', disablesWebhook: true } as const;
    const [stale] = await claimDueDeliveries(db.pool, { limit: 1, perApp: 1, inFlight: new Map(), lockMs: 60_000 });
    // The answer comes from a URL the app no longer has: it disables nothing, and the delivery is
    // due again at once, for the new URL.
    await db.pool.query("update apps set webhook_url = 'https://new.example.com/hooks' where id = $1", [appId]);
    expect(await deliveries.settle(stale!, gone)).to.equal(true);
    expect((await db.pool.query('select webhook_disabled_at from apps where id = $1', [appId])).rows[0].webhook_disabled_at).to.equal(null);
    const { rows: again } = await db.pool.query<{ status: string; due: boolean }>(
      'select status, next_attempt_at <= now() as due from webhook_deliveries where id = $1',
      [stale!.id],
    );
    expect(again).to.deep.equal([{ status: 'pending', due: true }]);

    await db.pool.query("update apps set webhook_url = 'https://hooks.example.com/jetpost' where id = $1", [appId]);
    await queueChange(db.pool, appId);
    await queueChange(db.pool, appId);
    const [answered] = await claimDueDeliveries(db.pool, { limit: 1, perApp: 1, inFlight: new Map(), lockMs: 60_000 });
    await deliveries.settle(answered!, gone);
    await queueChange(db.pool, appId);

    const { rows: app } = await db.pool.query('select webhook_disabled_at, webhook_disabled_reason from apps where id = $1', [appId]);
    expect(app[0].webhook_disabled_at).to.be.instanceOf(Date);
    expect(app[0].webhook_disabled_reason).to.equal('the receiver answered 410 Gone');
    const { rows } = await db.pool.query<{ status: string; last_error: string }>('select status, last_error from webhook_deliveries order by id');
    expect(rows.map((row) => row.status)).to.deep.equal(['failed', 'failed', 'failed']);
    expect(rows.slice(1).every((row) => row.last_error === 'the receiver answered 410 Gone')).to.equal(true);
  });
});
