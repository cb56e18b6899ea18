import { expect } from 'chai';
import nock from 'nock';

import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { eventually, MAILJET_TEST_ORIGIN, startTestService, type TestService } from '../support/service.js';

interface JobJson {
  status: string;
  recipients: Array<{ email: string; status: string; message_id: string | null }>;
  events: Array<{ type: string; message_id: string; details: Record<string, unknown> }>;
}

/** A Mailjet event as Mailjet writes it: MessageID as a raw JSON integer, whatever its size. */
function eventText(type: string, messageId: string, email: string, time: number, extra: Record<string, unknown> = {}): string {
  const fields = JSON.stringify({ event: type, time, email, Message_GUID: '', mj_campaign_id: 0, mj_contact_id: 1, customcampaign: '', CustomID: '', Payload: '', ...extra });
  return `{"MessageID":${messageId},${fields.slice(1)}`;
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
      ['open', a!.messageId],
    ]);
    expect(first.events[1]!.details).to.deep.equal({ ip: '192.0.2.1', geo: 'FR', agent: 'Mozilla' });
    expect((await job(b!.jobId)).status).to.equal('sent');
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

  it('when an event names an unknown MessageID, then it is kept aside, answered 200, and applied once the send is recorded', async () => {
    // A MessageID just above 2^53 (it would round to 9007199254740992 as a JS number).
    const messageId = '9007199254740993';
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .reply(200, (_uri: string, body: nock.Body) => {
        const customId = (body as { Messages: Array<{ CustomID: string }> }).Messages[0]!.CustomID;
        return `{"Messages":[{"Status":"success","CustomID":"${customId}","To":[{"Email":"early@example.com","MessageUUID":"u-1","MessageID":${messageId},"MessageHref":""}],"Cc":[],"Bcc":[]}]}`;
      }, { 'content-type': 'application/json' });
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

  it('when the body is malformed, then 400 problem+json with a reason, and stored events are untouched', async () => {
    service = await startTestService();
    await service.postEvents(group(eventText('sent', '576460765503091475', 'x@example.com', 1)));

    for (const body of ['{not json', '"a string"', '[1, 2]', '[{"event":"teleport","time":1,"MessageID":1,"email":"x@example.com"}]']) {
      const res = await service.postEvents(body);
      expect(res.status, body).to.equal(400);
      expect(res.headers.get('content-type'), body).to.contain('application/problem+json');
      const problem = (await res.json()) as { detail: string; errors: Array<{ path: string }> };
      expect(problem.detail, body).to.be.a('string').and.not.equal('');
    }
    const invalid = await service.postEvents('[{"event":"open","time":"yesterday","email":"x@example.com"}]');
    const problem = (await invalid.json()) as { errors: Array<{ path: string }> };
    expect(problem.errors.map((e) => e.path)).to.include('0.time');
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_events');
    expect(rows[0].n).to.equal(1);
  });
});
