// The queue's depth (/metrics and the dashboard's overview) is counted by bounded index work however
// the backlog is made up and whatever PostgreSQL knows of the table: each status's count reads at most
// its cap of index entries, and the oldest due job is one entry per priority. Queued, scheduled and
// deferred jobs share the claim index, ordered by priority and due time, not by status: counted
// through it, a status rare within a large backlog (a few scheduled among a million queued) cost a
// walk of the whole backlog, past the statement timeout, and the gauges kept their last figures
// exactly when the backlog was largest. Each read runs under EXPLAIN (ANALYZE); autovacuum is off
// for the table, so that its statistics stay as each test left them. The same for the webhook
// backlog, the other figure /metrics reads.
import { expect } from 'chai';

import { readQueueDepth } from '../../src/db/jobs-repo.js';
import { type Pool, withTransaction } from '../../src/db/pool.js';
import { readWebhookBacklog } from '../../src/db/webhook-deliveries-repo.js';
import { DEPTH_COUNT_CAP } from '../../src/domain/dashboard.js';
import { makeApp } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { planner, type PlanNode, planShape } from '../support/plans.js';

const BACKLOG = 30_000;
/** A cap below the backlog, as QUEUE_STATS_COUNT_CAP is below a backlog of millions. */
const CAP = 1_000;
/** Of each other status beside the backlog. */
const FEW = 3;
/** Rows a read may take beyond its counts: the first entry of each priority, a few planner probes. */
const SLACK = 50;

type Status = 'queued' | 'scheduled' | 'deferred' | 'processing' | 'failed' | 'sent';

interface Jobs {
  status: Status;
  count: number;
  /** All at priority 0, or spread over the four priorities. */
  spread?: boolean;
  /** Due an hour ago, or due in a year (a far schedule, a long backoff). */
  due?: boolean;
}

/** `count` jobs in one status, one statement (generate_series): the shape a bulk enqueue, an outage's retries or a far schedule leave. */
async function addJobs(pool: Pool, appId: string, { status, count, spread = false, due = true }: Jobs): Promise<void> {
  await pool.query(
    `insert into email_send_jobs (app_id, status, message, priority, run_at, send_at, attempts, max_attempts, recipient_count,
       locked_by, locked_until, accepted_at)
     select $1, $3::text, '{"from":{"email":"app@example.com"},"subject":"Hello","text":"Hi there"}',
       case when $4 then g % 4 else 0 end, r.run_at, case when $3 = 'scheduled' then r.run_at end,
       case when $3 in ('queued', 'scheduled') then 0 else 1 end, 3, 1,
       case when $3 = 'processing' then 'consumer-1' end, case when $3 = 'processing' then now() + interval '1 minute' end,
       case when $3 = 'sent' then now() end
     from generate_series(1, $2::int) as g
     cross join lateral (select case when $5 then now() - interval '1 hour' else now() + interval '365 days' end + g * interval '1 ms' as run_at) as r`,
    [appId, count, status, spread, due],
  );
}

/** Rows of email_send_jobs the plan read: returned by its scans (the index's for a bitmap) or read and dropped, over all loops. */
function jobRowsRead(nodes: readonly PlanNode[]): number {
  return nodes.reduce((sum, node) => {
    const onJobs = node['Relation Name'] === 'email_send_jobs' || (node['Index Name'] ?? '').startsWith('email_send_jobs_');
    if (!onJobs) {
      return sum;
    }
    const returned = node['Node Type'] === 'Bitmap Heap Scan' ? 0 : (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1);
    return sum + returned + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0);
  }, 0);
}

/** Reads the depth under EXPLAIN (ANALYZE) in a transaction, as /metrics and the dashboard do: each status is read from its own index, at most `cap` entries of it. */
async function expectBoundedDepthRead(pool: Pool, cap: number, counts: Partial<Record<Status, number>>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { db, runs } = planner(client);
    await readQueueDepth(db, cap);
    const { nodes } = runs.at(-1)!;
    const shape = planShape(nodes);
    expect(
      nodes.filter((node) => node['Node Type'] === 'Seq Scan').map((node) => node['Relation Name']),
      shape,
    ).to.deep.equal([]);
    const counted = (['queued', 'scheduled', 'deferred', 'processing', 'failed'] as const).reduce((sum, status) => sum + Math.min(counts[status] ?? 0, cap), 0);
    expect(jobRowsRead(nodes), `rows of email_send_jobs read by ${shape}`).to.be.at.most(counted + SLACK);
  } finally {
    await client.query('rollback');
    client.release();
  }
}

describe(`the queue depth at a backlog of ${BACKLOG.toLocaleString('en')} jobs, whatever its make-up and the statistics`, function () {
  // Backlogs of 30,000 jobs (and a history as long) on a loaded 2-core machine.
  this.timeout(300_000);

  let db: TestDatabase;
  let appId: string;

  beforeEach(async () => {
    db = await createTestDatabase();
    await db.pool.query('alter table email_send_jobs set (autovacuum_enabled = false)');
    appId = (await makeApp(db.pool)).id;
  });

  afterEach(async () => {
    await db?.drop();
  });

  /** The backlog, then FEW jobs of every other status. */
  async function seed(backlog: Jobs): Promise<Partial<Record<Status, number>>> {
    await addJobs(db.pool, appId, backlog);
    const counts: Partial<Record<Status, number>> = { [backlog.status]: backlog.count };
    for (const status of ['queued', 'scheduled', 'deferred', 'processing', 'failed'] as const) {
      if (status !== backlog.status) {
        await addJobs(db.pool, appId, { status, count: FEW, spread: true, due: status !== 'scheduled' });
        counts[status] = FEW;
      }
    }
    return counts;
  }

  const backlogs: Array<[string, Jobs]> = [
    ['queued jobs of one priority', { status: 'queued', count: BACKLOG }],
    ['queued jobs over every priority', { status: 'queued', count: BACKLOG, spread: true }],
    ['jobs scheduled a year ahead', { status: 'scheduled', count: BACKLOG, due: false }],
    ['scheduled jobs fallen due (a campaign at 9:00)', { status: 'scheduled', count: BACKLOG, spread: true }],
    ['deferred jobs (an outage)', { status: 'deferred', count: BACKLOG, spread: true }],
  ];

  for (const [name, backlog] of backlogs) {
    it(`when the backlog is ${name} and the table was analysed with it, then each status is counted from its own index range`, async () => {
      const counts = await seed(backlog);
      await db.pool.query('analyze email_send_jobs');

      await expectBoundedDepthRead(db.pool, CAP, counts);
      await expectBoundedDepthRead(db.pool, DEPTH_COUNT_CAP + 1, counts);
    });
  }

  it('when the table was never analysed and a bulk was just enqueued, then each status is counted from its own index range', async () => {
    const counts = await seed({ status: 'queued', count: BACKLOG });

    await expectBoundedDepthRead(db.pool, CAP, counts);
  });

  it('when the table was analysed with a history and no backlog, then each status is still counted from its own index range after a bulk', async () => {
    await addJobs(db.pool, appId, { status: 'sent', count: BACKLOG });
    await db.pool.query('analyze email_send_jobs');
    const counts = await seed({ status: 'queued', count: BACKLOG });

    await expectBoundedDepthRead(db.pool, CAP, counts);
  });

  it('when counted, then each status is exact up to the cap and stops at it', async () => {
    await seed({ status: 'queued', count: BACKLOG });

    const depth = await withTransaction(db.pool, (tx) => readQueueDepth(tx, CAP));

    expect(depth.byStatus).to.deep.equal({ queued: CAP, scheduled: FEW, deferred: FEW, processing: FEW, failed: FEW });
    expect(depth.oldestDueAgeSeconds).to.be.within(3_590, 3_700);
  });
});

describe(`the webhook backlog at ${BACKLOG.toLocaleString('en')} pending deliveries, whatever the statistics`, function () {
  this.timeout(300_000);

  let db: TestDatabase;
  let appId: string;

  beforeEach(async () => {
    db = await createTestDatabase();
    await db.pool.query('alter table webhook_deliveries set (autovacuum_enabled = false)');
    appId = (await makeApp(db.pool)).id;
  });

  afterEach(async () => {
    await db?.drop();
  });

  /** `count` deliveries of one status, all of one status change (a job's `accepted`). */
  async function addDeliveries(status: 'pending' | 'delivered', count: number): Promise<void> {
    await db.pool.query(
      `with change as (
         insert into status_changes (app_id, job_id, old_status, new_status) values ($1, 1, 'processing', 'accepted') returning id)
       insert into webhook_deliveries (change_id, app_id, url, status, attempts, next_attempt_at, delivered_at)
       select change.id, $1, 'https://hooks.example.org/jetpost', $2::text, 1, now() - interval '1 hour' + g * interval '1 ms',
         case when $2 = 'delivered' then now() end
       from change, generate_series(1, $3::int) as g`,
      [appId, status, count],
    );
  }

  async function expectBoundedBacklogRead(cap: number, pending: number): Promise<void> {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      const { db: explaining, runs } = planner(client);
      await readWebhookBacklog(explaining, cap);
      const { nodes } = runs.at(-1)!;
      const shape = planShape(nodes);
      expect(
        nodes.filter((node) => node['Node Type'] === 'Seq Scan').map((node) => node['Relation Name']),
        shape,
      ).to.deep.equal([]);
      const read = nodes
        .filter((node) => node['Relation Name'] === 'webhook_deliveries' || (node['Index Name'] ?? '').startsWith('webhook_deliveries_'))
        .reduce(
          (sum, node) =>
            sum +
            (node['Node Type'] === 'Bitmap Heap Scan' ? 0 : (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1)) +
            (node['Rows Removed by Filter'] ?? 0),
          0,
        );
      expect(read, `rows of webhook_deliveries read by ${shape}`).to.be.at.most(Math.min(pending, cap) + SLACK);
    } finally {
      await client.query('rollback');
      client.release();
    }
  }

  it('when the table was never analysed, then the pending deliveries are counted from their index, up to the cap', async () => {
    await addDeliveries('delivered', BACKLOG);
    await addDeliveries('pending', BACKLOG);

    await expectBoundedBacklogRead(CAP, BACKLOG);
  });

  it('when the table was analysed with the backlog, then the pending deliveries are counted from their index', async () => {
    await addDeliveries('delivered', BACKLOG);
    await addDeliveries('pending', BACKLOG);
    await db.pool.query('analyze webhook_deliveries');

    await expectBoundedBacklogRead(CAP, BACKLOG);
  });
});
