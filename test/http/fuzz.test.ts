// Property-based fuzzing of the two routes the outside world feeds: POST /queue (apps) and
// POST /events (Mailjet, or anyone who finds the URL). Thousands of generated bodies, content types
// and headers: never a 5xx, the process stays up, and what was stored before is unchanged after.
import { expect } from 'chai';
import fc from 'fast-check';

import { EVENTS_PASSWORD, EVENTS_USER, startTestService, type TestService } from '../support/service.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 1500);

/** Printable ASCII only: what an HTTP header can carry. */
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });
const address = fc.oneof(fc.emailAddress(), fc.string({ maxLength: 40 }), fc.constant('a@b'), fc.constant('x\r\nBcc: victim@example.com'));
const addressValue = fc.oneof(address, fc.record({ email: address, name: fc.option(fc.string({ maxLength: 300 }), { nil: undefined }) }), fc.jsonValue());
const messageLike = fc.record(
  {
    from: addressValue,
    to: fc.oneof(addressValue, fc.array(addressValue, { maxLength: 60 })),
    cc: fc.array(addressValue, { maxLength: 5 }),
    bcc: fc.array(addressValue, { maxLength: 5 }),
    subject: fc.oneof(fc.string({ maxLength: 300 }), fc.constant('Hi\r\nBcc: x@example.com')),
    text: fc.string({ maxLength: 200 }),
    html: fc.string({ maxLength: 200 }),
    template_id: fc.oneof(fc.integer(), fc.double(), fc.string()),
    variables: fc.jsonValue(),
    headers: fc.dictionary(fc.string({ maxLength: 20 }), fc.oneof(fc.string({ maxLength: 50 }), fc.jsonValue())),
    attachments: fc.array(fc.record({ filename: fc.string(), content_type: fc.string(), content: fc.string(), content_id: fc.string() }, { requiredKeys: [] }), { maxLength: 3 }),
    custom_id: fc.oneof(fc.string({ maxLength: 300 }), fc.integer()),
    metadata: fc.jsonValue(),
    send_at: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string(), fc.integer()),
    priority: fc.oneof(fc.integer({ min: -5, max: 10 }), fc.string()),
    idempotency_key: fc.oneof(headerText, fc.integer()),
    [`x${'y'.repeat(3)}`]: fc.jsonValue(),
  },
  { requiredKeys: [] },
);
const queueBody = fc.oneof(
  messageLike.map((m) => JSON.stringify(m)),
  fc.array(messageLike, { maxLength: 4 }).map((messages) => JSON.stringify({ messages })),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.constant('{"to":'),
  fc.constant(''),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/merge-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  'application/json; charset=made-up',
);

/** A Mailjet-like event, its MessageID written as raw JSON text of any size or shape. */
const eventText = fc
  .record({
    event: fc.oneof(fc.constantFrom('sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub'), fc.string({ maxLength: 10 })),
    time: fc.oneof(fc.integer({ min: -10, max: 4_000_000_000 }), fc.double(), fc.string({ maxLength: 12 })),
    email: fc.oneof(fc.emailAddress(), fc.string({ maxLength: 20 })),
    Message_GUID: fc.oneof(fc.uuid(), fc.string({ maxLength: 40 })),
    hard_bounce: fc.oneof(fc.boolean(), fc.string({ maxLength: 5 })),
    url: fc.string({ maxLength: 60 }),
    CustomID: fc.oneof(fc.constant('jetpost-1'), fc.string({ maxLength: 20 })),
    extra: fc.jsonValue(),
  }, { requiredKeys: [] })
  .chain((fields) =>
    fc
      .oneof(
        fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
        fc.constantFrom('-1', '1.5', '1e30', '"576460765503091475"', 'null', '0', '18446744073709551616'),
      )
      .map((id) => {
        const rest = JSON.stringify(fields).slice(1);
        return `{"MessageID":${id}${rest === '}' ? '' : ','}${rest}`;
      }),
  );
const eventsBody = fc.oneof(
  fc.array(eventText, { maxLength: 5 }).map((events) => `[${events.join(',')}]`),
  eventText,
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.constant('[{"__proto__":{"polluted":true},"event":"open","time":1,"MessageID":1,"email":"a@b.c"}]'),
);

interface Snapshot {
  jobs: unknown[];
  recipients: unknown[];
  events: unknown[];
}

async function snapshot(service: TestService, upTo: { jobs: number; events: number }): Promise<Snapshot> {
  const q = async (sql: string, max: number) => (await service.db.pool.query(sql, [max])).rows;
  return {
    jobs: await q('select * from email_send_jobs where id <= $1 order by id', upTo.jobs),
    recipients: await q('select * from email_recipients where job_id <= $1 order by id', upTo.jobs),
    events: await q('select * from email_events where id <= $1 order by id', upTo.events),
  };
}

describe('fuzzing POST /queue and POST /events', function () {
  this.timeout(300_000);
  let service: TestService;
  let stored: Snapshot;
  let upTo: { jobs: number; events: number };

  before(async () => {
    // No consumers: the stored jobs must stay exactly as they are; no rate limit: every request is parsed.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_RATE_LIMIT: '0', EVENTS_RATE_LIMIT: '0' } });
    const seeded = await service.request('POST', '/queue', {
      body: { messages: [1, 2, 3].map((i) => ({ from: 'app@example.com', to: `seed${i}@example.com`, text: 'seed', metadata: { i } })) },
    });
    expect(seeded.status).to.equal(202);
    await service.postEvents('[{"event":"open","time":1700000000,"MessageID":576460765503091475,"email":"seed1@example.com"}]');
    const { rows } = await service.db.pool.query('select (select max(id) from email_send_jobs)::int as jobs, (select max(id) from email_events)::int as events');
    upTo = rows[0];
    stored = await snapshot(service, upTo);
  });

  after(async () => {
    await service?.stop();
  });

  it(`when ${RUNS} generated requests hit POST /queue, then none gets a 5xx`, async () => {
    await fc.assert(
      fc.asyncProperty(queueBody, contentType, fc.option(headerText, { nil: undefined }), fc.boolean(), async (body, type, idempotencyKey, withKey) => {
        const headers: Record<string, string> = {};
        if (type !== '') {
          headers['content-type'] = type;
        }
        if (idempotencyKey !== undefined) {
          headers['idempotency-key'] = idempotencyKey;
        }
        const res = await service.request('POST', '/queue', { rawBody: body, headers, key: withKey ? service.apiKey : 'jp_nope' });
        const text = await res.text();
        expect(res.status, `${res.status} for ${type} ${body.slice(0, 200)}: ${text.slice(0, 300)}`).to.be.below(500);
      }),
      { numRuns: RUNS },
    );
  });

  it(`when ${RUNS} generated callbacks hit POST /events, then none gets a 5xx`, async () => {
    const auth = `Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}`;
    await fc.assert(
      fc.asyncProperty(eventsBody, contentType, fc.boolean(), async (body, type, authed) => {
        const headers: Record<string, string> = authed ? { authorization: auth } : { authorization: 'Basic bWFpbGpldDp3cm9uZw==' };
        if (type !== '') {
          headers['content-type'] = type;
        }
        const res = await fetch(`${service.url}/events`, { method: 'POST', headers, body });
        const text = await res.text();
        expect(res.status, `${res.status} for ${body.slice(0, 200)}: ${text.slice(0, 300)}`).to.be.below(500);
      }),
      { numRuns: RUNS },
    );
  });

  it('after the fuzzing, the process still serves and what was stored before is unchanged', async () => {
    expect((await fetch(`${service.url}/healthz`)).status).to.equal(200);
    expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
    expect(await snapshot(service, upTo)).to.deep.equal(stored);
  });
});
