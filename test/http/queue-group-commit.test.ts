// What a sender relies on when POST /queue shares transactions between requests: a 202 means the
// message is stored (any replica reads it at once), and a revoked key is refused at once by a
// replica that had it cached.
import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

describe('POST /queue under concurrency (group commit)', () => {
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

  async function twoReplicas(): Promise<[TestService, TestService]> {
    mockMailjetSend();
    db = await createTestDatabase();
    // No consumers: the jobs stay queued, so what is read is what the request stored.
    services = [await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } }), await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } })];
    return services as [TestService, TestService];
  }

  it('when 40 requests come at once, then each 202 is readable at once on another replica, with its own message', async () => {
    const [a, b] = await twoReplicas();

    const outcomes = await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        const res = await a.request('POST', '/queue', { body: messageTo(`r${index}@example.com`, { custom_id: `c-${index}` }) });
        expect(res.status).to.equal(202);
        const { job_id } = (await res.json()) as { job_id: string };
        const read = await b.request('GET', `/status/${job_id}`, { key: a.apiKey });
        expect(read.status).to.equal(200);
        return { index, view: (await read.json()) as { status: string; custom_id: string; recipients: Array<{ email: string }> } };
      }),
    );

    for (const { index, view } of outcomes) {
      expect(view).to.include({ status: 'queued', custom_id: `c-${index}` });
      expect(view.recipients.map((r) => r.email)).to.deep.equal([`r${index}@example.com`]);
    }
  });

  it('when a key that a replica has cached is revoked on another, then that replica refuses it at once and stores nothing of it', async () => {
    const [a, b] = await twoReplicas();
    const created = (await (await a.request('POST', '/admin/apps', { key: ADMIN_KEY, body: { name: 'sender' } })).json()) as {
      api_key: string;
      key_prefix: string;
    };
    // Twice: the second is answered from b's key cache.
    for (const to of ['one@example.com', 'two@example.com']) {
      expect((await b.request('POST', '/queue', { key: created.api_key, body: messageTo(to) })).status).to.equal(202);
    }

    expect((await a.request('DELETE', `/admin/apps/sender/keys/${created.key_prefix}`, { key: ADMIN_KEY })).status).to.equal(204);
    const refused = await Promise.all(
      ['three@example.com', 'four@example.com'].map((to) => b.request('POST', '/queue', { key: created.api_key, body: messageTo(to) })),
    );

    expect(refused.map((res) => res.status)).to.deep.equal([401, 401]);
    expect(refused[0]!.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect((await b.request('GET', '/status?ids=1', { key: created.api_key })).status).to.equal(401);
    const { rows } = await db!.pool.query<{ email: string }>(
      "select r.email from email_recipients r join email_send_jobs j on j.id = r.job_id join apps a on a.id = j.app_id where a.name = 'sender' order by r.email",
    );
    expect(rows.map((row) => row.email)).to.deep.equal(['one@example.com', 'two@example.com']);
  });

  it('when a key is revoked by hand in the database, then the replicas refuse it on POST /queue', async () => {
    const [a, b] = await twoReplicas();
    expect((await b.request('POST', '/queue', { body: messageTo('one@example.com') })).status).to.equal(202);

    await db!.pool.query('update api_keys set revoked_at = now()');

    for (const service of [a, b]) {
      expect((await service.request('POST', '/queue', { key: a.apiKey, body: messageTo('two@example.com') })).status).to.equal(401);
    }
  });

  it('when messages of megabytes come, then they are stored under the bulk statement timeout, not refused by the short one', async () => {
    db = await createTestDatabase();
    // Storing a large message takes PostgreSQL a while (seconds for 14 MB on a busy host): made
    // longer than the short timeout here, so that the test does not depend on the host's speed.
    await db.pool.query(`
      create function slow_large_messages() returns trigger language plpgsql as $$
      begin
        if octet_length(new.message::text) > 500000 then perform pg_sleep(1.5); end if;
        return new;
      end $$;
      create trigger slow_large_messages before insert on email_send_jobs for each row execute function slow_large_messages()`);
    const service = await startTestService({ db, env: { WORKER_CONCURRENCY: '0', DATABASE_STATEMENT_TIMEOUT_MS: '1000' } });
    services = [service];
    const large = (to: string) => messageTo(to, { text: 'x'.repeat(1024 * 1024) });

    const answers = await Promise.all([
      service.request('POST', '/queue', { body: large('one@example.com') }),
      service.request('POST', '/queue', { body: { messages: [large('two@example.com'), messageTo('three@example.com')] } }),
    ]);

    expect(answers.map((res) => res.status)).to.deep.equal([202, 202]);
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    expect(rows[0]!.n).to.equal(3);
  });
});
