// The claim reads its batch from the claim index in order, whatever PostgreSQL knows of the table:
// never analysed (a fresh install's first bulk, a restored database), or analysed while no job was
// claimable (its statistics then know no backlog), or analysed with the backlog. Over a backlog of
// 50,000 due jobs each claim runs under EXPLAIN (ANALYZE) in a transaction rolled back: it may read a
// few rows per job it claims, never the backlog. Autovacuum is off for the table, so that its
// statistics stay as each test left them.
import { expect } from 'chai';

import { claimJobs, findJobs, nextRunAt } from '../../src/db/jobs-repo.js';
import type { Pool } from '../../src/db/pool.js';
import type { JobRow } from '../../src/domain/job.js';
import { makeApp } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { planner, type PlanNode, planShape } from '../support/plans.js';

const BACKLOG = 50_000;
const CLAIM = 200;
const LEASE_MS = 60_000;
/** Rows the scans of email_send_jobs may return or filter out: the batch read from the index, and again by id for its update. */
const ROW_BUDGET = 4 * CLAIM;

/**
 * A bulk enqueue as POST /queue leaves it: `count` queued jobs, due since a minute, one recipient
 * each; or (`sent`) as many jobs of the history, sent a minute ago.
 */
async function addJobs(pool: Pool, appId: string, count: number, status: 'queued' | 'sent' = 'queued'): Promise<void> {
  await pool.query(
    `with jobs as (
       insert into email_send_jobs (app_id, status, message, run_at, max_attempts, recipient_count, accepted_at)
       select $1, $3, '{"from":{"email":"app@example.com"},"subject":"Hello","text":"Hi there"}', now() - interval '1 minute' + g * interval '1 ms', 3, 1,
         case when $3 = 'sent' then now() end
       from generate_series(1, $2) as g
       returning id)
     insert into email_recipients (job_id, position, kind, email)
     select id, 0, 'to', 'reader' || id || '@example.org' from jobs`,
    [appId, count, status],
  );
}

/** Rows the plan's scans of email_send_jobs returned or read and dropped, over all their loops. */
function jobRowsRead(nodes: readonly PlanNode[]): number {
  return nodes
    .filter((node) => node['Relation Name'] === 'email_send_jobs')
    .reduce(
      (sum, node) =>
        sum + (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1) + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0),
      0,
    );
}

/** Claims a batch under EXPLAIN (ANALYZE), then rolls it back: it reads the jobs it claims, through the claim index. */
async function expectClaimReadsItsBatchOnly(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { db, runs } = planner(client);
    await claimJobs(db, 'consumer-1', CLAIM, LEASE_MS);
    expect(runs).to.have.length(1);
    const { nodes } = runs[0]!;
    expect(jobRowsRead(nodes), `rows of email_send_jobs read by ${planShape(nodes)}`).to.be.at.most(ROW_BUDGET);
    expect(
      nodes.some((node) => node['Index Name'] === 'email_send_jobs_claim_idx'),
      planShape(nodes),
    ).to.equal(true);
  } finally {
    await client.query('rollback');
    client.release();
  }
}

async function tableStatistics(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ reltuples: number }>(`select reltuples from pg_class where oid = 'email_send_jobs'::regclass`);
  return rows[0]!.reltuples;
}

describe(`the claim at a backlog of ${BACKLOG.toLocaleString('en')} jobs, whatever the statistics`, function () {
  // A backlog of 50,000 jobs (and a history as long) on a loaded 2-core machine.
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

  it(`when the table was never analysed and a bulk was just enqueued, then a claim of ${CLAIM} reads them from the claim index, not the backlog`, async () => {
    await addJobs(db.pool, appId, BACKLOG);
    // -1: never analysed (nor vacuumed).
    expect(await tableStatistics(db.pool)).to.be.below(0);

    await expectClaimReadsItsBatchOnly(db.pool);
  });

  it(`when the table was analysed with a history and no job claimable, then a claim of ${CLAIM} after a bulk still reads them from the claim index`, async () => {
    await addJobs(db.pool, appId, BACKLOG, 'sent');
    await db.pool.query('analyze email_send_jobs');
    await addJobs(db.pool, appId, BACKLOG);

    await expectClaimReadsItsBatchOnly(db.pool);
  });

  it(`when the table was analysed with the backlog, then a claim of ${CLAIM} reads them from the claim index`, async () => {
    await addJobs(db.pool, appId, BACKLOG);
    await db.pool.query('analyze email_send_jobs');

    await expectClaimReadsItsBatchOnly(db.pool);
  });
});

describe('the order of claims', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase();
  });

  afterEach(async () => {
    await db.drop();
  });

  it('when jobs of several priorities are due, then claims take the highest priority first, then the earliest due, and never a job not due yet', async () => {
    const app = await makeApp(db.pool);
    // [priority, run_at offset in seconds]: negative is due.
    const jobs: Array<[number, number]> = [
      [0, -50],
      [2, -10],
      [1, -40],
      [3, 600],
      [2, -30],
      [0, -60],
      [3, -5],
      [1, 300],
    ];
    const { rows } = await db.pool.query<{ id: string }>(
      `insert into email_send_jobs (app_id, status, queue_status, message, priority, run_at, max_attempts, recipient_count)
       select $1, 'queued', 'queued', '{"from":{"email":"app@example.com"},"subject":"Hello","text":"Hi there"}', j.priority, now() + j.offset_s * interval '1 second', 3, 1
       from unnest($2::smallint[], $3::int[]) with ordinality as j(priority, offset_s, position)
       order by j.position
       returning id::text`,
      [app.id, jobs.map(([priority]) => priority), jobs.map(([, offset]) => offset)],
    );
    const ids = rows.map((row) => row.id);
    await db.pool.query(`insert into email_recipients (job_id, position, kind, email) select id, 0, 'to', 'reader@example.org' from email_send_jobs`);

    const first = await claimJobs(db.pool, 'a', 3, LEASE_MS);
    const second = await claimJobs(db.pool, 'b', 3, LEASE_MS);
    const third = await claimJobs(db.pool, 'c', 3, LEASE_MS);

    expect(first.map((job) => job.id)).to.deep.equal([ids[6], ids[4], ids[1]]);
    expect(second.map((job) => job.id)).to.deep.equal([ids[2], ids[5], ids[0]]);
    expect(third).to.deep.equal([]);
    // The next to fall due: the priority-1 job in 5 minutes, before the priority-3 one in 10.
    const due = await db.pool.query<{ ms: string }>('select floor(extract(epoch from run_at) * 1000)::text as ms from email_send_jobs where id = $1', [ids[7]]);
    expect((await nextRunAt(db.pool))?.getTime()).to.equal(Number(due.rows[0]!.ms));
  });
});

describe("a job's times, read as epoch milliseconds", () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });

  after(async () => {
    await db?.drop();
  });

  it('when times have microseconds (before 1970 too), then the claim and the reads give the Dates node-postgres itself parses', async () => {
    const app = await makeApp(db.pool);
    const { rows } = await db.pool.query<{ id: string }>(
      `insert into email_send_jobs (app_id, status, message, send_at, run_at, max_attempts, recipient_count, created_at)
       values ($1, 'queued', '{"from":{"email":"app@example.com"},"text":"Hi"}', '1969-12-31 23:59:59.9995+00', '2026-01-01 00:00:00.999999+00', 3, 1,
         '2025-12-31 23:59:59.000001+00')
       returning id::text`,
      [app.id],
    );
    const id = rows[0]!.id;
    await db.pool.query(`insert into email_recipients (job_id, position, kind, email) values ($1, 0, 'to', 'reader@example.org')`, [id]);

    const [claimed] = await claimJobs(db.pool, 'a', 1, LEASE_MS);
    const [read] = await findJobs(db.pool, app.id, [id]);
    const stored = await db.pool.query<Record<string, Date | null>>(
      'select send_at, run_at, locked_until, created_at, updated_at, accepted_at from email_send_jobs where id = $1',
      [id],
    );
    const times = (job: JobRow) => [job.sendAt, job.runAt, job.lockedUntil, job.createdAt, job.updatedAt, job.acceptedAt];
    const expected = Object.values(stored.rows[0]!);
    expect(expected[0]!.getTime()).to.equal(-1);
    expect(times(claimed!)).to.deep.equal(expected);
    expect(times(read!)).to.deep.equal(expected);
  });
});
