// Callbacks that arrive together share one transaction (group commit). What a caller relies on:
// each is answered only once its own events are committed, one callback's failure never becomes
// another's, and an event carried by two of them is stored and applied once.
import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import { notifyChannels } from '../../src/db/notify.js';
import type { Pool } from '../../src/db/pool.js';
import { parseEventBody } from '../../src/domain/event-parse.js';
import { createLogger } from '../../src/log.js';
import { createEventIngest, createEventsReceiver } from '../../src/services/events.js';
import { makeApp, makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { eventText } from '../support/mailjet-events.js';

const FIRST_ID = 576460765503091475n;

/** Accepted one-recipient jobs with MessageIDs FIRST_ID + i; returns their ids and addresses. */
async function acceptedMessages(pool: Pool, count: number): Promise<Array<{ messageId: string; email: string }>> {
  const app = await makeApp(pool);
  const messages: Array<{ messageId: string; email: string }> = [];
  for (let i = 0; i < count; i += 1) {
    const email = `r${i}@example.com`;
    const jobId = await makeJob(pool, { appId: app.id, status: 'accepted', to: [email] });
    const [recipientId] = await recipientIds(pool, jobId);
    const messageId = String(FIRST_ID + BigInt(i));
    await pool.query("update email_recipients set status = 'accepted', mailjet_message_id = $2 where id = $1", [recipientId, messageId]);
    messages.push({ messageId, email });
  }
  return messages;
}

const callback = (...events: string[]) => `[${events.join(',')}]`;

async function statuses(pool: Pool): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ email: string; status: string }>('select email, status from email_recipients order by email');
  return Object.fromEntries(rows.map((row) => [row.email, row.status]));
}

/** The ids of the transactions that stored the events. */
async function storingTransactions(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('select count(distinct xmin::text)::int as n from email_events');
  return rows[0]!.n;
}

describe('events of concurrent callbacks in shared transactions', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  function receiver(): (text: string) => Promise<unknown> {
    return createEventsReceiver({ pool: db.pool, channels: notifyChannels(TEST_SCHEMA), bus: createBus(), log: createLogger({ level: 'error' }) });
  }

  it('when two callbacks arrive together, then both are stored and applied in one transaction and each receipt counts its own events', async () => {
    db = await createTestDatabase();
    const [a, b, c] = await acceptedMessages(db.pool, 3);
    const ingest = createEventIngest(db.pool, notifyChannels(TEST_SCHEMA));
    const first = validEvents(callback(eventText('sent', a!.messageId, a!.email, 100), eventText('open', a!.messageId, a!.email, 200)));
    const second = validEvents(callback(eventText('sent', b!.messageId, b!.email, 100)));

    const [one, two] = await Promise.all([ingest(first), ingest(second)]);

    expect(one).to.include({ stored: 2, unmatched: 0 });
    expect(two).to.include({ stored: 1, unmatched: 0 });
    expect(await storingTransactions(db.pool)).to.equal(1);
    expect(await statuses(db.pool)).to.deep.equal({ [a!.email]: 'opened', [b!.email]: 'sent', [c!.email]: 'accepted' });
  });

  it("when one callback's events make the shared transaction fail, then the other's are stored and applied, and only the failing one gets the error", async () => {
    db = await createTestDatabase();
    const [a, b] = await acceptedMessages(db.pool, 2);
    // A real failure of PostgreSQL for one address only (a deployment's own trigger, a constraint, …).
    await db.pool.query(`
      create function refuse_poison() returns trigger language plpgsql as $$
      begin
        if new.email = '${b!.email}' then raise exception 'poisoned event'; end if;
        return new;
      end $$;
      create trigger refuse_poison before insert on email_events for each row execute function refuse_poison();`);
    const receive = receiver();

    const [good, bad] = await Promise.allSettled([
      receive(callback(eventText('sent', a!.messageId, a!.email, 100))),
      receive(callback(eventText('sent', b!.messageId, b!.email, 100))),
    ]);

    expect(good).to.deep.equal({ status: 'fulfilled', value: { received: 1, stored: 1, duplicates: 0, unmatched: 0, rejected: 0 } });
    expect(bad.status).to.equal('rejected');
    expect((bad as PromiseRejectedResult).reason).to.have.property('message', 'poisoned event');
    expect(await statuses(db.pool)).to.deep.equal({ [a!.email]: 'sent', [b!.email]: 'accepted' });
    const { rows } = await db.pool.query<{ email: string }>('select email from email_events');
    expect(rows).to.deep.equal([{ email: a!.email }]);
  });

  it('when the same events come in two callbacks together (a Mailjet retry overlapping), then each is stored and applied once, counted stored in one receipt only', async () => {
    db = await createTestDatabase();
    const [a, b] = await acceptedMessages(db.pool, 2);
    const sentA = eventText('sent', a!.messageId, a!.email, 100);
    const openA = eventText('open', a!.messageId, a!.email, 200);
    const receive = receiver();

    const receipts = await Promise.all([receive(callback(sentA, openA)), receive(callback(openA, eventText('sent', b!.messageId, b!.email, 100), sentA))]);

    expect(receipts).to.deep.equal([
      { received: 2, stored: 2, duplicates: 0, unmatched: 0, rejected: 0 },
      { received: 3, stored: 1, duplicates: 2, unmatched: 0, rejected: 0 },
    ]);
    expect(await statuses(db.pool)).to.deep.equal({ [a!.email]: 'opened', [b!.email]: 'sent' });
    const events = await db.pool.query<{ n: number }>('select count(*)::int as n from email_events');
    expect(events.rows[0]!.n).to.equal(3);
    const changes = await db.pool.query<{ new_status: string }>('select new_status from status_changes where recipient_id is not null order by id');
    expect(changes.rows.map((row) => row.new_status).sort()).to.deep.equal(['opened', 'sent', 'sent']);
  });

  it('when events of one unknown message come in two callbacks together, then each receipt counts its own as unmatched and both are kept', async () => {
    db = await createTestDatabase();
    const [a] = await acceptedMessages(db.pool, 1);
    const unknownId = String(FIRST_ID + 1000n);
    const receive = receiver();

    const receipts = await Promise.all([
      receive(callback(eventText('sent', unknownId, 'late@example.com', 100), eventText('sent', a!.messageId, a!.email, 100))),
      receive(callback(eventText('open', unknownId, 'late@example.com', 200))),
    ]);

    expect(receipts).to.deep.equal([
      { received: 2, stored: 2, duplicates: 0, unmatched: 1, rejected: 0 },
      { received: 1, stored: 1, duplicates: 0, unmatched: 1, rejected: 0 },
    ]);
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from email_events where recipient_id is null');
    expect(rows[0]!.n).to.equal(2);
  });
});

/** The valid events of a callback body. */
function validEvents(text: string) {
  const parsed = parseEventBody(text);
  if (!parsed.ok || parsed.rejected.length > 0) {
    throw new Error('the events should parse');
  }
  return parsed.events;
}
