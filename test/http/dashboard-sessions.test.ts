// Two replicas on one database: a dashboard session ended by a logout on one is refused by both at
// once, a copied cookie included, and the record of ended sessions stays small.
import { expect } from 'chai';

import { createSession, sessionKey } from '../../src/domain/dashboard-session.js';
import { makeJob } from '../factories.js';
import { dashboardClient } from '../support/dashboard-client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

describe('dashboard sessions on two replicas', function () {
  this.timeout(60_000);

  let db: TestDatabase;
  let a: TestService;
  let b: TestService;

  before(async () => {
    db = await createTestDatabase();
    a = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
    b = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  const page = (on: TestService, cookie: string, path = '/dashboard') => fetch(`${on.url}${path}`, { headers: { cookie }, redirect: 'manual' });

  it('when a visitor logs out on one replica, then a copy of the cookie is refused on both, pages and forms, and a new login works', async () => {
    const client = await dashboardClient(a);
    const csrf = await client.csrf();
    expect((await page(b, client.cookie)).status, 'one login serves every replica').to.equal(200);

    const out = await client.post('/dashboard/logout', {});
    expect(out.status).to.equal(303);

    for (const on of [a, b]) {
      for (const path of ['/dashboard', '/dashboard/jobs', '/dashboard/apps']) {
        const res = await page(on, client.cookie, path);
        expect(res.status, `${on === a ? 'A' : 'B'} ${path}`).to.equal(303);
        expect(res.headers.get('location')).to.match(/^\/dashboard\/login/);
      }
      // The login form does not take the ended session for a live one.
      expect((await page(on, client.cookie, '/dashboard/login')).status).to.equal(200);
      const form = await fetch(`${on.url}/dashboard/suppressions`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: client.cookie, origin: on.url },
        body: new URLSearchParams({ app: 'app-a', email: 'ended@example.org', csrf }).toString(),
      });
      expect(form.status, 'a form with the ended session and its CSRF token').to.equal(303);
      expect(form.headers.get('location')).to.equal('/dashboard/login');
    }
    const { rows } = await a.jetpost.pool.query("select 1 from suppressions where email = 'ended@example.org'");
    expect(rows).to.have.length(0);

    const again = await dashboardClient(b);
    expect((await page(a, again.cookie)).status).to.equal(200);
  });

  it('when the cookie header holds two session cookies, a forged, expired or ended one first, then the valid one counts, for pages and forms', async () => {
    const ended = await dashboardClient(a);
    expect((await ended.post('/dashboard/logout', {})).status).to.equal(303);
    const client = await dashboardClient(a);
    const csrf = await client.csrf();
    const expired = `jetpost_dashboard=${createSession(sessionKey(ADMIN_KEY), new Date(Date.now() - 24 * 3600 * 1000)).token}`;
    const jobId = await makeJob(a.jetpost.pool, { appId: a.appId, status: 'failed', lastError: 'boom' });

    for (const stale of ['jetpost_dashboard=garbage', expired, ended.cookie]) {
      for (const cookie of [`${stale}; ${client.cookie}`, `${client.cookie}; ${stale}`]) {
        expect((await page(b, cookie)).status, cookie).to.equal(200);
      }
      const form = await fetch(`${b.url}/dashboard/failed/requeue`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `${stale}; ${client.cookie}`, origin: b.url },
        body: new URLSearchParams({ job_id: jobId, back: 'failed', csrf }).toString(),
      });
      expect(form.status, stale).to.equal(303);
      expect(form.headers.get('location'), stale).to.not.match(/login/);
    }
    // Without a valid one, still the login.
    expect((await page(b, `jetpost_dashboard=garbage; ${ended.cookie}`)).headers.get('location')).to.match(/^\/dashboard\/login/);
  });

  it('a logout prunes the sessions whose expiry has passed, so that the table holds only sessions that could still be shown', async () => {
    await a.jetpost.pool.query(
      "insert into ended_dashboard_sessions (session_id, expires_at) values ('aaaaaaaaaaaaaaaaaaaaaa', now() - interval '1 second'), ('bbbbbbbbbbbbbbbbbbbbbb', now() + interval '1 hour')",
    );
    const client = await dashboardClient(b);
    expect((await client.post('/dashboard/logout', {})).status).to.equal(303);
    const { rows } = await a.jetpost.pool.query<{ session_id: string }>('select session_id from ended_dashboard_sessions order by expires_at');
    const ids = rows.map((row) => row.session_id);
    expect(ids).to.not.include('aaaaaaaaaaaaaaaaaaaaaa');
    expect(ids).to.include('bbbbbbbbbbbbbbbbbbbbbb');
    expect(ids).to.include(client.cookie.split('.')[1]);
  });

  it('logging out twice with the same cookie, or a forged one, changes nothing and is no error', async () => {
    const client = await dashboardClient(a);
    const csrf = await client.csrf();
    expect((await client.post('/dashboard/logout', {}, { csrf })).status).to.equal(303);
    const second = await client.post('/dashboard/logout', {}, { csrf });
    expect(second.status, 'an ended session cannot post, not even a logout').to.equal(303);
    expect(second.headers.get('location')).to.equal('/dashboard/login');
    // A token signed with another key never reaches the table.
    const forged = createSession(sessionKey(`${ADMIN_KEY}-other`), new Date()).token;
    const res = await fetch(`${a.url}/dashboard/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `jetpost_dashboard=${forged}`, origin: a.url },
      body: 'csrf=x',
    });
    expect(res.status).to.equal(303);
    const { rows } = await a.jetpost.pool.query('select 1 from ended_dashboard_sessions where session_id = $1', [forged.split('.')[1]]);
    expect(rows).to.have.length(0);
  });
});
