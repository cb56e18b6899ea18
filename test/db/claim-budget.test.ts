// A claim takes up to BATCH_SIZE jobs, but only as many large messages as fit its byte budget, so
// a backlog of large messages is not loaded into memory fifty at a time per consumer.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';

import { claimJobs } from '../../src/db/jobs-repo.js';
import { MIGRATIONS_DIR } from '../../src/paths.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const MiB = 1024 * 1024;

describe('claiming by bytes as well as by count', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase();
  });

  afterEach(async () => {
    await db.drop();
  });

  it('when due messages are large, then a claim stops at its byte budget (taking at least one) and leaves the rest queued', async () => {
    const app = await makeApp(db.pool);
    const ids: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      // Random text does not compress: each message is stored at about 1 MiB.
      const text = randomBytes(0.75 * MiB).toString('base64');
      ids.push(await makeJob(db.pool, { appId: app.id, content: { from: { email: 'app@example.com' }, subject: `big ${index}`, text } }));
    }

    const first = await claimJobs(db.pool, 'a', 50, 60_000, 1.5 * MiB);
    const second = await claimJobs(db.pool, 'b', 50, 60_000, 0.5 * MiB);
    const third = await claimJobs(db.pool, 'c', 50, 60_000);

    // 0 and 1 MiB before them are under 1.5 MiB; the third would start past it.
    expect(first.map((job) => job.id)).to.deep.equal(ids.slice(0, 2));
    // A message larger than the whole budget still goes, alone.
    expect(second.map((job) => job.id)).to.deep.equal([ids[2]]);
    expect(third.map((job) => job.id)).to.deep.equal([ids[3]]);
    const { rows } = await db.pool.query<{ status: string; locked_by: string }>('select status, locked_by from email_send_jobs order by id');
    expect(rows).to.deep.equal([
      { status: 'processing', locked_by: 'a' },
      { status: 'processing', locked_by: 'a' },
      { status: 'processing', locked_by: 'b' },
      { status: 'processing', locked_by: 'c' },
    ]);
  });

  it('when large messages compress well, then a claim counts them at their size, not as stored', async () => {
    const app = await makeApp(db.pool);
    const ids: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      // Repeated bytes: each message is stored in about 10 KB, and read at 0.75 MiB.
      const text = 'x'.repeat(0.75 * MiB);
      ids.push(await makeJob(db.pool, { appId: app.id, content: { from: { email: 'app@example.com' }, subject: `big ${index}`, text } }));
    }

    const first = await claimJobs(db.pool, 'a', 50, 60_000, 1.5 * MiB);

    expect(first.map((job) => job.id)).to.deep.equal(ids.slice(0, 2));
  });

  it('when jobs were queued before their size was kept, then the upgrade fills it for those still to send, and claims count them at their size', async () => {
    const app = await makeApp(db.pool);
    const content = (index: number) => ({ from: { email: 'app@example.com' }, subject: `old ${index}`, text: 'x'.repeat(0.75 * MiB) });
    const ids: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      ids.push(await makeJob(db.pool, { appId: app.id, content: content(index) }));
    }
    const sent = await makeJob(db.pool, { appId: app.id, content: content(4) });
    await db.pool.query(`update email_send_jobs set status = 'sent' where id = $1`, [sent]);
    // As written before sql/30_…: no size kept.
    await db.pool.query('update email_send_jobs set message_bytes = null');

    await db.pool.query(await fs.readFile(path.join(MIGRATIONS_DIR, '31_fill-jobs-message-bytes.sql'), 'utf8'));

    const { rows } = await db.pool.query<{ id: string; message_bytes: number | null }>('select id::text, message_bytes from email_send_jobs order by id');
    for (const row of rows) {
      if (row.id === sent) {
        expect(row.message_bytes, 'a settled job').to.equal(null);
      } else {
        expect(row.message_bytes, `job ${row.id}`).to.be.within(0.75 * MiB, 0.76 * MiB);
      }
    }
    const claimed = await claimJobs(db.pool, 'a', 50, 60_000, 1.5 * MiB);
    expect(claimed.map((job) => job.id)).to.deep.equal(ids.slice(0, 2));
  });

  it('when messages are small, then the claim takes the count asked for', async () => {
    const app = await makeApp(db.pool);
    for (let index = 0; index < 5; index += 1) {
      await makeJob(db.pool, { appId: app.id });
    }

    expect(await claimJobs(db.pool, 'a', 3, 60_000)).to.have.length(3);
    expect(await claimJobs(db.pool, 'b', 3, 60_000)).to.have.length(2);
  });
});
