// Retention against a real PostgreSQL: history past its retention goes (with everything that hangs
// off a job), history within it stays, a job still in flight, with a webhook still due or with a
// recipient's change within retention is never deleted (even when the change or the redelivery
// commits while retention reads its window), each statement deletes at most a batch, and two
// replicas pruning at once do not collide.
import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import { claimJobs } from '../../src/db/jobs-repo.js';
import { notifyChannels } from '../../src/db/notify.js';
import { createPool, type Pool, withTransaction } from '../../src/db/pool.js';
import { readFeed, recordStatusChanges } from '../../src/db/status-changes-repo.js';
import { NotFoundError } from '../../src/domain/errors.js';
import { parseEventBody } from '../../src/domain/event-parse.js';
import { FEED_PAGE_BYTES } from '../../src/domain/status-change.js';
import { createEventIngest } from '../../src/services/events.js';
import { createRetention, type RetentionPolicy } from '../../src/services/retention.js';
import { queueWebhookDeliveries } from '../../src/services/webhook-outbox.js';
import { redeliverAppDelivery } from '../../src/services/webhooks.js';
import { makeApp, makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { openTransaction, someoneWaitsOn } from '../support/held-transaction.js';
import { testLogger } from '../support/log.js';
import { eventually } from '../support/service.js';

const DAY_MS = 24 * 3_600_000;
const POLICY: RetentionPolicy = {
  jobsMs: 30 * DAY_MS,
  idempotencyKeysMs: DAY_MS,
  unmatchedEventsMs: 7 * DAY_MS,
  rejectedEventsMs: 30 * DAY_MS,
  batchSize: 1_000,
};

/** Moves a job's creation, last change and status changes so far `days` into the past. */
async function age(pool: Pool, jobId: string, days: number): Promise<void> {
  await pool.query(`update email_send_jobs set created_at = now() - make_interval(days => $2), updated_at = now() - make_interval(days => $2) where id = $1`, [
    jobId,
    days,
  ]);
  await pool.query('update status_changes set created_at = now() - make_interval(days => $2) where job_id = $1', [jobId, days]);
}

/** A job's history: an event of its recipient, a status change, and a webhook delivery in `deliveryStatus`. */
async function addHistory(pool: Pool, jobId: string, deliveryStatus: 'pending' | 'delivered' | 'failed'): Promise<void> {
  const [recipientId] = await recipientIds(pool, jobId);
  await pool.query(
    `insert into email_events (dedupe_key, event_type, occurred_at, recipient_id, job_id, payload)
     values ($1, 'sent', now(), $2, $3, '{}')`,
    [`event-${jobId}`, recipientId, jobId],
  );
  await withTransaction(pool, async (tx) => {
    const changes = await recordStatusChanges(tx, [{ jobId, recipientId: recipientId!, oldStatus: 'accepted', newStatus: 'sent', details: null }]);
    await queueWebhookDeliveries(tx, notifyChannels(TEST_SCHEMA), changes);
  });
  await pool.query('update webhook_deliveries set status = $2 where change_id in (select id from status_changes where job_id = $1)', [jobId, deliveryStatus]);
}

async function count(pool: Pool, table: string, where = 'true', values: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from ${table} where ${where}`, values);
  return rows[0]!.n;
}

async function existing(pool: Pool, ids: readonly string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>('select id::text from email_send_jobs where id = any($1::bigint[]) order by id', [ids]);
  return rows.map((row) => row.id);
}

/** A lock class of this file's own, apart from jetpost's advisory locks ("jm", "jr"). */
const PAUSE_LOCK = [0x7470, 0] as const;

interface PausedRetention {
  /** A pool whose sessions stop, the first time they read `jobId`, until `resume()`. */
  pool: Pool;
  /** Resolves once a session of `pool` has stopped there. */
  paused: Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Retention's sessions stop where they read a job (`onlyWhileDeleting`: in a statement that deletes
 * jobs), before they can lock it or delete it: its rows are visible to them through a row security
 * policy that waits on an advisory lock this test holds. Another transaction can then commit between
 * the snapshot of retention's statement and its lock or its delete. (A superuser skips row security:
 * the pool's sessions take a role of their own.)
 */
async function pauseRetentionOnJob(db: TestDatabase, jobId: string, options: { onlyWhileDeleting?: boolean } = {}): Promise<PausedRetention> {
  const { pool } = db;
  const role = `retention_${db.name}`;
  if (!/^\d+$/.test(jobId)) {
    throw new Error(`not a job id: ${jobId}`);
  }
  await pool.query(`create role ${role}`);
  await pool.query(`grant usage on schema ${TEST_SCHEMA} to ${role}`);
  await pool.query(`grant all on all tables in schema ${TEST_SCHEMA} to ${role}`);
  await pool.query(`
    create function pause_on_job(id bigint) returns boolean
      language plpgsql
    as $$
    begin
      if id = ${jobId}${options.onlyWhileDeleting ? " and current_query() ~* 'delete\\s+from\\s+email_send_jobs'" : ''} then
        perform pg_advisory_xact_lock_shared(${PAUSE_LOCK[0]}, ${PAUSE_LOCK[1]});
      end if;
      return true;
    end
    $$`);
  await pool.query('alter table email_send_jobs enable row level security');
  await pool.query(`create policy pause_retention on email_send_jobs to ${role} using (pause_on_job(id))`);
  const held = openTransaction(pool, (tx) => tx.query('select pg_advisory_xact_lock($1::int, $2::int)', [...PAUSE_LOCK]));
  await held.written;
  const paused = createPool({ connectionString: db.url, schema: TEST_SCHEMA, max: 2, log: testLogger() });
  paused.on('connect', (client) => {
    client.query(`set role ${role}`).catch(() => undefined);
  });
  let closed = false;
  return {
    pool: paused,
    paused: someoneWaitsOn(pool, 'advisory', 'retention stopped on the job'),
    async resume() {
      held.commit();
      await held.committed;
    },
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      held.commit();
      await held.committed;
      await paused.end();
      await pool.query(`drop owned by ${role}`);
      await pool.query(`drop role ${role}`);
    },
  };
}

/** A job of two recipients, 31 days old: the first bounced (as the job reads), the second sent as MessageID `messageId`. */
async function bouncedBesideSent(pool: Pool, appId: string, messageId: number): Promise<string> {
  const jobId = await makeJob(pool, { appId, status: 'bounced', to: ['a@example.com', 'b@example.com'] });
  const [bouncedId, sentId] = await recipientIds(pool, jobId);
  await pool.query("update email_recipients set status = 'bounced', mailjet_message_id = $2 where id = $1", [bouncedId, messageId - 1]);
  await pool.query("update email_recipients set status = 'sent', mailjet_message_id = $2 where id = $1", [sentId, messageId]);
  await age(pool, jobId, 31);
  return jobId;
}

/** POSTs one `open` of MessageID `messageId` through the events ingest. */
async function openOf(pool: Pool, messageId: number): Promise<void> {
  const parsed = parseEventBody(`[{"event":"open","time":1700000000,"MessageID":${messageId},"email":"b@example.com"}]`);
  if (!parsed.ok) {
    throw new Error(parsed.reason);
  }
  await createEventIngest(pool, notifyChannels(TEST_SCHEMA))(parsed.events);
}

describe('retention', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when history is past its retention, then it goes with everything hanging off its jobs, and history within retention stays', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    await pool.query("update apps set webhook_url = 'https://hooks.example.com/jetpost', webhook_secret = 'whsec_test' where id = $1", [app.id]);
    const oldSent = await makeJob(pool, { appId: app.id, status: 'sent' });
    const oldFailed = await makeJob(pool, { appId: app.id, status: 'failed' });
    const recentSent = await makeJob(pool, { appId: app.id, status: 'sent' });
    await addHistory(pool, oldSent, 'delivered');
    await addHistory(pool, recentSent, 'delivered');
    await age(pool, oldSent, 31);
    await age(pool, oldFailed, 45);
    await age(pool, recentSent, 29);
    await pool.query(
      `insert into idempotency_keys (app_id, key, request_hash, job_ids, created_at)
       values ($1, 'old', 'h', '{}', now() - interval '25 hours'), ($1, 'recent', 'h', '{}', now() - interval '23 hours')`,
      [app.id],
    );
    await pool.query(
      `insert into email_events (dedupe_key, event_type, occurred_at, mailjet_message_id, payload, received_at)
       values ('unmatched-old', 'open', now(), 1, '{}', now() - interval '8 days'), ('unmatched-recent', 'open', now(), 2, '{}', now() - interval '6 days')`,
    );
    await pool.query(
      `insert into rejected_events (dedupe_key, kind, reason, source, source_length, received_at)
       values ('rejected-old', 'invalid', 'r', 's', 1, now() - interval '31 days'), ('rejected-recent', 'invalid', 'r', 's', 1, now() - interval '29 days')`,
    );
    const bus = createBus();
    const pruned: Array<{ table: string; rows: number }> = [];
    bus.on('retention:pruned', (event) => pruned.push(event));

    const pass = await createRetention({ pool, policy: POLICY, bus }).prune(() => false);

    expect(pass).to.deep.equal({ skipped: false, deleted: { email_send_jobs: 2, idempotency_keys: 1, email_events: 1, rejected_events: 1 } });
    expect(await existing(pool, [oldSent, oldFailed, recentSent])).to.deep.equal([recentSent]);
    for (const table of ['email_recipients', 'email_events', 'status_changes']) {
      expect(await count(pool, table, 'job_id = any($1::bigint[])', [[oldSent, oldFailed]]), `${table} of the pruned jobs`).to.equal(0);
      expect(await count(pool, table, 'job_id = $1', [recentSent]), `${table} of the kept job`).to.be.above(0);
    }
    expect(await count(pool, 'webhook_deliveries')).to.equal(1);
    expect((await pool.query('select key from idempotency_keys')).rows).to.deep.equal([{ key: 'recent' }]);
    expect((await pool.query('select dedupe_key from email_events where recipient_id is null')).rows).to.deep.equal([{ dedupe_key: 'unmatched-recent' }]);
    expect((await pool.query('select dedupe_key from rejected_events')).rows).to.deep.equal([{ dedupe_key: 'rejected-recent' }]);
    expect(pruned.sort((a, b) => a.table.localeCompare(b.table))).to.deep.equal([
      { table: 'email_events', rows: 1 },
      { table: 'email_send_jobs', rows: 2 },
      { table: 'idempotency_keys', rows: 1 },
      { table: 'rejected_events', rows: 1 },
    ]);
  });

  it('when an old job is still in flight (queued, scheduled, deferred, processing) or has a webhook still due, then it is never pruned', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    await pool.query("update apps set webhook_url = 'https://hooks.example.com/jetpost', webhook_secret = 'whsec_test' where id = $1", [app.id]);
    const queued = await makeJob(pool, { appId: app.id });
    const scheduled = await makeJob(pool, { appId: app.id, sendAt: new Date(Date.now() + 3_600_000) });
    const deferred = await makeJob(pool, { appId: app.id, status: 'deferred' });
    const processing = await makeJob(pool, { appId: app.id });
    const webhookDue = await makeJob(pool, { appId: app.id, status: 'sent' });
    await addHistory(pool, webhookDue, 'pending');
    await pool.query("update email_send_jobs set run_at = now() + interval '1 hour' where id = any($1::bigint[])", [[queued, deferred]]);
    const claimed = await claimJobs(pool, 'consumer-1', 10, 3_600_000);
    expect(claimed.map((job) => job.id)).to.deep.equal([processing]);
    const all = [queued, scheduled, deferred, processing, webhookDue];
    for (const id of all) {
      await age(pool, id, 400);
    }

    const pass = await createRetention({ pool, policy: { ...POLICY, jobsMs: DAY_MS }, bus: createBus() }).prune(() => false);

    expect(pass.deleted.email_send_jobs).to.equal(0);
    expect(await existing(pool, all)).to.deep.equal([...all].sort((a, b) => Number(a) - Number(b)));
    expect(await count(pool, 'webhook_deliveries', "status = 'pending'")).to.equal(1);
  });

  it('when there is more to delete than one batch, then every statement deletes at most a batch and the pass still deletes all of it', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    // A recent job among the old ones (here the first by id) is kept, and does not end the pass.
    const recent = await makeJob(pool, { appId: app.id, status: 'cancelled' });
    const jobs: string[] = [];
    for (let index = 0; index < 25; index += 1) {
      jobs.push(await makeJob(pool, { appId: app.id, status: 'cancelled' }));
    }
    for (const id of jobs) {
      await age(pool, id, 31);
    }
    await pool.query(
      `insert into rejected_events (dedupe_key, kind, reason, source, source_length, received_at)
       select 'r-' || n, 'invalid', 'r', 's', 1, now() - interval '40 days' from generate_series(1, 23) as n`,
    );
    const bus = createBus();
    const batches: Array<{ table: string; rows: number }> = [];
    bus.on('retention:pruned', (event) => batches.push(event));

    const pass = await createRetention({ pool, policy: { ...POLICY, batchSize: 10 }, bus }).prune(() => false);

    expect(pass.deleted).to.include({ email_send_jobs: 25, rejected_events: 23 });
    expect(batches.filter((b) => b.table === 'email_send_jobs').map((b) => b.rows)).to.deep.equal([9, 10, 6]);
    expect(batches.filter((b) => b.table === 'rejected_events').map((b) => b.rows)).to.deep.equal([10, 10, 3]);
    expect(await existing(pool, [...jobs, recent])).to.deep.equal([recent]);
  });

  it('when another replica holds the retention lock, then this one skips its pass; and two replicas pruning at once delete each row once, without an error', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    const jobs: string[] = [];
    for (let index = 0; index < 30; index += 1) {
      jobs.push(await makeJob(pool, { appId: app.id, status: 'cancelled' }));
    }
    for (const id of jobs) {
      await age(pool, id, 31);
    }
    const policy = { ...POLICY, batchSize: 10 };

    const other = await pool.connect();
    try {
      await other.query('begin');
      await other.query('select pg_advisory_xact_lock($1::int, $2::int)', [0x6a72, 0]);
      const whileHeld = await createRetention({ pool, policy, bus: createBus() }).prune(() => false);
      expect(whileHeld).to.deep.include({ skipped: true });
      expect(whileHeld.deleted.email_send_jobs).to.equal(0);
      await other.query('commit');
    } finally {
      other.release();
    }

    const [first, second] = await Promise.all([
      createRetention({ pool, policy, bus: createBus() }).prune(() => false),
      createRetention({ pool, policy, bus: createBus() }).prune(() => false),
    ]);
    expect(first!.deleted.email_send_jobs + second!.deleted.email_send_jobs).to.equal(30);
    expect(await existing(pool, jobs)).to.deep.equal([]);
  });

  it('when a recipient of an old job changes now and the job keeps its status (a late open beside a bounce), then the job and that change stay until the change is past retention', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    const jobId = await bouncedBesideSent(pool, app.id, 1002);
    await openOf(pool, 1002);
    // The open moved its recipient (a change for the feed) and left the job as it was, 31 days unchanged.
    const feed = (await readFeed(pool, app.id, { txid: '0', id: '0' }, 10, FEED_PAGE_BYTES)).changes;
    expect(feed.map((change) => [change.jobId, change.newStatus])).to.deep.equal([[jobId, 'opened']]);
    const { rows } = await pool.query("select status, updated_at < now() - interval '30 days' as old from email_send_jobs where id = $1", [jobId]);
    expect(rows).to.deep.equal([{ status: 'bounced', old: true }]);

    const pass = await createRetention({ pool, policy: POLICY, bus: createBus() }).prune(() => false);

    expect(pass.deleted.email_send_jobs).to.equal(0);
    expect((await readFeed(pool, app.id, { txid: '0', id: '0' }, 10, FEED_PAGE_BYTES)).changes.map((change) => change.id)).to.deep.equal([feed[0]!.id]);
    await age(pool, jobId, 31);
    expect((await createRetention({ pool, policy: POLICY, bus: createBus() }).prune(() => false)).deleted.email_send_jobs).to.equal(1);
    expect(await existing(pool, [jobId])).to.deep.equal([]);
  });

  it('when such a late open commits after retention read its window and before it locked the job, then the job, the change and its webhook delivery stay', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    await pool.query("update apps set webhook_url = 'https://hooks.example.com/jetpost', webhook_secret = 'whsec_test' where id = $1", [app.id]);
    const jobId = await bouncedBesideSent(pool, app.id, 1002);
    const retention = await pauseRetentionOnJob(db, jobId);
    try {
      const pass = createRetention({ pool: retention.pool, policy: POLICY, bus: createBus() }).prune(() => false);
      await retention.paused;
      // The open locks the job (not locked by retention yet), moves its recipient, logs the change and commits.
      await openOf(pool, 1002);
      await retention.resume();
      expect((await pass).deleted.email_send_jobs).to.equal(0);
    } finally {
      await retention.close();
    }

    expect(await existing(pool, [jobId])).to.deep.equal([jobId]);
    const feed = (await readFeed(pool, app.id, { txid: '0', id: '0' }, 10, FEED_PAGE_BYTES)).changes;
    expect(feed.map((change) => [change.jobId, change.newStatus])).to.deep.equal([[jobId, 'opened']]);
    expect(await count(pool, 'webhook_deliveries', "status = 'pending' and change_id = $1", [feed[0]!.id])).to.equal(1);
  });

  it('when an old failed webhook delivery is made due again after retention read its window and before it locked the job, then the job and the delivery stay', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    await pool.query("update apps set webhook_url = 'https://hooks.example.com/jetpost', webhook_secret = 'whsec_test' where id = $1", [app.id]);
    const jobId = await makeJob(pool, { appId: app.id, status: 'sent' });
    await addHistory(pool, jobId, 'failed');
    await age(pool, jobId, 31);
    const { rows } = await pool.query<{ id: string }>('select id::text from webhook_deliveries');
    const retention = await pauseRetentionOnJob(db, jobId);
    try {
      const pass = createRetention({ pool: retention.pool, policy: POLICY, bus: createBus() }).prune(() => false);
      await retention.paused;
      await redeliverAppDelivery(pool, notifyChannels(TEST_SCHEMA), app.name, rows[0]!.id);
      await retention.resume();
      expect((await pass).deleted.email_send_jobs).to.equal(0);
    } finally {
      await retention.close();
    }

    expect(await existing(pool, [jobId])).to.deep.equal([jobId]);
    expect(await count(pool, 'webhook_deliveries', "status = 'pending'")).to.equal(1);
  });

  it('when an old delivery is made due again while retention deletes its job, then the redelivery waits and is answered 404, not answered as done and then deleted', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    await pool.query("update apps set webhook_url = 'https://hooks.example.com/jetpost', webhook_secret = 'whsec_test' where id = $1", [app.id]);
    const jobId = await makeJob(pool, { appId: app.id, status: 'sent' });
    await addHistory(pool, jobId, 'failed');
    await age(pool, jobId, 31);
    const { rows } = await pool.query<{ id: string }>('select id::text from webhook_deliveries');
    const retention = await pauseRetentionOnJob(db, jobId, { onlyWhileDeleting: true });
    let redelivery: Promise<unknown> | undefined;
    try {
      const pass = createRetention({ pool: retention.pool, policy: POLICY, bus: createBus() }).prune(() => false);
      await retention.paused;
      let settled = false;
      redelivery = redeliverAppDelivery(pool, notifyChannels(TEST_SCHEMA), app.name, rows[0]!.id).then(
        () => 'redelivered',
        (error: unknown) => error,
      );
      void redelivery.finally(() => (settled = true));
      // Done at once, or waiting for retention's lock of the job.
      await eventually(
        async () => settled || (await pool.query("select 1 from pg_locks where locktype = 'transactionid' and not granted")).rows.length > 0 || undefined,
        20_000,
        'the redelivery done or waiting',
      );
      await retention.resume();
      expect((await pass).deleted.email_send_jobs).to.equal(1);
    } finally {
      await retention.close();
    }

    expect(await redelivery).to.be.instanceOf(NotFoundError);
    expect(await existing(pool, [jobId])).to.deep.equal([]);
    expect(await count(pool, 'webhook_deliveries')).to.equal(0);
  });

  it('when a window of jobs runs past the statement timeout, then it is halved until it fits and the pass goes on, instead of failing at the same place at every pass', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    const jobs: string[] = [];
    for (let index = 0; index < 10; index += 1) {
      jobs.push(await makeJob(pool, { appId: app.id, status: 'sent' }));
    }
    await addHistory(pool, jobs[5]!, 'delivered');
    for (const id of jobs) {
      await age(pool, id, 31);
    }
    await pool.query(
      `insert into rejected_events (dedupe_key, kind, reason, source, source_length, received_at)
       select 'r-' || n, 'invalid', 'r', 's', 1, now() - interval '40 days' from generate_series(1, 3) as n`,
    );
    // The sixth job's event, locked, holds back every window that deletes it until the statement
    // timeout (as a window of long histories runs past it), up to the first window that fits.
    const held = openTransaction(pool, (tx) => tx.query('select 1 from email_events where job_id = $1 for update', [jobs[5]]));
    await held.written;
    const timed = createPool({
      connectionString: db.url,
      schema: TEST_SCHEMA,
      max: 2,
      log: testLogger(),
      timeouts: { connectMs: 5_000, statementMs: 1_000, bulkStatementMs: 1_000 },
    });
    const bus = createBus();
    const windows: number[] = [];
    bus.on('retention:pruned', ({ table, rows }) => {
      if (table === 'email_send_jobs') {
        windows.push(rows);
        held.commit();
      }
    });
    try {
      const pass = await createRetention({ pool: timed, policy: { ...POLICY, batchSize: 8 }, bus }).prune(() => false);
      expect(pass.deleted).to.include({ email_send_jobs: 10, rejected_events: 3 });
    } finally {
      held.commit();
      await held.committed;
      await timed.end();
    }
    expect(windows).to.deep.equal([4, 6]);
    expect(await existing(pool, jobs)).to.deep.equal([]);
  });

  it('when a feed cursor points at a change that was pruned, then the feed reads on from the first change kept after it', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    const old = await makeJob(pool, { appId: app.id, status: 'cancelled' });
    const recent = await makeJob(pool, { appId: app.id, status: 'cancelled' });
    const change = (jobId: string) =>
      withTransaction(pool, (tx) => recordStatusChanges(tx, [{ jobId, recipientId: null, oldStatus: 'queued', newStatus: 'cancelled', details: null }]));
    await change(old);
    await change(recent);
    await age(pool, old, 31);
    const before = (await readFeed(pool, app.id, { txid: '0', id: '0' }, 10, FEED_PAGE_BYTES)).changes;
    expect(before.map((row) => row.jobId)).to.deep.equal([old, recent]);

    await createRetention({ pool, policy: POLICY, bus: createBus() }).prune(() => false);

    const cursor = { txid: before[0]!.txid, id: before[0]!.id };
    expect((await readFeed(pool, app.id, cursor, 10, FEED_PAGE_BYTES)).changes.map((row) => row.jobId)).to.deep.equal([recent]);
    expect((await readFeed(pool, app.id, { txid: '0', id: '0' }, 10, FEED_PAGE_BYTES)).changes.map((row) => row.jobId)).to.deep.equal([recent]);
  });

  it('when stopped, then a pass ends between two batches', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    await pool.query(
      `insert into rejected_events (dedupe_key, kind, reason, source, source_length, received_at)
       select 'r-' || n, 'invalid', 'r', 's', 1, now() - interval '40 days' from generate_series(1, 30) as n`,
    );
    let batches = 0;
    const bus = createBus();
    bus.on('retention:pruned', () => {
      batches += 1;
    });

    const pass = await createRetention({ pool, policy: { ...POLICY, batchSize: 10 }, bus }).prune(() => batches >= 1);

    expect(pass.deleted.rejected_events).to.equal(10);
    expect(await count(pool, 'rejected_events')).to.equal(20);
  });
});
