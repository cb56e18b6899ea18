// /dashboard over HTTP, without a browser: the login and its cookie, the CSRF and origin checks of
// every action, escaping of what the database holds, and refusals as pages.
import { expect } from 'chai';

import { createSession, sessionKey } from '../../src/domain/dashboard-session.js';
import { makeApp, makeJob } from '../factories.js';
import { csrfOf, dashboardClient, formBody, logIn } from '../support/dashboard-client.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

/** The jobs enqueued over the overview chart's hour, from its data. */
function enqueuedInChart(text: string): number {
  const json = /<script type="application\/json" id="throughput-data">(.*?)<\/script>/.exec(text)?.[1];
  return (JSON.parse(json!) as Array<{ enqueued: number }>).reduce((sum, minute) => sum + minute.enqueued, 0);
}

describe('/dashboard over HTTP', function () {
  this.timeout(60_000);

  let service: TestService;

  before(async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', TRUST_PROXY: 'loopback' } });
  });

  after(async () => {
    await service?.stop();
  });

  const jobStatus = async (id: string) =>
    (await service.jetpost.pool.query<{ status: string }>('select status from email_send_jobs where id = $1', [id])).rows[0]?.status;

  describe('without a session', () => {
    it('when a page is asked for without a cookie, then 303 to the login form, which brings the visitor back', async () => {
      for (const path of ['/dashboard', '/dashboard/jobs?q=a%40b.c', '/dashboard/jobs/1', '/dashboard/failed', '/dashboard/suppressions', '/dashboard/apps']) {
        const res = await fetch(`${service.url}${path}`, { redirect: 'manual' });
        expect(res.status, path).to.equal(303);
        expect(res.headers.get('location'), path).to.equal(`/dashboard/login?next=${encodeURIComponent(path)}`);
      }
      const login = await fetch(`${service.url}/dashboard/login?next=%2Fdashboard%2Ffailed`);
      expect(login.status).to.equal(200);
      expect(await login.text()).to.include('name="next" value="/dashboard/failed"');
    });

    it('when the cookie is forged, tampered with or expired, then 303 to the login form', async () => {
      const key = sessionKey(ADMIN_KEY);
      const expired = createSession(key, new Date(Date.now() - 13 * 3600 * 1000)).token;
      const valid = createSession(key, new Date()).token;
      const tampered = `${String(Date.now() + 10 * 24 * 3600 * 1000).padStart(13, '0')}${valid.slice(13)}`;
      const otherKey = createSession(sessionKey('another-admin-key-0123456789'), new Date()).token;
      for (const token of [expired, tampered, otherKey, 'garbage', ADMIN_KEY]) {
        const res = await fetch(`${service.url}/dashboard`, { headers: { cookie: `jetpost_dashboard=${token}` }, redirect: 'manual' });
        expect(res.status, token).to.equal(303);
      }
      const res = await fetch(`${service.url}/dashboard`, { headers: { cookie: `jetpost_dashboard=${valid}` }, redirect: 'manual' });
      expect(res.status, 'a token signed with the admin key').to.equal(200);
    });

    it('when a POST comes without a session, then 303 to the login form and nothing is done', async () => {
      const jobId = await makeJob(service.jetpost.pool, { appId: service.appId, status: 'failed', lastError: 'boom' });
      const res = await fetch(`${service.url}/dashboard/failed/requeue`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: service.url },
        body: formBody({ job_id: jobId, back: 'failed', csrf: 'x' }),
      });
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal('/dashboard/login');
      expect(await jobStatus(jobId)).to.equal('failed');
    });
  });

  describe('logging in', () => {
    it('when the key is wrong, then a 401 page and no cookie', async () => {
      for (const key of ['wrong', '', `${ADMIN_KEY}x`, ADMIN_KEY.slice(0, -1)]) {
        const res = await logIn(service, key);
        expect(res.status, key).to.equal(401);
        expect(res.headers.get('content-type')).to.match(/^text\/html/);
        expect(res.headers.get('set-cookie'), key).to.equal(null);
        expect(await res.text()).to.include('That is not the admin key.');
      }
    });

    it('when the key is right, then a session cookie that is HttpOnly, SameSite=Strict, for /dashboard only, expiring, and holding no key', async () => {
      const res = await logIn(service);
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal('/dashboard');
      const cookie = res.headers.get('set-cookie') ?? '';
      expect(cookie).to.match(/^jetpost_dashboard=[^;]+; /);
      const attributes = cookie
        .split(';')
        .slice(1)
        .map((part) => part.trim().toLowerCase());
      expect(attributes).to.include.members(['httponly', 'samesite=strict', 'path=/dashboard']);
      expect(attributes.some((a) => a.startsWith('expires='))).to.equal(true);
      expect(attributes, 'plain http: not Secure, or the browser would drop it').to.not.include('secure');
      const expires = new Date(attributes.find((a) => a.startsWith('expires='))!.slice('expires='.length));
      expect(expires.getTime()).to.be.within(Date.now() + 11 * 3600 * 1000, Date.now() + 13 * 3600 * 1000);
      expect(cookie).to.not.include(ADMIN_KEY);
      expect(cookie).to.not.include(encodeURIComponent(ADMIN_KEY));
    });

    it('when the request came over HTTPS through a trusted proxy, then the cookie is Secure too', async () => {
      const res = await logIn(service, ADMIN_KEY, { 'x-forwarded-proto': 'https', origin: service.url.replace('http:', 'https:') });
      expect(res.status).to.equal(303);
      const attributes = (res.headers.get('set-cookie') ?? '').split(';').map((part) => part.trim().toLowerCase());
      expect(attributes).to.include('secure');
      const renamed = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'mail.example.com', origin: 'https://mail.example.com' };
      expect((await logIn(service, ADMIN_KEY, renamed)).status, 'the origin the proxy says the browser used').to.equal(303);
      expect((await logIn(service, ADMIN_KEY, { ...renamed, origin: 'https://evil.example' })).status).to.equal(403);
    });

    it('when the login form is posted from another origin, then 403 and no cookie', async () => {
      const res = await logIn(service, ADMIN_KEY, { origin: 'https://evil.example' });
      expect(res.status).to.equal(403);
      expect(res.headers.get('set-cookie')).to.equal(null);
    });

    it('when one address keeps giving wrong keys, then a 429 page for every login from it, the right key too, so that guessing stops there', async () => {
      // A forwarded address (TRUST_PROXY is loopback here), so that the other tests' logins are not held back.
      const guesser = { 'x-forwarded-for': '203.0.113.9' };
      // Right keys are not counted: an operator who logs in often is never held back.
      for (let i = 0; i < service.config.rateLimits.adminKeyFailuresPerMinute + 2; i++) {
        expect((await logIn(service, ADMIN_KEY, guesser)).status).to.equal(303);
      }
      const statuses: number[] = [];
      for (let i = 0; i <= service.config.rateLimits.adminKeyFailuresPerMinute; i++) {
        statuses.push((await logIn(service, `wrong-${i}`, guesser)).status);
      }
      expect(statuses.slice(0, service.config.rateLimits.adminKeyFailuresPerMinute)).to.deep.equal(
        Array(service.config.rateLimits.adminKeyFailuresPerMinute).fill(401),
      );
      expect(statuses.at(-1)).to.equal(429);
      const limited = await logIn(service, 'wrong-again', guesser);
      expect(limited.status).to.equal(429);
      expect(limited.headers.get('retry-after')).to.match(/^\d+$/);
      expect(await limited.text()).to.include('too many requests with a wrong admin key');
      const right = await logIn(service, ADMIN_KEY, guesser);
      expect(right.status, 'the right key past the limit: a 303 would tell a guesser it had found the key').to.equal(429);
      expect(right.headers.get('set-cookie')).to.equal(null);
      // Other addresses are not held back.
      expect((await logIn(service, ADMIN_KEY, { 'x-forwarded-for': '198.51.100.7' })).status).to.equal(303);
      expect((await logIn(service)).status).to.equal(303);
    });

    it('a login sends the visitor back only to a dashboard page', async () => {
      const post = (next: string) =>
        fetch(`${service.url}/dashboard/login`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: service.url },
          body: formBody({ key: ADMIN_KEY, next }),
        });
      expect((await post('/dashboard/failed?app=x')).headers.get('location')).to.equal('/dashboard/failed?app=x');
      for (const next of ['https://evil.example/', '//evil.example/dashboard', '/dashboardx', '/\\evil.example', '/dashboard\\..\\x']) {
        expect((await post(next)).headers.get('location'), next).to.equal('/dashboard');
      }
      // Dot segments, as the browser resolves them (%2e is a dot there too), would lead out of the dashboard.
      for (const next of ['/dashboard/../status/1', '/dashboard/%2e%2e/admin/apps', '/dashboard/.%2E/docs', '/dashboard/jobs/../../x?next=/dashboard']) {
        expect((await post(next)).headers.get('location'), next).to.equal('/dashboard');
      }
      expect((await post('/dashboard/jobs/1/../2')).headers.get('location'), 'dots that stay inside').to.equal('/dashboard/jobs/1/../2');
    });

    it('when the login is posted over HTTPS that jetpost cannot see (a proxy it does not trust), then the 403 page says to set TRUST_PROXY', async () => {
      const res = await logIn(service, ADMIN_KEY, { origin: service.url.replace('http:', 'https:') });
      expect(res.status).to.equal(403);
      expect(res.headers.get('set-cookie')).to.equal(null);
      const text = await res.text();
      expect(text).to.include(`this page&#39;s origin is ${service.url}`).and.include('TRUST_PROXY');
    });

    it('logging out clears the cookie', async () => {
      const client = await dashboardClient(service);
      const res = await client.post('/dashboard/logout', {});
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal('/dashboard/login');
      expect(res.headers.get('set-cookie'))
        .to.match(/^jetpost_dashboard=; /)
        .and.match(/Expires=Thu, 01 Jan 1970/);
    });
  });

  describe('actions', () => {
    it("when a POST has no CSRF token, a wrong one, or another session's, then 403 and the job stays failed", async () => {
      const client = await dashboardClient(service);
      const other = await dashboardClient(service);
      const jobId = await makeJob(service.jetpost.pool, { appId: service.appId, status: 'failed', lastError: 'boom' });
      for (const csrf of [null, '', 'wrong', await other.csrf()]) {
        const res = await client.post('/dashboard/failed/requeue', { job_id: jobId, back: 'failed' }, { csrf });
        expect(res.status, String(csrf)).to.equal(403);
        expect(await res.text()).to.include('CSRF token');
      }
      expect(await jobStatus(jobId)).to.equal('failed');
      const ok = await client.post('/dashboard/failed/requeue', { job_id: jobId, back: 'job' });
      expect(ok.status).to.equal(303);
      expect(ok.headers.get('location')).to.equal(`/dashboard/jobs/${jobId}?notice=requeued`);
      expect(await jobStatus(jobId)).to.equal('queued');
    });

    it('when a POST comes from another origin or another site, then 403 even with the token', async () => {
      const client = await dashboardClient(service);
      const jobId = await makeJob(service.jetpost.pool, { appId: service.appId, status: 'failed', lastError: 'boom' });
      const foreign: Array<Record<string, string>> = [
        { origin: 'https://evil.example' },
        { origin: 'null' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
      ];
      for (const headers of foreign) {
        const res = await client.post('/dashboard/failed/requeue', { job_id: jobId, back: 'failed' }, { headers });
        expect(res.status, JSON.stringify(headers)).to.equal(403);
      }
      expect(await jobStatus(jobId)).to.equal('failed');
    });

    it('adds and removes a suppression, and refuses a bad address with a 400 page', async () => {
      const client = await dashboardClient(service);
      const app = await makeApp(service.jetpost.pool);
      const added = await client.post('/dashboard/suppressions', { app: app.name, email: 'Someone@Example.org', note: 'asked to stop' });
      expect(added.status).to.equal(303);
      const page = await client.get(`/dashboard/suppressions?app=${app.name}`);
      expect(page.text).to.include('data-email="someone@example.org"').and.include('asked to stop');
      const removed = await client.post('/dashboard/suppressions/remove', { app: app.name, email: 'someone@example.org' });
      expect(removed.headers.get('location')).to.include('notice=suppression-removed');
      expect((await client.get(`/dashboard/suppressions?app=${app.name}`)).text).to.not.include('data-email="someone@example.org"');
      const bad = await client.post('/dashboard/suppressions', { app: app.name, email: 'not an address' });
      expect(bad.status).to.equal(400);
      expect(bad.headers.get('content-type')).to.match(/^text\/html/);
      expect(await bad.text()).to.include('not a valid email address');
    });

    it('refuses hostile forms with a page, storing nothing: a NUL in a note, a huge body, repeated fields', async () => {
      const client = await dashboardClient(service);
      const app = await makeApp(service.jetpost.pool);
      const cases: Array<[Record<string, string>, number]> = [
        [{ app: app.name, email: 'nul@example.org', note: 'a\u0000b' }, 400],
        [{ app: app.name, email: 'big@example.org', note: 'n'.repeat(20_000) }, 413],
        [{ app: 'no-such-app', email: 'x@example.org' }, 404],
      ];
      for (const [fields, status] of cases) {
        const res = await client.post('/dashboard/suppressions', fields);
        expect(res.status, JSON.stringify(fields).slice(0, 80)).to.equal(status);
        expect(res.headers.get('content-type')).to.match(/^text\/html/);
      }
      const twice = await fetch(`${service.url}/dashboard/suppressions`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: client.cookie, origin: service.url },
        body: `${formBody({ app: app.name, csrf: await client.csrf() })}&email=a%40example.org&email=b%40example.org`,
      });
      expect(twice.status).to.equal(400);
      const { rows } = await service.jetpost.pool.query('select email from suppressions where app_id = $1', [app.id]);
      expect(rows).to.deep.equal([]);
    });
  });

  describe('pages', () => {
    it('escapes what the database holds: a subject, custom_id or error with markup is shown as text', async () => {
      const client = await dashboardClient(service);
      const attack = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'';
      const jobId = await makeJob(service.jetpost.pool, {
        appId: service.appId,
        status: 'failed',
        customId: attack,
        lastError: attack,
        content: { from: { email: 'app@example.com' }, subject: attack, text: 'x' },
      });
      for (const path of [`/dashboard/jobs/${jobId}`, '/dashboard/jobs', `/dashboard/jobs?q=${encodeURIComponent(attack)}&by=custom_id`, '/dashboard/failed']) {
        const { res, text } = await client.get(path);
        expect(res.status, path).to.equal(200);
        expect(text, path).to.include('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;');
        expect(text, path).to.not.include('<script>alert');
        expect(text, path).to.not.include('<img src=x');
      }
    });

    it('shows the characters that change the direction of text as escapes: a custom_id, subject or error cannot read as another', async () => {
      const client = await dashboardClient(service);
      // Shown as they are, the override would make the custom_id read "order-4321", the isolate turn what follows it around.
      const customId = 'order-\u202e1234';
      const jobId = await makeJob(service.jetpost.pool, {
        appId: service.appId,
        status: 'failed',
        customId,
        lastError: 'bounced \u2067by\u2069 \u200fx',
        content: { from: { email: 'app@example.com' }, subject: 'Invoice \u202dpaid\u202c', text: 'x' },
      });
      for (const path of [
        `/dashboard/jobs/${jobId}`,
        '/dashboard/jobs',
        `/dashboard/jobs?q=${encodeURIComponent(customId)}&by=custom_id`,
        '/dashboard/failed',
      ]) {
        const { res, text } = await client.get(path);
        expect(res.status, path).to.equal(200);
        expect(text, path).to.not.match(/\p{Bidi_Control}/u);
        expect(text, path).to.include('order-\\u202e1234').and.include('bounced \\u2067by\\u2069 \\u200fx');
      }
      expect((await client.get(`/dashboard/jobs/${jobId}`)).text).to.include('Invoice \\u202dpaid\\u202c');
    });

    it('answers with a strict Content-Security-Policy (scripts from this origin only) and no-store', async () => {
      const client = await dashboardClient(service);
      const { res } = await client.get('/dashboard');
      const policy = res.headers.get('content-security-policy') ?? '';
      expect(policy).to.include("script-src 'self'").and.include("default-src 'none'").and.include("frame-ancestors 'none'");
      expect(policy).to.not.include('unsafe-inline');
      expect(res.headers.get('cache-control')).to.equal('no-store');
    });

    it('shows refusals as pages: a bad job id 400, an unknown job 404, a NUL or a malformed percent escape in a query 400', async () => {
      const client = await dashboardClient(service);
      for (const [path, status] of [
        ['/dashboard/jobs/abc', 400],
        ['/dashboard/jobs/999999999', 404],
        ['/dashboard/jobs?q=a%00b', 400],
        ['/dashboard/jobs?q=%ZZ', 400],
        ['/dashboard/failed?notice=%FF', 400],
        ['/dashboard/jobs?q=abc&by=job_id', 400],
        ['/dashboard/jobs?nope=1', 400],
        ['/dashboard/apps/no-such-app/deliveries', 404],
        ['/dashboard/jobs?app=no-such-app', 404],
        ['/dashboard/failed?app=no-such-app', 404],
        ['/dashboard/suppressions?app=no-such-app', 404],
      ] as const) {
        const { res, text } = await client.get(path);
        expect(res.status, path).to.equal(status);
        expect(res.headers.get('content-type'), path).to.match(/^text\/html/);
        expect(text, path).to.include(`Error ${status}`);
      }
    });

    it('finds a job by id, custom_id and recipient address (in any case), within an app', async () => {
      const client = await dashboardClient(service);
      const app = await makeApp(service.jetpost.pool);
      const jobId = await makeJob(service.jetpost.pool, { appId: app.id, to: ['Grace.Hopper@Example.org'], customId: 'order-77' });
      for (const query of [
        `q=${jobId}`,
        'q=order-77',
        'q=grace.hopper%40example.org',
        `q=GRACE.HOPPER%40EXAMPLE.ORG&app=${app.name}`,
        'q=order-77&by=custom_id',
      ]) {
        const { text } = await client.get(`/dashboard/jobs?${query}`);
        expect(text, query).to.include(`href="/dashboard/jobs/${jobId}"`);
      }
      const other = await makeApp(service.jetpost.pool);
      const { text } = await client.get(`/dashboard/jobs?q=order-77&app=${other.name}`);
      expect(text, 'another app').to.include('No job found.');
    });

    it('when a search is a number no job id can be (past the bigint maximum: a MessageID up to 2^64-1, a long custom_id), then it is searched as a custom_id, or by job id finds no job: never a 400 or 500', async () => {
      const client = await dashboardClient(service);
      const app = await makeApp(service.jetpost.pool);
      const numbers = ['9223372036854775808', '18446744073709551615', '123456789012345678901234567890'];
      const ids = new Map<string, string>();
      for (const customId of numbers) {
        ids.set(customId, await makeJob(service.jetpost.pool, { appId: app.id, customId }));
      }
      for (const number of numbers) {
        const found = await client.get(`/dashboard/jobs?q=${number}`);
        expect(found.res.status, number).to.equal(200);
        expect(found.text, number).to.include(`href="/dashboard/jobs/${ids.get(number)}"`);
        const byJobId = await client.get(`/dashboard/jobs?q=${number}&by=job_id`);
        expect(byJobId.res.status, `${number} by job id`).to.equal(200);
        expect(byJobId.text, `${number} by job id`).to.include('No job found.');
      }
      for (const query of ['q=9223372036854775807', 'q=0&by=job_id', 'q=00000000000000000000000001&by=job_id']) {
        const { res, text } = await client.get(`/dashboard/jobs?${query}`);
        expect(res.status, query).to.equal(200);
        expect(text, query).to.include('No job found.');
      }
    });

    it('pages by keyset: "Older" leads to the next jobs, none twice', async () => {
      const client = await dashboardClient(service);
      const app = await makeApp(service.jetpost.pool);
      const ids: string[] = [];
      for (let i = 0; i < 55; i++) {
        ids.push(await makeJob(service.jetpost.pool, { appId: app.id }));
      }
      const first = await client.get(`/dashboard/jobs?app=${app.name}`);
      const next = /href="([^"]+)" rel="next"/.exec(first.text)?.[1]?.replace(/&amp;/g, '&');
      expect(next).to.equal(`/dashboard/jobs?app=${app.name}&before=${ids[5]}`);
      const second = await client.get(next!);
      const shown = (text: string) => [...text.matchAll(/<td><a href="\/dashboard\/jobs\/(\d+)">/g)].map((m) => m[1]);
      expect([...shown(first.text), ...shown(second.text)]).to.deep.equal([...ids].reverse());
    });

    it("the overview shows the queue depth by status and the last hour's throughput", async () => {
      const client = await dashboardClient(service);
      await makeJob(service.jetpost.pool, { appId: service.appId, status: 'deferred' });
      const { res, text } = await client.get('/dashboard');
      expect(res.status).to.equal(200);
      expect(text).to.match(/data-status="deferred"><td>.*<\/td><td class="number">[1-9]/);
      expect(text).to.include('id="throughput-data"').and.include('src="/dashboard/assets/uPlot.iife.min.js"');
      expect(csrfOf(text)).to.have.length(43);
      // Enqueued through the API, counted by this process (not written to throughput_minutes yet) and shown.
      const enqueuedBefore = enqueuedInChart(text);
      const queued = await service.request('POST', '/queue', {
        body: { messages: [1, 2, 3].map((n) => ({ from: 'app@example.com', to: [`chart${n}@example.org`], subject: 'Hello', text: 'Hi' })) },
      });
      expect(queued.status).to.equal(202);
      expect(enqueuedInChart((await client.get('/dashboard')).text)).to.equal(enqueuedBefore + 3);
      for (const asset of ['dashboard.js', 'dashboard.css', 'uPlot.iife.min.js', 'uPlot.min.css']) {
        const res = await fetch(`${service.url}/dashboard/assets/${asset}`);
        expect(res.status, asset).to.equal(200);
      }
    });

    it('an unknown asset is a 404, not a 405 saying GET is not taken', async () => {
      for (const method of ['GET', 'HEAD']) {
        const res = await fetch(`${service.url}/dashboard/assets/no-such.js`, { method });
        expect(res.status, method).to.equal(404);
        expect(res.headers.get('allow'), method).to.equal(null);
      }
      expect((await fetch(`${service.url}/dashboard/assets/dashboard.js`, { method: 'POST' })).status, 'another method').to.equal(405);
    });
  });
});
