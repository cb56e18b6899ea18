// HTTP_BODY_IDLE_TIMEOUT_MS (http/body-idle.ts): a body that stops arriving while it is read is
// refused 408 and its connection closed, on both body paths (read directly, or by body-parser when
// chunked or of another type), and on POST /events its share of EVENTS_BODY_BUDGET is free at once.
// A body that keeps coming, a few bytes at a time, is read however long it takes in all, and the
// handler that runs once it is whole is not cut. Bodies are written by hand over sockets; the tests
// wait for answers, never measure time.
import { expect } from 'chai';

import { lockMessagesShared } from '../../src/db/events-repo.js';
import { message } from '../factories.js';
import { openTransaction, someoneWaitsOn } from '../support/held-transaction.js';
import { eventText } from '../support/mailjet-events.js';
import { sampleValue } from '../support/prometheus-text.js';
import { parseAnswer, type RawRequest, rawRequest } from '../support/raw-request.js';
import { EVENTS_PASSWORD, EVENTS_USER, startTestService, type TestService } from '../support/service.js';

/** HTTP_BODY_IDLE_TIMEOUT_MS of the service. */
const IDLE_MS = 200;
/** EVENTS_BODY_LIMIT (1kb) in bytes, and so the budget of callback bodies. */
const LIMIT = 1024;
const MESSAGE_ID = '1152921504606846976';

describe('HTTP_BODY_IDLE_TIMEOUT_MS: a request body that stops arriving', () => {
  let service: TestService;
  let requests: RawRequest[] = [];

  before(async () => {
    // A callback that finds the budget full is refused at once: one admitted right after a refused
    // one shows that its share was given back.
    service = await startTestService({
      env: { WORKER_CONCURRENCY: '0', HTTP_BODY_IDLE_TIMEOUT_MS: String(IDLE_MS), EVENTS_BODY_LIMIT: '1kb', EVENTS_BODY_WAIT_MS: '0' },
    });
  });

  afterEach(() => {
    requests.forEach(({ socket }) => socket.destroy());
    requests = [];
  });

  after(async () => {
    await service?.stop();
  });

  function send(path: string, headers: Record<string, string>, sent: string): RawRequest {
    const request = rawRequest(service.url, 'POST', path, headers, sent);
    requests.push(request);
    return request;
  }

  const callbackAuth = { Authorization: `Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}` };
  const callback = (headers: Record<string, string>, sent: string) =>
    send('/events', { ...callbackAuth, 'Content-Type': 'application/json', ...headers }, sent);
  const queue = (headers: Record<string, string>, sent: string) =>
    send('/queue', { Authorization: `Bearer ${service.apiKey}`, 'Content-Type': 'application/json', ...headers }, sent);

  /** Writes `body` on `request` in parts of `size` bytes, a quarter of the idle timeout apart. */
  async function drip(request: RawRequest, body: string, size: number): Promise<void> {
    for (let at = 0; at < body.length; at += size) {
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS / 4));
      request.socket.write(body.slice(at, at + size));
    }
  }

  /** Expects a 408 problem+json, answered before the server closed the connection. */
  async function expectRefused(request: RawRequest): Promise<void> {
    const answer = parseAnswer(await request.answer);
    expect(answer.status).to.equal(408);
    expect(answer.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(answer.headers.get('connection')).to.equal('close');
    expect(await answer.json()).to.deep.include({ type: 'https://jetpost.dev/problems/request-timeout', title: 'Request Timeout', status: 408 });
  }

  async function count(table: string): Promise<number> {
    const { rows } = await service.db.pool.query<{ n: number }>(`select count(*)::int as n from ${table}`);
    return rows[0]!.n;
  }

  async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sampleValue(await (await fetch(`${service.url}/metrics`)).text(), name, labels) ?? 0;
  }

  const budgetInUse = () => metric('jetpost_events_budget_in_use_bytes');

  it('when a callback states the whole budget and its body stops, then 408 problem+json, the connection closed, nothing stored, and the budget free at once', async () => {
    const stalled = callback({ 'Content-Length': String(LIMIT) }, eventText('sent', MESSAGE_ID, 'ada@example.org', 1_700_000_000).slice(0, 40));

    await expectRefused(stalled);

    expect(await budgetInUse()).to.equal(0);
    expect(await metric('jetpost_http_requests_total', { method: 'POST', route: '/events', status: '408' })).to.equal(1);
    // The whole budget is free: a callback at the limit gets in without waiting (it may not wait).
    expect((await service.postEvents(`[${' '.repeat(LIMIT - 2)}]`)).status).to.equal(200);
    expect(await count('email_events')).to.equal(0);
    expect(await count('rejected_events')).to.equal(0);
  });

  it('when a callback comes a few bytes at a time and takes longer than the timeout to apply, then it is read and stored, while one that stops beside it is refused', async () => {
    // Its event matches no message: storing it waits on the message's lock slot, held here.
    const held = openTransaction(service.db.pool, (tx) => lockMessagesShared(tx, [{ messageId: MESSAGE_ID }]));
    await held.written;
    const body = `[${eventText('sent', MESSAGE_ID, 'ada@example.org', 1_700_000_000)}]`;
    const dripping = callback({ 'Content-Length': String(Buffer.byteLength(body)) }, '');
    const stalled = callback({ 'Content-Length': String(LIMIT - Buffer.byteLength(body)) }, '[');

    // About 2.5 idle timeouts in all, a quarter of one between parts.
    await drip(dripping, body, Math.ceil(body.length / 10));
    await expectRefused(stalled);
    // The body is whole: the callback is being applied, and waits, longer than the idle timeout.
    await someoneWaitsOn(service.db.pool, 'advisory', 'the callback to wait on the lock slot');
    await new Promise((resolve) => setTimeout(resolve, 2 * IDLE_MS));
    held.commit();
    await held.committed;

    const answer = parseAnswer(await dripping.answer);
    expect(answer.status).to.equal(200);
    expect(await answer.json()).to.deep.include({ received: 1, unmatched: 1 });
    expect(await budgetInUse()).to.equal(0);
  });

  it('when a message comes a few bytes at a time, then it is queued, while one whose body stops is refused and not stored', async () => {
    const body = JSON.stringify(message({ custom_id: 'dripped' }));
    const dripping = queue({ 'Content-Length': String(Buffer.byteLength(body)) }, '');
    const stalled = queue({ 'Content-Length': String(Buffer.byteLength(body)) }, body.slice(0, 20));

    await drip(dripping, body, Math.ceil(body.length / 10));
    await expectRefused(stalled);

    expect(parseAnswer(await dripping.answer).status).to.equal(202);
    const { rows } = await service.db.pool.query<{ custom_id: string }>('select custom_id from email_send_jobs where app_id = $1', [service.appId]);
    expect(rows).to.deep.equal([{ custom_id: 'dripped' }]);
  });

  it('when a chunked body (read by body-parser) stops, then 408 on /queue and on /events, whose share of the budget is free at once', async () => {
    const chunked = { 'Transfer-Encoding': 'chunked' };
    const stalledMessage = queue(chunked, '14\r\n{"from":"app@example');
    const stalledCallback = callback(chunked, '1\r\n[\r\n');

    await expectRefused(stalledMessage);
    await expectRefused(stalledCallback);

    expect(await budgetInUse()).to.equal(0);
    expect((await service.postEvents(`[${' '.repeat(LIMIT - 2)}]`)).status).to.equal(200);
  });

  it("when the dashboard's login form stops, then 408, as an HTML page", async () => {
    const stalled = send('/dashboard/login', { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '100' }, 'key=');

    const answer = parseAnswer(await stalled.answer);

    expect(answer.status).to.equal(408);
    expect(answer.headers.get('content-type')).to.match(/^text\/html/);
    expect(answer.headers.get('connection')).to.equal('close');
  });
});
