// A job Mailjet accepted without usable ids is marked so in its own column (accepted_unresolved,
// sql/32_…): set when it is deferred to be looked up, carried by its look-up-only claim, cleared when
// it is accepted; jobs deferred or failed so before the column existed are marked from their error.
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';

import { acceptSentJobs, claimJobs } from '../../src/db/jobs-repo.js';
import { MIGRATIONS_DIR } from '../../src/paths.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openTransaction, someoneWaitsOn } from '../support/held-transaction.js';
import { testSendingService } from '../support/sending.js';

const UNRESOLVED =
  'Mailjet accepted it, but its answer names an address that matches none sent: it is looked up by CustomID for its MessageIDs, never sent again';

describe('a job Mailjet accepted without usable ids', () => {
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

  const marks = async () =>
    (await db.pool.query<{ id: string; accepted_unresolved: boolean }>('select id::text, accepted_unresolved from email_send_jobs order by id')).rows.map(
      (row) => [row.id, row.accepted_unresolved],
    );

  /** A job of 3 attempts, sent once and deferred to be looked up (its outcome unknown). */
  const deferredToLookUp = async () => {
    const sending = testSendingService(db.pool);
    const app = await makeApp(db.pool);
    const jobId = await makeJob(db.pool, { appId: app.id, maxAttempts: 3 });
    await claimJobs(db.pool, 'a', 1, 120_000);
    await sending.record('a', [
      { jobId, kind: 'deferred', error: UNRESOLVED, runAt: new Date(0), outcomeUnknown: true, refundAttempt: false, lookUpOnly: true },
    ]);
    return { sending, jobId };
  };

  it('when it is deferred to be looked up, then it is marked, its look-up-only claim carries the mark, and its acceptance clears it', async () => {
    const { sending, jobId } = await deferredToLookUp();
    expect(await marks()).to.deep.equal([[jobId, true]]);

    const [claimed] = await claimJobs(db.pool, 'a', 1, 120_000);
    expect(claimed).to.deep.include({ id: jobId, lookUpOnly: true, acceptedUnresolved: true, attempts: 3 });
    await sending.record('a', [
      { jobId, kind: 'accepted', recipients: [{ recipientId: claimed!.recipients[0]!.id, messageId: '576460765503091475', messageUuid: 'u' }] },
    ]);
    expect(await marks()).to.deep.equal([[jobId, false]]);
  });

  it('when its look-up-only claim is given back unsent (a stop, a 401), then it keeps its attempts, so its next claim is look-up only again', async () => {
    const { sending, jobId } = await deferredToLookUp();
    const [claimed] = await claimJobs(db.pool, 'a', 1, 120_000);
    expect(claimed).to.deep.include({ lookUpOnly: true, attempts: 3 });

    expect(await sending.release('a', [jobId], [jobId])).to.deep.equal([jobId]);

    const [again] = await claimJobs(db.pool, 'a', 1, 120_000);
    expect(again, 'one attempt fewer would let this claim send a message Mailjet took').to.deep.include({ id: jobId, lookUpOnly: true, attempts: 3 });
  });

  it('when one record gives two jobs the same MessageID, then only the first is accepted with it; the other is reported held, still leased', async () => {
    const sending = testSendingService(db.pool);
    const app = await makeApp(db.pool);
    const first = await makeJob(db.pool, { appId: app.id });
    const second = await makeJob(db.pool, { appId: app.id });
    const claimed = await claimJobs(db.pool, 'a', 2, 120_000);
    const ids = (jobId: string, messageId: string) => ({
      jobId,
      kind: 'accepted' as const,
      recipients: [{ recipientId: claimed.find((job) => job.id === jobId)!.recipients[0]!.id, messageId, messageUuid: `u-${jobId}` }],
    });

    const summary = await sending.record('a', [ids(first, '576460765503097777'), ids(second, '576460765503097777')]);

    expect(summary).to.deep.equal({
      accepted: [first],
      failed: [],
      deferred: [],
      lostLease: [],
      heldElsewhere: [{ jobId: second, messageId: '576460765503097777', holderJobId: first }],
    });
    const { rows } = await db.pool.query<{ job_id: string; status: string; message_id: string | null; locked_by: string | null }>(
      `select r.job_id::text, j.status, r.mailjet_message_id::text as message_id, j.locked_by
       from email_recipients r join email_send_jobs j on j.id = r.job_id order by r.job_id`,
    );
    expect(rows).to.deep.equal([
      { job_id: first, status: 'accepted', message_id: '576460765503097777', locked_by: null },
      { job_id: second, status: 'processing', message_id: null, locked_by: 'a' },
    ]);
  });

  it('when two records give two jobs the same MessageID at the same time, then the second waits for the first to commit and finds the id held: it is bound once', async () => {
    const sending = testSendingService(db.pool);
    const app = await makeApp(db.pool);
    const first = await makeJob(db.pool, { appId: app.id });
    const second = await makeJob(db.pool, { appId: app.id });
    const [claimedByA] = await claimJobs(db.pool, 'a', 1, 120_000);
    const [claimedByB] = await claimJobs(db.pool, 'b', 1, 120_000);
    const messageId = '576460765503098888';
    // The first record's acceptance is written, its transaction still open: its binding is not visible yet.
    const open = openTransaction(db.pool, (tx) =>
      acceptSentJobs(tx, [{ id: first, workerId: 'a', recipients: [{ recipientId: claimedByA!.recipients[0]!.id, messageId, messageUuid: 'u-a' }] }]),
    );
    releaseHeld = async () => {
      open.commit();
      await open.committed;
    };
    await open.written;

    const recording = sending.record('b', [
      { jobId: second, kind: 'accepted', recipients: [{ recipientId: claimedByB!.recipients[0]!.id, messageId, messageUuid: 'u-b' }] },
    ]);
    const firstToHappen = await Promise.race([
      recording.then(() => 'the second record ended while the first was open'),
      someoneWaitsOn(db.pool, 'advisory', 'the second record waiting on the MessageID').then(
        () => 'the second record waits',
        () => 'nothing waited',
      ),
    ]);
    await releaseHeld();
    releaseHeld = undefined;
    const summary = await recording;

    expect(firstToHappen).to.equal('the second record waits');
    expect(summary).to.deep.equal({ accepted: [], failed: [], deferred: [], lostLease: [], heldElsewhere: [{ jobId: second, messageId, holderJobId: first }] });
    const { rows } = await db.pool.query('select job_id::text from email_recipients where mailjet_message_id = $1', [messageId]);
    expect(rows).to.deep.equal([{ job_id: first }]);
  });

  it('when jobs were deferred or failed so before the mark existed, then the upgrade marks them from their error, and only them', async () => {
    const app = await makeApp(db.pool);
    const deferred = await makeJob(db.pool, { appId: app.id });
    const failed = await makeJob(db.pool, { appId: app.id, status: 'failed', lastError: `${UNRESOLVED}; the look-up did not find it` });
    const timedOut = await makeJob(db.pool, { appId: app.id });
    const accepted = await makeJob(db.pool, { appId: app.id });
    await db.pool.query(`update email_send_jobs set status = 'deferred', outcome_unknown = true, last_error = $2 where id = $1`, [deferred, UNRESOLVED]);
    await db.pool.query(`update email_send_jobs set outcome_unknown = true where id = $1`, [failed]);
    await db.pool.query(`update email_send_jobs set status = 'deferred', outcome_unknown = true, last_error = 'Mailjet 503' where id = $1`, [timedOut]);
    // An accepted job's error is cleared; one whose text still read so is settled and left alone.
    await db.pool.query(`update email_send_jobs set status = 'accepted', outcome_unknown = true, last_error = $2 where id = $1`, [accepted, UNRESOLVED]);

    await db.pool.query(await fs.readFile(path.join(MIGRATIONS_DIR, '33_fill-jobs-accepted-unresolved.sql'), 'utf8'));

    expect(await marks()).to.deep.equal([
      [deferred, true],
      [failed, true],
      [timedOut, false],
      [accepted, false],
    ]);
  });
});
