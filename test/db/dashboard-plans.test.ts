// Every read of the dashboard walks an index at scale: 200,000 jobs (with their recipients, status
// changes, events, deliveries and suppressions) are seeded with generate_series and analysed, then
// each query runs under EXPLAIN (ANALYZE, BUFFERS), with the values a page would give it: its plan
// must read no big table sequentially, and it must touch a bounded number of pages, so that a plan
// walking a whole index (no Seq Scan, yet as slow) fails too. bench/dashboard.ts times the pages
// themselves at 1,000,000 jobs.
import { seedDashboardHistory, type SeededHistory } from '../../bench/dashboard-seed.js';
import { listAppsWithKeys } from '../../src/db/apps-repo.js';
import { findEventsOfJobs } from '../../src/db/events-repo.js';
import {
  approximateJobCount,
  findJobOfAnyApp,
  findJobsByAnyCustomId,
  findJobsByRecipient,
  listJobsByStatus,
  listRecentJobs,
  readQueueDepth,
} from '../../src/db/jobs-repo.js';
import type { Queryable } from '../../src/db/pool.js';
import { findRecipients } from '../../src/db/recipients-repo.js';
import { findChangesOfJob } from '../../src/db/status-changes-repo.js';
import { listSuppressions } from '../../src/db/suppressions-repo.js';
import { readMinuteCounts } from '../../src/db/throughput-repo.js';
import { listDeliveries } from '../../src/db/webhook-deliveries-repo.js';
import { DEPTH_COUNT_CAP, throughputSince, TIMELINE_LIMIT } from '../../src/domain/dashboard.js';
import { PAGE_BYTES } from '../../src/domain/page-budget.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { expectBoundedReads } from '../support/plans.js';

/** The tables that grow with the traffic; apps and api_keys stay small. */
const BIG_TABLES = new Set(['email_send_jobs', 'email_recipients', 'status_changes', 'email_events', 'webhook_deliveries', 'suppressions']);

/**
 * Pages (8 kB) one statement may touch: a page of 50 rows with their recipients needs a few hundred;
 * walking one of the 200,000-row tables or its indexes needs several thousand.
 */
const PAGE_BUDGET = 2_000;

/** What a query is called in the test's name, and the query, given the seeded history. */
type PlannedQuery = [string, (db: Queryable, seeded: SeededHistory) => Promise<unknown>];

const now = new Date();

/** The overview's counts: read at every size. */
const OVERVIEW_QUERIES: PlannedQuery[] = [
  ['queue depth', (q) => readQueueDepth(q, DEPTH_COUNT_CAP + 1)],
  ['approximate job count', (q) => approximateJobCount(q)],
  ['throughput per minute', (q) => readMinuteCounts(q, throughputSince(now))],
];

/** A fresh database seeded by `seed` (seeding and analysing on a loaded 2-core machine takes minutes), then each query's plan checked. */
function describeQueryPlans(title: string, seed: (db: Queryable) => Promise<SeededHistory>, queries: readonly PlannedQuery[]): void {
  describe(title, function () {
    this.timeout(600_000);

    let db: TestDatabase;
    let seeded: SeededHistory;

    before(async () => {
      db = await createTestDatabase();
      seeded = await seed(db.pool);
    });

    after(async () => {
      await db?.drop();
    });

    for (const [name, run] of queries) {
      it(`${name}: no sequential scan of a big table, at most ${PAGE_BUDGET} pages`, async () => {
        await expectBoundedReads(db.pool, (q) => run(q, seeded), BIG_TABLES, PAGE_BUDGET);
      });
    }
  });
}

describeQueryPlans("the dashboard's queries at 200,000 jobs", (db) => seedDashboardHistory(db, { jobs: 200_000, apps: 20, prefix: 'plan', now }), [
  ...OVERVIEW_QUERIES,
  ['recent jobs', (q) => listRecentJobs(q, { limit: 50 })],
  ['recent jobs, older page', (q, seeded) => listRecentJobs(q, { before: seeded.middleJobId, limit: 50 })],
  ["one app's jobs", (q, seeded) => listRecentJobs(q, { appId: seeded.appIds[3], limit: 50 })],
  ["a rare app's jobs", (q, seeded) => listRecentJobs(q, { appId: seeded.rareAppId, limit: 50 })],
  ["one app's jobs, older page", (q, seeded) => listRecentJobs(q, { appId: seeded.appIds[3], before: seeded.middleJobId, limit: 50 })],
  ['jobs by recipient', (q, seeded) => findJobsByRecipient(q, seeded.sampleRecipient.toUpperCase(), { limit: 50 })],
  // Its key is computed apart (a domain outside ASCII takes its A-label form): the index still serves.
  ['jobs by recipient, a domain outside ASCII', (q) => findJobsByRecipient(q, 'JOSÉ@BÜCHER.example', { limit: 50 })],
  [
    'jobs by recipient in one app',
    (q, seeded) => findJobsByRecipient(q, seeded.sampleRecipient, { appId: seeded.appIds[1], before: seeded.middleJobId, limit: 50 }),
  ],
  ['jobs by custom_id', (q, seeded) => findJobsByAnyCustomId(q, seeded.sampleCustomId, { limit: 50 })],
  ['jobs by custom_id in one app', (q, seeded) => findJobsByAnyCustomId(q, seeded.sampleCustomId, { appId: seeded.appIds[2], limit: 50 })],
  ['a job', (q, seeded) => findJobOfAnyApp(q, seeded.sampleJobId)],
  ["a job's recipients", (q, seeded) => findRecipients(q, [seeded.sampleJobId])],
  ["a job's status changes", (q, seeded) => findChangesOfJob(q, seeded.sampleJobId, TIMELINE_LIMIT, PAGE_BYTES)],
  ["a job's events", (q, seeded) => findEventsOfJobs(q, [seeded.sampleJobId], TIMELINE_LIMIT, PAGE_BYTES)],
  ['failed jobs', (q) => listJobsByStatus(q, 'failed', { limit: 50 })],
  ['failed jobs of one app, older page', (q, seeded) => listJobsByStatus(q, 'failed', { appName: seeded.appNames[0], before: seeded.middleJobId, limit: 50 })],
  // The admin's list of a status without an index: none is bounced here, so a walk would read every job.
  ['bounced jobs (the admin API)', (q) => listJobsByStatus(q, 'bounced', { limit: 50 })],
  [
    "a rare app's sent jobs, older page (the admin API)",
    (q, seeded) => listJobsByStatus(q, 'sent', { appName: seeded.appNames.at(-1), before: seeded.middleJobId, limit: 50 }),
  ],
  ['suppressions', (q, seeded) => listSuppressions(q, seeded.appIds[0]!, { limit: 50 })],
  ['suppressions, next page', (q, seeded) => listSuppressions(q, seeded.appIds[0]!, { after: 'bounced500@example.org', limit: 50 })],
  ['webhook deliveries', (q, seeded) => listDeliveries(q, seeded.appIds[0]!, { limit: 50 })],
  ['webhook deliveries, older page, delivered', (q, seeded) => listDeliveries(q, seeded.appIds[0]!, { status: 'delivered', before: '5000', limit: 50 })],
  // None failed here: a walk would read every delivery of the app.
  ['webhook deliveries, failed', (q, seeded) => listDeliveries(q, seeded.appIds[0]!, { status: 'failed', limit: 50 })],
  ['apps', (q) => listAppsWithKeys(q)],
]);

// A busy service's last hour: 100,000 jobs in it (a million at 280 messages a second is the same shape,
// ten times longer to seed), every one sharing a campaign's custom_id. Counting each minute's jobs
// (the throughput chart, before sql/38_…) visited every job of the hour; a custom_id's newest jobs read
// every job of it and sorted them (before sql/37_…).
describeQueryPlans(
  "the dashboard's overview and custom_id search at 100,000 jobs in the last hour",
  async (db) => {
    const seeded = await seedDashboardHistory(db, { jobs: 100_000, apps: 20, prefix: 'busy', now, spanMs: 3_600_000 });
    await db.query(`update email_send_jobs set custom_id = 'campaign-2030' where custom_id is not null`);
    await db.query('analyze email_send_jobs');
    return seeded;
  },
  [
    ...OVERVIEW_QUERIES,
    ['jobs by a custom_id every job shares', (q) => findJobsByAnyCustomId(q, 'campaign-2030', { limit: 50 })],
    ['jobs by a custom_id every job shares, older page', (q, seeded) => findJobsByAnyCustomId(q, 'campaign-2030', { before: seeded.middleJobId, limit: 50 })],
    ['jobs by a custom_id every job shares, in one app', (q, seeded) => findJobsByAnyCustomId(q, 'campaign-2030', { appId: seeded.appIds[2], limit: 50 })],
    ['jobs by a custom_id no job has', (q) => findJobsByAnyCustomId(q, 'campaign-2031', { limit: 50 })],
  ],
);
