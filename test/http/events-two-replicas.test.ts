// A hostile or broken Mailjet delivers the same grouped callback twice at once to each of two
// replicas (behind a load balancer, a retry overlapping the first try): every event is stored once,
// moves its recipient once, makes one webhook delivery per change and one suppression per address.
import { expect } from 'chai';

import { seedAcceptedMessages } from '../support/accepted-messages.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventText } from '../support/mailjet-events.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { startTestService, type TestService } from '../support/service.js';

const MESSAGES = 1000;
const FIRST_ID = 576460765503091475n;

describe('one callback delivered to two replicas at once', () => {
  let db: TestDatabase;
  let replicas: TestService[] = [];

  beforeEach(async () => {
    isolateNetwork();
    db = await createTestDatabase();
    // No consumers: only the callbacks write.
    replicas = [await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } }), await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } })];
  });

  afterEach(async () => {
    for (const replica of replicas) {
      await replica.stop();
    }
    await db?.drop();
    restoreNetwork();
  });

  it('when the same batch goes twice to each replica at the same time, then each event is stored and applied once, with one change, one webhook delivery and one suppression each', async () => {
    const [a, b] = replicas as [TestService, TestService];
    await seedAcceptedMessages(db.pool, a.appId, MESSAGES, FIRST_ID);
    await db.pool.query(`update apps set webhook_url = 'http://127.0.0.1:9/hook', webhook_secret = 'whsec_dGVzdA==' where id = $1`, [a.appId]);
    const events: string[] = [];
    for (let i = 0; i < MESSAGES; i += 1) {
      const id = (FIRST_ID + BigInt(i)).toString();
      const email = `reader-${i}@example.com`;
      events.push(eventText('sent', id, email, 1_700_000_000), eventText('open', id, email, 1_700_000_001));
      if (i % 10 === 0) {
        events.push(eventText('unsub', id, email, 1_700_000_002));
      } else if (i % 10 === 1) {
        events.push(eventText('bounce', id, email, 1_700_000_002, { hard_bounce: true, error: 'user unknown' }));
      }
    }
    const body = `[${events.join(',')}]`;

    const answers = await Promise.all([a.postEvents(body), b.postEvents(body), a.postEvents(body), b.postEvents(body)]);

    const receipts = await Promise.all(answers.map(async (res) => ({ status: res.status, ...((await res.json()) as { stored: number; duplicates: number }) })));
    expect(receipts.map((receipt) => receipt.status)).to.deep.equal([200, 200, 200, 200]);
    expect(receipts.reduce((sum, receipt) => sum + receipt.stored, 0)).to.equal(events.length);
    expect(receipts.reduce((sum, receipt) => sum + receipt.duplicates, 0)).to.equal(3 * events.length);
    const count = async (sql: string) => (await db.pool.query<{ n: number; d: number }>(sql)).rows[0]!;
    expect(await count('select count(*)::int as n, count(distinct dedupe_key)::int as d from email_events')).to.deep.equal({
      n: events.length,
      d: events.length,
    });
    expect(await count('select count(*)::int as n, count(distinct (recipient_id, new_status))::int as d from status_changes')).to.deep.equal({
      n: events.length,
      d: events.length,
    });
    expect(await count('select count(*)::int as n, count(distinct change_id)::int as d from webhook_deliveries')).to.deep.equal({
      n: events.length,
      d: events.length,
    });
    expect(await count('select count(*)::int as n, count(distinct email)::int as d from suppressions')).to.deep.equal({ n: MESSAGES / 5, d: MESSAGES / 5 });
    const { rows } = await db.pool.query<{ status: string; n: number }>(
      'select status, count(*)::int as n from email_recipients group by status order by status',
    );
    expect(rows).to.deep.equal([
      { status: 'bounced', n: MESSAGES / 10 },
      { status: 'opened', n: (MESSAGES * 8) / 10 },
      { status: 'unsubscribed', n: MESSAGES / 10 },
    ]);
  });
});
