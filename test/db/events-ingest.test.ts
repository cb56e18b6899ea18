// The events ingest against a concurrent recording of a send: an event that arrives while its
// MessageID is being recorded must end matched to its recipient, whichever transaction commits first.
import { expect } from 'chai';

import { messageLockSlots } from '../../src/db/events-repo.js';
import type { Pool } from '../../src/db/pool.js';
import { makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ingestBody, ingestWhileRecording } from '../support/events-ingest.js';
import { type HeldTransaction, openTransaction, someoneWaitsOn } from '../support/held-transaction.js';
import { eventually } from '../support/service.js';

const MESSAGE_ID = '576460765503091475';

async function recipientOf(pool: Pool): Promise<string> {
  const jobId = await makeJob(pool, { status: 'accepted', to: ['b@example.com'] });
  return (await recipientIds(pool, jobId))[0]!;
}

const SENT_EVENT = `{"event":"sent","time":1700000000,"MessageID":${MESSAGE_ID},"email":"b@example.com"}`;

const OPEN_EVENT = `{"event":"open","time":1700000000,"MessageID":${MESSAGE_ID},"email":"b@example.com"}`;

/**
 * A sent one-recipient job holding MESSAGE_ID; `writer` does what a concurrent writer does (locks the
 * job, writes the recipient: a new row version) and commits when told; `waiting` resolves once
 * `count` sessions wait on a lock.
 */
async function sentRecipientWithWriters(
  pool: Pool,
): Promise<{ recipientId: string; writer: () => HeldTransaction; waiting: (count: number) => Promise<unknown> }> {
  const jobId = await makeJob(pool, { status: 'sent', to: ['b@example.com'] });
  const [recipientId] = await recipientIds(pool, jobId);
  await pool.query("update email_recipients set mailjet_message_id = $2, status = 'sent' where id = $1", [recipientId, MESSAGE_ID]);
  const writer = () =>
    openTransaction(pool, async (tx) => {
      await tx.query('select id from email_send_jobs where id = $1 for no key update', [jobId]);
      await tx.query('update email_recipients set updated_at = now() where id = $1', [recipientId]);
    });
  const waiting = async (count: number) =>
    eventually(async () => ((await pool.query('select 1 from pg_locks where not granted')).rowCount! >= count ? true : undefined), 20_000, `${count} waiting`);
  return { recipientId: recipientId!, writer, waiting };
}

describe('events ingest', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when an event arrives while its MessageID is being recorded (uncommitted), then it waits and ends matched and applied', async () => {
    db = await createTestDatabase();
    const recipientId = await recipientOf(db.pool);

    // The ingest cannot see the recipient's MessageID yet: it stores the event unmatched, then waits on the slot.
    const result = await ingestWhileRecording(db.pool, recipientId, MESSAGE_ID, () => ingestBody(db.pool, SENT_EVENT));

    expect(result).to.deep.equal({ stored: 1, unmatched: 0, byType: { sent: 1 }, sentAfterAcceptedMs: [], otherAddress: { count: 0, first: [] } });
    const { rows } = await db.pool.query('select recipient_id::text from email_events');
    expect(rows).to.deep.equal([{ recipient_id: recipientId }]);
    const status = await db.pool.query('select status from email_recipients where id = $1', [recipientId]);
    expect(status.rows[0].status).to.equal('sent');
  });

  it('when an event arrives while retention deletes its job (uncommitted), then it is kept unmatched and no row points at the deleted job', async () => {
    db = await createTestDatabase();
    const recipientId = await recipientOf(db.pool);
    await db.pool.query("update email_recipients set mailjet_message_id = $2, mailjet_message_uuid = 'uuid-1', status = 'accepted' where id = $1", [
      recipientId,
      MESSAGE_ID,
    ]);
    const { rows: jobs } = await db.pool.query('select job_id::text from email_recipients where id = $1', [recipientId]);
    const jobId = jobs[0].job_id as string;

    // What retention does: lock the job, delete it (its recipients go with it), commit later.
    const deletion = openTransaction(db.pool, async (tx) => {
      await tx.query('select id from email_send_jobs where id = $1 for update', [jobId]);
      await tx.query('delete from email_send_jobs where id = $1', [jobId]);
    });
    await deletion.written;
    const ingest = ingestBody(db.pool, SENT_EVENT);
    // The ingest still sees the recipient: it matches the event to it, then waits on the job's lock.
    await someoneWaitsOn(db.pool, 'transactionid', 'the ingest to wait on the deletion');
    deletion.commit();
    await deletion.committed;
    const result = await ingest;

    expect(result).to.deep.equal({ stored: 1, unmatched: 1, byType: { sent: 1 }, sentAfterAcceptedMs: [], otherAddress: { count: 0, first: [] } });
    const { rows } = await db.pool.query('select recipient_id, job_id from email_events');
    expect(rows).to.deep.equal([{ recipient_id: null, job_id: null }]);
    const changes = await db.pool.query('select count(*)::int as n from status_changes where job_id = $1', [jobId]);
    expect(changes.rows[0].n).to.equal(0);
  });

  it('when a job is deleted, then its events and status changes go with it, and those of other jobs stay', async () => {
    db = await createTestDatabase();
    const [doomed, kept] = [await recipientOf(db.pool), await recipientOf(db.pool)];
    for (const [index, recipientId] of [doomed, kept].entries()) {
      await db.pool.query("update email_recipients set mailjet_message_id = $2, status = 'accepted' where id = $1", [
        recipientId,
        String(BigInt(MESSAGE_ID) + BigInt(index)),
      ]);
    }
    const body = [0, 1].map((index) => `{"event":"sent","time":1700000000,"MessageID":${BigInt(MESSAGE_ID) + BigInt(index)},"email":"b@example.com"}`);
    await ingestBody(db.pool, `[${body.join(',')}]`);
    const jobOf = async (recipientId: string) =>
      (await db.pool.query('select job_id::text from email_recipients where id = $1', [recipientId])).rows[0].job_id as string;
    const [doomedJob, keptJob] = [await jobOf(doomed), await jobOf(kept)];

    await db.pool.query('delete from email_send_jobs where id = $1', [doomedJob]);

    const left = async (table: string) =>
      (await db.pool.query(`select job_id::text, count(*)::int as n from ${table} group by job_id order by job_id`)).rows as Array<{
        job_id: string;
        n: number;
      }>;
    expect(await left('email_events')).to.deep.equal([{ job_id: keptJob, n: 1 }]);
    expect((await left('status_changes')).map((row) => row.job_id)).to.deep.equal([keptJob]);
  });

  for (const recipients of [1, 2]) {
    it(`when another writer moves a recipient forward while an event for it waits on its job (${recipients} recipient job), then the event moves it on from there`, async () => {
      db = await createTestDatabase();
      const jobId = await makeJob(db.pool, { status: 'sent', to: ['b@example.com', 'c@example.com'].slice(0, recipients) });
      const [recipientId] = await recipientIds(db.pool, jobId);
      await db.pool.query("update email_recipients set mailjet_message_id = $2, status = 'sent' where id = $1", [recipientId, MESSAGE_ID]);

      // What a concurrent ingest of an open does: lock the job, move the recipient (a new row version), commit later.
      const opening = openTransaction(db.pool, async (tx) => {
        await tx.query('select id from email_send_jobs where id = $1 for no key update', [jobId]);
        await tx.query("update email_recipients set status = 'opened', updated_at = now() where id = $1", [recipientId]);
      });
      await opening.written;
      // Its look-up sees the recipient's row version from before the open; then it waits on the job.
      const ingest = ingestBody(db.pool, `{"event":"click","time":1700000000,"MessageID":${MESSAGE_ID},"email":"b@example.com","url":"https://example.com/"}`);
      await someoneWaitsOn(db.pool, 'transactionid', 'the event to wait on the job of the open');
      opening.commit();
      await opening.committed;
      const result = await ingest;

      expect(result).to.deep.equal({ stored: 1, unmatched: 0, byType: { click: 1 }, sentAfterAcceptedMs: [], otherAddress: { count: 0, first: [] } });
      const { rows } = await db.pool.query('select status from email_recipients where id = $1', [recipientId]);
      expect(rows).to.deep.equal([{ status: 'clicked' }]);
      const changes = await db.pool.query('select old_status, new_status from status_changes where recipient_id = $1', [recipientId]);
      expect(changes.rows).to.deep.equal([{ old_status: 'opened', new_status: 'clicked' }]);
    });
  }

  // Before: a callback whose recipient another writer moved while it waited on the job tried again
  // with a new snapshot taken before it waited on the job once more, so each writer that came first
  // made it miss again: three in a row (other replicas, a send's record) answered Mailjet 503.
  it('when other writers move the recipient while an event waits on its job, three times in a row, then the event is still stored and applied, not refused', async () => {
    db = await createTestDatabase();
    const { recipientId, writer, waiting } = await sentRecipientWithWriters(db.pool);

    let holding = writer();
    await holding.written;
    let settled = false;
    const ingest = ingestBody(db.pool, OPEN_EVENT);
    const done = ingest.then(
      () => (settled = true),
      () => (settled = true),
    );
    await waiting(1);
    for (let round = 0; round < 3 && !settled; round += 1) {
      // The next writer queues behind the event, and takes the job when the event lets it go.
      const next = writer();
      await waiting(2);
      holding.commit();
      await holding.committed;
      await Promise.race([next.written, done]);
      holding = next;
      await Promise.race([waiting(1), done]);
    }
    holding.commit();
    await holding.committed;
    const result = await ingest;

    expect(result).to.deep.equal({ stored: 1, unmatched: 0, byType: { open: 1 }, sentAfterAcceptedMs: [], otherAddress: { count: 0, first: [] } });
    const { rows } = await db.pool.query('select status from email_recipients where id = $1', [recipientId]);
    expect(rows).to.deep.equal([{ status: 'opened' }]);
  });

  // A callback tried again locks its recipient's job before it stores the event; the same callback
  // sent again by Mailjet meanwhile stores the event first, then waits on the job: each waits on the
  // other (PostgreSQL ends one after deadlock_timeout, and it is tried again). Neither may be refused
  // nor store the event twice.
  it('when a callback tried again and the same callback sent again wait on each other, then both are answered and the event is stored and applied once', async () => {
    db = await createTestDatabase();
    const { recipientId, writer, waiting } = await sentRecipientWithWriters(db.pool);
    const first = writer();
    await first.written;
    const tried = ingestBody(db.pool, OPEN_EVENT);
    await waiting(1);
    const second = writer();
    await waiting(2);
    // The first writer moved the recipient: the callback misses it, and tries again behind the second writer.
    first.commit();
    await first.committed;
    await second.written;
    await waiting(1);
    const sentAgain = ingestBody(db.pool, OPEN_EVENT);
    await waiting(2);
    second.commit();
    await second.committed;
    const results = await Promise.all([tried, sentAgain]);

    expect(results.map((result) => result.stored).sort()).to.deep.equal([0, 1]);
    const events = await db.pool.query('select recipient_id::text from email_events');
    expect(events.rows).to.deep.equal([{ recipient_id: recipientId }]);
    const { rows } = await db.pool.query('select status from email_recipients where id = $1', [recipientId]);
    expect(rows).to.deep.equal([{ status: 'opened' }]);
  });

  // The job's row lock is what makes the ingest see the sibling's new status: without it, the job
  // would be set from the sibling's status as the statement's snapshot saw it, a step backwards.
  it('when another writer moves the sibling recipient and the job forward while an event waits on their job, then the job keeps the higher status', async () => {
    db = await createTestDatabase();
    const jobId = await makeJob(db.pool, { status: 'sent', to: ['b@example.com', 'c@example.com'] });
    const [recipientId, siblingId] = await recipientIds(db.pool, jobId);
    await db.pool.query("update email_recipients set mailjet_message_id = $2, status = 'sent' where id = $1", [recipientId, MESSAGE_ID]);
    await db.pool.query("update email_recipients set status = 'sent' where id = $1", [siblingId]);

    // What a concurrent ingest of the sibling's click does: lock the job, move the sibling and the job, commit later.
    const clicking = openTransaction(db.pool, async (tx) => {
      await tx.query('select id from email_send_jobs where id = $1 for no key update', [jobId]);
      await tx.query("update email_recipients set status = 'clicked', updated_at = now() where id = $1", [siblingId]);
      await tx.query("update email_send_jobs set status = 'clicked', updated_at = now() where id = $1", [jobId]);
    });
    await clicking.written;
    const ingest = ingestBody(db.pool, `{"event":"open","time":1700000000,"MessageID":${MESSAGE_ID},"email":"b@example.com"}`);
    await someoneWaitsOn(db.pool, 'transactionid', 'the event to wait on the job of the click');
    clicking.commit();
    await clicking.committed;
    await ingest;

    const job = await db.pool.query('select status from email_send_jobs where id = $1', [jobId]);
    expect(job.rows).to.deep.equal([{ status: 'clicked' }]);
    const recipients = await db.pool.query('select status from email_recipients where job_id = $1 order by position', [jobId]);
    expect(recipients.rows).to.deep.equal([{ status: 'opened' }, { status: 'clicked' }]);
    const changes = await db.pool.query('select old_status, new_status from status_changes where recipient_id = $1', [recipientId]);
    expect(changes.rows).to.deep.equal([{ old_status: 'sent', new_status: 'opened' }]);
  });

  it('when messages are locked, then a transaction takes at most 64 slots, ascending, whatever their number', () => {
    const many = Array.from({ length: 100_000 }, (_, i) => ({ messageId: String(576460765503091475n + BigInt(i)), messageUuid: `uuid-${i}` }));

    const slots = messageLockSlots(many);

    expect(slots).to.have.length(64);
    expect(slots).to.deep.equal([...slots].sort((a, b) => a - b));
    // A MessageID counts by its value, however it is written.
    expect(messageLockSlots([{ messageId: MESSAGE_ID }])).to.deep.equal(messageLockSlots([{ messageId: `000${MESSAGE_ID}` }]));
    expect(messageLockSlots([{ messageId: null, messageUuid: 'uuid-1' }])).to.have.length(1);
  });
});
