// The edges between apps, and between jetpost and the outside: keys (rotation, revocation on every
// replica), suppression lists fed by Mailjet's events, shared rate limits, and logs without secrets.
import { expect } from 'chai';
import nock from 'nock';

import { makeJob, messageTo } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { capturingLogger } from '../support/log.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, EVENTS_PASSWORD, eventually, MAILJET_TEST_SECRET, startTestService, type TestService } from '../support/service.js';

/** An event as Mailjet writes it, MessageID as a raw JSON integer. */
function eventText(type: string, messageId: string, email: string, extra: Record<string, unknown> = {}): string {
  return `{"MessageID":${messageId},${JSON.stringify({ event: type, time: 1_700_000_000, email, CustomID: '', Payload: '', ...extra }).slice(1)}`;
}

async function queueAndAccept(service: TestService, body: unknown): Promise<{ jobId: string; messageIds: Record<string, string> }> {
  const res = await service.request('POST', '/queue', { body });
  expect(res.status).to.equal(202);
  const { job_id } = (await res.json()) as { job_id: string };
  const job = await eventually(async () => {
    const view = (await (await service.request('GET', `/status/${job_id}`)).json()) as {
      status: string;
      recipients: Array<{ email: string; message_id: string | null }>;
    };
    return view.status === 'accepted' ? view : undefined;
  });
  return { jobId: job_id, messageIds: Object.fromEntries(job.recipients.map((r) => [r.email, r.message_id ?? ''])) };
}

describe('apps, keys, suppressions and logs', () => {
  let db: TestDatabase | undefined;
  let services: TestService[] = [];

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await Promise.all(services.map((service) => service.stop()));
    services = [];
    await db?.drop();
    db = undefined;
    restoreNetwork();
  });

  const admin = (service: TestService, method: string, path: string, body?: unknown) => service.request(method, path, { body, key: ADMIN_KEY });

  it('when a key is revoked on one replica, then every replica refuses it at once, while a rotated key keeps working', async () => {
    mockMailjetSend();
    db = await createTestDatabase();
    services = [await startTestService({ db }), await startTestService({ db })];
    const [a, b] = services as [TestService, TestService];
    const created = (await (await admin(a, 'POST', '/admin/apps', { name: 'billing' })).json()) as { api_key: string; key_prefix: string };
    const first = created.api_key;

    expect((await b.request('GET', '/status?ids=1', { key: first })).status).to.equal(200);
    const rotated = (await (await admin(a, 'POST', '/admin/apps/billing/keys', {})).json()) as { api_key: string; key_prefix: string; revoked: string[] };
    expect(rotated.revoked).to.deep.equal([]);
    expect((await b.request('GET', '/status?ids=1', { key: first })).status).to.equal(200);
    expect((await b.request('GET', '/status?ids=1', { key: rotated.api_key })).status).to.equal(200);

    const revoke = await admin(a, 'DELETE', `/admin/apps/billing/keys/${created.key_prefix}`);

    expect(revoke.status).to.equal(204);
    expect((await b.request('GET', '/status?ids=1', { key: first })).status).to.equal(401);
    expect((await a.request('POST', '/queue', { key: first, body: messageTo('x@example.com') })).status).to.equal(401);
    expect((await b.request('GET', '/status?ids=1', { key: rotated.api_key })).status).to.equal(200);
    const third = (await (await admin(b, 'POST', '/admin/apps/billing/keys', { revoke_others: true })).json()) as { api_key: string; revoked: string[] };
    expect(third.revoked).to.deep.equal([rotated.key_prefix]);
    expect((await a.request('GET', '/status?ids=1', { key: rotated.api_key })).status).to.equal(401);
    expect((await a.request('GET', '/status?ids=1', { key: third.api_key })).status).to.equal(200);
    const listed = (await (await admin(a, 'GET', '/admin/apps')).json()) as { apps: Array<{ name: string; keys: Array<{ revoked_at: string | null }> }> };
    expect(listed.apps.find((app) => app.name === 'billing')?.keys.map((key) => key.revoked_at === null)).to.deep.equal([false, false, true]);
  });

  it('when several rotations with revoke_others run at once, then one key is left, and the keys each answer names as revoked are all the others', async () => {
    const service = await startTestService();
    services = [service];
    const created = (await (await admin(service, 'POST', '/admin/apps', { name: 'payroll' })).json()) as { api_key: string; key_prefix: string };

    const rotations = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const res = await admin(service, 'POST', '/admin/apps/payroll/keys', { revoke_others: true });
        expect(res.status).to.equal(201);
        return (await res.json()) as { api_key: string; key_prefix: string; revoked: string[] };
      }),
    );

    const listed = (await (await admin(service, 'GET', '/admin/apps')).json()) as {
      apps: Array<{ name: string; keys: Array<{ prefix: string; revoked_at: string | null }> }>;
    };
    const active = listed.apps.find((app) => app.name === 'payroll')!.keys.filter((key) => key.revoked_at === null);
    expect(active, 'keys left active').to.have.length(1);
    const revoked = rotations.flatMap((rotation) => rotation.revoked).sort();
    const others = [created.key_prefix, ...rotations.map((rotation) => rotation.key_prefix)].filter((prefix) => prefix !== active[0]!.prefix).sort();
    expect(revoked, 'each key revoked once, by the rotation after it').to.deep.equal(others);
    expect((await service.request('GET', '/status?ids=1', { key: created.api_key })).status).to.equal(401);
  });

  for (const [type, extra, reason] of [
    ['bounce', { hard_bounce: true, error_related_to: 'recipient', error: 'user unknown' }, 'hard_bounce'],
    ['spam', { source: 'JMRPP' }, 'spam'],
    ['unsub', { mj_list_id: 1 }, 'unsubscribed'],
  ] as const) {
    it(`when Mailjet reports ${type}, then the address is suppressed for that app and the next send to it fails without calling Mailjet`, async () => {
      const mailjet = mockMailjetSend();
      const service = await startTestService();
      services = [service];
      const { messageIds } = await queueAndAccept(service, messageTo('reader@example.com'));

      const res = await service.postEvents(`[${eventText(type, messageIds['reader@example.com']!, 'reader@example.com', extra)}]`);
      expect(res.status).to.equal(200);
      const callsBefore = mailjet.calls.length;
      const again = await service.request('POST', '/queue', { body: messageTo('Reader@Example.com') });
      const { job_id } = (await again.json()) as { job_id: string };
      const failed = await eventually(async () => {
        const view = (await (await service.request('GET', `/status/${job_id}`)).json()) as {
          status: string;
          last_error: string;
          recipients: Array<{ status: string }>;
        };
        return view.status === 'failed' ? view : undefined;
      });

      expect(failed.last_error).to.match(new RegExp(`^suppressed: Reader@Example.com \\(${reason}\\)`));
      expect(failed.recipients[0]!.status).to.equal('suppressed');
      expect(mailjet.calls.length).to.equal(callsBefore);
      const list = (await (await admin(service, 'GET', `/admin/apps/${await appName(service)}/suppressions`)).json()) as {
        suppressions: Array<{ email: string; reason: string }>;
      };
      expect(list.suppressions).to.deep.include.members([{ ...list.suppressions[0]!, email: 'reader@example.com', reason }]);
    });
  }

  async function appName(service: TestService): Promise<string> {
    const { rows } = await service.db.pool.query('select name from apps where id = $1', [service.appId]);
    return rows[0].name as string;
  }

  it('when only a Cc address is suppressed, then the message goes to the others and that recipient reads suppressed; a soft bounce suppresses nothing', async () => {
    const mailjet = mockMailjetSend();
    const service = await startTestService();
    services = [service];
    const name = await appName(service);
    const { messageIds } = await queueAndAccept(service, messageTo('soft@example.com'));
    await service.postEvents(`[${eventText('bounce', messageIds['soft@example.com']!, 'soft@example.com', { hard_bounce: false, error: 'greylisted' })}]`);
    expect((await admin(service, 'POST', `/admin/apps/${name}/suppressions`, { email: 'boss@example.com', note: 'asked by phone' })).status).to.equal(201);

    const { jobId } = await queueAndAccept(service, { ...messageTo('soft@example.com'), cc: ['boss@example.com', 'team@example.com'] });

    const view = (await (await service.request('GET', `/status/${jobId}`)).json()) as { recipients: Array<{ email: string; status: string }> };
    expect(view.recipients.map((r) => [r.email, r.status])).to.deep.equal([
      ['soft@example.com', 'accepted'],
      ['boss@example.com', 'suppressed'],
      ['team@example.com', 'accepted'],
    ]);
    const lastCall = mailjet.calls.at(-1)!.Messages[0]!;
    expect(lastCall.Cc).to.deep.equal([{ Email: 'team@example.com' }]);
    expect((await admin(service, 'DELETE', `/admin/apps/${name}/suppressions/boss@example.com`)).status).to.equal(204);
    expect((await admin(service, 'DELETE', `/admin/apps/${name}/suppressions/boss@example.com`)).status).to.equal(404);
  });

  it('when the same app name is created eight times at once, then one 201 and seven 409s, never a 500', async () => {
    const service = await startTestService({ env: { WORKER_CONCURRENCY: '0' } });
    services = [service];

    const statuses = await Promise.all(Array.from({ length: 8 }, async () => (await admin(service, 'POST', '/admin/apps', { name: 'racy' })).status));

    expect([...statuses].sort()).to.deep.equal([201, 409, 409, 409, 409, 409, 409, 409]);
  });

  it('when a suppression is removed and the failed job re-queued, then the recipient is sent to and reads accepted', async () => {
    mockMailjetSend();
    const service = await startTestService();
    services = [service];
    const name = await appName(service);
    await admin(service, 'POST', `/admin/apps/${name}/suppressions`, { email: 'gone@example.org' });
    const res = await service.request('POST', '/queue', { body: messageTo('gone@example.org') });
    const { job_id } = (await res.json()) as { job_id: string };
    const statusOf = async () =>
      (await (await service.request('GET', `/status/${job_id}`)).json()) as {
        status: string;
        recipients: Array<{ status: string; message_id: string | null }>;
      };
    await eventually(async () => ((await statusOf()).status === 'failed' ? true : undefined));

    await admin(service, 'DELETE', `/admin/apps/${name}/suppressions/gone@example.org`);
    await admin(service, 'POST', '/admin/jobs/requeue', { job_ids: [job_id] });

    const view = await eventually(async () => {
      const current = await statusOf();
      return current.status === 'accepted' ? current : undefined;
    });
    expect(view.recipients[0]!.status).to.equal('accepted');
    expect(view.recipients[0]!.message_id).to.match(/^\d+$/);
  });

  it("when failed jobs are re-queued by id with an app named, then only that app's jobs go back to the queue", async () => {
    db = await createTestDatabase();
    services = [await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } })];
    const [service] = services as [TestService];
    await admin(service, 'POST', '/admin/apps', { name: 'billing' });
    const billingId = String((await service.db.pool.query<{ id: string }>("select id from apps where name = 'billing'")).rows[0]!.id);
    const mine = await makeJob(service.db.pool, { appId: service.appId, status: 'failed' });
    const billing = await makeJob(service.db.pool, { appId: billingId, status: 'failed' });

    const res = await admin(service, 'POST', '/admin/jobs/requeue', { job_ids: [mine, billing], app: 'billing' });

    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ requeued: [billing] });
    const { rows } = await service.db.pool.query<{ id: string; status: string }>('select id::text, status from email_send_jobs order by id');
    expect(rows).to.deep.equal([
      { id: mine, status: 'failed' },
      { id: billing, status: 'queued' },
    ]);
  });

  it('when an app sends faster than QUEUE_RATE_LIMIT across two replicas, then the next request is a 429 with RateLimit and Retry-After headers', async () => {
    mockMailjetSend();
    db = await createTestDatabase();
    const env = { QUEUE_RATE_LIMIT: '3', WORKER_CONCURRENCY: '0' };
    services = [await startTestService({ db, env }), await startTestService({ db, env })];
    const [a, b] = services as [TestService, TestService];
    // Both services created their own app; use one app's key on both replicas.
    const send = (service: TestService) => service.request('POST', '/queue', { key: a.apiKey, body: messageTo('x@example.com') });

    const statuses = [(await send(a)).status, (await send(b)).status, (await send(a)).status];
    const limited = await send(b);

    expect(statuses).to.deep.equal([202, 202, 202]);
    expect(limited.status).to.equal(429);
    expect(limited.headers.get('content-type')).to.contain('application/problem+json');
    expect(Number(limited.headers.get('retry-after'))).to.be.within(1, 60);
    expect(limited.headers.get('ratelimit')).to.be.a('string');
    expect(((await limited.json()) as { type: string }).type).to.match(/rate-limited$/);
    // Another app has its own budget.
    expect((await b.request('POST', '/queue', { body: messageTo('y@example.com') })).status).to.equal(202);
  });

  it('when the service works, then its log never holds an API key, the admin key, credentials or a message body', async () => {
    mockMailjetSend();
    const { log, lines } = capturingLogger('silly');
    const service = await startTestService({ log });
    services = [service];
    const marker = 'BODY-MARKER-7f3a';
    const created = (await (await admin(service, 'POST', '/admin/apps', { name: 'logged' })).json()) as { api_key: string };

    const { messageIds } = await queueAndAccept(
      service,
      messageTo('log@example.com', { text: `${marker} text`, html: `<p>${marker} html</p>`, variables: { code: marker } }),
    );
    await service.request('POST', '/queue', { key: created.api_key, body: messageTo('bad-address') });
    await service.request('POST', '/queue', { key: `${created.api_key}x`, body: messageTo('z@example.com') });
    await service.request('GET', '/status?ids=1', { key: 'jp_aaaaaaaaaaaa_' + 'c'.repeat(43) });
    await service.postEvents(`[${eventText('open', messageIds['log@example.com']!, 'log@example.com')}]`);
    await service.postEvents('[]', { user: 'mailjet', password: 'wrong-password-guess' });
    await service.request('GET', '/admin/jobs', { key: `${ADMIN_KEY}-wrong` });
    nock.cleanAll();

    const text = lines().join('\n');
    expect(lines().length).to.be.greaterThan(10);
    for (const secret of [service.apiKey, created.api_key, ADMIN_KEY, EVENTS_PASSWORD, MAILJET_TEST_SECRET, 'wrong-password-guess', marker]) {
      expect(text, `the log holds ${secret.slice(0, 6)}…`).not.to.contain(secret);
    }
    for (const line of lines()) {
      expect(() => JSON.parse(line), line).not.to.throw();
    }
  });
});
