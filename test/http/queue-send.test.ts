import { expect } from 'chai';

import { makeApp, messageTo } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { isolateNetwork, type MailjetDouble, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { eventually, startTestService, type TestService } from '../support/service.js';

interface JobJson {
  job_id: string;
  status: string;
  last_error: string | null;
  attempts: number;
  recipients: Array<{ email: string; kind: string; status: string; message_id: string | null; message_uuid: string | null }>;
}

async function statusOf(service: TestService, jobId: string, key?: string): Promise<JobJson> {
  const res = await service.request('GET', `/status/${jobId}`, key === undefined ? {} : { key });
  expect(res.status).to.equal(200);
  return (await res.json()) as JobJson;
}

async function waitForStatus(service: TestService, jobId: string, wanted: string[]): Promise<JobJson> {
  return eventually(
    async () => {
      const job = await statusOf(service, jobId);
      return wanted.includes(job.status) ? job : undefined;
    },
    10_000,
    `job ${jobId} to reach ${wanted.join('/')}`,
  );
}

describe('POST /queue → consumers → Mailjet (nock)', () => {
  let service: TestService;
  let mailjet: MailjetDouble;

  beforeEach(() => {
    isolateNetwork();
  });

  afterEach(async () => {
    await service?.stop();
    restoreNetwork();
  });

  it('when one message is queued, then it is sent in one call and its 64-bit MessageID reaches /status exactly', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();

    const res = await service.request('POST', '/queue', { body: messageTo('you@example.com', { custom_id: 'welcome-42', metadata: { user: 42 } }) });

    expect(res.status).to.equal(202);
    const queued = (await res.json()) as { job_id: string; status: string; status_url: string; custom_id: string };
    expect(queued).to.include({ status: 'queued', custom_id: 'welcome-42', status_url: `/status/${queued.job_id}` });
    expect(res.headers.get('location')).to.equal(`/status/${queued.job_id}`);
    const job = await waitForStatus(service, queued.job_id, ['accepted']);
    expect(mailjet.calls).to.have.length(1);
    const sent = mailjet.calls[0]!.Messages[0]!;
    expect(sent).to.deep.include({ CustomID: `jetpost-${queued.job_id}:welcome-42`, Subject: 'Hello', TextPart: 'Hi there' });
    expect(sent['From']).to.deep.equal({ Email: 'app@example.com', Name: 'App' });
    expect(job.recipients).to.have.length(1);
    expect(job.recipients[0]).to.deep.include({ email: 'you@example.com', status: 'accepted', message_id: mailjet.ids[0] });
    expect(BigInt(job.recipients[0]!.message_id!) > 2n ** 53n).to.equal(true);
    const { rows } = await service.db.pool.query('select mailjet_message_id::text as id from email_recipients');
    expect(rows[0].id).to.equal(mailjet.ids[0]);
  });

  it('when 120 one-recipient messages are queued, then they leave in 3 Mailjet calls', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService({ env: { WORKER_CONCURRENCY: '1' } });
    const messages = Array.from({ length: 120 }, (_, i) => messageTo(`user${i}@example.com`));

    const res = await service.request('POST', '/queue', { body: { messages } });

    expect(res.status).to.equal(202);
    const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string }> };
    expect(jobs).to.have.length(120);
    await eventually(async () => {
      const { rows } = await service.db.pool.query(`select count(*)::int as n from email_send_jobs where status = 'accepted'`);
      return rows[0].n === 120 ? true : undefined;
    });
    expect(mailjet.calls.map((call) => call.Messages.length)).to.deep.equal([50, 50, 20]);
  });

  it('when jobs have many recipients, then no call carries more than 50 and every recipient gets its own MessageID', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();
    const messages = Array.from({ length: 9 }, (_, i) => ({
      ...messageTo(Array.from({ length: 10 }, (_, j) => `to${i}-${j}@example.com`)),
      cc: Array.from({ length: 8 }, (_, j) => `cc${i}-${j}@example.com`),
      bcc: [`bcc${i}@example.com`, `bcc${i}-2@example.com`],
    }));

    const res = await service.request('POST', '/queue', { body: { messages } });
    const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string }> };

    for (const { job_id } of jobs) {
      const job = await waitForStatus(service, job_id, ['accepted']);
      expect(job.recipients).to.have.length(20);
      expect(job.recipients.every((r) => r.status === 'accepted' && /^\d{18,19}$/.test(r.message_id ?? ''))).to.equal(true);
      expect(job.recipients.map((r) => r.kind)).to.deep.equal([...Array(10).fill('to'), ...Array(8).fill('cc'), 'bcc', 'bcc']);
    }
    for (const call of mailjet.calls) {
      const recipients = call.Messages.reduce((sum, m) => sum + m.To.length + (m.Cc?.length ?? 0) + (m.Bcc?.length ?? 0), 0);
      expect(recipients).to.be.at.most(50);
    }
    expect(new Set(mailjet.ids).size).to.equal(180);
  });

  it('when Mailjet rejects one message of a batch (mixed 400), then only that job fails and the others keep their MessageIDs', async () => {
    mailjet = mockMailjetSend((m) =>
      m.To[0]!.Email.startsWith('bad') ? { kind: 'error', code: 'mj-0013', message: 'Email is not valid' } : { kind: 'success' },
    );
    service = await startTestService({ env: { WORKER_CONCURRENCY: '1' } });
    const messages = [messageTo('good1@example.com'), messageTo('bad@example.com'), messageTo('good2@example.com')];

    const res = await service.request('POST', '/queue', { body: { messages } });
    const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string }> };

    const [first, bad, last] = await Promise.all(jobs.map((j) => waitForStatus(service, j.job_id, ['accepted', 'failed'])));
    expect(mailjet.calls).to.have.length(1);
    expect(first!.status).to.equal('accepted');
    expect(last!.status).to.equal('accepted');
    expect(first!.recipients[0]!.message_id).to.equal(mailjet.ids[0]);
    expect(last!.recipients[0]!.message_id).to.equal(mailjet.ids[1]);
    expect(bad!.status).to.equal('failed');
    expect(bad!.last_error).to.contain('mj-0013');
    expect(bad!.recipients[0]!.status).to.equal('failed');
  });

  it('when Mailjet answers 503, then the jobs are deferred and sent on a later attempt', async () => {
    restoreNetwork();
    isolateNetwork();
    let calls = 0;
    mailjet = mockMailjetSend();
    // A one-time 503 ahead of the persistent success double.
    const { default: nock } = await import('nock');
    nock.cleanAll();
    nock('https://api.mailjet.test')
      .post('/v3.1/send')
      .reply(() => {
        calls += 1;
        return [503, '{"ErrorMessage":"Service Unavailable","StatusCode":503}', { 'content-type': 'application/json' }];
      });
    // A 503 leaves the outcome unknown: before the retry jetpost asks Mailjet, which has nothing.
    nock('https://api.mailjet.test').get('/v3/REST/message').query(true).reply(200, '{"Count":0,"Data":[],"Total":0}', { 'content-type': 'application/json' });
    mailjet = mockMailjetSend();
    service = await startTestService();

    const res = await service.request('POST', '/queue', { body: messageTo('retry@example.com') });
    const { job_id } = (await res.json()) as { job_id: string };

    const job = await waitForStatus(service, job_id, ['accepted']);
    expect(calls).to.equal(1);
    expect(job.attempts).to.equal(2);
    expect(job.last_error).to.equal(null);
  });

  it('when the same Idempotency-Key comes with the same body, then the original job is returned and nothing is sent twice', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();
    const body = messageTo('once@example.com');

    const first = await service.request('POST', '/queue', { body, headers: { 'idempotency-key': 'order-1' } });
    const second = await service.request('POST', '/queue', { body, headers: { 'idempotency-key': 'order-1' } });

    expect(first.status).to.equal(202);
    expect(second.status).to.equal(202);
    expect(first.headers.get('idempotent-replayed')).to.equal(null);
    expect(second.headers.get('idempotent-replayed')).to.equal('true');
    const a = (await first.json()) as { job_id: string };
    const b = (await second.json()) as { job_id: string };
    expect(b.job_id).to.equal(a.job_id);
    await waitForStatus(service, a.job_id, ['accepted']);
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_send_jobs');
    expect(rows[0].n).to.equal(1);
    expect(mailjet.calls).to.have.length(1);
  });

  it('when the same Idempotency-Key comes with a different body, then 409 and nothing new is stored', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();

    await service.request('POST', '/queue', { body: messageTo('a@example.com'), headers: { 'idempotency-key': 'k-1' } });
    const conflict = await service.request('POST', '/queue', { body: messageTo('b@example.com'), headers: { 'idempotency-key': 'k-1' } });

    expect(conflict.status).to.equal(409);
    expect(conflict.headers.get('content-type')).to.contain('application/problem+json');
    const problem = (await conflict.json()) as { type: string };
    expect(problem.type).to.match(/idempotency-key-reused$/);
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_send_jobs');
    expect(rows[0].n).to.equal(1);
  });

  it('when a retry orders the keys of metadata, variables and headers otherwise, then it is the same request (replayed); a changed value is still a 409', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();
    const post = (body: Record<string, unknown>, key: string) => service.request('POST', '/queue', { body, headers: { 'idempotency-key': key } });
    const first = messageTo('sorted@example.com', {
      metadata: { user: 42, order: { id: 'o-1', lines: [{ sku: 'a', qty: 1 }] } },
      variables: { name: 'Ada', total: '9.50' },
      headers: { 'X-B': '2', 'X-A': '1' },
    });
    // As Go's encoding/json or Python's sort_keys would send it: the keys in another order, at every depth.
    const reordered = messageTo('sorted@example.com', {
      metadata: { order: { lines: [{ qty: 1, sku: 'a' }], id: 'o-1' }, user: 42 },
      variables: { total: '9.50', name: 'Ada' },
      headers: { 'X-A': '1', 'X-B': '2' },
    });
    const changed = messageTo('sorted@example.com', {
      metadata: { order: { lines: [{ qty: 2, sku: 'a' }], id: 'o-1' }, user: 42 },
      variables: { total: '9.50', name: 'Ada' },
      headers: { 'X-A': '1', 'X-B': '2' },
    });

    const stored = await post(first, 'sorted-1');
    const retry = await post(reordered, 'sorted-1');
    const conflict = await post(changed, 'sorted-1');

    expect(stored.status).to.equal(202);
    expect(retry.status).to.equal(202);
    expect(retry.headers.get('idempotent-replayed')).to.equal('true');
    expect(((await retry.json()) as { job_id: string }).job_id).to.equal(((await stored.json()) as { job_id: string }).job_id);
    expect(conflict.status).to.equal(409);
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_send_jobs');
    expect(rows[0].n).to.equal(1);
  });

  it('when a key stored by a release before sorted hashes is retried with the same body, then it is replayed; with another body, 409', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();
    const body = messageTo('old@example.com', { metadata: { z: 1, a: 2 } });
    const stored = (await (await service.request('POST', '/queue', { body, headers: { 'idempotency-key': 'old-1' } })).json()) as { job_id: string };
    // What an earlier release (or one still running during a rolling upgrade) stored: the hash as sent only.
    await service.db.pool.query(`update idempotency_keys set sorted_request_hash = null where key = 'old-1'`);

    const same = await service.request('POST', '/queue', { body, headers: { 'idempotency-key': 'old-1' } });
    const other = await service.request('POST', '/queue', {
      body: messageTo('old@example.com', { metadata: { z: 1, a: 3 } }),
      headers: { 'idempotency-key': 'old-1' },
    });

    expect(same.status).to.equal(202);
    expect(same.headers.get('idempotent-replayed')).to.equal('true');
    expect(((await same.json()) as { job_id: string }).job_id).to.equal(stored.job_id);
    expect(other.status).to.equal(409);
  });

  it('when an Idempotency-Key comes again after retention deleted its jobs, then it is a new request (with the same body or another), not a 500', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();
    const body = messageTo('purged@example.com');
    const first = (await (await service.request('POST', '/queue', { body, headers: { 'idempotency-key': 'purged-1' } })).json()) as { job_id: string };
    const second = (await (await service.request('POST', '/queue', { body, headers: { 'idempotency-key': 'purged-2' } })).json()) as { job_id: string };
    await waitForStatus(service, first.job_id, ['accepted']);
    await waitForStatus(service, second.job_id, ['accepted']);
    // As a retention pass does, jobs first and the keys just after: a retry may come in between.
    await service.db.pool.query('delete from email_send_jobs where id = any($1::bigint[])', [[first.job_id, second.job_id]]);

    const same = await service.request('POST', '/queue', { body, headers: { 'idempotency-key': 'purged-1' } });
    const other = await service.request('POST', '/queue', { body: messageTo('other@example.com'), headers: { 'idempotency-key': 'purged-2' } });

    for (const [res, old] of [
      [same, first.job_id],
      [other, second.job_id],
    ] as const) {
      expect(res.status).to.equal(202);
      expect(res.headers.get('idempotent-replayed')).to.equal(null);
      expect(((await res.json()) as { job_id: string }).job_id).to.not.equal(old);
    }
    // The key now holds the new request: a retry of it is replayed.
    const again = await service.request('POST', '/queue', { body, headers: { 'idempotency-key': 'purged-1' } });
    expect(again.status).to.equal(202);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_send_jobs');
    expect(rows[0].n).to.equal(2);
  });

  it('when a scheduled job is cancelled before it is due, then it is never sent and a second cancel is a 409', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();
    const sendAt = new Date(Date.now() + 60_000).toISOString();

    const res = await service.request('POST', '/queue', { body: messageTo('later@example.com', { send_at: sendAt }) });
    const { job_id, status } = (await res.json()) as { job_id: string; status: string };
    const cancel = await service.request('DELETE', `/queue/${job_id}`);
    const again = await service.request('DELETE', `/queue/${job_id}`);

    expect(status).to.equal('scheduled');
    expect(cancel.status).to.equal(200);
    expect(((await cancel.json()) as JobJson).status).to.equal('cancelled');
    expect(again.status).to.equal(409);
    const job = await statusOf(service, job_id);
    expect(job.recipients[0]!.status).to.equal('cancelled');
    expect(mailjet.calls).to.have.length(0);
  });

  it('when send_at comes, then the sleeping consumers wake up by themselves and send the job', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService({ env: { IDLE_CHECK_MS: '60000' } });
    const sendAt = new Date(Date.now() + 1_500).toISOString();

    const res = await service.request('POST', '/queue', { body: messageTo('soon@example.com', { send_at: sendAt }) });
    const { job_id } = (await res.json()) as { job_id: string };

    expect((await statusOf(service, job_id)).status).to.equal('scheduled');
    const job = await waitForStatus(service, job_id, ['accepted']);
    expect(job.status).to.equal('accepted');
    expect(Date.now()).to.be.at.least(Date.parse(sendAt));
  });

  it('when another app asks for, lists or cancels a job, then it is a 404 and the job is untouched', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();
    const other = await makeApp(service.jetpost.pool, { name: 'app-b' });
    const res = await service.request('POST', '/queue', {
      body: messageTo('mine@example.com', { custom_id: 'shared-id', send_at: new Date(Date.now() + 60_000).toISOString() }),
    });
    const { job_id } = (await res.json()) as { job_id: string };

    const read = await service.request('GET', `/status/${job_id}`, { key: other.key });
    const cancel = await service.request('DELETE', `/queue/${job_id}`, { key: other.key });
    const byIds = await service.request('GET', `/status?ids=${job_id}`, { key: other.key });
    const byCustomId = await service.request('GET', '/status?custom_id=shared-id', { key: other.key });
    const mine = await service.request('GET', '/status?custom_id=shared-id');

    expect(read.status).to.equal(404);
    expect(cancel.status).to.equal(404);
    expect(((await byIds.json()) as { jobs: unknown[] }).jobs).to.deep.equal([]);
    expect(((await byCustomId.json()) as { jobs: unknown[] }).jobs).to.deep.equal([]);
    expect(((await mine.json()) as { jobs: JobJson[] }).jobs.map((j) => j.job_id)).to.deep.equal([job_id]);
    expect((await statusOf(service, job_id)).status).to.equal('scheduled');
  });

  it("when two apps send the same Idempotency-Key, then each gets its own job; neither's changes feed holds the other's changes, and an app key opens neither the admin API nor the dashboard", async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();
    const other = await makeApp(service.jetpost.pool, { name: 'app-b' });
    const body = messageTo('same@example.com', { custom_id: 'same-id' });
    const queue = async (key: string) => {
      const res = await service.request('POST', '/queue', { body, key, headers: { 'Idempotency-Key': 'shared-key' } });
      expect(res.status).to.equal(202);
      return { jobId: ((await res.json()) as { job_id: string }).job_id, replayed: res.headers.get('idempotent-replayed') };
    };

    const mine = await queue(service.apiKey);
    const theirs = await queue(other.key);
    await waitForStatus(service, mine.jobId, ['accepted']);
    await eventually(async () => ((await statusOf(service, theirs.jobId, other.key)).status === 'accepted' ? true : undefined));
    const feed = await service.request('GET', '/status?after=0&limit=1000', { key: other.key });
    const logIn = await service.request('POST', '/dashboard/login', {
      rawBody: new URLSearchParams({ key: other.key }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: service.url },
      key: null,
    });

    expect(theirs.jobId).to.not.equal(mine.jobId);
    expect(theirs.replayed).to.equal(null);
    const changes = ((await feed.json()) as { changes: Array<{ job_id: string }> }).changes;
    expect(changes.map((change) => change.job_id))
      .to.include(theirs.jobId)
      .and.not.include(mine.jobId);
    expect((await service.request('GET', '/admin/apps', { key: other.key })).status).to.equal(401);
    expect((await service.request('GET', '/admin/jobs?status=failed', { key: other.key })).status).to.equal(401);
    expect(logIn.status).to.equal(401);
    expect(logIn.headers.get('set-cookie')).to.equal(null);
  });

  it('when the API key is missing or wrong, then 401 problem+json and nothing is stored', async () => {
    mailjet = mockMailjetSend();
    service = await startTestService();

    const none = await service.request('POST', '/queue', { body: messageTo('x@example.com'), key: null });
    const wrong = await service.request('POST', '/queue', { body: messageTo('x@example.com'), key: 'jp_aaaaaaaaaaaa_' + 'b'.repeat(43) });

    expect(none.status).to.equal(401);
    expect(wrong.status).to.equal(401);
    expect(none.headers.get('www-authenticate')).to.contain('Bearer');
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_send_jobs');
    expect(rows[0].n).to.equal(0);
  });
});

describe('two consumer pools on one database', () => {
  let db: TestDatabase;
  let services: TestService[] = [];

  afterEach(async () => {
    await Promise.all(services.map((s) => s.stop()));
    services = [];
    await db?.drop();
    restoreNetwork();
  });

  it('when both drain the same queue, then no job is sent twice', async () => {
    isolateNetwork();
    const mailjet = mockMailjetSend();
    db = await createTestDatabase();
    services = [
      await startTestService({ db, env: { WORKER_CONCURRENCY: '3', BATCH_SIZE: '10' } }),
      await startTestService({ db, env: { WORKER_CONCURRENCY: '3', BATCH_SIZE: '10' } }),
    ];
    const [a, b] = services as [TestService, TestService];

    const halves = [a, b].map((service, half) =>
      service.request('POST', '/queue', {
        body: { messages: Array.from({ length: 200 }, (_, i) => messageTo(`r${half}-${i}@example.com`)) },
      }),
    );
    await Promise.all(halves);

    await eventually(async () => {
      const { rows } = await db.pool.query(`select count(*)::int as n from email_send_jobs where status = 'accepted'`);
      return rows[0].n === 400 ? true : undefined;
    }, 20_000);
    const customIds = mailjet.calls.flatMap((call) => call.Messages.map((m) => m.CustomID));
    expect(customIds).to.have.length(400);
    expect(new Set(customIds).size).to.equal(400);
  });
});
