import { expect } from 'chai';
import nock from 'nock';

import { MAX_EVENTS_PER_BODY } from '../../src/domain/event-parse.js';
import { CALLBACK_AUTH_FAILURES } from '../../src/http/rate-limit.js';
import { eventText } from '../support/mailjet-events.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { EVENTS_PASSWORD, EVENTS_USER, eventually, MAILJET_TEST_ORIGIN, startTestService, type TestService } from '../support/service.js';

interface JobJson {
  status: string;
  recipients: Array<{ email: string; status: string; message_id: string | null }>;
  events: Array<{ type: string; message_id: string; details: Record<string, unknown> }>;
}

const group = (...events: string[]) => `[${events.join(',')}]`;

describe('POST /events', () => {
  let service: TestService;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    restoreNetwork();
  });

  /** Queues one message per address and waits until Mailjet (nock) accepted them all; returns their MessageIDs. */
  async function acceptedJobs(addresses: string[]): Promise<Array<{ jobId: string; messageId: string; email: string }>> {
    const res = await service.request('POST', '/queue', {
      body: { messages: addresses.map((to) => ({ from: 'app@example.com', to, subject: 'Hi', html: '<a href="https://example.com">x</a>' })) },
    });
    const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string }> };
    return Promise.all(
      jobs.map(async ({ job_id }, index) => {
        const job = await eventually(async () => {
          const view = (await (await service.request('GET', `/status/${job_id}`)).json()) as JobJson;
          return view.status === 'accepted' ? view : undefined;
        });
        return { jobId: job_id, messageId: job.recipients[0]!.message_id!, email: addresses[index]! };
      }),
    );
  }

  async function job(jobId: string): Promise<JobJson> {
    return (await (await service.request('GET', `/status/${jobId}`)).json()) as JobJson;
  }

  it('when a grouped callback carries raw 64-bit MessageIDs, then each message moves forward and /status shows every digit', async () => {
    mockMailjetSend();
    service = await startTestService();
    const [a, b] = await acceptedJobs(['a@example.com', 'b@example.com']);

    const res = await service.postEvents(
      group(
        eventText('sent', a!.messageId, a!.email, 1_700_000_000, { smtp_reply: 'sent (250 OK)' }),
        eventText('open', a!.messageId, a!.email, 1_700_000_010, { ip: '192.0.2.1', geo: 'FR', agent: 'Mozilla' }),
        eventText('sent', b!.messageId, b!.email, 1_700_000_001),
      ),
    );

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ received: 3, stored: 3, duplicates: 0, unmatched: 0, rejected: 0 });
    const first = await job(a!.jobId);
    expect(first.status).to.equal('opened');
    expect(first.recipients[0]!.status).to.equal('opened');
    expect(first.events.map((e) => [e.type, e.message_id])).to.deep.equal([
      ['sent', a!.messageId],
      ['opened', a!.messageId],
    ]);
    expect(first.events[1]!.details).to.deep.equal({ ip: '192.0.2.1', geo: 'FR', agent: 'Mozilla' });
    expect((await job(b!.jobId)).status).to.equal('sent');
  });

  it("when an event's MessageID is held by a recipient with another address (Mailjet gave it to two messages), then it is kept aside with a reason, not applied; the holder's own events, its address in any case or IDN form, still apply", async () => {
    mockMailjetSend();
    service = await startTestService();
    const [holder, idn] = await acceptedJobs(['holder@example.com', 'user@xn--bcher-kva.example']);

    const res = await service.postEvents(
      group(
        eventText('bounce', holder!.messageId, 'other@example.com', 1_700_000_000, { hard_bounce: true, error: 'user unknown' }),
        eventText('sent', holder!.messageId, 'Holder@EXAMPLE.com', 1_700_000_001),
        eventText('sent', idn!.messageId, 'USER@bücher.example', 1_700_000_002),
      ),
    );

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ received: 3, stored: 2, duplicates: 0, unmatched: 0, rejected: 1 });
    const view = await job(holder!.jobId);
    expect([view.status, view.recipients[0]!.status]).to.deep.equal(['sent', 'sent']);
    expect(view.events.map((e) => e.type)).to.deep.equal(['sent']);
    expect((await job(idn!.jobId)).status).to.equal('sent');
    const { rows } = await service.db.pool.query<{ kind: string; reason: string; source: string }>('select kind, reason, source from rejected_events');
    expect(rows).to.have.length(1);
    expect(rows[0]!.kind).to.equal('invalid');
    expect(rows[0]!.reason).to.equal(
      `email: its MessageID ${holder!.messageId} is held by a recipient of job ${holder!.jobId} with another address, so it is not applied to it: Mailjet gave this MessageID to another message too (jetpost logged an error naming both jobs when it was recorded). Check that MAILJET_BASE_URL reaches Mailjet itself`,
    );
    expect(rows[0]!.source).to.contain('other@example.com');
    const { rows: suppressed } = await service.db.pool.query('select email from suppressions');
    expect(suppressed, "another message's bounce suppresses nobody").to.deep.equal([]);

    // Mailjet's retry of the callback: kept aside once, answered the same.
    const again = await service.postEvents(
      group(eventText('bounce', holder!.messageId, 'other@example.com', 1_700_000_000, { hard_bounce: true, error: 'user unknown' })),
    );
    expect(await again.json()).to.deep.include({ stored: 0, rejected: 1 });
    expect((await service.db.pool.query('select count(*)::int as n from rejected_events')).rows).to.deep.equal([{ n: 1 }]);
  });

  it('when the same events arrive twice and out of order, then they are stored once and the final status is the same', async () => {
    mockMailjetSend();
    service = await startTestService();
    const [a, b] = await acceptedJobs(['one@example.com', 'two@example.com']);
    const inOrder = [
      eventText('sent', a!.messageId, a!.email, 100),
      eventText('open', a!.messageId, a!.email, 200),
      eventText('click', a!.messageId, a!.email, 300, { url: 'https://example.com' }),
      eventText('sent', b!.messageId, b!.email, 100),
      eventText('bounce', b!.messageId, b!.email, 150, { hard_bounce: true, blocked: false, error_related_to: 'recipient', error: 'user unknown' }),
      eventText('open', b!.messageId, b!.email, 400),
    ];
    const shuffled = [inOrder[5]!, inOrder[2]!, inOrder[4]!, inOrder[0]!, inOrder[3]!, inOrder[1]!];

    const first = await service.postEvents(group(...shuffled));
    const again = await service.postEvents(group(...inOrder));
    // Version 1: one bare object per POST, a repeat too.
    const single = await service.postEvents(inOrder[1]!);

    expect(await first.json()).to.include({ stored: 6, duplicates: 0 });
    expect(await again.json()).to.include({ stored: 0, duplicates: 6 });
    expect(await single.json()).to.include({ received: 1, stored: 0, duplicates: 1 });
    expect((await job(a!.jobId)).status).to.equal('clicked');
    const bounced = await job(b!.jobId);
    expect(bounced.status).to.equal('bounced');
    expect(bounced.recipients[0]!.status).to.equal('bounced');
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_events');
    expect(rows[0].n).to.equal(6);
  });

  it('when a soft bounce and then a hard bounce of one message come in the same second, then both are stored and the recipient ends bounced and suppressed', async () => {
    mockMailjetSend();
    service = await startTestService();
    const [a] = await acceptedJobs(['greylisted@example.com']);
    const bounce = (hard: boolean) =>
      eventText('bounce', a!.messageId, a!.email, 1_700_000_100, {
        hard_bounce: hard,
        blocked: false,
        error_related_to: hard ? 'recipient' : 'domain',
        error: hard ? 'user unknown' : 'greylisted',
      });

    const soft = await service.postEvents(bounce(false));
    const hard = await service.postEvents(bounce(true));
    const retried = await service.postEvents(bounce(true));

    expect(await soft.json()).to.deep.include({ stored: 1, duplicates: 0 });
    expect(await hard.json()).to.deep.include({ stored: 1, duplicates: 0 });
    expect(await retried.json()).to.deep.include({ stored: 0, duplicates: 1 });
    const view = await job(a!.jobId);
    expect(view.recipients[0]!.status).to.equal('bounced');
    expect(view.status).to.equal('bounced');
    const { rows } = await service.db.pool.query('select email, reason from suppressions');
    expect(rows).to.deep.equal([{ email: 'greylisted@example.com', reason: 'hard_bounce' }]);
  });

  it('when a hard bounce quotes a reply holding NUL and lone surrogates, then it still bounces and suppresses, its texts kept with each written as its escape', async () => {
    mockMailjetSend();
    service = await startTestService();
    const [a] = await acceptedJobs(['nul-reply@example.com']);
    const bounce = eventText('bounce', a!.messageId, a!.email, 1_700_000_100, {
      hard_bounce: true,
      blocked: false,
      error_related_to: 'recipient',
      error: 'user unknown\u0000',
      comment: '550 5.1.1 <\ud800> no such user',
    });

    const res = await service.postEvents(bounce);
    const retried = await service.postEvents(bounce);

    expect(await res.json()).to.deep.equal({ received: 1, stored: 1, duplicates: 0, unmatched: 0, rejected: 0 });
    expect(await retried.json()).to.deep.include({ stored: 0, duplicates: 1 });
    const view = await job(a!.jobId);
    expect([view.status, view.recipients[0]!.status]).to.deep.equal(['bounced', 'bounced']);
    expect(view.events[0]!.details).to.deep.include({ error: 'user unknown\\u0000', comment: '550 5.1.1 <\\ud800> no such user' });
    const { rows } = await service.db.pool.query('select email, reason from suppressions');
    expect(rows).to.deep.equal([{ email: 'nul-reply@example.com', reason: 'hard_bounce' }]);
    expect(await service.db.pool.query('select 1 from rejected_events')).to.have.property('rowCount', 0);
  });

  it('when an event names an unknown MessageID, then it is kept aside, answered 200, and applied once the send is recorded', async () => {
    // A MessageID just above 2^53 (it would round to 9007199254740992 as a JS number).
    const messageId = '9007199254740993';
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .reply(
        200,
        (_uri: string, body: nock.Body) => {
          const customId = (body as { Messages: Array<{ CustomID: string }> }).Messages[0]!.CustomID;
          return `{"Messages":[{"Status":"success","CustomID":"${customId}","To":[{"Email":"early@example.com","MessageUUID":"u-1","MessageID":${messageId},"MessageHref":""}],"Cc":[],"Bcc":[]}]}`;
        },
        { 'content-type': 'application/json' },
      );
    service = await startTestService();

    const early = await service.postEvents(group(eventText('sent', messageId, 'early@example.com', 1_700_000_000)));

    expect(early.status).to.equal(200);
    expect(await early.json()).to.include({ stored: 1, unmatched: 1 });
    const kept = await service.db.pool.query('select mailjet_message_id::text as id, recipient_id from email_events');
    expect(kept.rows).to.deep.equal([{ id: messageId, recipient_id: null }]);

    const res = await service.request('POST', '/queue', { body: { from: 'app@example.com', to: 'early@example.com', text: 'hi' } });
    const { job_id } = (await res.json()) as { job_id: string };
    const view = await eventually(async () => {
      const current = await job(job_id);
      return current.status === 'sent' ? current : undefined;
    });
    expect(view.recipients[0]).to.deep.include({ status: 'sent', message_id: messageId });
    expect(view.events.map((e) => e.type)).to.deep.equal(['sent']);
  });

  it('when the basic credentials are missing or wrong, then 401 and nothing is stored', async () => {
    service = await startTestService();
    const body = group(eventText('sent', '576460765503091475', 'x@example.com', 1));

    const none = await service.postEvents(body, null);
    const wrong = await service.postEvents(body, { user: 'mailjet', password: 'guess' });

    expect(none.status).to.equal(401);
    expect(wrong.status).to.equal(401);
    expect(none.headers.get('www-authenticate')).to.contain('Basic');
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_events');
    expect(rows[0].n).to.equal(0);
  });

  it('when a password with URL characters comes as the callback URL carries it, percent-encoded, then it is the same password: the callback is taken', async () => {
    // `openssl rand -base64` makes such passwords; the registered URL holds them percent-encoded, and
    // a sender may put the URL's user info into the header without decoding it.
    const password = 'a+b/c=d%e-events-password';
    service = await startTestService({ env: { EVENTS_PASSWORD: password } });

    const encoded = await service.postEvents(group(eventText('sent', '576460765503091475', 'x@example.com', 1)), {
      user: EVENTS_USER,
      password: encodeURIComponent(password),
    });
    const raw = await service.postEvents(group(eventText('sent', '576460765503091476', 'y@example.com', 2)), { user: EVENTS_USER, password });
    const wrong = await service.postEvents(group(eventText('sent', '576460765503091477', 'z@example.com', 3)), {
      user: EVENTS_USER,
      password: encodeURIComponent(`${password}x`),
    });

    expect([encoded.status, raw.status, wrong.status], 'encoded, as set, wrong').to.deep.equal([200, 200, 401]);
  });

  it('when the body is not JSON at all, then 400 problem+json (Mailjet retries it), it is kept aside once, and stored events are untouched', async () => {
    service = await startTestService();
    await service.postEvents(group(eventText('sent', '576460765503091475', 'x@example.com', 1)));

    for (const body of ['{not json', '', '[{"event":"sent"', `[${eventText('sent', '576460765503091476', 'y@example.com', 2)}]]`]) {
      for (const attempt of [1, 2]) {
        const res = await service.postEvents(body);
        expect(res.status, `${body} #${attempt}`).to.equal(400);
        expect(res.headers.get('content-type'), body).to.contain('application/problem+json');
        const problem = (await res.json()) as { type: string; detail: string };
        expect(problem.type, body).to.equal('https://jetpost.dev/problems/malformed-json');
        expect(problem.detail, body).to.be.a('string').and.not.equal('');
      }
    }
    const kept = await service.db.pool.query('select kind, position, source from rejected_events order by id');
    expect(kept.rows.map((row) => [row.kind, row.position, row.source])).to.deep.equal([
      ['not-json', null, '{not json'],
      ['not-json', null, ''],
      ['not-json', null, '[{"event":"sent"'],
      ['not-json', null, `[${eventText('sent', '576460765503091476', 'y@example.com', 2)}]]`],
    ]);
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_events');
    expect(rows[0].n).to.equal(1);
  });

  it("when a click's url or a bounce's error is longer than jetpost keeps, then the event is still applied, its text cut with its length as received, and a retry is a duplicate", async () => {
    mockMailjetSend();
    service = await startTestService();
    const [clicker, bouncer] = await acceptedJobs(['long-url@example.com', 'long-error@example.com']);
    // A link with a long query string, and an emoji across the cut: the pair is never cut in half.
    const url = `https://example.com/track?q=${'a'.repeat(9_971)}\u{1f600}${'b'.repeat(20_000)}`;
    const error = 'e'.repeat(1_500);
    const body = group(
      eventText('click', clicker!.messageId, clicker!.email, 1_700_000_000, { url, ip: '192.0.2.1' }),
      eventText('bounce', bouncer!.messageId, bouncer!.email, 1_700_000_001, { hard_bounce: true, blocked: false, error_related_to: 'recipient', error }),
    );

    const first = await service.postEvents(body);
    const retry = await service.postEvents(body);

    expect(await first.json()).to.deep.equal({ received: 2, stored: 2, duplicates: 0, unmatched: 0, rejected: 0 });
    expect(await retry.json()).to.deep.equal({ received: 2, stored: 0, duplicates: 2, unmatched: 0, rejected: 0 });
    const clicked = await job(clicker!.jobId);
    expect(clicked.status).to.equal('clicked');
    expect(clicked.events[0]!.details).to.deep.equal({ url: url.slice(0, 9_999), ip: '192.0.2.1', truncated: { url: url.length } });
    const bounced = await job(bouncer!.jobId);
    expect(bounced.status).to.equal('bounced');
    expect(bounced.events[0]!.details).to.deep.include({ error: error.slice(0, 1000), truncated: { error: 1_500 } });
    // What apps hear (the changes feed and the webhook carry the same details).
    const feed = (await (await service.request('GET', '/status?after=0')).json()) as {
      changes: Array<{ new_status: string; details: Record<string, unknown> }>;
    };
    expect(feed.changes.find((change) => change.new_status === 'clicked')?.details).to.deep.include({
      url: url.slice(0, 9_999),
      truncated: { url: url.length },
    });
    const { rows } = await service.db.pool.query('select count(*)::int as n, max(length(payload::text))::int as longest from email_events');
    expect(rows[0]).to.deep.include({ n: 2 });
    expect(rows[0].longest).to.be.below(11_000);
    expect((await service.db.pool.query('select count(*)::int as n from rejected_events')).rows[0].n).to.equal(0);
  });

  describe('events that can never be applied', () => {
    const deep = (id: string) => `{"event":"open","time":5,"MessageID":${id},"email":"deep@example.com","extra":${'['.repeat(5000)}${']'.repeat(5000)}}`;

    it('when a grouped callback has valid events and others with NUL or unpaired surrogates in the address or the Message_GUID, or 5,000-deep fields, then 200: the valid ones are stored and applied, the others kept aside with their reason', async () => {
      mockMailjetSend();
      service = await startTestService();
      const jobs = await acceptedJobs(['v1@example.com', 'v2@example.com', 'v3@example.com', 'v4@example.com', 'v5@example.com']);
      const bad = [
        eventText('sent', jobs[0]!.messageId, 'nul\u0000@example.com', 10),
        eventText('open', jobs[1]!.messageId, jobs[1]!.email, 11, { Message_GUID: 'x' }).replace('"Message_GUID":"x"', '"Message_GUID":"\\ud800"'),
        deep(jobs[2]!.messageId),
        '"not an event"',
        eventText('open', jobs[3]!.messageId, jobs[3]!.email, 12).replace(/"time":12/, '"time":"yesterday"'),
      ];
      const valid = jobs.map((job, i) => eventText('sent', job.messageId, job.email, 100 + i));

      const res = await service.postEvents(group(valid[0]!, bad[0]!, valid[1]!, bad[1]!, valid[2]!, bad[2]!, valid[3]!, bad[3]!, bad[4]!, valid[4]!));

      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ received: 10, stored: 5, duplicates: 0, unmatched: 0, rejected: 5 });
      for (const accepted of jobs) {
        expect((await job(accepted.jobId)).status, accepted.email).to.equal('sent');
      }
      const kept = await service.db.pool.query<{ position: number; kind: string; reason: string; source: string; source_length: number }>(
        'select position, kind, reason, source, source_length from rejected_events order by position',
      );
      expect(kept.rows.map((row) => [row.position, row.kind])).to.deep.equal([
        [1, 'unstorable-text'],
        [3, 'unstorable-text'],
        [5, 'too-deep'],
        [7, 'not-an-object'],
        [8, 'invalid'],
      ]);
      expect(kept.rows.map((row) => row.reason)).to.deep.equal([
        'email: holds a NUL character',
        'Message_GUID: holds an unpaired surrogate',
        'nested deeper than 32 levels',
        'not an event object but a string',
        kept.rows[4]!.reason,
      ]);
      expect(kept.rows[4]!.reason).to.match(/^time: /);
      // Kept as received, byte for byte (escapes stay escapes), up to 8,192 characters.
      expect(kept.rows[0]!.source).to.equal(bad[0]);
      expect(kept.rows[1]!.source).to.equal(bad[1]);
      expect(kept.rows[2]!.source).to.equal(bad[2]!.slice(0, 8192));
      expect(kept.rows[2]!.source_length).to.equal(bad[2]!.length);
      const metrics = await (await fetch(`${service.url}/metrics`)).text();
      expect(metrics).to.contain('jetpost_events_rejected_total{kind="unstorable-text"} 2');
      expect(metrics).to.contain('jetpost_events_rejected_total{kind="too-deep"} 1');
    });

    it('when an authenticated body has no usable event at all, then 200 and every element is kept aside, once even when Mailjet retries', async () => {
      service = await startTestService();
      for (const [body, rejected] of [
        ['[{"event":"teleport","time":1,"MessageID":1,"email":"x@example.org"}]', 1],
        ['"a string"', 1],
        ['[1, 2, null]', 3],
        [`[${deep('7')}]`, 1],
        ['{"event":"sent","time":1,"email":"a@example.org"}', 1],
      ] as const) {
        for (const attempt of [1, 2]) {
          const res = await service.postEvents(body);
          expect(res.status, `${body.slice(0, 80)} #${attempt}`).to.equal(200);
          expect(await res.json()).to.deep.equal({ received: rejected, stored: 0, duplicates: 0, unmatched: 0, rejected });
        }
      }
      const { rows } = await service.db.pool.query('select kind, count(*)::int as n from rejected_events group by kind order by kind');
      expect(rows).to.deep.equal([
        { kind: 'invalid', n: 2 },
        { kind: 'not-an-object', n: 4 },
        { kind: 'too-deep', n: 1 },
      ]);
    });

    it('when a rejected element is huge or holds a raw NUL, then it is stored escaped and cut, and the row always fits', async () => {
      service = await startTestService();
      const huge = `{"event":"open","time":1,"MessageID":1,"email":"a@example.org","agent":"${'\\u0000'.repeat(100_000)}"}`;

      const res = await service.postEvents(`[${huge}]`);
      const raw = await service.postEvents('{"a":"\u0000\ud800"');

      expect(res.status).to.equal(200);
      expect(raw.status).to.equal(400);
      const { rows } = await service.db.pool.query<{ kind: string; source: string; source_length: number }>(
        'select kind, source, source_length from rejected_events order by id',
      );
      expect(rows.map((row) => [row.kind, row.source.length, row.source_length])).to.deep.equal([
        ['too-large', 8192, huge.length],
        ['not-json', 14, 9],
      ]);
      expect(rows[1]!.source).to.equal('{"a":"\\u0000\ufffd"');
    });
  });

  it('when a body holds more than 500,000 elements, however small, then 413 before they cost memory, and nothing is stored', async () => {
    service = await startTestService();

    const res = await service.postEvents(`[${'1,'.repeat(MAX_EVENTS_PER_BODY)}1]`);

    expect(res.status).to.equal(413);
    expect(((await res.json()) as { detail: string }).detail).to.contain(`at most ${MAX_EVENTS_PER_BODY} events`);
    const { rows } = await service.db.pool.query(
      'select (select count(*) from rejected_events)::int as rejected, (select count(*) from email_events)::int as events',
    );
    expect(rows[0]).to.deep.equal({ rejected: 0, events: 0 });
    expect((await fetch(`${service.url}/healthz`)).status).to.equal(200);
  });

  describe('rate limits and credentials', () => {
    const wrong = { user: EVENTS_USER, password: 'guess' };

    it('when unauthenticated requests from the same address go far past the limit, then the genuine callback from it is still 200', async () => {
      service = await startTestService({ env: { EVENTS_RATE_LIMIT: '5' } });
      const statuses = new Map<number, number>();
      for (let i = 0; i < CALLBACK_AUTH_FAILURES.perSource + 20; i += 1) {
        const res = await service.postEvents('[]', i % 2 === 0 ? wrong : null);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }

      const genuine = await service.postEvents('[]');

      expect(genuine.status).to.equal(200);
      // Failures are limited on their own: past the limit a guess is a 429, never a look at the body.
      expect(Object.fromEntries(statuses)).to.deep.equal({ 401: CALLBACK_AUTH_FAILURES.perSource, 429: 20 });
      const { rows } = await service.db.pool.query("select key from rate_limits where key like 'events%'");
      expect(rows.map((row) => row.key)).to.deep.equal(['events-caller:mailjet']);
    });

    it('when the genuine caller goes past EVENTS_RATE_LIMIT, then 429 with Retry-After', async () => {
      service = await startTestService({ env: { EVENTS_RATE_LIMIT: '3' } });
      for (let i = 0; i < 3; i += 1) {
        expect((await service.postEvents('[]')).status).to.equal(200);
      }
      const limited = await service.postEvents('[]');
      expect(limited.status).to.equal(429);
      expect(Number(limited.headers.get('retry-after'))).to.be.within(1, 60);
    });

    it('with TRUST_PROXY=true, forged X-Forwarded-For values neither bypass the limits nor add rows to rate_limits', async function () {
      // Over a thousand requests: a budget for a loaded 2-core machine. They go 25 at a time, so that
      // even a slow machine sends them all within the limiter's one-minute window.
      this.timeout(120_000);
      service = await startTestService({ env: { EVENTS_RATE_LIMIT: '3', TRUST_PROXY: 'true' } });
      const forged = (i: number) => ({ 'x-forwarded-for': `203.0.${i % 250}.${Math.floor(i / 250) % 250}, 10.0.0.${i % 200}` });
      const post = (i: number, authorization: string) =>
        fetch(`${service.url}/events`, { method: 'POST', headers: { authorization, ...forged(i) }, body: '[]' });
      const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      const before = await service.db.pool.query('select count(*)::int as n from rate_limits');

      const genuine = [];
      for (let i = 0; i < 4; i += 1) {
        genuine.push((await post(i, basic(EVENTS_USER, EVENTS_PASSWORD))).status);
      }
      const failures = new Map<number, number>();
      const attempts = CALLBACK_AUTH_FAILURES.total + 50;
      for (let start = 0; start < attempts; start += 25) {
        const statuses = await Promise.all(
          Array.from({ length: Math.min(25, attempts - start) }, async (_, offset) => {
            const res = await post(start + offset, basic(EVENTS_USER, `guess-${start + offset}`));
            await res.arrayBuffer();
            return res.status;
          }),
        );
        for (const status of statuses) {
          failures.set(status, (failures.get(status) ?? 0) + 1);
        }
      }

      expect(genuine).to.deep.equal([200, 200, 200, 429]);
      expect(failures.get(429), 'failures past the overall limit').to.equal(50);
      const after = await service.db.pool.query('select count(*)::int as n from rate_limits');
      expect(after.rows[0].n - before.rows[0].n, 'new rate_limits rows').to.equal(1);
    });
  });
});
