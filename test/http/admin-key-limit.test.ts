// Wrong admin keys are limited per source address, at the admin API and the dashboard's login
// together: past the limit every request from the address is a 429 with Retry-After, the right key
// too (or the answer would tell a guesser it had found it), while the right key from any other
// address, and requests with the right key that are refused for other reasons, are never held back.
import net from 'node:net';

import { expect } from 'chai';

import { logIn } from '../support/dashboard-client.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

describe('wrong admin keys', function () {
  this.timeout(60_000);

  let service: TestService;

  before(async () => {
    // Loopback is trusted, so that each test can come from an address of its own (X-Forwarded-For).
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', TRUST_PROXY: 'loopback' } });
  });

  after(async () => {
    await service?.stop();
  });

  const admin = (from: string, key: string | null, path = '/admin/apps') =>
    fetch(`${service.url}${path}`, {
      headers: { 'x-forwarded-for': from, ...(key === null ? {} : { authorization: `Bearer ${key}` }) },
    });

  it('when one address keeps giving wrong keys to the admin API, then 429 problem+json with Retry-After for all its requests, the right key too; other addresses are not held back', async () => {
    const guesser = '203.0.113.21';
    const statuses: number[] = [];
    for (let i = 0; i < service.config.rateLimits.adminKeyFailuresPerMinute; i++) {
      statuses.push((await admin(guesser, i % 2 === 0 ? `wrong-key-${i}` : null)).status);
    }
    expect(statuses, 'a missing key counts as a wrong one').to.deep.equal(Array(service.config.rateLimits.adminKeyFailuresPerMinute).fill(401));
    const limited = await admin(guesser, 'wrong-again');
    expect(limited.status).to.equal(429);
    expect(limited.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(limited.headers.get('retry-after')).to.match(/^[1-9]\d*$/);
    expect(((await limited.json()) as { detail: string }).detail).to.include('wrong admin key');
    expect((await admin(guesser, ADMIN_KEY)).status, 'the right key past the limit: a 200 would end the guessing').to.equal(429);
    expect((await admin('198.51.100.21', ADMIN_KEY)).status, 'the right key from elsewhere').to.equal(200);
    expect((await admin('198.51.100.22', 'wrong')).status, 'a wrong key from elsewhere is counted apart').to.equal(401);
  });

  it('counts the dashboard login and the admin API together: a guesser gets the limit once, not once per door', async () => {
    const guesser = '203.0.113.22';
    const half = Math.ceil(service.config.rateLimits.adminKeyFailuresPerMinute / 2);
    for (let i = 0; i < half; i++) {
      expect((await admin(guesser, `wrong-${i}`)).status).to.equal(401);
    }
    for (let i = half; i < service.config.rateLimits.adminKeyFailuresPerMinute; i++) {
      expect((await logIn(service, `wrong-${i}`, { 'x-forwarded-for': guesser })).status).to.equal(401);
    }
    expect((await logIn(service, ADMIN_KEY, { 'x-forwarded-for': guesser })).status).to.equal(429);
    expect((await admin(guesser, ADMIN_KEY)).status).to.equal(429);
  });

  it('never counts requests with the right key, whatever they are answered: a script that gets 404s and 400s is not locked out', async () => {
    const operator = '203.0.113.23';
    for (let i = 0; i < service.config.rateLimits.adminKeyFailuresPerMinute + 5; i++) {
      expect((await admin(operator, ADMIN_KEY, '/admin/apps/no-such-app/webhook')).status).to.equal(404);
      expect((await admin(operator, ADMIN_KEY, '/admin/jobs?status=nonsense')).status).to.equal(400);
    }
    expect((await admin(operator, ADMIN_KEY)).status).to.equal(200);
    // The right key's requests also leave room for the operator's own typos.
    expect((await admin(operator, 'a-typo')).status).to.equal(401);
    expect((await admin(operator, ADMIN_KEY)).status).to.equal(200);
  });

  it('never counts a request with the right key whose client hangs up before its answer: an operator who interrupts slow calls is not locked out', async () => {
    const operator = '203.0.113.24';
    const { port } = new URL(service.url);
    for (let i = 0; i < service.config.rateLimits.adminKeyFailuresPerMinute + 2; i++) {
      // The key is checked, then the body read: the 100 Continue says the request got that far (a
      // 429 would be the other answer).
      const socket = net.connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      const continued = new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.write(
        `POST /admin/apps HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${operator}\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n`,
      );
      await continued;
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.destroy();
      });
    }
    expect((await admin(operator, ADMIN_KEY)).status).to.equal(200);
  });
});
