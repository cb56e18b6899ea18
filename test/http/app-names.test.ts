// App names are unique whatever their case (sql/35_…): "Billing" and "billing" were two apps that the
// CLI, the dashboard and /admin/apps/{app} told apart by one letter's case, and an operator typing
// the name from memory reached the other one, or was told it did not exist.
import fs from 'node:fs/promises';

import { expect } from 'chai';

import { makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

const MIGRATION = new URL('../../sql/35_add-apps-name-unique-whatever-case.sql', import.meta.url);

describe('app names, whatever their case', function () {
  this.timeout(120_000);

  describe('through the admin API', () => {
    let service: TestService;

    before(async () => {
      service = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_RATE_LIMIT: '0' } });
    });

    after(async () => {
      await service?.stop();
    });

    const admin = (method: string, path: string, body?: unknown) => service.request(method, path, { body, key: ADMIN_KEY });

    it('when an app is created under the name of another in another case, then 409 names the app that exists; the name in any case reaches that app', async () => {
      expect((await admin('POST', '/admin/apps', { name: 'Billing' })).status).to.equal(201);
      const appId = String((await service.db.pool.query<{ id: string }>("select id from apps where name = 'Billing'")).rows[0]!.id);

      for (const name of ['billing', 'BILLING', 'Billing']) {
        const refused = await admin('POST', '/admin/apps', { name });
        expect(refused.status, name).to.equal(409);
        expect(((await refused.json()) as { detail: string }).detail, name).to.include('an app named Billing already exists');
      }
      const apps = ((await (await admin('GET', '/admin/apps')).json()) as { apps: Array<{ name: string }> }).apps.map((app) => app.name);
      expect(apps.filter((name) => name.toLowerCase() === 'billing')).to.deep.equal(['Billing']);

      const added = await admin('POST', '/admin/apps/billing/suppressions', { email: 'gone@example.com' });
      expect(added.status).to.equal(201);
      const listed = (await (await admin('GET', '/admin/apps/BILLING/suppressions')).json()) as { suppressions: Array<{ email: string }> };
      expect(listed.suppressions.map((suppression) => suppression.email)).to.deep.equal(['gone@example.com']);
      const failed = await makeJob(service.db.pool, { appId, status: 'failed' });
      const jobs = (await (await admin('GET', '/admin/jobs?status=failed&app=bILLING')).json()) as { jobs: Array<{ job_id: string; app: string }> };
      expect(jobs.jobs.map((job) => [job.job_id, job.app])).to.deep.equal([[failed, 'Billing']]);
      const requeued = (await (await admin('POST', '/admin/jobs/requeue', { all_failed: true, app: 'bIlLiNg' })).json()) as { requeued: string[] };
      expect(requeued.requeued).to.deep.equal([failed]);
      expect((await admin('GET', '/admin/apps/billings/suppressions')).status).to.equal(404);
    });
  });

  describe('sql/35_… on a database holding names that differ by case only', () => {
    let db: TestDatabase | undefined;

    afterEach(async () => {
      await db?.drop();
      db = undefined;
    });

    it('then the oldest of each group keeps its name, each later one gets its id appended (cut to 100 characters, never onto a name taken), and a new such name is refused', async () => {
      db = await createTestDatabase();
      const { pool } = db;
      // The database as an earlier release left it.
      await pool.query('drop index apps_name_lower_key');
      const insert = async (name: string) => String((await pool.query<{ id: string }>('insert into apps (name) values ($1) returning id', [name])).rows[0]!.id);
      const billing = await insert('Billing');
      const later = await insert('billing');
      const latest = await insert('BILLING');
      // The name the second would get is taken already.
      const taken = await insert(`billing-${later}`);
      const long = await insert(`L${'x'.repeat(99)}`);
      const longLater = await insert(`l${'x'.repeat(99)}`);
      const alone = await insert('reports');

      await pool.query(await fs.readFile(MIGRATION, 'utf8'));

      const names = new Map((await pool.query<{ id: string; name: string }>('select id::text, name from apps')).rows.map((row) => [row.id, row.name]));
      expect(names.get(billing)).to.equal('Billing');
      expect(names.get(later)).to.equal(`billing-${later}-1`);
      expect(names.get(latest)).to.equal(`BILLING-${latest}`);
      expect(names.get(taken)).to.equal(`billing-${later}`);
      expect(names.get(long)).to.equal(`L${'x'.repeat(99)}`);
      expect(names.get(longLater)).to.equal(`l${'x'.repeat(99 - `-${longLater}`.length)}-${longLater}`);
      expect(names.get(longLater)).to.have.length(100);
      expect(names.get(alone)).to.equal('reports');

      const duplicate = await insert('REPORTS').catch((error: unknown) => error);
      expect(duplicate).to.include({ code: '23505', constraint: 'apps_name_lower_key' });
    });
  });
});
