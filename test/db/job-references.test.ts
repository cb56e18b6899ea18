// What the foreign keys of jobs (to their app) and of recipients (to their job) guaranteed, now that
// sql/27_… replaced them: whatever deletes jobs deletes what hangs off them, and an app is never
// deleted. And what their checks cost besides: an enqueue no longer waits on its app's row.
import { expect } from 'chai';

import { findWebhook } from '../../src/db/apps-repo.js';
import { insertJobs } from '../../src/db/jobs-repo.js';
import { type Pool, withTransaction } from '../../src/db/pool.js';
import { recordStatusChanges } from '../../src/db/status-changes-repo.js';
import { makeApp, makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openTransaction } from '../support/held-transaction.js';

/** A job of `appId` with two recipients, an event of its first and a status change: everything that hangs off a job. */
async function jobWithHistory(pool: Pool, appId: string): Promise<string> {
  const jobId = await makeJob(pool, { appId, status: 'sent', to: [`a-${appId}@example.com`, `b-${appId}@example.com`] });
  const [recipientId] = await recipientIds(pool, jobId);
  await pool.query(
    `insert into email_events (dedupe_key, event_type, occurred_at, recipient_id, job_id, payload)
     values ($1, 'sent', now(), $2, $3, '{}')`,
    [`event-${jobId}`, recipientId, jobId],
  );
  await withTransaction(pool, (tx) => recordStatusChanges(tx, [{ jobId, recipientId: recipientId!, oldStatus: 'accepted', newStatus: 'sent', details: null }]));
  return jobId;
}

/** Rows per job in the tables that hang off jobs, e.g. {email_recipients: {"7": 2}, …}. */
async function rowsByJob(pool: Pool): Promise<Record<string, Record<string, number>>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const table of ['email_recipients', 'email_events', 'status_changes']) {
    const { rows } = await pool.query<{ job_id: string | null; n: number }>(
      `select job_id::text, count(*)::int as n from ${table} group by job_id order by job_id`,
    );
    counts[table] = Object.fromEntries(rows.map((row) => [row.job_id ?? 'none', row.n]));
  }
  return counts;
}

describe('job references', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when one statement deletes jobs, then their recipients, events and status changes go with them, and those of other jobs stay', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    const [doomed1, doomed2, kept] = [await jobWithHistory(pool, app.id), await jobWithHistory(pool, app.id), await jobWithHistory(pool, app.id)];

    await pool.query('delete from email_send_jobs where id = any($1::bigint[])', [[doomed1, doomed2]]);

    expect(await rowsByJob(pool)).to.deep.equal({
      email_recipients: { [kept]: 2 },
      email_events: { [kept]: 1 },
      status_changes: { [kept]: 1 },
    });
  });

  it('when the jobs are truncated, then their recipients, events and status changes go too, and events matched to no job stay', async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    await jobWithHistory(pool, app.id);
    await pool.query(
      `insert into email_events (dedupe_key, event_type, occurred_at, mailjet_message_id, payload) values ('unmatched', 'open', now(), 1, '{}')`,
    );

    await pool.query('truncate email_send_jobs');

    expect(await rowsByJob(pool)).to.deep.equal({ email_recipients: {}, email_events: { none: 1 }, status_changes: {} });
  });

  for (const statement of ['delete from apps where id = $1', 'truncate apps cascade']) {
    it(`when an app is deleted (${statement.split(' ')[0]}), then it is refused, and the app, its key and its jobs stay`, async () => {
      db = await createTestDatabase();
      const { pool } = db;
      const app = await makeApp(pool);
      const jobId = await jobWithHistory(pool, app.id);

      const refused = await pool.query(statement, statement.includes('$1') ? [app.id] : []).then(
        () => undefined,
        (error: unknown) => error as { code?: string },
      );

      expect(refused?.code).to.equal('23503');
      const { rows } = await pool.query(
        'select (select count(*)::int from apps) as apps, (select count(*)::int from api_keys) as keys, (select count(*)::int from email_send_jobs where id = $1) as jobs',
        [jobId],
      );
      expect(rows).to.deep.equal([{ apps: 1, keys: 1, jobs: 1 }]);
    });
  }

  it("while a webhook change holds its app's row, then jobs of that app are stored without waiting for it", async () => {
    db = await createTestDatabase();
    const { pool } = db;
    const app = await makeApp(pool);
    // What a webhook change does first: read the settings, locking the app's row.
    const change = openTransaction(pool, (tx) => findWebhook(tx, app.id));
    await change.written;

    try {
      const stored = await withTransaction(pool, async (tx) => {
        // Waiting at all would be an error here, not a hang.
        await tx.query("set local lock_timeout = '100ms'");
        const job = {
          content: { from: { email: 'app@example.com' }, subject: 'Hi', text: 'Hi' },
          recipients: [{ kind: 'to' as const, email: 'b@example.com' }],
          priority: 0,
        };
        return insertJobs(tx, app.id, [{ job, status: 'queued', runAt: new Date(), maxAttempts: 3 }]);
      });
      expect(stored).to.have.lengthOf(1);
    } finally {
      change.commit();
      await change.committed;
    }
  });
});
