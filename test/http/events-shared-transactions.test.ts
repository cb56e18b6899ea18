// POST /events callbacks that arrive together share transactions. As an outsider would abuse that:
// a huge callback beside small ones, a client that hangs up while its callback is in a group, and
// a body with NUL bytes beside good ones. Every caller still gets its own true answer.
import http from 'node:http';

import { expect } from 'chai';

import type { Pool } from '../../src/db/pool.js';
import { makeApp, makeJob } from '../factories.js';
import { eventText } from '../support/mailjet-events.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { EVENTS_PASSWORD, EVENTS_USER, startTestService, type TestService } from '../support/service.js';

const FIRST_ID = 576460765503091475n;

/** Accepted jobs of up to 50 recipients, MessageIDs FIRST_ID + i, written straight to the database (fast for thousands). */
async function acceptedMessages(pool: Pool, count: number): Promise<Array<{ messageId: string; email: string }>> {
  const app = await makeApp(pool);
  const emails = Array.from({ length: count }, (_, i) => `r${String(i).padStart(4, '0')}@example.com`);
  for (let start = 0; start < count; start += 50) {
    const jobId = await makeJob(pool, { appId: app.id, status: 'accepted', to: emails.slice(start, start + 50) });
    await pool.query(`update email_recipients set status = 'accepted', mailjet_message_id = $2::bigint + substr(email, 2, 4)::int where job_id = $1`, [
      jobId,
      FIRST_ID.toString(),
    ]);
  }
  return emails.map((email, i) => ({ messageId: String(FIRST_ID + BigInt(i)), email }));
}

const callback = (events: string[]) => `[${events.join(',')}]`;

async function countRows(pool: Pool, sql: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(sql);
  return rows[0]!.n;
}

describe('POST /events callbacks in shared transactions', () => {
  let service: TestService;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    restoreNetwork();
  });

  it('when a callback of 5,000 events arrives beside 10 small ones, then every one is answered 200 with its own receipt and every event is applied', async () => {
    service = await startTestService();
    const messages = await acceptedMessages(service.db.pool, 1000);
    const huge = callback(messages.flatMap((m) => ['sent', 'open', 'click', 'open', 'click'].map((type, i) => eventText(type, m.messageId, m.email, 100 + i))));
    const small = Array.from({ length: 10 }, (_, n) =>
      callback(messages.slice(n * 100, n * 100 + 100).map((m) => eventText('sent', m.messageId, m.email, 100))),
    );

    const responses = await Promise.all([huge, ...small].map((body) => service.postEvents(body)));

    expect(responses.map((res) => res.status)).to.deep.equal(Array(11).fill(200));
    const receipts = (await Promise.all(responses.map((res) => res.json()))) as Array<{ received: number; stored: number; duplicates: number }>;
    expect(receipts.map((receipt) => receipt.received)).to.deep.equal([5000, ...Array(10).fill(100)]);
    // Each `sent` event is in the huge callback and in one small one: stored once, by whichever came first.
    expect(receipts.reduce((sum, receipt) => sum + receipt.stored, 0)).to.equal(5000);
    expect(await countRows(service.db.pool, 'select count(*)::int as n from email_events')).to.equal(5000);
    expect(await countRows(service.db.pool, "select count(*)::int as n from email_recipients where status = 'clicked'")).to.equal(1000);
  });

  it('when a client hangs up while its callback is in a group, then the others are answered 200 and the service keeps answering', async () => {
    service = await startTestService();
    const messages = await acceptedMessages(service.db.pool, 300);
    const bodies = [0, 1, 2].map((n) => callback(messages.slice(n * 100, n * 100 + 100).map((m) => eventText('sent', m.messageId, m.email, 100))));
    const auth = `Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}`;

    // The whole body goes out, then the connection is cut before any answer.
    const abandoned = new Promise<void>((resolve) => {
      const req = http.request(`${service.url}/events`, { method: 'POST', headers: { authorization: auth } });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.on('finish', () => req.destroy());
      req.end(bodies[0]);
    });
    const others = [service.postEvents(bodies[1]!), service.postEvents(bodies[2]!)];

    await abandoned;
    expect((await Promise.all(others)).map((res) => res.status)).to.deep.equal([200, 200]);
    // Its events were stored or not, never half: the retry Mailjet makes stores the rest.
    const retry = await service.postEvents(bodies[0]!);
    expect(retry.status).to.equal(200);
    expect(await countRows(service.db.pool, "select count(*)::int as n from email_recipients where status = 'sent'")).to.equal(300);
  });

  it('when a body with NUL bytes arrives beside good ones, then the event with one in its address is kept aside and every other event is applied', async () => {
    service = await startTestService();
    const messages = await acceptedMessages(service.db.pool, 3);
    const withNul = `[${eventText('sent', messages[0]!.messageId, 'nul\u0000@example.com', 100)},${eventText('sent', messages[1]!.messageId, messages[1]!.email, 100, { agent: 'a\u0000b' })},${eventText('sent', messages[2]!.messageId, messages[2]!.email, 100)}]`;

    const [bad, good] = await Promise.all([
      service.postEvents(withNul),
      service.postEvents(callback([eventText('open', messages[0]!.messageId, messages[0]!.email, 200)])),
    ]);

    expect(bad.status).to.equal(200);
    expect(await bad.json()).to.include({ received: 3, stored: 2, rejected: 1 });
    expect(good.status).to.equal(200);
    expect(await good.json()).to.include({ received: 1, stored: 1 });
    const { rows } = await service.db.pool.query<{ email: string; status: string }>('select email, status from email_recipients order by email');
    expect(rows.map((row) => row.status)).to.deep.equal(['opened', 'sent', 'sent']);
  });
});
