// Mailjet events dated far from now (the year 2999 or 20000, before 1970, before their message was
// accepted): none is refused for its time, each keeps Mailjet's time (RFC 3339's years 0001 to 9999
// holding it), and the accepted-to-sent histogram counts the time held to [accepted_at, now + 1 min],
// on the ingest's path and on the one of events matched later.
import { expect } from 'chai';

import { matchEvents } from '../../src/db/events-repo.js';
import { notifyChannels } from '../../src/db/notify.js';
import { type Pool, withTransaction } from '../../src/db/pool.js';
import { parseEventBody } from '../../src/domain/event-parse.js';
import { EVENT_CLOCK_SKEW_MS } from '../../src/domain/event-time.js';
import { applyEvents } from '../../src/services/apply-events.js';
import { createEventIngest } from '../../src/services/events.js';
import { makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { eventText } from '../support/mailjet-events.js';

const YEAR_2999 = Date.UTC(2999, 0, 1) / 1000;

/** A job Mailjet accepted `acceptedAgoMs` ago, its recipient holding `messageId` (or none yet). */
async function acceptedJob(pool: Pool, messageId: string | null, acceptedAgoMs = 0): Promise<{ jobId: string; recipientId: string }> {
  const jobId = await makeJob(pool, { status: 'accepted', to: ['b@example.com'] });
  await pool.query(`update email_send_jobs set accepted_at = now() - make_interval(secs => $2::double precision / 1000) where id = $1`, [jobId, acceptedAgoMs]);
  const [recipientId] = await recipientIds(pool, jobId);
  await pool.query("update email_recipients set mailjet_message_id = $2, status = 'accepted' where id = $1", [recipientId, messageId]);
  return { jobId, recipientId: recipientId! };
}

async function ingest(pool: Pool, body: string) {
  const parsed = parseEventBody(body);
  if (!parsed.ok) {
    throw new Error(parsed.reason);
  }
  expect(parsed.rejected, 'elements refused').to.deep.equal([]);
  return createEventIngest(pool, notifyChannels(TEST_SCHEMA))(parsed.events);
}

describe('event times', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when a sent event is dated in the year 2999, then it is applied at its own time and the histogram counts no more than the time since the acceptance (+1 min)', async () => {
    db = await createTestDatabase();
    const { recipientId } = await acceptedJob(db.pool, '1001', 5_000);

    const result = await ingest(db.pool, `[${eventText('sent', '1001', 'b@example.com', YEAR_2999)}]`);

    expect(result.sentAfterAcceptedMs).to.have.length(1);
    expect(result.sentAfterAcceptedMs[0]).to.be.within(5_000, 5_000 + EVENT_CLOCK_SKEW_MS + 60_000);
    const { rows } = await db.pool.query('select occurred_at, payload->>$2 as time from email_events where recipient_id = $1', [recipientId, 'time']);
    expect(rows).to.deep.equal([{ occurred_at: new Date(YEAR_2999 * 1000), time: String(YEAR_2999) }]);
  });

  it('when a sent event is dated an hour before its message was accepted, then the histogram counts 0', async () => {
    db = await createTestDatabase();
    await acceptedJob(db.pool, '1002');

    const result = await ingest(db.pool, `[${eventText('sent', '1002', 'b@example.com', Math.floor(Date.now() / 1000) - 3_600)}]`);

    expect(result.sentAfterAcceptedMs).to.deep.equal([0]);
  });

  it('when a sent event dated in the year 2999 arrives before its message is recorded, then, matched later, the histogram counts no more than the time since the acceptance (+1 min)', async () => {
    db = await createTestDatabase();
    const { recipientId } = await acceptedJob(db.pool, null, 5_000);
    const early = await ingest(db.pool, `[${eventText('sent', '1003', 'b@example.com', YEAR_2999)}]`);
    expect(early.unmatched).to.equal(1);
    await db.pool.query('update email_recipients set mailjet_message_id = 1003 where id = $1', [recipientId]);

    const applied = await withTransaction(db.pool, async (tx) => {
      const { rows } = await tx.query<{ id: string }>('select id::text from email_events');
      return applyEvents(tx, notifyChannels(TEST_SCHEMA), await matchEvents(tx, [rows[0]!.id]));
    });

    expect(applied.sentAfterAcceptedMs).to.have.length(1);
    expect(applied.sentAfterAcceptedMs[0]).to.be.within(5_000, 5_000 + EVENT_CLOCK_SKEW_MS + 60_000);
  });

  for (const [what, time, stored] of [
    ['after the year 9999', 1e15, '9999-12-31T23:59:59.000Z'],
    ['in the year 20000', Date.UTC(20000, 0, 1) / 1000, '9999-12-31T23:59:59.000Z'],
    ['before 1970', -86_400, '1969-12-31T00:00:00.000Z'],
    ['before the year 1', -1e15, '0001-01-01T00:00:00.000Z'],
  ] as const) {
    it(`when an event is dated ${what}, then it is applied, not refused, at its time held to the years 0001 to 9999, and its payload keeps the time as it came`, async () => {
      db = await createTestDatabase();
      const { recipientId } = await acceptedJob(db.pool, '1004');

      const result = await ingest(db.pool, `[${eventText('sent', '1004', 'b@example.com', time)}]`);

      expect(result.stored).to.equal(1);
      const { rows } = await db.pool.query<{ occurred_at: Date; time: unknown }>(
        'select occurred_at, payload->$2 as time from email_events where recipient_id = $1',
        [recipientId, 'time'],
      );
      // An integer of more than 15 digits is kept as its decimal text (no digit lost).
      expect(rows.map((row) => [row.occurred_at.toISOString(), String(row.time)])).to.deep.equal([[stored, String(time)]]);
      const status = await db.pool.query('select status from email_recipients where id = $1', [recipientId]);
      expect(status.rows[0].status).to.equal('sent');
    });
  }
});
