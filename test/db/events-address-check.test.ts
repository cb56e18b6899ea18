// Whether an event's email is the address of the recipient holding its MessageID, on every path that
// applies an event: the ingest's statement, its late match (the send recorded while the event was
// stored), and the record of a send (events that came before it). An event for another address is
// kept aside in rejected_events; one for the holder's address in another case or Unicode form applies.
import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import { claimJobs } from '../../src/db/jobs-repo.js';
import type { Pool } from '../../src/db/pool.js';
import { makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ingestBody, ingestWhileRecording } from '../support/events-ingest.js';
import { capturingLogger } from '../support/log.js';
import { testSendingService } from '../support/sending.js';

const MESSAGE_ID = '576460765503091475';

const event = (type: string, email: string, time: number, extra = '') =>
  `{"event":"${type}","time":${time},"MessageID":${MESSAGE_ID},"email":${JSON.stringify(email)}${extra}}`;
const HARD_BOUNCE = ',"hard_bounce":true,"error":"user unknown"';

function ingestEvents(pool: Pool, ...events: string[]): ReturnType<typeof ingestBody> {
  return ingestBody(pool, `[${events.join(',')}]`);
}

describe('the address check of events', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  async function facts(recipientId: string) {
    const recipient = await db.pool.query<{ status: string }>('select status from email_recipients where id = $1', [recipientId]);
    const events = await db.pool.query<{ event_type: string; matched: boolean }>(
      'select event_type, recipient_id is not null as matched from email_events order by occurred_at',
    );
    const rejected = await db.pool.query<{ reason: string; source: string }>('select reason, source from rejected_events');
    const suppressed = await db.pool.query('select email from suppressions');
    return { status: recipient.rows[0]!.status, events: events.rows, rejected: rejected.rows, suppressed: suppressed.rows };
  }

  // Before: the record of a send applied the events that came first to its recipients whatever their
  // address: another message's hard bounce bounced the holder and suppressed its address. Then (s26)
  // it kept it aside without counting it in jetpost_events_rejected_total or logging it, as a
  // callback does.
  it('when events came before the send was recorded, then the record applies the holder’s and keeps aside another address’s, counted and logged as a callback does', async () => {
    db = await createTestDatabase();
    const jobId = await makeJob(db.pool, { to: ['josé@bücher.example'] });
    const [recipientId] = await recipientIds(db.pool, jobId);
    const [claimed] = await claimJobs(db.pool, 'a', 1, 120_000);
    expect(claimed?.id).to.equal(jobId);

    const early = await ingestEvents(
      db.pool,
      event('bounce', 'other@bücher.example', 1_700_000_000, HARD_BOUNCE),
      event('sent', 'JOSÉ@xn--bcher-kva.example', 1_700_000_001),
    );
    expect(early).to.include({ stored: 2, unmatched: 2 });
    const bus = createBus();
    const counted: Array<{ kind: string; count: number }> = [];
    bus.on('events:rejected', (rejected) => counted.push(rejected));
    const { log, lines } = capturingLogger('warn');
    const sending = testSendingService(db.pool, { bus, log });
    const summary = await sending.record('a', [
      { jobId, kind: 'accepted', recipients: [{ recipientId: recipientId!, messageId: MESSAGE_ID, messageUuid: 'uuid-1' }] },
    ]);

    expect(summary.accepted).to.deep.equal([jobId]);
    const after = await facts(recipientId!);
    expect(after.status).to.equal('sent');
    expect(after.events).to.deep.equal([{ event_type: 'sent', matched: true }]);
    expect(after.rejected).to.have.length(1);
    expect(after.rejected[0]!.reason).to.match(new RegExp(`^email: its MessageID ${MESSAGE_ID} is held by a recipient of job ${jobId} with another address`));
    expect(after.rejected[0]!.source).to.contain('other@bücher.example');
    expect(after.suppressed, "another message's bounce suppresses nobody").to.deep.equal([]);
    expect(counted).to.deep.equal([{ kind: 'invalid', count: 1 }]);
    expect(lines().map((line) => ({ ...(JSON.parse(line) as Record<string, unknown>), timestamp: undefined }))).to.deep.equal([
      {
        level: 'warn',
        message: 'kept aside events for an address other than the recipient holding their MessageID: Mailjet gave that MessageID to two messages',
        component: 'events',
        rejected: 1,
        first: [{ messageId: MESSAGE_ID, holderJobId: jobId }],
        timestamp: undefined,
      },
    ]);
  });

  // Before: the record kept the event aside with its stored payload as source, a callback with the
  // event as it came: two texts, so two rows for one event.
  it('when an event kept aside by the record of its send comes again, then rejected_events holds it once, and another event for that address beside it', async () => {
    db = await createTestDatabase();
    const jobId = await makeJob(db.pool, { to: ['holder@example.com'] });
    const [recipientId] = await recipientIds(db.pool, jobId);
    await claimJobs(db.pool, 'a', 1, 120_000);
    const bounce = event('bounce', 'other@example.com', 1_700_000_000, HARD_BOUNCE);
    expect(await ingestEvents(db.pool, bounce)).to.include({ stored: 1, unmatched: 1 });
    await testSendingService(db.pool).record('a', [
      { jobId, kind: 'accepted', recipients: [{ recipientId: recipientId!, messageId: MESSAGE_ID, messageUuid: 'uuid-1' }] },
    ]);
    expect((await facts(recipientId!)).rejected).to.have.length(1);

    const again = await ingestEvents(db.pool, bounce, event('spam', 'other@example.com', 1_700_000_000, ',"source":"JMRPP"'));

    expect(again).to.deep.include({
      stored: 0,
      otherAddress: {
        count: 2,
        first: [
          { messageId: MESSAGE_ID, holderJobId: jobId },
          { messageId: MESSAGE_ID, holderJobId: jobId },
        ],
      },
    });
    const after = await facts(recipientId!);
    expect(after.rejected.map((row) => JSON.parse(row.source).event).sort()).to.deep.equal(['bounce', 'spam']);
  });

  it('when an event for another address arrives while the send is being recorded, then its late match keeps it aside too', async () => {
    db = await createTestDatabase();
    const jobId = await makeJob(db.pool, { status: 'accepted', to: ['holder@example.com'] });
    const [recipientId] = await recipientIds(db.pool, jobId);
    const result = await ingestWhileRecording(db.pool, recipientId!, MESSAGE_ID, () =>
      ingestEvents(db.pool, event('bounce', 'other@example.com', 1_700_000_000, HARD_BOUNCE), event('sent', 'Holder@Example.COM', 1_700_000_001)),
    );

    expect(result).to.deep.equal({
      stored: 1,
      unmatched: 0,
      byType: { sent: 1 },
      sentAfterAcceptedMs: [],
      otherAddress: { count: 1, first: [{ messageId: MESSAGE_ID, holderJobId: jobId }] },
    });
    const after = await facts(recipientId!);
    expect(after.status).to.equal('sent');
    expect(after.events).to.deep.equal([{ event_type: 'sent', matched: true }]);
    expect(after.rejected).to.have.length(1);
    expect(after.suppressed).to.deep.equal([]);
  });

  // Before: a holder whose address has a character outside ASCII was never compared, so another
  // message's events applied to it; and its own events must apply in any case or Unicode form.
  for (const [holder, own, other] of [
    ['josé@bücher.example', 'JOSÉ@xn--bcher-kva.example', 'jose@bücher.example'],
    ['ΟΔΟΣ@ελλάδα.gr', 'οδοσ@XN--HXAKIC4AA.GR', 'odos@ελλάδα.gr'],
    ['İnci@istanbul.example', 'inci@ISTANBUL.example', 'ince@istanbul.example'],
    ['straße@bücher.example', 'STRASSE@BÜCHER.EXAMPLE.', 'strase@bücher.example'],
    // A domain is the one UTS #46 maps it to: faß.example is another domain than fass.example (ß
    // was folded to ss), STRAẞE.example is strasse.example, not straße.example.
    ['x@fass.example', 'X@FASS.example.', 'x@faß.example'],
    ['x@STRAẞE.example', 'x@strasse.example', 'x@straße.example'],
    ['x@σας.gr', 'X@ΣΑς.GR', 'x@σασ.gr'],
  ]) {
    it(`when a recipient is ${holder}, then an event for ${own} applies and one for ${other} is kept aside`, async () => {
      db = await createTestDatabase();
      const jobId = await makeJob(db.pool, { status: 'accepted', to: [holder!] });
      const [recipientId] = await recipientIds(db.pool, jobId);
      await db.pool.query("update email_recipients set mailjet_message_id = $2, mailjet_message_uuid = 'uuid-1', status = 'accepted' where id = $1", [
        recipientId,
        MESSAGE_ID,
      ]);

      const result = await ingestEvents(db.pool, event('bounce', other!, 1_700_000_000, HARD_BOUNCE), event('sent', own!, 1_700_000_001));

      expect(result).to.deep.include({ stored: 1, byType: { sent: 1 }, otherAddress: { count: 1, first: [{ messageId: MESSAGE_ID, holderJobId: jobId }] } });
      const after = await facts(recipientId!);
      expect(after.status).to.equal('sent');
      expect(after.rejected).to.have.length(1);
      expect(after.suppressed).to.deep.equal([]);
    });
  }
});

// Before: of two events that suppress one address in one transaction (a hard bounce, then an
// unsubscribe or a complaint), the suppression kept the reason of whichever was written first: the
// order of their dedupe keys in a callback, any order in the record of a send.
describe('the reason an address is suppressed for', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  const BOUNCED_AT = 1_700_000_000;
  // Several addresses and times: which of two events a callback writes first follows their dedupe keys.
  for (const laterType of ['unsub', 'spam']) {
    for (const [address, laterAt] of [
      ['ada@example.com', BOUNCED_AT + 5],
      ['a@x.example', BOUNCED_AT + 5],
      ['bob@example.org', BOUNCED_AT + 1],
      ['eve@example.net', BOUNCED_AT + 3600],
    ] as const) {
      for (const path of ['a callback', 'the record of the send'] as const) {
        it(`when a hard bounce of ${address} and a later ${laterType} come together, by ${path}, then the address is suppressed for the bounce, the first`, async () => {
          db = await createTestDatabase();
          const jobId = await makeJob(db.pool, { to: [address] });
          const [recipientId] = await recipientIds(db.pool, jobId);
          await claimJobs(db.pool, 'a', 1, 120_000);
          const record = () =>
            testSendingService(db.pool, { bus: createBus() }).record('a', [
              { jobId, kind: 'accepted', recipients: [{ recipientId: recipientId!, messageId: MESSAGE_ID, messageUuid: 'uuid-1' }] },
            ]);
          if (path === 'a callback') {
            await record();
          }

          await ingestEvents(db.pool, event(laterType, address, laterAt), event('bounce', address, BOUNCED_AT, HARD_BOUNCE));
          if (path === 'the record of the send') {
            await record();
          }

          const { rows } = await db.pool.query('select email, reason from suppressions');
          expect(rows).to.deep.equal([{ email: address, reason: 'hard_bounce' }]);
        });
      }
    }
  }
});
