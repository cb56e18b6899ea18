// HTTP_BODY_MIN_RATE (http/body-pace.ts): a body that keeps coming, but too slowly, is refused 408
// once a window of HTTP_BODY_MIN_RATE_WINDOW_MS brings less than the rate asks, however short the
// gaps between its bytes (the idle timeout, restarted by each byte, never acts on it). A credentialed
// client that states the whole EVENTS_BODY_BUDGET and drips its body then gives its share back, and
// the callback waiting behind it gets in; a Mailjet batch that comes over a slow link, a part at
// a time, is read. Bodies are written by hand over sockets, the drip driven here until the answer:
// the tests wait for answers, never measure time.
import { expect } from 'chai';

import { capturingLogger } from '../support/log.js';
import { eventText } from '../support/mailjet-events.js';
import { sampleValue } from '../support/prometheus-text.js';
import { parseAnswer, type RawRequest, rawRequest } from '../support/raw-request.js';
import { EVENTS_PASSWORD, EVENTS_USER, eventually, startTestService, type TestService } from '../support/service.js';

/** EVENTS_BODY_LIMIT (64kb) in bytes, and so the budget of callback bodies. */
const LIMIT = 64 * 1024;
/** HTTP_BODY_MIN_RATE and its window: at least 200 bytes in each second. */
const MIN_RATE = 200;
const WINDOW_MS = 1_000;

let nextMessageId = 1152921504606846976n;

/** A Mailjet batch of `count` sent events for messages jetpost does not know (each is kept aside, unmatched). */
function mailjetBatch(count: number): string {
  const events = Array.from({ length: count }, (_, index) => eventText('sent', String(nextMessageId++), `r${index}@example.org`, 1_700_000_000));
  return `[${events.join(',')}]`;
}

describe('HTTP_BODY_MIN_RATE: a request body that comes too slowly', () => {
  let service: TestService;
  let captured: ReturnType<typeof capturingLogger>;
  let requests: RawRequest[] = [];

  before(async () => {
    captured = capturingLogger('warn');
    // The idle timeout is far longer than the test: only the rate can cut a drip. A callback waits
    // for room as long as the test needs.
    service = await startTestService({
      log: captured.log,
      env: {
        WORKER_CONCURRENCY: '0',
        HTTP_BODY_IDLE_TIMEOUT_MS: '300000',
        HTTP_BODY_MIN_RATE: String(MIN_RATE),
        HTTP_BODY_MIN_RATE_WINDOW_MS: String(WINDOW_MS),
        EVENTS_BODY_LIMIT: '64kb',
        EVENTS_BODY_WAIT_MS: '600000',
      },
    });
  });

  afterEach(() => {
    requests.forEach(({ socket }) => socket.destroy());
    requests = [];
  });

  after(async () => {
    await service?.stop();
  });

  const callbackAuth = { Authorization: `Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}` };

  function callback(headers: Record<string, string>, sent: string): RawRequest {
    const request = rawRequest(service.url, 'POST', '/events', { ...callbackAuth, 'Content-Type': 'application/json', ...headers }, sent);
    requests.push(request);
    return request;
  }

  const metric = async (name: string, labels: Record<string, string> = {}) =>
    sampleValue(await (await fetch(`${service.url}/metrics`)).text(), name, labels) ?? 0;

  /**
   * Writes `body` on `request` a part of `size` bytes every `everyMs`, from `from` on, until the body
   * is whole, the server has answered (closed the connection), or `maxParts` were written.
   */
  async function drip(
    request: RawRequest,
    body: string,
    size: number,
    everyMs: number,
    options: { from?: number; maxParts?: number } = {},
  ): Promise<{ written: number; answered: boolean }> {
    let answered = false;
    void request.answer.then(() => (answered = true));
    let at = options.from ?? 0;
    for (let parts = 0; at < body.length && !answered && parts < (options.maxParts ?? Infinity); parts++) {
      await new Promise((resolve) => setTimeout(resolve, everyMs));
      request.socket.write(body.slice(at, at + size));
      at += size;
    }
    return { written: at, answered };
  }

  it("when a callback states the whole budget and drips a byte at a time, then 408 problem+json, said once in the log, and Mailjet's callback waiting behind it is stored", async () => {
    const body = `[${' '.repeat(LIMIT - 2)}]`;
    const dripping = callback({ 'Content-Length': String(LIMIT) }, '[');
    await eventually(async () => ((await metric('jetpost_events_budget_in_use_bytes')) === LIMIT ? true : undefined));
    // Its last byte still to come: it needs room to be read (one that came whole would get in at once).
    const batch = mailjetBatch(3);
    const waiting = callback({ 'Content-Length': String(Buffer.byteLength(batch)) }, batch.slice(0, -1));
    await eventually(async () => ((await metric('jetpost_events_budget_waiting')) === 1 ? true : undefined));
    waiting.socket.write(batch.slice(-1));

    // A byte every 20 ms: 50 a second, a quarter of the rate; far more often than any idle timeout.
    // Given up after 1,500 bytes (30 s at least): a drip that is never cut holds the budget for minutes.
    const { answered } = await drip(dripping, body, 1, 20, { from: 1, maxParts: 1_500 });

    expect(answered, 'the drip was answered before its body was whole').to.equal(true);
    const answer = parseAnswer(await dripping.answer);
    expect(answer.status).to.equal(408);
    expect(answer.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(answer.headers.get('connection')).to.equal('close');
    const problem = (await answer.json()) as { type: string; detail: string };
    expect(problem.type).to.equal('https://jetpost.dev/problems/request-timeout');
    expect(problem.detail).to.match(/^the request body came too slowly: \d+ bytes in 1 s, where at least 200 bytes a second are needed; nothing was stored/);

    const stored = parseAnswer(await waiting.answer);
    expect(stored.status, await stored.clone().text()).to.equal(200);
    expect(await stored.json()).to.deep.include({ received: 3, unmatched: 3 });
    await eventually(async () => ((await metric('jetpost_events_budget_in_use_bytes')) === 0 ? true : undefined), 10_000, 'the budget given back');

    const refusals = captured.lines().filter((line) => line.includes('a request body was refused (408)'));
    expect(refusals).to.have.length(1);
    expect(JSON.parse(refusals[0]!)).to.deep.include({ level: 'warn', component: 'http', method: 'POST', route: '/events', statedBytes: LIMIT });
  });

  it('when a Mailjet batch comes over a slow link, a part at a time for several windows, then it is read and stored', async () => {
    // About 23 KB, a part of 500 bytes every 100 ms: 5,000 bytes a second, 25 times the rate, for about 5 windows.
    const batch = mailjetBatch(100);
    const slow = callback({ 'Content-Length': String(Buffer.byteLength(batch)) }, '');

    const { written } = await drip(slow, batch, 500, 100);

    expect(written).to.be.at.least(batch.length);
    const answer = parseAnswer(await slow.answer);
    expect(answer.status, await answer.clone().text()).to.equal(200);
    expect(await answer.json()).to.deep.include({ received: 100, unmatched: 100 });
  });

  it('when a message comes too slowly, then POST /queue refuses it 408 too, and stores nothing', async () => {
    const body = JSON.stringify({ from: 'app@example.com', to: 'ada@example.com', text: 'x'.repeat(2_000) });
    const dripping = rawRequest(
      service.url,
      'POST',
      '/queue',
      { Authorization: `Bearer ${service.apiKey}`, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) },
      '',
    );
    requests.push(dripping);

    const { answered } = await drip(dripping, body, 1, 20, { maxParts: 1_500 });

    expect(answered).to.equal(true);
    expect(parseAnswer(await dripping.answer).status).to.equal(408);
    const { rows } = await service.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    expect(rows[0]!.n).to.equal(0);
  });
});

describe('HTTP_BODY_MIN_RATE by default: a client on a slow link', () => {
  let service: TestService;
  let request: RawRequest | undefined;

  before(async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0' } });
  });

  after(async () => {
    request?.socket.destroy();
    await service?.stop();
  });

  it('when a message with an attachment comes at 4 KB a second (1 Mbit/s shared by 30 uploads), for two windows, then it is stored, not refused 408', async () => {
    // 40 KB of attachment, 2,000 bytes every half second: the pace at which a message with a 1 MB
    // attachment would come whole within Node's requestTimeout (5 minutes), over a slow shared link.
    const message = {
      from: 'app@example.com',
      to: 'ada@example.com',
      subject: 'the report',
      text: 'attached',
      attachments: [{ filename: 'report.pdf', content_type: 'application/pdf', content: Buffer.alloc(30_000, 7).toString('base64') }],
    };
    const body = JSON.stringify(message);
    request = rawRequest(
      service.url,
      'POST',
      '/queue',
      { Authorization: `Bearer ${service.apiKey}`, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) },
      '',
    );
    for (let at = 0; at < body.length; at += 2_000) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      request.socket.write(body.slice(at, at + 2_000));
    }

    const answer = parseAnswer(await request.answer);
    expect(answer.status, await answer.clone().text()).to.equal(202);
    const { rows } = await service.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    expect(rows[0]!.n).to.equal(1);
  });
});
