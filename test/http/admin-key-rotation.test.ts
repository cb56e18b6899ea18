// A rotation of the admin key across replicas: ADMIN_API_KEY is the new key and
// ADMIN_API_KEY_PREVIOUS the one it replaces, taken too until the rotation ends. A replica not yet
// changed takes only the old key, so the old key works everywhere throughout; a dashboard session
// lasts as long as the key it was opened with is taken, and no longer.
import { expect } from 'chai';

import { dashboardClient, logIn } from '../support/dashboard-client.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

const OLD_KEY = ADMIN_KEY;
const NEW_KEY = 'bmV3IGFkbWluIGtleSBvZiBqZXRwb3N0-Qm7z';

describe('admin key rotation (ADMIN_API_KEY_PREVIOUS)', function () {
  this.timeout(120_000);

  let unchanged: TestService;
  let rotating: TestService;

  before(async () => {
    // Loopback is trusted, so that each test can come from an address of its own (X-Forwarded-For).
    const env = { WORKER_CONCURRENCY: '0', TRUST_PROXY: 'loopback' };
    unchanged = await startTestService({ env });
    rotating = await startTestService({ db: unchanged.db, env: { ...env, ADMIN_API_KEY: NEW_KEY, ADMIN_API_KEY_PREVIOUS: OLD_KEY } });
  });

  after(async () => {
    await rotating?.stop();
    await unchanged?.stop();
  });

  const admin = (service: TestService, from: string, key: string) =>
    fetch(`${service.url}/admin/apps`, { headers: { 'x-forwarded-for': from, authorization: `Bearer ${key}` } });

  it('when a replica has the new key and the old as previous, then the admin API takes both there, and the old one still on a replica not yet changed', async () => {
    const operator = '203.0.113.41';
    expect((await admin(rotating, operator, OLD_KEY)).status, 'the old key on the changed replica').to.equal(200);
    expect((await admin(rotating, operator, NEW_KEY)).status, 'the new key on the changed replica').to.equal(200);
    expect((await admin(unchanged, operator, OLD_KEY)).status, 'the old key on the unchanged replica').to.equal(200);
    // Taking the old key counts no wrong key: an operator's scripts keep working past the limit.
    for (let i = 0; i <= rotating.config.rateLimits.adminKeyFailuresPerMinute; i++) {
      expect((await admin(rotating, operator, i % 2 === 0 ? OLD_KEY : NEW_KEY)).status).to.equal(200);
    }
  });

  it('when a wrong key comes during the rotation (one near either key: a prefix, an extra character, another length), then it is still a 401, counted, and a 429 past the limit, both keys included', async () => {
    const guesser = '203.0.113.42';
    const near = [OLD_KEY.slice(0, -1), `${OLD_KEY}x`, NEW_KEY.slice(1), `${NEW_KEY}${NEW_KEY}`, OLD_KEY.toUpperCase(), 'short'];
    const statuses: number[] = [];
    for (let i = 0; i < rotating.config.rateLimits.adminKeyFailuresPerMinute; i++) {
      statuses.push((await admin(rotating, guesser, near[i % near.length]!)).status);
    }
    expect(statuses).to.deep.equal(Array(rotating.config.rateLimits.adminKeyFailuresPerMinute).fill(401));
    expect((await admin(rotating, guesser, OLD_KEY)).status, 'the previous key past the limit').to.equal(429);
    expect((await admin(rotating, guesser, NEW_KEY)).status, 'the new key past the limit').to.equal(429);
    expect((await logIn(rotating, OLD_KEY, { 'x-forwarded-for': guesser })).status, 'the dashboard login past the limit').to.equal(429);
  });

  it('when an operator logs in to the dashboard with the old key on the changed replica, then the session works there and on the unchanged replica, forms included', async () => {
    const client = await dashboardClient(rotating, OLD_KEY);
    for (const service of [rotating, unchanged]) {
      const res = await fetch(`${service.url}/dashboard`, { headers: { cookie: client.cookie }, redirect: 'manual' });
      expect(res.status, service === rotating ? 'changed replica' : 'unchanged replica').to.equal(200);
    }
    // A form needs the session's CSRF token, signed with the key the session was opened with.
    const csrf = await client.csrf();
    const res = await fetch(`${unchanged.url}/dashboard/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: client.cookie, origin: unchanged.url },
      body: new URLSearchParams({ csrf }).toString(),
    });
    expect(res.status).to.equal(303);
    expect((await client.get('/dashboard')).res.status, 'logged out on every replica').to.equal(303);
  });

  it('when the rotation ends (ADMIN_API_KEY_PREVIOUS dropped), then the old key is refused, and sessions opened with it end, those of the new key go on', async () => {
    const withOld = await dashboardClient(rotating, OLD_KEY);
    const withNew = await dashboardClient(rotating, NEW_KEY);
    expect((await withOld.get('/dashboard')).res.status).to.equal(200);

    const rotated = await startTestService({ db: unchanged.db, env: { WORKER_CONCURRENCY: '0', TRUST_PROXY: 'loopback', ADMIN_API_KEY: NEW_KEY } });
    try {
      const operator = '203.0.113.43';
      expect((await admin(rotated, operator, OLD_KEY)).status, 'the old key after the rotation').to.equal(401);
      expect((await admin(rotated, operator, NEW_KEY)).status).to.equal(200);
      expect((await logIn(rotated, OLD_KEY, { 'x-forwarded-for': operator })).status, 'a login with the old key').to.equal(401);

      const page = (client: { cookie: string }) => fetch(`${rotated.url}/dashboard`, { headers: { cookie: client.cookie }, redirect: 'manual' });
      const ended = await page(withOld);
      expect(ended.status, 'the session of the old key').to.equal(303);
      expect(ended.headers.get('location')).to.match(/^\/dashboard\/login/);
      expect((await page(withNew)).status, 'the session of the new key').to.equal(200);
    } finally {
      await rotated.stop();
    }
  });
});
