// Events are applied a batch at a time (one statement per kind for the whole batch). Whatever way
// the stream is cut into callbacks, and however those run at once, each event is stored once, the
// receipts add up, and the statuses end as they do when the same events come one by one.
import { expect } from 'chai';

import { notifyChannels } from '../../src/db/notify.js';
import type { Pool } from '../../src/db/pool.js';
import { type MailjetEvent, parseEventBody } from '../../src/domain/event-parse.js';
import { createEventIngest } from '../../src/services/events.js';
import { makeApp, makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';

const MESSAGES = 30;
const FIRST_ID = 576460765503091475n;

/** Accepted jobs, one recipient each, with MessageIDs FIRST_ID + i. */
async function acceptedMessages(pool: Pool): Promise<void> {
  const app = await makeApp(pool);
  for (let i = 0; i < MESSAGES; i += 1) {
    const jobId = await makeJob(pool, { appId: app.id, status: 'accepted', to: [`r${i}@example.com`] });
    const [recipientId] = await recipientIds(pool, jobId);
    await pool.query("update email_recipients set status = 'accepted', mailjet_message_id = $2 where id = $1", [recipientId, String(FIRST_ID + BigInt(i))]);
  }
}

/** A shuffled stream of sent/open/click/bounce events with repeats, and events of unknown messages. */
function eventStream(): MailjetEvent[] {
  let seed = 42;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  const elements: string[] = [];
  for (let i = 0; i < MESSAGES + 3; i += 1) {
    const id = String(FIRST_ID + BigInt(i));
    const email = `r${i}@example.com`;
    const kinds = i % 5 === 0 ? ['sent', 'bounce'] : i % 3 === 0 ? ['sent', 'open', 'click'] : ['sent', 'open'];
    kinds.forEach((kind, step) => {
      const extra = kind === 'bounce' ? ',"hard_bounce":true' : kind === 'click' ? ',"url":"https://example.com/a"' : '';
      const element = `{"event":"${kind}","time":${1700000000 + step * 60},"MessageID":${id},"email":"${email}"${extra}}`;
      elements.push(element);
      if (random() < 0.4) {
        elements.push(element);
      }
    });
  }
  for (let i = elements.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [elements[i], elements[j]] = [elements[j]!, elements[i]!];
  }
  const parsed = parseEventBody(`[${elements.join(',')}]`);
  if (!parsed.ok || parsed.rejected.length > 0) {
    throw new Error('the test stream should parse');
  }
  return parsed.events;
}

async function outcome(pool: Pool): Promise<{ recipients: string[]; jobs: string[]; events: number }> {
  const recipients = await pool.query<{ s: string }>("select mailjet_message_id::text || ':' || status as s from email_recipients order by mailjet_message_id");
  const jobs = await pool.query<{ s: string }>(
    "select r.mailjet_message_id::text || ':' || j.status as s from email_send_jobs j join email_recipients r on r.job_id = j.id order by r.mailjet_message_id",
  );
  const events = await pool.query<{ n: number }>('select count(*)::int as n from email_events');
  return { recipients: recipients.rows.map((row) => row.s), jobs: jobs.rows.map((row) => row.s), events: events.rows[0]!.n };
}

describe('events applied in batches', () => {
  const databases: TestDatabase[] = [];

  afterEach(async () => {
    await Promise.all(databases.splice(0).map((db) => db.drop()));
  });

  it('when a shuffled stream with repeats comes in concurrent callbacks, then statuses end as one by one, each event stored once, receipts add up', async () => {
    const [oneByOne, grouped] = [await createTestDatabase(), await createTestDatabase()];
    databases.push(oneByOne, grouped);
    await acceptedMessages(oneByOne.pool);
    await acceptedMessages(grouped.pool);
    const stream = eventStream();
    const unique = new Set(stream.map((event) => event.dedupeKey)).size;

    const ingestOneByOne = createEventIngest(oneByOne.pool, notifyChannels(TEST_SCHEMA));
    for (const event of stream) {
      await ingestOneByOne([event]);
    }
    const callbacks: MailjetEvent[][] = [];
    for (let start = 0; start < stream.length; start += 7) {
      callbacks.push(stream.slice(start, start + 7));
    }
    // One ingest, as in the service: callbacks that arrive together share transactions.
    const ingestGrouped = createEventIngest(grouped.pool, notifyChannels(TEST_SCHEMA));
    const receipts = await Promise.all(callbacks.map((events) => ingestGrouped(events)));

    const expected = await outcome(oneByOne.pool);
    expect(await outcome(grouped.pool)).to.deep.equal(expected);
    expect(expected.events).to.equal(unique);
    expect(receipts.reduce((sum, receipt) => sum + receipt.stored, 0)).to.equal(unique);
    // The 3 messages nobody sent: their events are kept, unmatched.
    const unknown = stream.filter((event) => BigInt(event.messageId!) >= FIRST_ID + BigInt(MESSAGES));
    expect(receipts.reduce((sum, receipt) => sum + receipt.unmatched, 0)).to.equal(new Set(unknown.map((event) => event.dedupeKey)).size);
  });
});
