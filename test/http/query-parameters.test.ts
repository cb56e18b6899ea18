// A query parameter on a route that takes none. It was ignored unsaid: POST /queue?idempotency_key=…
// (a key in the URL, as some APIs take it) sent the message once per retry, DELETE …/keys/{prefix}?dry_run=1
// revoked the key. Each is refused (400, naming the parameter) before anything is done. A parameter a
// route takes once, sent twice, is refused saying so (it read "must be a string, not a list").
import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

interface Problem {
  type: string;
  errors: Array<{ path: string; message: string }>;
}

describe('query parameters a route does not take', function () {
  this.timeout(300_000);

  let service: TestService;

  before(async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0' } });
  });

  after(async () => {
    await service?.stop();
  });

  async function expectRefused(res: Response, parameter: string): Promise<void> {
    expect(res.status).to.equal(400);
    const problem = (await res.json()) as Problem;
    expect(problem.type).to.equal('https://jetpost.dev/problems/validation-failed');
    expect(problem.errors).to.deep.include({ path: parameter, message: `unknown field "${parameter}"` });
  }

  async function jobsWith(customId: string): Promise<number> {
    const { rows } = await service.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs where custom_id = $1', [customId]);
    return rows[0]!.n;
  }

  it('when POST /queue comes with idempotency_key in its query string, twice, then 400 naming it each time, and nothing is stored', async () => {
    const body = { ...messageTo('ada@example.org'), custom_id: 'key in the url' };

    for (let attempt = 0; attempt < 2; attempt += 1) {
      await expectRefused(await service.request('POST', '/queue?idempotency_key=invoice-42', { body }), 'idempotency_key');
    }

    expect(await jobsWith('key in the url')).to.equal(0);
    expect((await service.request('POST', '/queue?', { body })).status, 'an empty query string').to.equal(202);
  });

  it('when a job is read or cancelled with a query parameter, then 400 naming it, and the job is left as it was', async () => {
    const queued = await service.request('POST', '/queue', { body: messageTo('ada@example.org') });
    const { job_id: jobId } = (await queued.json()) as { job_id: string };

    await expectRefused(await service.request('GET', `/status/${jobId}?custom_id=other`), 'custom_id');
    await expectRefused(await service.request('DELETE', `/queue/${jobId}?force=true`), 'force');

    const view = (await (await service.request('GET', `/status/${jobId}`)).json()) as { status: string };
    expect(view.status).to.equal('queued');
  });

  it('when a parameter taken once comes twice (ids=1&ids=2, as Python urlencode(…, doseq=True) writes a list), then 400 saying to give it once', async () => {
    const errorsOf = async (res: Response) => {
      expect(res.status).to.equal(400);
      return ((await res.json()) as Problem).errors;
    };
    expect(await errorsOf(await service.request('GET', '/status?ids=1&ids=2'))).to.deep.equal([
      { path: 'ids', message: 'is given more than once: give it once, the job ids comma-separated (ids=1,2,3)' },
    ]);
    expect(await errorsOf(await service.request('GET', '/status?after=0&limit=1&limit=2'))).to.deep.equal([
      { path: 'limit', message: 'is given more than once: give it once' },
    ]);
    expect(await errorsOf(await service.request('GET', '/admin/jobs?limit=1&limit=2', { key: ADMIN_KEY }))).to.deep.equal([
      { path: 'limit', message: 'is given more than once: give it once' },
    ]);
    expect((await service.request('GET', '/status?custom_id=a&custom_id=b')).status, 'custom_id is repeated for several').to.equal(200);
  });

  it('when an admin action comes with a query parameter (dry_run), then 400 naming it, and nothing is done', async () => {
    const admin = (method: string, path: string, body?: unknown) => service.request(method, path, { key: ADMIN_KEY, body });
    const created = (await (await admin('POST', '/admin/apps', { name: 'ledger' })).json()) as { key_prefix: string };

    await expectRefused(await admin('DELETE', `/admin/apps/ledger/keys/${created.key_prefix}?dry_run=1`), 'dry_run');
    await expectRefused(await admin('POST', '/admin/apps/ledger/keys?dry_run=1', { revoke_others: true }), 'dry_run');
    await expectRefused(await admin('GET', '/admin/apps?dry_run=1'), 'dry_run');

    const listed = (await (await admin('GET', '/admin/apps')).json()) as {
      apps: Array<{ name: string; keys: Array<{ prefix: string; revoked_at: string | null }> }>;
    };
    const keys = listed.apps.find((app) => app.name === 'ledger')?.keys.map(({ prefix, revoked_at }) => ({ prefix, revoked_at }));
    expect(keys, 'no key revoked, none added').to.deep.equal([{ prefix: created.key_prefix, revoked_at: null }]);
  });
});
