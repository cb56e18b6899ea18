// POST /queue's group commit (services/jobs.ts): requests that arrive together share one
// transaction, and a request refused on its own never takes the others down with it.
import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import { notifyChannels } from '../../src/db/notify.js';
import { revokeApiKey } from '../../src/services/apps.js';
import { createJobService, type EnqueueResult, type JobService } from '../../src/services/jobs.js';
import { type MadeApp, makeApp } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';

const newJob = (to: string, priority = 0) => ({
  content: { from: { email: 'app@example.com' }, subject: 'Hi', text: 'Hello' },
  recipients: [{ kind: 'to' as const, email: to }],
  customId: to,
  priority,
});

describe('group commit of POST /queue (services/jobs.ts)', () => {
  let db: TestDatabase;
  let jobs: JobService;
  let app: MadeApp;
  let keyId: string;

  beforeEach(async () => {
    db = await createTestDatabase();
    jobs = createJobService({ pool: db.pool, channels: notifyChannels(TEST_SCHEMA), maxAttempts: 3, wakeLocal: () => undefined, bus: createBus() });
    app = await makeApp(db.pool);
    keyId = String((await db.pool.query('select id from api_keys where prefix = $1', [app.prefix])).rows[0]!['id']);
  });
  afterEach(async () => {
    await db?.drop();
  });

  /** The transaction that wrote each of these jobs (rows of one transaction share their xmin). */
  async function writers(results: EnqueueResult[]): Promise<Set<string>> {
    const ids = results.flatMap((result) => result.jobs.map((job) => job.id));
    const { rows } = await db.pool.query<{ xmin: string }>('select xmin::text from email_send_jobs where id = any($1::bigint[])', [ids]);
    expect(rows).to.have.length(ids.length);
    return new Set(rows.map((row) => row.xmin));
  }

  it('when large requests arrive together, then a transaction carries at most 16 MB of their messages (as bounded): four of about 6 MB go two by two', async () => {
    // A text of 1,000,000 characters is bounded at 6 MB as sent (each may need escaping as JSON).
    const large = (to: string) => ({ ...newJob(to), content: { ...newJob(to).content, text: 'x'.repeat(1_000_000) } });
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((name) => jobs.enqueue(app.id, [large(`${name}@example.com`)], undefined, keyId)));

    expect(results.map((result) => result.jobs.length)).to.deep.equal([1, 1, 1, 1]);
    expect((await writers(results.slice(0, 2))).size).to.equal(1);
    expect((await writers(results.slice(2))).size).to.equal(1);
    expect((await writers(results)).size).to.equal(2);
  });

  it('when requests arrive together, then they share one transaction and each gets its own jobs with their recipients', async () => {
    const results = await Promise.all(
      ['a', 'b', 'c', 'd'].map((name) => jobs.enqueue(app.id, [newJob(`${name}1@example.com`), newJob(`${name}2@example.com`)], undefined, keyId)),
    );

    expect(results.map((result) => result.jobs.map((job) => job.customId))).to.deep.equal([
      ['a1@example.com', 'a2@example.com'],
      ['b1@example.com', 'b2@example.com'],
      ['c1@example.com', 'c2@example.com'],
      ['d1@example.com', 'd2@example.com'],
    ]);
    expect((await writers(results)).size).to.equal(1);
    const ids = results.flatMap((result) => result.jobs.map((job) => Number(job.id)));
    expect(ids).to.deep.equal([...ids].sort((x, y) => x - y));
    const { rows } = await db.pool.query<{ custom_id: string; email: string }>(
      'select j.custom_id, r.email from email_send_jobs j join email_recipients r on r.job_id = j.id order by j.id',
    );
    expect(rows.every((row) => row.custom_id === row.email)).to.equal(true);
    expect(rows).to.have.length(8);
  });

  it('when one request of a batch reuses an Idempotency-Key with another body, then it alone gets a 409, a same-body replay gets the original jobs, and the others are stored', async () => {
    const original = await jobs.enqueue(app.id, [newJob('first@example.com')], 'order-1', keyId);

    const settled = await Promise.allSettled([
      jobs.enqueue(app.id, [newJob('x@example.com')], undefined, keyId),
      jobs.enqueue(app.id, [newJob('other-body@example.com')], 'order-1', keyId),
      jobs.enqueue(app.id, [newJob('y@example.com')], 'order-2', keyId),
      jobs.enqueue(app.id, [newJob('first@example.com')], 'order-1', keyId),
      jobs.enqueue(app.id, [newJob('z@example.com')], undefined, keyId),
    ]);

    expect(settled.map((result) => result.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).to.include({ status: 409, code: 'idempotency-key-reused' });
    const replay = (settled[3] as PromiseFulfilledResult<EnqueueResult>).value;
    expect(replay.replayed).to.equal(true);
    expect(replay.jobs.map((job) => job.id)).to.deep.equal(original.jobs.map((job) => job.id));
    const stored = [0, 2, 4].map((index) => (settled[index] as PromiseFulfilledResult<EnqueueResult>).value);
    expect(stored.every((result) => !result.replayed)).to.equal(true);
    expect((await writers(stored)).size).to.equal(1);
    const { rows } = await db.pool.query<{ custom_id: string }>('select custom_id from email_send_jobs order by id');
    expect(rows.map((row) => row.custom_id)).to.deep.equal(['first@example.com', 'x@example.com', 'y@example.com', 'z@example.com']);
    // The new key now replays its own job.
    const again = await jobs.enqueue(app.id, [newJob('y@example.com')], 'order-2', keyId);
    expect(again.jobs.map((job) => job.id)).to.deep.equal(stored[1]!.jobs.map((job) => job.id));
  });

  it('when the same new Idempotency-Key comes twice at once, then one job is stored and both get it', async () => {
    const results = await Promise.all([1, 2, 3].map(() => jobs.enqueue(app.id, [newJob('once@example.com')], 'once', keyId)));
    expect(new Set(results.map((result) => result.jobs[0]!.id)).size).to.equal(1);
    expect(results.filter((result) => result.replayed)).to.have.length(2);
    expect((await db.pool.query('select 1 from email_send_jobs')).rowCount).to.equal(1);
  });

  it('when a request fails in the database, then the others of its batch are still stored', async () => {
    const settled = await Promise.allSettled([
      jobs.enqueue(app.id, [newJob('ok1@example.com')], undefined, keyId),
      // Past the table's check (priority between 0 and 3): the whole first transaction fails.
      jobs.enqueue(app.id, [newJob('bad@example.com', 9)], undefined, keyId),
      jobs.enqueue(app.id, [newJob('ok2@example.com')], 'k', keyId),
    ]);

    expect(settled.map((result) => result.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    const { rows } = await db.pool.query<{ custom_id: string }>('select custom_id from email_send_jobs order by id');
    expect(rows.map((row) => row.custom_id)).to.deep.equal(['ok1@example.com', 'ok2@example.com']);
    expect((await db.pool.query('select job_ids::text[] from idempotency_keys')).rows[0]!['job_ids']).to.have.length(1);
  });

  it('when the key was revoked before the batch is written, then its request is refused (401) and nothing of it stored, while other apps go on', async () => {
    const other = await makeApp(db.pool);
    const otherKeyId = String((await db.pool.query('select id from api_keys where prefix = $1', [other.prefix])).rows[0]!['id']);
    await revokeApiKey(db.pool, app.name, app.prefix);

    const settled = await Promise.allSettled([
      jobs.enqueue(app.id, [newJob('revoked@example.com')], 'rk', keyId),
      jobs.enqueue(other.id, [newJob('fine@example.com')], undefined, otherKeyId),
    ]);

    expect(settled.map((result) => result.status)).to.deep.equal(['rejected', 'fulfilled']);
    expect((settled[0] as PromiseRejectedResult).reason).to.include({ status: 401 });
    const { rows } = await db.pool.query<{ custom_id: string }>('select custom_id from email_send_jobs');
    expect(rows.map((row) => row.custom_id)).to.deep.equal(['fine@example.com']);
    expect((await db.pool.query('select 1 from idempotency_keys')).rowCount).to.equal(0);
  });
});
