// GET /metrics as Prometheus scrapes it: every metric jetpost documents appears and moves when its
// cause happens (a send, an event, a webhook, a request, a 401), the scrape passes `promtool check
// metrics`, the default process metrics keep their standard names, and a database that stops
// answering slows no scrape down and fails none.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';
import nock from 'nock';

import { messageTo } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { type FreezableProxy, startFreezableProxy } from '../support/freezable-proxy.js';
import { eventText } from '../support/mailjet-events.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { declaredTypes, sampleValue } from '../support/prometheus-text.js';
import { ADMIN_KEY, eventually, MAILJET_TEST_ORIGIN, startTestService, type TestService } from '../support/service.js';

const PROMTOOL = '/usr/bin/promtool';

async function scrape(service: TestService): Promise<string> {
  const res = await service.request('GET', '/metrics', { key: null });
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** Waits until a scrape shows `name{labels}` at `value` or more; returns that scrape. */
async function scrapeUntil(service: TestService, name: string, labels: Record<string, string>, value: number, timeoutMs = 20_000): Promise<string> {
  return eventually(
    async () => {
      const text = await scrape(service);
      return (sampleValue(text, name, labels) ?? -1) >= value ? text : undefined;
    },
    timeoutMs,
    `${name}${JSON.stringify(labels)} >= ${value}`,
  );
}

/** A local webhook receiver that answers 200. */
async function startReceiver(): Promise<{ url: string; received: number; close: () => Promise<void> }> {
  const state = { received: 0 };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.received += 1;
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    get received() {
      return state.received;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('GET /metrics', () => {
  let service: TestService | undefined;
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  let proxy: FreezableProxy | undefined;
  let db: TestDatabase | undefined;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    proxy?.thaw();
    await service?.stop();
    service = undefined;
    await receiver?.close();
    receiver = undefined;
    await proxy?.close();
    proxy = undefined;
    await db?.drop();
    db = undefined;
    restoreNetwork();
  });

  it('when a message is sent, its events arrive and its webhook is delivered, then each metric of that path moves, by route template and not by raw path', async function () {
    this.timeout(90_000);
    mockMailjetSend();
    receiver = await startReceiver();
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    const appName = (await service.jetpost.pool.query<{ name: string }>('select name from apps where id = $1', [service.appId])).rows[0]!.name;
    const hook = await service.request('PUT', `/admin/apps/${appName}/webhook`, { key: ADMIN_KEY, body: { url: receiver.url } });
    expect(hook.status, await hook.clone().text()).to.equal(200);

    const queued = await service.request('POST', '/queue', { body: messageTo('ada@example.org') });
    expect(queued.status).to.equal(202);
    const { job_id: jobId } = (await queued.json()) as { job_id: string };
    const view = await eventually(async () => {
      const json = (await (await service!.request('GET', `/status/${jobId}`)).json()) as { status: string; recipients: Array<{ message_id: string | null }> };
      return json.status === 'accepted' ? json : undefined;
    });
    const messageId = view.recipients[0]!.message_id!;
    const nowS = Math.floor(Date.now() / 1000);
    const events = await service.postEvents(
      `[${eventText('sent', messageId, 'ada@example.org', nowS)},${eventText('bounce', messageId, 'ada@example.org', nowS + 1)},{"event":"sent"}]`,
    );
    expect(events.status).to.equal(200);
    // A path no route serves: it must be counted as `unmatched`, never under its own name.
    expect((await service.request('GET', '/no-such-route-8f3a2c', { key: null })).status).to.equal(404);
    // A scheduled job stays in the queue: the depth gauge, read from the database, counts it.
    const later = await service.request('POST', '/queue', {
      body: messageTo('later@example.org', { send_at: new Date(Date.now() + 3_600_000).toISOString() }),
    });
    expect(later.status).to.equal(202);

    await scrapeUntil(service, 'jetpost_webhook_deliveries_total', { outcome: 'delivered' }, 1);
    const text = await scrapeUntil(service, 'jetpost_queue_depth', { status: 'scheduled' }, 1);

    expect(sampleValue(text, 'jetpost_jobs_enqueued_total')).to.equal(2);
    expect(sampleValue(text, 'jetpost_job_enqueue_to_accepted_seconds_count')).to.equal(1);
    expect(sampleValue(text, 'jetpost_mailjet_requests_total', { class: 'ok' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_events_stored_total', { type: 'sent' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_events_stored_total', { type: 'bounce' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_events_rejected_total', { kind: 'invalid' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_recipient_accepted_to_sent_seconds_count')).to.equal(1);
    expect(sampleValue(text, 'jetpost_http_requests_total', { method: 'GET', route: '/status/:jobId', status: '200' })).to.be.at.least(1);
    expect(sampleValue(text, 'jetpost_http_requests_total', { method: 'POST', route: '/queue', status: '202' })).to.equal(2);
    expect(sampleValue(text, 'jetpost_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_http_request_duration_seconds_count', { method: 'POST', route: '/events' })).to.equal(1);
    expect(text).not.to.include('no-such-route');
    expect(text).not.to.include(jobId === '' ? 'never' : `/status/${jobId}`);
    expect(sampleValue(text, 'jetpost_queue_depth', { status: 'scheduled' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_queue_depth', { status: 'queued' })).to.equal(0);
    expect(sampleValue(text, 'jetpost_queue_oldest_due_age_seconds')).to.equal(0);
    expect(sampleValue(text, 'jetpost_webhook_backlog')).to.be.a('number');
    expect(sampleValue(text, 'jetpost_queue_stats_age_seconds')).to.be.within(0, 10);
    expect(sampleValue(text, 'jetpost_sending_halted', { reason: 'unauthorized' })).to.equal(0);
    expect(sampleValue(text, 'jetpost_sending_halted', { reason: 'rate_limited' })).to.equal(0);
  });

  it('when Mailjet answers 401, then the 401 is counted as unauthorized and the sending-halted gauge says so', async function () {
    this.timeout(60_000);
    nock(MAILJET_TEST_ORIGIN).post('/v3.1/send').reply(401, { ErrorMessage: 'API key authentication/authorization failure' });
    service = await startTestService();
    expect((await service.request('POST', '/queue', { body: messageTo('ada@example.org') })).status).to.equal(202);

    await scrapeUntil(service, 'jetpost_sending_halted', { reason: 'unauthorized' }, 1);
    const text = await scrapeUntil(service, 'jetpost_mailjet_requests_total', { class: 'unauthorized' }, 1);
    expect(sampleValue(text, 'jetpost_sending_halted', { reason: 'unauthorized' })).to.equal(1);
  });

  it('then the default process metrics keep their standard names, no gauge ends in _total, and promtool check metrics passes', async function () {
    this.timeout(60_000);
    service = await startTestService({ mailjet: 'simulator' });
    expect((await service.request('POST', '/queue', { body: messageTo('ada@example.org') })).status).to.equal(202);
    const text = await scrapeUntil(service, 'jetpost_mailjet_requests_total', { class: 'ok' }, 1);

    const types = declaredTypes(text);
    expect(types.get('process_cpu_seconds_total')).to.equal('counter');
    expect(types.get('process_resident_memory_bytes')).to.equal('gauge');
    expect(types.get('nodejs_heap_size_used_bytes')).to.equal('gauge');
    expect([...types.keys()].filter((name) => name.includes('process_process') || name.startsWith('jetpost_process'))).to.deep.equal([]);
    expect([...types].filter(([name, type]) => name.endsWith('_total') && type !== 'counter')).to.deep.equal([]);

    if (!fs.existsSync(PROMTOOL)) {
      this.test!.title += ` (promtool skipped: ${PROMTOOL} is missing; install the Debian package "prometheus")`;
      return;
    }
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: check.status, output: `${check.stdout}${check.stderr}` }).to.deep.equal({ status: 0, output: '' });
  });

  it('when the database stops answering, then a scrape still answers 200 within the statement timeout, with the last queue figures and their age', async function () {
    this.timeout(60_000);
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await startFreezableProxy({ host: target.hostname, port: Number(target.port) });
    service = await startTestService({
      mailjet: 'simulator',
      db,
      env: { DATABASE_URL: proxy.url(db.url), DATABASE_CONNECT_TIMEOUT_MS: '1000', DATABASE_STATEMENT_TIMEOUT_MS: '1000' },
    });
    expect(
      (await service.request('POST', '/queue', { body: messageTo('later@example.org', { send_at: new Date(Date.now() + 3_600_000).toISOString() }) })).status,
    ).to.equal(202);
    await scrapeUntil(service, 'jetpost_queue_depth', { status: 'scheduled' }, 1);

    proxy.freeze();
    // Past the cache's life, so that the scrapes below try to read the database.
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    for (let scrapeNumber = 0; scrapeNumber < 3; scrapeNumber += 1) {
      const started = Date.now();
      const text = await scrape(service);
      // The bound is the 1 s timeout; 8 s leaves room for a loaded machine, and is far from a hang.
      expect(Date.now() - started).to.be.below(8_000);
      expect(sampleValue(text, 'jetpost_queue_depth', { status: 'scheduled' })).to.equal(1);
      expect(sampleValue(text, 'jetpost_queue_stats_age_seconds')).to.be.at.least(5);
    }
  });
});
