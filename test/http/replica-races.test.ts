// Two replicas on one database, raced: the same Idempotency-Key sent at once to both (with the same
// body and with different ones) stores one message, and a key revoked on one is refused by the
// other at once, however warm its key cache (POST /queue trusts it) and on a replayed request too.
import { expect } from 'chai';

import { message } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

describe('two replicas raced: Idempotency-Keys and revoked keys', () => {
  let db: TestDatabase;
  let a: TestService;
  let b: TestService;

  before(async () => {
    isolateNetwork();
    db = await createTestDatabase();
    a = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
    b = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
    restoreNetwork();
  });

  async function post(
    on: TestService,
    key: string,
    body: unknown,
    idempotencyKey?: string,
  ): Promise<{ status: number; replayed: boolean; body: Record<string, unknown> }> {
    const res = await on.request('POST', '/queue', { key, body, headers: idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey } });
    return { status: res.status, replayed: res.headers.get('idempotent-replayed') === 'true', body: (await res.json()) as Record<string, unknown> };
  }

  async function jobs(): Promise<number> {
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    return rows[0]!.n;
  }

  it('when 40 requests with one Idempotency-Key and one body hit both replicas at once, then one message is stored and all 40 get its job id', async () => {
    const before = await jobs();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => post(i % 2 === 0 ? a : b, a.apiKey, message({ subject: 'raced' }), 'race-same')));
    expect(results.map((result) => result.status)).to.deep.equal(Array(40).fill(202));
    expect(new Set(results.map((result) => result.body['job_id'])).size).to.equal(1);
    expect(results.filter((result) => !result.replayed)).to.have.length(1);
    expect(await jobs()).to.equal(before + 1);
  });

  it('when 40 requests with one Idempotency-Key and three bodies hit both replicas at once, then one body is stored; its twins are replayed, the others 409', async () => {
    const before = await jobs();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post(i % 2 === 0 ? a : b, a.apiKey, message({ subject: `raced ${i % 3}` }), 'race-different')),
    );
    const accepted = results.filter((result) => result.status === 202);
    expect(new Set(accepted.map((result) => result.body['job_id'])).size).to.equal(1);
    expect(accepted.filter((result) => !result.replayed)).to.have.length(1);
    expect(results.filter((result) => result.status !== 202).map((result) => result.status)).to.deep.equal(Array(40 - accepted.length).fill(409));
    expect(await jobs()).to.equal(before + 1);
  });

  it('when 40 requests with an Idempotency-Key whose job retention deleted hit both replicas at once, then one new message is stored and all 40 get its job id', async () => {
    const first = await post(a, a.apiKey, message({ subject: 'purged' }), 'race-purged');
    await db.pool.query('delete from email_send_jobs where id = $1', [first.body['job_id']]);
    const before = await jobs();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => post(i % 2 === 0 ? a : b, a.apiKey, message({ subject: 'purged' }), 'race-purged')));
    expect(results.map((result) => result.status)).to.deep.equal(Array(40).fill(202));
    const ids = new Set(results.map((result) => result.body['job_id']));
    expect(ids.size).to.equal(1);
    expect(ids.has(first.body['job_id'])).to.equal(false);
    expect(results.filter((result) => !result.replayed)).to.have.length(1);
    expect(await jobs()).to.equal(before + 1);
  });

  it('when a key is revoked on one replica, then the other refuses it at once on POST /queue (its cache warm), a replay included, and on every read', async () => {
    const created = (await (await a.request('POST', '/admin/apps', { key: ADMIN_KEY, body: { name: 'raced-app' } })).json()) as {
      api_key: string;
      key_prefix: string;
    };
    const key = created.api_key;
    const first = await post(b, key, message(), 'before-revoke');
    expect(first.status).to.equal(202);
    // Warm b's cache of senders' keys.
    expect((await post(b, key, message())).status).to.equal(202);

    expect((await a.request('DELETE', `/admin/apps/raced-app/keys/${created.key_prefix}`, { key: ADMIN_KEY })).status).to.equal(204);

    expect((await post(b, key, message())).status).to.equal(401);
    expect((await post(b, key, message(), 'before-revoke')).status).to.equal(401);
    expect((await b.request('GET', `/status/${String(first.body['job_id'])}`, { key })).status).to.equal(401);
    expect((await b.request('GET', '/status?after=0', { key })).status).to.equal(401);
    expect((await b.request('DELETE', `/queue/${String(first.body['job_id'])}`, { key })).status).to.equal(401);
  });

  it("when an app asks a replica for another app's job, then 404, as for a job that does not exist", async () => {
    const theirs = await post(a, a.apiKey, message());
    const res = await b.request('GET', `/status/${String(theirs.body['job_id'])}`, { key: b.apiKey });
    expect(res.status).to.equal(404);
    const listed = (await (await b.request('GET', `/status?ids=${String(theirs.body['job_id'])}`, { key: b.apiKey })).json()) as { jobs: unknown[] };
    expect(listed.jobs).to.deep.equal([]);
  });
});
