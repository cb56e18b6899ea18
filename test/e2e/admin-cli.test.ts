import { expect } from 'chai';

import { createAppWithKey } from '../../src/apps/service.js';
import { insertJobs } from '../../src/db/jobs-repo.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('npm run admin -- jobs …', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  async function failedJob(appId: string, error: string): Promise<string> {
    const [id] = await insertJobs(db.pool, appId, [
      { job: { content: { from: { email: 'a@example.com' }, text: 'x' }, recipients: [{ kind: 'to', email: 'b@example.com' }], priority: 0 }, status: 'queued', runAt: new Date(), maxAttempts: 3 },
    ]);
    await db.pool.query(`update email_send_jobs set status = 'failed', attempts = 3, last_error = $2 where id = $1`, [id, error]);
    await db.pool.query(`update email_recipients set status = 'failed' where job_id = $1`, [id]);
    return id!;
  }

  it('when failed jobs exist, then list shows them with their reasons and requeue puts them back with fresh attempts', async () => {
    db = await createTestDatabase();
    const { app } = await createAppWithKey(db.pool, 'billing');
    const first = await failedJob(app.id, 'gave up after 3 attempts: Mailjet 503');
    const second = await failedJob(app.id, 'mj-0013: invalid address');
    const env = { DATABASE_URL: db.url, EVENTS_USERNAME: 'u', EVENTS_PASSWORD: 'p' };

    const listed = await runCli('admin.ts', ['jobs', 'list'], env);
    const requeued = await runCli('admin.ts', ['jobs', 'requeue', first, '999999'], env);
    const all = await runCli('admin.ts', ['jobs', 'requeue', '--all-failed', '--app', 'billing'], env);

    expect(listed.code, listed.stderr).to.equal(0);
    expect(listed.stdout).to.match(new RegExp(`${second}\\s+billing\\s+failed\\s+3/3`));
    expect(listed.stdout).to.contain('gave up after 3 attempts: Mailjet 503');
    expect(requeued.stdout).to.contain(`re-queued 1 job(s): ${first}`);
    expect(requeued.stdout).to.contain('not failed (left alone): 999999');
    expect(all.stdout).to.contain(`re-queued 1 job(s): ${second}`);
    const { rows } = await db.pool.query(`select status, attempts from email_send_jobs order by id`);
    expect(rows).to.deep.equal([
      { status: 'queued', attempts: 0 },
      { status: 'queued', attempts: 0 },
    ]);
    const recipients = await db.pool.query(`select distinct status from email_recipients`);
    expect(recipients.rows).to.deep.equal([{ status: 'pending' }]);
  });

  it('when the command is unknown or its arguments are wrong, then it says how to use it and exits 2', async () => {
    db = await createTestDatabase();
    const env = { DATABASE_URL: db.url };

    const unknown = await runCli('admin.ts', ['jobs', 'explode'], env);
    const bad = await runCli('admin.ts', ['jobs', 'requeue'], env);

    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain('unknown command: jobs explode').and.contain('usage: npm run admin');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('give job ids, or --all-failed');
  });
});
