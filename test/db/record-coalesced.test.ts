// The results of several consumers' Mailjet calls are recorded in one transaction when they end at
// about the same time (a group commit, services/group-commit.ts). Each job is still guarded by the lease of the
// consumer that sent it: a consumer that lost its lease learns so, and another's result stands. Two
// records are written at once: one held up in the database does not hold up the next.
import { expect } from 'chai';

import { claimJobs } from '../../src/db/jobs-repo.js';
import type { RecipientRow } from '../../src/domain/recipient.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openTransaction, someoneWaitsOn } from '../support/held-transaction.js';
import { testSendingService } from '../support/sending.js';

const accepted = (byJob: ReadonlyMap<string, RecipientRow[]>, jobId: string, index: number, messageId = String(576460765503091475n + BigInt(index))) => ({
  jobId,
  kind: 'accepted' as const,
  recipients: [{ recipientId: byJob.get(jobId)![0]!.id, messageId, messageUuid: `uuid-${index}` }],
});

describe('recording several consumers’ calls together', () => {
  let db: TestDatabase;
  // Ends a transaction a test holds open, so that the database can be dropped whatever the test did.
  let releaseHeld: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    db = await createTestDatabase();
  });

  afterEach(async () => {
    await releaseHeld?.();
    releaseHeld = undefined;
    await db.drop();
  });

  it('when calls of several consumers are recorded at once, then each gets its own summary and each job the result of its lease holder', async () => {
    const sending = testSendingService(db.pool);
    const app = await makeApp(db.pool);
    const jobIds: string[] = [];
    for (let index = 0; index < 6; index += 1) {
      jobIds.push(await makeJob(db.pool, { appId: app.id, to: [`r${index}@example.com`] }));
    }
    // Consumer a holds the first three jobs, consumer b the other three.
    const claimedByA = await claimJobs(db.pool, 'a', 3, 120_000);
    const claimedByB = await claimJobs(db.pool, 'b', 3, 120_000);
    expect(claimedByA.map((job) => job.id)).to.deep.equal(jobIds.slice(0, 3));
    const byJob = new Map<string, RecipientRow[]>([...claimedByA, ...claimedByB].map((job) => [job.id, job.recipients]));

    const [summaryA, summaryB, summaryLate] = await Promise.all([
      sending.record('a', [accepted(byJob, jobIds[0]!, 0), accepted(byJob, jobIds[1]!, 1), { jobId: jobIds[2]!, kind: 'failed', error: 'refused' }]),
      sending.record('b', [
        accepted(byJob, jobIds[3]!, 3),
        { jobId: jobIds[4]!, kind: 'deferred', error: 'busy', runAt: new Date(), outcomeUnknown: true, refundAttempt: false },
      ]),
      // a claims to have sent b's last job: it holds no lease on it.
      sending.record('a', [accepted(byJob, jobIds[5]!, 5)]),
    ]);

    expect(summaryA).to.deep.equal({ accepted: jobIds.slice(0, 2), failed: [jobIds[2]], deferred: [], lostLease: [] });
    expect(summaryB).to.deep.equal({ accepted: [jobIds[3]], failed: [], deferred: [jobIds[4]], lostLease: [] });
    expect(summaryLate).to.deep.equal({ accepted: [], failed: [], deferred: [], lostLease: [jobIds[5]] });
    const { rows } = await db.pool.query<{ id: string; status: string; locked_by: string | null; message_id: string | null }>(
      `select j.id::text, j.status, j.locked_by, r.mailjet_message_id::text as message_id
       from email_send_jobs j join email_recipients r on r.job_id = j.id
       where j.id = any($1::bigint[]) order by j.id`,
      [jobIds],
    );
    expect(rows.map((row) => [row.status, row.locked_by, row.message_id])).to.deep.equal([
      ['accepted', null, '576460765503091475'],
      ['accepted', null, '576460765503091476'],
      ['failed', null, null],
      ['accepted', null, '576460765503091478'],
      ['deferred', null, null],
      // Still b's: a's word does not settle it.
      ['processing', 'b', null],
    ]);
    expect(claimedByB).to.have.length(3);
  });

  it('when one call’s record fails in the database, then the calls recorded with it are kept and only that one fails', async () => {
    const sending = testSendingService(db.pool);
    const app = await makeApp(db.pool);
    const jobIds: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      jobIds.push(await makeJob(db.pool, { appId: app.id, to: [`r${index}@example.com`] }));
    }
    const claimed = await claimJobs(db.pool, 'a', 3, 120_000);
    const byJob = new Map<string, RecipientRow[]>(claimed.map((job) => [job.id, job.recipients]));

    // The middle call's MessageID does not fit a bigint: its statement fails, and with it the shared transaction.
    const [first, failing, last] = await Promise.allSettled([
      sending.record('a', [accepted(byJob, jobIds[0]!, 0)]),
      sending.record('a', [accepted(byJob, jobIds[1]!, 1, '99999999999999999999')]),
      sending.record('a', [accepted(byJob, jobIds[2]!, 2)]),
    ]);

    expect(first).to.deep.equal({ status: 'fulfilled', value: { accepted: [jobIds[0]], failed: [], deferred: [], lostLease: [] } });
    expect(failing.status).to.equal('rejected');
    expect(last).to.deep.equal({ status: 'fulfilled', value: { accepted: [jobIds[2]], failed: [], deferred: [], lostLease: [] } });
    const { rows } = await db.pool.query<{ status: string; locked_by: string | null }>(
      'select status, locked_by from email_send_jobs where id = any($1::bigint[]) order by id',
      [jobIds],
    );
    // The failed record's job keeps its lease: its consumer retries the record, or the reaper returns it to be looked up.
    expect(rows).to.deep.equal([
      { status: 'accepted', locked_by: null },
      { status: 'processing', locked_by: 'a' },
      { status: 'accepted', locked_by: null },
    ]);
  });

  it('when a record is held up in the database, then another consumer’s call ending meanwhile is recorded without waiting for it', async () => {
    const sending = testSendingService(db.pool);
    const app = await makeApp(db.pool);
    const held = await makeJob(db.pool, { appId: app.id, to: ['r0@example.com'] });
    const free = await makeJob(db.pool, { appId: app.id, to: ['r1@example.com'] });
    const byJob = new Map<string, RecipientRow[]>(
      [...(await claimJobs(db.pool, 'a', 1, 120_000)), ...(await claimJobs(db.pool, 'b', 1, 120_000))].map((job) => [job.id, job.recipients]),
    );
    expect([...byJob.keys()]).to.deep.equal([held, free]);

    // Another transaction holds a's job row: a's record waits on it, in the database.
    const blocker = openTransaction(db.pool, (tx) => tx.query('select 1 from email_send_jobs where id = $1 for update', [held]));
    releaseHeld = async () => {
      blocker.commit();
      await blocker.committed;
    };
    await blocker.written;
    const recordA = sending.record('a', [accepted(byJob, held, 0)]);
    await someoneWaitsOn(db.pool, 'transactionid', 'a’s record to wait on the row lock');

    // One record at a time would keep b's waiting until the row is released: this would never end.
    expect(await sending.record('b', [accepted(byJob, free, 1)])).to.deep.equal({ accepted: [free], failed: [], deferred: [], lostLease: [] });
    const { rows } = await db.pool.query<{ status: string }>('select status from email_send_jobs where id = $1', [held]);
    expect(rows).to.deep.equal([{ status: 'processing' }]);

    await releaseHeld();
    expect(await recordA).to.deep.equal({ accepted: [held], failed: [], deferred: [], lostLease: [] });
  });
});
