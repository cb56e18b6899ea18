// A callback body larger than a MiB is not held as objects all at once: its events are parsed again a
// transaction's worth at a time as they are written (domain/event-parse.ts). What a caller relies on
// stays: every event stored and applied in the order of the whole body, 200 only once all of it is
// committed, a failure half-way an error that a retry recovers from without duplicates, and a body
// with anything that is not JSON stored nowhere but in rejected_events.
import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import { notifyChannels } from '../../src/db/notify.js';
import type { Pool } from '../../src/db/pool.js';
import { createLogger } from '../../src/log.js';
import { createEventsReceiver, type EventsReceipt } from '../../src/services/events.js';
import { makeApp } from '../factories.js';
import { seedAcceptedMessages } from '../support/accepted-messages.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { eventText } from '../support/mailjet-events.js';

const FIRST_ID = 576460765503091475n;
/** Unknown to jetpost; sorts before the scenario's own ids, so their events go in the first transactions. */
const FOREIGN_ID = 1152921504606846976n;
const MESSAGES = 3000;
const FOREIGN = 300;
/** What Mailjet sends along (about 100 characters), so that 6,300 events make more than a MiB. */
const AGENT = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';

/**
 * Opens of every message first, then their sends (Mailjet's order within a grouped callback is not
 * time's), then events of unknown messages, then `more` elements.
 */
function largeBody(more: readonly string[] = []): string {
  const events: string[] = [];
  for (const [type, time] of [
    ['open', 200],
    ['sent', 100],
  ] as const) {
    for (let i = 0; i < MESSAGES; i += 1) {
      events.push(eventText(type, String(FIRST_ID + BigInt(i)), `reader-${i}@example.com`, time, { agent: AGENT }));
    }
  }
  for (let i = 0; i < FOREIGN; i += 1) {
    events.push(eventText('sent', String(FOREIGN_ID + BigInt(i)), `someone-${i}@example.org`, 100, { agent: AGENT }));
  }
  return `[${[...events, ...more].join(',')}]`;
}

async function count(pool: Pool, sql: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(sql);
  return rows[0]!.n;
}

/** How many recipients went through each sequence of status changes. */
async function stepsOfRecipients(pool: Pool): Promise<Array<{ steps: string; n: number }>> {
  const { rows } = await pool.query<{ steps: string; n: number }>(
    `select steps, count(*)::int as n
     from (select string_agg(new_status, ',' order by id) as steps from status_changes group by recipient_id) per_recipient
     group by steps`,
  );
  return rows;
}

describe('events of a callback body larger than a MiB', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  const total = 2 * MESSAGES + FOREIGN;

  afterEach(async () => {
    await db?.drop();
  });

  function receiver(): (text: string) => Promise<EventsReceipt> {
    return createEventsReceiver({ pool: db.pool, channels: notifyChannels(TEST_SCHEMA), bus: createBus(), log: createLogger({ level: 'error' }) });
  }

  it('when it arrives, then every event is stored in several transactions and applied in the order of the whole body, every digit of its MessageIDs kept, and what can never be applied is kept aside', async () => {
    db = await createTestDatabase();
    await seedAcceptedMessages(db.pool, (await makeApp(db.pool)).id, MESSAGES, FIRST_ID);
    const body = largeBody(['{"event":"open"}', eventText('open', String(FIRST_ID), 'a\u0000@example.com', 300)]);
    expect(body.length).to.be.above(1024 * 1024);

    const receipt = await receiver()(body);

    expect(receipt).to.deep.equal({ received: total + 2, stored: total, duplicates: 0, unmatched: FOREIGN, rejected: 2 });
    const rejected = await db.pool.query<{ position: number; kind: string }>('select position, kind from rejected_events order by position');
    expect(rejected.rows).to.deep.equal([
      { position: total, kind: 'invalid' },
      { position: total + 1, kind: 'unstorable-text' },
    ]);
    expect(await count(db.pool, 'select count(distinct xmin::text)::int as n from email_events')).to.be.above(1);
    // Each message's send and open went in together: the app hears "sent", then "opened".
    expect(await stepsOfRecipients(db.pool)).to.deep.equal([{ steps: 'sent,opened', n: MESSAGES }]);
    const { rows } = await db.pool.query<{ id: string }>(
      'select max(mailjet_message_id)::text as id from email_events where recipient_id is not null union all select max(mailjet_message_id)::text from email_events where recipient_id is null',
    );
    expect(rows.map((row) => row.id)).to.deep.equal([String(FIRST_ID + BigInt(MESSAGES - 1)), String(FOREIGN_ID + BigInt(FOREIGN - 1))]);
  });

  it('when a transaction after the first fails, then the callback fails, and its retry stores the rest without storing any event twice', async () => {
    db = await createTestDatabase();
    await seedAcceptedMessages(db.pool, (await makeApp(db.pool)).id, MESSAGES, FIRST_ID);
    // A real failure of PostgreSQL for the last message only (its events go in the last transaction).
    await db.pool.query(`
      create function refuse_last() returns trigger language plpgsql as $$
      begin
        if new.email = 'reader-${MESSAGES - 1}@example.com' then raise exception 'refused the last message'; end if;
        return new;
      end $$;
      create trigger refuse_last before insert on email_events for each row execute function refuse_last();`);
    const body = largeBody();
    const receive = receiver();

    const failed = await receive(body).then(
      () => undefined,
      (error: unknown) => error,
    );
    const storedBefore = await count(db.pool, 'select count(*)::int as n from email_events');
    await db.pool.query('drop trigger refuse_last on email_events');
    const retry = await receive(body);

    expect(failed).to.have.property('message', 'refused the last message');
    // The transactions before the failing one are committed.
    expect(storedBefore).to.be.above(0).and.below(total);
    expect(retry).to.deep.equal({ received: total, stored: total - storedBefore, duplicates: storedBefore, unmatched: 0, rejected: 0 });
    expect(await count(db.pool, 'select count(*)::int as n from email_events')).to.equal(total);
    expect(await count(db.pool, "select count(*)::int as n from email_recipients where status = 'opened'")).to.equal(MESSAGES);
  });

  it('when its last element is not JSON, then it is refused with a 400, kept aside whole, and not one of its events is stored', async () => {
    db = await createTestDatabase();
    await seedAcceptedMessages(db.pool, (await makeApp(db.pool)).id, MESSAGES, FIRST_ID);
    const body = `${largeBody().slice(0, -1)},{"event":tru}]`;

    const refused = await receiver()(body).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(refused).to.include({ status: 400 });
    expect(await count(db.pool, 'select count(*)::int as n from email_events')).to.equal(0);
    expect(await count(db.pool, "select count(*)::int as n from email_recipients where status = 'accepted'")).to.equal(MESSAGES);
    const { rows } = await db.pool.query<{ kind: string; position: number | null; source_length: number }>(
      'select kind, position, source_length from rejected_events',
    );
    expect(rows).to.deep.equal([{ kind: 'not-json', position: null, source_length: body.length }]);
  });
});
