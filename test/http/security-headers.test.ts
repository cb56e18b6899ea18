// helmet's secure defaults are on every answer (docs/security.md), whatever it is: the app computes
// them once and sets them on each response, so they are compared here with what helmet itself sets.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';
import express from 'express';
import helmet from 'helmet';

import { messageTo } from '../factories.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

/** The headers helmet's defaults write, read from a bare express app that uses only helmet. */
async function helmetDefaults(): Promise<Record<string, string>> {
  const bare = express();
  bare.use(helmet());
  bare.get('/', (_req, res) => {
    res.end();
  });
  const server = bare.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const ordinary = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);
    return Object.fromEntries([...res.headers].filter(([name]) => !ordinary.has(name)));
  } finally {
    server.close();
  }
}

describe('security headers', () => {
  let service: TestService | undefined;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    restoreNetwork();
  });

  it('when answers of every kind are given (202, 400, 401, 404, 405, 415, 429), then each carries the headers helmet sets and no X-Powered-By', async () => {
    const expected = await helmetDefaults();
    expect(Object.keys(expected)).to.include.members(['content-security-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options']);
    service = await startTestService({ env: { QUEUE_RATE_LIMIT: '3', WORKER_CONCURRENCY: '0' } });
    const answers = [
      await service.request('POST', '/queue', { body: messageTo('a@example.com') }),
      await service.request('POST', '/queue', { rawBody: '{"to":', headers: { 'content-type': 'application/json' } }),
      await service.request('POST', '/queue', { body: messageTo('a@example.com'), key: null }),
      await service.request('GET', '/no-such-route'),
      await service.request('PUT', '/queue'),
      await service.request('POST', '/queue', { rawBody: 'text', headers: { 'content-type': 'text/plain' } }),
      await service.request('POST', '/queue', { body: messageTo('a@example.com') }),
    ];
    expect(answers.map((res) => res.status)).to.deep.equal([202, 400, 401, 404, 405, 415, 429]);
    for (const res of answers) {
      for (const [name, value] of Object.entries(expected)) {
        expect(res.headers.get(name), `${res.status}: ${name}`).to.equal(value);
      }
      expect(res.headers.get('x-powered-by'), `${res.status}: x-powered-by`).to.equal(null);
    }
  });

  it('when the admin API answers (an API key shown once, a webhook signing secret, a refusal), then with Cache-Control: no-store, so that no cache keeps a secret', async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    const admin = (method: string, pathname: string, body?: unknown) =>
      service!.request(method, pathname, { key: ADMIN_KEY, ...(body === undefined ? {} : { body }) });
    const answers = [
      await admin('POST', '/admin/apps', { name: 'cached-app' }),
      await admin('POST', '/admin/apps/cached-app/keys', {}),
      await admin('PUT', '/admin/apps/cached-app/webhook', { url: 'http://127.0.0.1:9/hook' }),
      await admin('GET', '/admin/apps/cached-app/webhook'),
      await admin('GET', '/admin/apps'),
      await admin('GET', '/admin/apps/no-such-app/webhook'),
      await service.request('GET', '/admin/apps', { key: 'wrong' }),
    ];
    expect(answers.map((res) => res.status)).to.deep.equal([201, 201, 200, 200, 200, 404, 401]);
    for (const res of answers) {
      expect(res.headers.get('cache-control'), `${res.url} ${res.status}`).to.equal('no-store');
    }
  });
});
