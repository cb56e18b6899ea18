// Reads never load a job's message (html and attachments, up to 14 MiB a job) unless they send it
// (issue 8, item 9: ten status look-ups of big jobs pushed the process to 4.2 GB). Proven with
// PostgreSQL's column privileges: every read runs as a role that may not select the message column,
// so a query that reads it fails instead of passing quietly.
import { randomBytes } from 'node:crypto';

import { expect } from 'chai';
import pg from 'pg';

import { createBus } from '../../src/bus.js';
import { claimJobs, listJobsByStatus } from '../../src/db/jobs-repo.js';
import { notifyChannels } from '../../src/db/notify.js';
import type { Pool } from '../../src/db/pool.js';
import { readFeed } from '../../src/db/status-changes-repo.js';
import { FEED_PAGE_BYTES } from '../../src/domain/status-change.js';
import { createJobService, type JobService } from '../../src/services/jobs.js';
import { makeApp } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';

describe('job reads without the message column', () => {
  let db: TestDatabase;
  let role: string;
  let restricted: Pool;
  let jobs: JobService;
  let appId: string;

  before(async () => {
    db = await createTestDatabase();
    role = `jetpost_no_message_${randomBytes(4).toString('hex')}`;
    const { rows } = await db.pool.query<{ column_name: string }>(
      `select column_name from information_schema.columns where table_schema = $1 and table_name = 'email_send_jobs' and column_name <> 'message'`,
      [TEST_SCHEMA],
    );
    const columns = rows.map((row) => `"${row.column_name}"`).join(', ');
    await db.pool.query(`create role ${role}`);
    await db.pool.query(`grant usage on schema ${TEST_SCHEMA} to ${role}`);
    await db.pool.query(`grant select, insert, update on all tables in schema ${TEST_SCHEMA} to ${role}`);
    await db.pool.query(`grant usage, select on all sequences in schema ${TEST_SCHEMA} to ${role}`);
    await db.pool.query(`revoke select on email_send_jobs from ${role}`);
    await db.pool.query(`grant select (${columns}) on email_send_jobs to ${role}`);
    // Every connection of this pool runs as the role from its start (the `role` setting).
    restricted = new pg.Pool({ connectionString: db.url, max: 2, options: `-c search_path=${TEST_SCHEMA} -c role=${role}` });
    jobs = createJobService({ pool: restricted, channels: notifyChannels(TEST_SCHEMA), maxAttempts: 3, wakeLocal: () => undefined, bus: createBus() });
    ({ id: appId } = await makeApp(db.pool));
  });

  after(async () => {
    await restricted?.end();
    await db?.pool.query(`drop owned by ${role}`).catch(() => undefined);
    await db?.pool.query(`drop role if exists ${role}`).catch(() => undefined);
    await db?.drop();
  });

  const newJob = (customId: string, sendAt?: Date) => ({
    content: { from: { email: 'app@example.com' }, subject: 'Big', html: `<p>${'x'.repeat(1_000_000)}</p>` },
    recipients: [{ kind: 'to' as const, email: 'a@example.com' }],
    customId,
    sendAt,
    priority: 0,
  });

  it('when the role may not read the message column, then a query that reads it fails (the guard works)', async () => {
    const error = await restricted.query('select message from email_send_jobs').then(
      () => undefined,
      (caught: unknown) => caught as Error,
    );
    expect(error?.message).to.match(/permission denied/);
  });

  it('when jobs are queued, looked up by id and by custom_id, and cancelled, then none of it reads the message', async () => {
    const scheduled = new Date(Date.now() + 3_600_000);
    const enqueued = await jobs.enqueue(appId, [newJob('big-1', scheduled), newJob('big-2', scheduled)], 'reads-key');
    const ids = enqueued.jobs.map((job) => job.id);
    expect(enqueued.jobs.map((job) => job.status)).to.deep.equal(['scheduled', 'scheduled']);

    expect((await jobs.enqueue(appId, [newJob('big-1', scheduled), newJob('big-2', scheduled)], 'reads-key')).replayed).to.equal(true);
    expect((await jobs.view(appId, ids)).map((view) => view.job.customId)).to.deep.equal(['big-1', 'big-2']);
    expect((await jobs.viewByCustomId(appId, ['big-2'], 100)).views.map((view) => view.job.id)).to.deep.equal([ids[1]]);
    expect((await jobs.cancel(appId, ids[0]!)).status).to.equal('cancelled');
    expect(await jobs.cancel(appId, ids[0]!).catch((error: Error) => error.message)).to.match(/is cancelled/);
  });

  it('when the admin lists jobs and an app reads the changes feed, then neither reads the message', async () => {
    const listed = await listJobsByStatus(restricted, 'cancelled', { limit: 10 });
    expect(listed.jobs.map((job) => job.customId)).to.deep.equal(['big-1']);
    const feed = (await readFeed(restricted, appId, { txid: '0', id: '0' }, 10, FEED_PAGE_BYTES)).changes;
    expect(feed.map((change) => change.newStatus)).to.deep.equal(['cancelled']);
  });

  it('when a consumer claims jobs, then it does read the message (the one read that sends it)', async () => {
    await db.pool.query(`update email_send_jobs set run_at = now() where status = 'scheduled'`);
    const error = await claimJobs(restricted, 'worker-1', 10, 60_000).then(
      () => undefined,
      (caught: unknown) => caught as Error,
    );
    expect(error?.message).to.match(/permission denied/);
    const [claimed] = await claimJobs(db.pool, 'worker-1', 10, 60_000);
    expect(claimed?.content.html).to.have.length(1_000_007);
  });
});
