// GET /admin/jobs and `jobs list` for a status that has no index (anything but the queue's
// statuses): a page looks through a window of LIST_WINDOW jobs, and following next_before
// still reaches every job of the status, down to the oldest, and then ends.
import { expect } from 'chai';

import { seedDashboardHistory, type SeededHistory } from '../../bench/dashboard-seed.js';
import { listJobsByStatus } from '../../src/db/jobs-repo.js';
import { LIST_WINDOW } from '../../src/domain/page.js';
import type { JobStatus } from '../../src/domain/status.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('listing jobs of a status without an index', function () {
  // 25,000 jobs seeded and analysed on a loaded 2-core machine.
  this.timeout(300_000);

  const JOBS = Math.round(2.5 * LIST_WINDOW);
  let db: TestDatabase;
  let seeded: SeededHistory;
  let ids: { oldest: string; newest: string; middle: string };

  before(async () => {
    db = await createTestDatabase();
    seeded = await seedDashboardHistory(db.pool, { jobs: JOBS, apps: 4, prefix: 'list', now: new Date() });
    const { rows } = await db.pool.query<{ oldest: string; newest: string }>('select min(id)::text as oldest, max(id)::text as newest from email_send_jobs');
    ids = { oldest: rows[0]!.oldest, newest: rows[0]!.newest, middle: seeded.middleJobId };
    // Three bounced jobs: the newest, one in the middle and the oldest, two windows apart.
    await db.pool.query(`update email_send_jobs set status = 'bounced' where id = any($1::bigint[])`, [[ids.oldest, ids.middle, ids.newest]]);
  });

  after(async () => {
    await db?.drop();
  });

  /** Every page from the newest, following nextBefore, as the API's clients and the CLI do. */
  async function allPages(status: JobStatus, limit: number, appName?: string) {
    const pages: Array<{ jobs: string[]; nextBefore: string | null }> = [];
    let before: string | undefined;
    do {
      const page = await listJobsByStatus(db.pool, status, { appName, before, limit });
      pages.push({ jobs: page.jobs.map((job) => job.id), nextBefore: page.nextBefore });
      before = page.nextBefore ?? undefined;
    } while (before !== undefined && pages.length < 100);
    return pages;
  }

  it('when a status is rare, then each page looks through one window, and the pages reach its oldest job, then end', async () => {
    const pages = await allPages('bounced', 50);
    expect(pages.flatMap((page) => page.jobs)).to.deep.equal([ids.newest, ids.middle, ids.oldest]);
    // Each page looked through one window at most: 25,000 jobs take three.
    expect(pages).to.have.length(3);
    expect(pages.at(-1)!.nextBefore).to.equal(null);
  });

  it('when a page fills up, then the next one starts after its last job, as before', async () => {
    const [first, second] = await allPages('bounced', 1);
    expect(first).to.deep.equal({ jobs: [ids.newest], nextBefore: ids.newest });
    expect(second!.jobs).to.deep.equal([]);
  });

  it('when a status is common, then a page is full and a page of one app holds only its jobs', async () => {
    const page = await listJobsByStatus(db.pool, 'sent', { limit: 100 });
    expect(page.jobs).to.have.length(100);
    expect(page.nextBefore).to.equal(page.jobs.at(-1)!.id);
    const ofApp = await allPages('sent', 1000, seeded.appNames[0]);
    const jobs = ofApp.flatMap((p) => p.jobs);
    const { rows } = await db.pool.query<{ job: string }>(
      `select id::text as job from email_send_jobs where status = 'sent' and app_id = $1 order by id desc`,
      [seeded.appIds[0]],
    );
    expect(jobs).to.deep.equal(rows.map((row) => row.job));
  });

  it('when no job has the status, then the pages end after the oldest job with none', async () => {
    const pages = await allPages('spam', 50);
    expect(pages.flatMap((page) => page.jobs)).to.deep.equal([]);
    expect(pages.at(-1)!.nextBefore).to.equal(null);
  });
});
