// The queue's partial indexes are keyed on queue_status, which a trigger keeps right (sql/19_ to
// 25_): so that an event's update of a job names no indexed column and can be HOT. Checked here: the
// upgrade of a database holding jobs in every status, the writes of the earlier release (status
// only) during a rolling upgrade, and that an event's update is HOT.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';
import pg from 'pg';
import { migrate } from 'postgres-migrations';

import { claimJobs, listJobsByStatus, nextRunAt, reapExpiredLeases } from '../../src/db/jobs-repo.js';
import { runMigrations } from '../../src/db/migrate.js';
import { notifyChannels } from '../../src/db/notify.js';
import { createPool, type Pool } from '../../src/db/pool.js';
import { parseEventBody } from '../../src/domain/event-parse.js';
import { MIGRATIONS_DIR } from '../../src/paths.js';
import { createEventIngest } from '../../src/services/events.js';
import { makeApp, makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { testLogger } from '../support/log.js';

/** The last migration of the release before queue_status. */
const BEFORE_QUEUE_STATUS = 18;
const LEASE_MS = 60_000;

/** Migrates up to and including migration `last`, as the earlier release did. */
async function migrateUpTo(url: string, last: number): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-migrations-'));
  try {
    for (const file of await fs.readdir(MIGRATIONS_DIR)) {
      if (Number.parseInt(file, 10) <= last) {
        await fs.copyFile(path.join(MIGRATIONS_DIR, file), path.join(dir, file));
      }
    }
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${TEST_SCHEMA}` });
    await client.connect();
    try {
      await client.query(`create schema ${TEST_SCHEMA}`);
      await migrate({ client }, dir);
    } finally {
      await client.end();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** A job as the earlier release writes it (no queue_status), with one recipient; returns its id. */
async function oldReleaseJob(pool: Pool, appId: string, status: string, lease?: { by: string; untilMs: number }): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `insert into email_send_jobs (app_id, status, message, max_attempts, attempts, recipient_count, run_at, locked_by, locked_until, accepted_at)
     values ($1, $2, '{"from":{"email":"app@example.com"},"subject":"Hi","text":"Hi"}', 3, $3, 1, now() - interval '1 minute',
       $4, now() + make_interval(secs => $5::double precision / 1000), case when $2 in ('accepted', 'sent', 'opened') then now() end)
     returning id::text`,
    [appId, status, status === 'failed' ? 3 : 0, lease?.by ?? null, lease === undefined ? null : lease.untilMs],
  );
  const id = rows[0]!.id;
  await pool.query(`insert into email_recipients (job_id, position, kind, email) values ($1, 0, 'to', $2)`, [id, `${status}-${id}@example.com`]);
  return id;
}

async function queueStatuses(pool: Pool): Promise<Map<string, string | null>> {
  const { rows } = await pool.query<{ id: string; queue_status: string | null }>('select id::text, queue_status from email_send_jobs');
  return new Map(rows.map((row) => [row.id, row.queue_status]));
}

describe('jobs: queue_status (the queue indexes without status)', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when the upgrade runs over jobs in every status, then claimable jobs stay claimable, held ones stay visible to the reaper, settled ones stay settled', async () => {
    db = await createTestDatabase({ migrated: false });
    await migrateUpTo(db.url, BEFORE_QUEUE_STATUS);
    const app = await db.pool.query<{ id: string }>(`insert into apps (name) values ('upgrade') returning id::text`);
    const appId = app.rows[0]!.id;
    const claimable = [
      await oldReleaseJob(db.pool, appId, 'queued'),
      await oldReleaseJob(db.pool, appId, 'scheduled'),
      await oldReleaseJob(db.pool, appId, 'deferred'),
    ];
    const expired = await oldReleaseJob(db.pool, appId, 'processing', { by: 'old-consumer', untilMs: -1_000 });
    const held = await oldReleaseJob(db.pool, appId, 'processing', { by: 'old-consumer', untilMs: LEASE_MS });
    const failed = await oldReleaseJob(db.pool, appId, 'failed');
    const settled: string[] = [];
    for (const status of ['accepted', 'sent', 'opened', 'cancelled']) {
      settled.push(await oldReleaseJob(db.pool, appId, status));
    }

    await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });

    const after = await queueStatuses(db.pool);
    expect([...claimable, expired, held, failed].map((id) => after.get(id))).to.deep.equal([
      'queued',
      'scheduled',
      'deferred',
      'processing',
      'processing',
      'failed',
    ]);
    expect(settled.map((id) => after.get(id))).to.deep.equal([null, null, null, null]);
    expect(await nextRunAt(db.pool)).to.be.instanceOf(Date);
    expect((await listJobsByStatus(db.pool, 'failed', { limit: 10 })).jobs.map((job) => job.id)).to.deep.equal([failed]);
    expect((await reapExpiredLeases(db.pool, 10, 'lease expired')).map((job) => job.id)).to.deep.equal([expired]);
    const claimed = (await claimJobs(db.pool, 'new-consumer', 10, LEASE_MS)).map((job) => job.id);
    expect(claimed.sort()).to.deep.equal([...claimable, expired].sort());
    expect(await claimJobs(db.pool, 'new-consumer', 10, LEASE_MS)).to.deep.equal([]);
    const statuses = await db.pool.query<{ status: string }>('select status from email_send_jobs where id = any($1::bigint[]) order by id', [settled]);
    expect(statuses.rows.map((row) => row.status)).to.deep.equal(['accepted', 'sent', 'opened', 'cancelled']);
    // No index names status any more: that is what lets an event's update be HOT.
    const indexes = await db.pool.query<{ indexdef: string }>(`select indexdef from pg_indexes where tablename = 'email_send_jobs'`);
    expect(indexes.rows.map((row) => row.indexdef).filter((definition) => /\bstatus\b/.test(definition))).to.deep.equal([]);
  });

  it('when the earlier release writes status only (rolling upgrade), then queue_status follows it', async () => {
    db = await createTestDatabase();
    const appId = (await makeApp(db.pool)).id;
    // Its insert: claimable by this release.
    const queued = await oldReleaseJob(db.pool, appId, 'queued');
    const toClaim = await oldReleaseJob(db.pool, appId, 'queued');
    const toAccept = await oldReleaseJob(db.pool, appId, 'queued');
    const toFail = await oldReleaseJob(db.pool, appId, 'queued');
    // Its claims, with leases one of which has expired: no longer claimable, visible to the reaper.
    await db.pool.query(
      `update email_send_jobs set status = 'processing', locked_by = 'old-consumer', locked_until = now() - interval '1 second', attempts = 1 where id = $1`,
      [toClaim],
    );
    await db.pool.query(
      `update email_send_jobs set status = 'processing', locked_by = 'old-consumer', locked_until = now() + interval '1 minute' where id = any($1::bigint[])`,
      [[toAccept, toFail]],
    );
    // Its acceptance and its failure.
    await db.pool.query(`update email_send_jobs set status = 'accepted', accepted_at = now(), locked_by = null, locked_until = null where id = $1`, [toAccept]);
    await db.pool.query(`update email_send_jobs set status = 'failed', locked_by = null, locked_until = null where id = $1`, [toFail]);
    // A write that names queue_status wrongly is put right too.
    await db.pool.query(`update email_send_jobs set queue_status = 'queued' where id = $1`, [toAccept]);

    expect(await queueStatuses(db.pool)).to.deep.equal(
      new Map([
        [queued, 'queued'],
        [toClaim, 'processing'],
        [toAccept, null],
        [toFail, 'failed'],
      ]),
    );
    expect((await listJobsByStatus(db.pool, 'failed', { limit: 10 })).jobs.map((job) => job.id)).to.deep.equal([toFail]);
    expect((await reapExpiredLeases(db.pool, 10, 'lease expired')).map((job) => job.id)).to.deep.equal([toClaim]);
    expect((await claimJobs(db.pool, 'new-consumer', 10, LEASE_MS)).map((job) => job.id).sort()).to.deep.equal([queued, toClaim].sort());
  });

  it('when an event moves an accepted job forward, then its update is HOT (no index entry written)', async () => {
    db = await createTestDatabase();
    const jobIds: string[] = [];
    const elements: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const jobId = await makeJob(db.pool, { status: 'accepted', to: [`r${i}@example.com`] });
      const [recipientId] = await recipientIds(db.pool, jobId);
      const messageId = String(576460765503091475n + BigInt(i));
      await db.pool.query("update email_recipients set status = 'accepted', mailjet_message_id = $2 where id = $1", [recipientId, messageId]);
      jobIds.push(jobId);
      elements.push(`{"event":"sent","time":1700000000,"MessageID":${messageId},"email":"r${i}@example.com"}`);
    }
    const parsed = parseEventBody(`[${elements.join(',')}]`);
    expect(parsed.ok).to.equal(true);
    // One connection, so that its statistics can be flushed on demand (pg_stat_force_next_flush).
    const single = createPool({ connectionString: db.url, schema: TEST_SCHEMA, max: 1, log: testLogger() });
    try {
      const updates = async () => {
        await single.query('select pg_stat_force_next_flush()');
        const { rows } = await single.query<{ all: number; hot: number }>(
          `select pg_stat_get_tuples_updated('email_send_jobs'::regclass)::int as all, pg_stat_get_tuples_hot_updated('email_send_jobs'::regclass)::int as hot`,
        );
        return rows[0]!;
      };
      const before = await updates();
      await createEventIngest(single, notifyChannels(TEST_SCHEMA))(parsed.ok ? parsed.events : []);
      const after = await updates();
      const statuses = await single.query<{ status: string }>('select status from email_send_jobs where id = any($1::bigint[])', [jobIds]);
      expect(statuses.rows.map((row) => row.status)).to.deep.equal(['sent', 'sent', 'sent']);
      expect({ updated: after.all - before.all, hot: after.hot - before.hot }).to.deep.equal({ updated: 3, hot: 3 });
    } finally {
      await single.end();
    }
  });
});
