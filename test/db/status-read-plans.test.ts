// Every read an app makes (GET /status/{id}, ?ids=, ?custom_id=, the changes feed), and the admin's
// list of one app's failed jobs, walks an index at scale, however the app chose its values: 200,000
// jobs (one app holding nearly all) are seeded with generate_series and analysed, a campaign's
// custom_id is set on the newest tenth of them and another on one job in three, one in three failed
// (an outage), then each read runs under EXPLAIN (ANALYZE, BUFFERS): no big table read
// sequentially, a bounded number of pages touched.
import { seedDashboardHistory, type SeededHistory } from '../../bench/dashboard-seed.js';
import { findEventsOfJobs } from '../../src/db/events-repo.js';
import { findJobs, findJobsByCustomId, listJobsByStatus } from '../../src/db/jobs-repo.js';
import type { Queryable } from '../../src/db/pool.js';
import { findRecipients } from '../../src/db/recipients-repo.js';
import { isCursorAhead, readFeed } from '../../src/db/status-changes-repo.js';
import type { FeedCursor } from '../../src/domain/status-change.js';
import { FEED_PAGE_BYTES } from '../../src/domain/status-change.js';
import { LIMITS } from '../../src/http/schemas.js';
import { EVENTS_PER_JOB } from '../../src/services/jobs.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { expectBoundedReads } from '../support/plans.js';

const BIG_TABLES = new Set(['email_send_jobs', 'email_recipients', 'status_changes', 'email_events']);

/** Pages (8 kB) one statement may touch: 100 jobs with their rows need a few hundred; a walk of the 200,000 jobs needs thousands. */
const PAGE_BUDGET = 2_000;

describe("an app's status reads, and the admin's list of its failed jobs, at 200,000 jobs", function () {
  this.timeout(600_000);

  let db: TestDatabase;
  let seeded: SeededHistory;
  let bigApp: string;
  let newest: string[];
  let middle: FeedCursor;

  before(async () => {
    db = await createTestDatabase();
    const { pool } = db;
    seeded = await seedDashboardHistory(pool, { jobs: 200_000, apps: 2, prefix: 'reads', now: new Date() });
    bigApp = seeded.appIds[0]!;
    // A campaign's custom_id on every message of a recent send (the newest tenth of the history), and
    // a newsletter's on one job in three all along.
    await pool.query(
      `update email_send_jobs set custom_id = case when id > (select max(id) - 60000 from email_send_jobs) and id % 3 = 1 then 'campaign' else 'newsletter' end
       where app_id = $1 and (id % 3 = 0 or id > (select max(id) - 60000 from email_send_jobs) and id % 3 = 1)`,
      [bigApp],
    );
    await pool.query(`update email_send_jobs set status = 'failed', last_error = 'Mailjet 503 (an outage)' where app_id = $1 and id % 3 = 2`, [bigApp]);
    await pool.query('analyze email_send_jobs');
    const { rows } = await pool.query<{ id: string }>('select id::text from email_send_jobs where app_id = $1 order by id desc limit 100', [bigApp]);
    newest = rows.map((row) => row.id);
    const { rows: changes } = await pool.query<{ txid: string; id: string }>(
      'select txid::text, id::text from status_changes where app_id = $1 order by txid, id offset 50000 limit 1',
      [bigApp],
    );
    middle = changes[0]!;
  });

  after(async () => {
    await db?.drop();
  });

  const queries: Array<[string, (db: Queryable) => Promise<unknown>]> = [
    ['jobs by a custom_id the newest tenth share', (q) => findJobsByCustomId(q, bigApp, ['campaign'], LIMITS.statusLookupIds)],
    ['jobs by a custom_id one job in three shares', (q) => findJobsByCustomId(q, bigApp, ['newsletter'], LIMITS.statusLookupIds)],
    [
      'jobs by a custom_id one job in three shares, a page from the middle (after_job_id)',
      (q) => findJobsByCustomId(q, bigApp, ['newsletter', 'campaign'], LIMITS.statusLookupIds, seeded.middleJobId),
    ],
    [
      'jobs by 100 custom_ids, shared ones repeated',
      (q) => findJobsByCustomId(q, bigApp, [...Array<string>(50).fill('campaign'), 'newsletter', seeded.sampleCustomId], LIMITS.statusLookupIds),
    ],
    ["jobs by another app's shared custom_id", (q) => findJobsByCustomId(q, seeded.rareAppId, ['campaign'], LIMITS.statusLookupIds)],
    ['100 jobs by id', (q) => findJobs(q, bigApp, newest)],
    ['the recipients of 100 jobs', (q) => findRecipients(q, newest)],
    ['the events of 100 jobs', (q) => findEventsOfJobs(q, newest, EVENTS_PER_JOB)],
    ['the feed from the start', (q) => readFeed(q, bigApp, { txid: '0', id: '0' }, 100, FEED_PAGE_BYTES)],
    ['the feed from the middle', (q) => readFeed(q, bigApp, middle, 100, FEED_PAGE_BYTES)],
    ["a rare app's feed from the start", (q) => readFeed(q, seeded.rareAppId, { txid: '0', id: '0' }, 100, FEED_PAGE_BYTES)],
    ["a rare app's feed from the big app's cursor", (q) => readFeed(q, seeded.rareAppId, middle, 100, FEED_PAGE_BYTES)],
    ['a cursor ahead of the feed', (q) => isCursorAhead(q, { txid: '18446744073709551615' })],
    ["a rare app's failed jobs among another's 66,000 (the admin's list)", (q) => listJobsByStatus(q, 'failed', { appName: seeded.appNames[1], limit: 100 })],
    ["a rare app's failed jobs, older page", (q) => listJobsByStatus(q, 'failed', { appName: seeded.appNames[1], before: seeded.middleJobId, limit: 100 })],
  ];

  for (const [name, run] of queries) {
    it(`${name}: no sequential scan of a big table, at most ${PAGE_BUDGET} pages`, async () => {
      await expectBoundedReads(db.pool, run, BIG_TABLES, PAGE_BUDGET);
    });
  }
});
