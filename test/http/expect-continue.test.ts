// `Expect: 100-continue` (http/expect-continue.ts): the client waits for `100 Continue` before it
// sends its body, and gets it only once the body is to be read. A request refused before that (no
// room in EVENTS_BODY_BUDGET, a stated length over the limit, wrong credentials) is answered in its
// place, without the client sending the body. Requests are written by hand over sockets.
import net from 'node:net';

import { expect } from 'chai';

import { message } from '../factories.js';
import { parseAnswer } from '../support/raw-request.js';
import { EVENTS_PASSWORD, EVENTS_USER, eventually, startTestService, type TestService } from '../support/service.js';

/** EVENTS_BODY_LIMIT of the service (1kb), and so its budget of callback bodies. */
const LIMIT = 1024;

interface Exchange {
  socket: net.Socket;
  /** The head of the first answer (up to its blank line, each line ending CRLF). */
  firstHead: Promise<string>;
  /** All the server wrote, once it closed the connection. */
  all: Promise<string>;
}

function open(url: string, head: string): Exchange {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  const chunks: Buffer[] = [];
  let resolveHead: (head: string) => void;
  const firstHead = new Promise<string>((resolve) => (resolveHead = resolve));
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.includes('\r\n\r\n')) {
      resolveHead(text.slice(0, text.indexOf('\r\n\r\n') + 2));
    }
  });
  socket.on('error', () => {});
  const all = new Promise<string>((resolve) =>
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolveHead(text);
      resolve(text);
    }),
  );
  socket.write(head);
  return { socket, firstHead, all };
}

describe('Expect: 100-continue', () => {
  let service: TestService;
  const sockets: net.Socket[] = [];
  const callbackAuth = `Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}`;

  before(async () => {
    // The holders below stall their bodies for as long as a test needs: no minimum rate cuts them.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', EVENTS_BODY_LIMIT: '1kb', EVENTS_BODY_WAIT_MS: '0', HTTP_BODY_MIN_RATE: '0' } });
  });

  afterEach(() => sockets.splice(0).forEach((socket) => socket.destroy()));

  after(async () => {
    await service?.stop();
  });

  function request(path: string, headers: Record<string, string>): Exchange {
    const lines = Object.entries({ Host: 'jetpost.test', ...headers }).map(([name, value]) => `${name}: ${value}\r\n`);
    const exchange = open(service.url, `POST ${path} HTTP/1.1\r\n${lines.join('')}\r\n`);
    sockets.push(exchange.socket);
    return exchange;
  }

  const callback = (length: number, extra: Record<string, string> = {}) =>
    request('/events', { Authorization: callbackAuth, 'Content-Type': 'application/json', 'Content-Length': String(length), ...extra });

  async function inUse(): Promise<number> {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    return Number(/^jetpost_events_budget_in_use_bytes (\d+)$/m.exec(text)?.[1] ?? 0);
  }

  it('when a callback expects 100-continue and there is room, then 100 Continue, then its body is read and answered 200', async () => {
    const exchange = callback(2, { Expect: '100-continue' });
    expect(await exchange.firstHead).to.match(/^HTTP\/1\.1 100 Continue/);
    exchange.socket.end('[]');
    expect(await exchange.all).to.match(/HTTP\/1\.1 200 OK/);
  });

  it('when a callback expects 100-continue and EVENTS_BODY_BUDGET is full, then 503 with Retry-After in place of 100 Continue', async () => {
    const holder = callback(LIMIT);
    holder.socket.write('[');
    await eventually(async () => ((await inUse()) === LIMIT ? true : undefined), 10_000, 'the budget held');
    const refused = callback(2, { Expect: '100-continue' });
    const head = await refused.firstHead;
    expect(head).to.match(/^HTTP\/1\.1 503 /);
    expect(head).to.match(/\r\nRetry-After: 30\r\n/i);
    expect(head).to.match(/\r\nConnection: close\r\n/i);
    holder.socket.end(`${' '.repeat(LIMIT - 2)}]`);
    expect(await holder.all).to.match(/^HTTP\/1\.1 200 /);
  });

  it('when a callback expects 100-continue and states a length over EVENTS_BODY_LIMIT, then 413 in place of 100 Continue, even with the budget full', async () => {
    const holder = callback(LIMIT);
    holder.socket.write('[');
    await eventually(async () => ((await inUse()) === LIMIT ? true : undefined), 10_000, 'the budget held');
    const refused = callback(64 * 1024 * 1024, { Expect: '100-continue' });
    const answer = parseAnswer(await refused.all);
    expect(answer.status).to.equal(413);
    expect(await answer.json()).to.include({ type: 'https://jetpost.dev/problems/payload-too-large' });
    holder.socket.end(`${' '.repeat(LIMIT - 2)}]`);
    expect(await holder.all).to.match(/^HTTP\/1\.1 200 /);
  });

  it('when a callback without Expect states a length over EVENTS_BODY_LIMIT while the budget is full, then 413 (not a 503: it needs no room)', async () => {
    const holder = callback(LIMIT);
    holder.socket.write('[');
    await eventually(async () => ((await inUse()) === LIMIT ? true : undefined), 10_000, 'the budget held');
    const refused = callback(LIMIT + 1, { Connection: 'close' });
    refused.socket.write('x'.repeat(LIMIT + 1));
    expect(parseAnswer(await refused.all).status).to.equal(413);
    holder.socket.end(`${' '.repeat(LIMIT - 2)}]`);
    expect(await holder.all).to.match(/^HTTP\/1\.1 200 /);
  });

  it('when POST /queue expects 100-continue with a wrong key, then 401 in place of 100 Continue; with the right key, 100 Continue then 202', async () => {
    const body = JSON.stringify(message({ custom_id: 'expect-continue' }));
    const headers = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Expect: '100-continue' };
    const refused = request('/queue', { ...headers, Authorization: 'Bearer jp_wrong' });
    expect(await refused.firstHead).to.match(/^HTTP\/1\.1 401 /);

    const accepted = request('/queue', { ...headers, Authorization: `Bearer ${service.apiKey}`, Connection: 'close' });
    expect(await accepted.firstHead).to.match(/^HTTP\/1\.1 100 Continue/);
    accepted.socket.write(body);
    expect(await accepted.all).to.match(/HTTP\/1\.1 202 Accepted/);
  });

  it('when POST /queue expects 100-continue and states a length over QUEUE_BODY_LIMIT, then 413 in place of 100 Continue', async () => {
    const refused = request('/queue', {
      Authorization: `Bearer ${service.apiKey}`,
      'Content-Type': 'application/json',
      'Content-Length': String(64 * 1024 * 1024),
      Expect: '100-continue',
    });
    expect(parseAnswer(await refused.all).status).to.equal(413);
  });

  it('when a request expects something other than 100-continue, then 417 problem+json that says what is understood, and nothing is stored', async () => {
    const body = JSON.stringify(message({ custom_id: 'expect-other' }));
    const refused = request('/queue', {
      Authorization: `Bearer ${service.apiKey}`,
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
      Expect: '200-ok',
    });
    refused.socket.write(body);

    const answer = parseAnswer(await refused.all);
    expect(answer.status).to.equal(417);
    expect(answer.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(await answer.json()).to.deep.include({ type: 'https://jetpost.dev/problems/expectation-failed', status: 417 });
    const { rows } = await service.db.pool.query("select count(*)::int as n from email_send_jobs where custom_id = 'expect-other'");
    expect(rows[0].n).to.equal(0);
  });

  it('when a kept-alive GET expects 100-continue, then it is answered without 100 Continue and the connection stays open for the next request', async () => {
    const exchange = open(service.url, 'GET /healthz HTTP/1.1\r\nHost: jetpost.test\r\nExpect: 100-continue\r\n\r\n');
    sockets.push(exchange.socket);
    const head = await exchange.firstHead;
    expect(head).to.match(/^HTTP\/1\.1 200 /);
    expect(head).not.to.match(/\r\nConnection: close\r\n/i);
    exchange.socket.write('GET /healthz HTTP/1.1\r\nHost: jetpost.test\r\nConnection: close\r\n\r\n');
    const answers = (await exchange.all).match(/HTTP\/1\.1 \d{3} /g);
    expect(answers).to.deep.equal(['HTTP/1.1 200 ', 'HTTP/1.1 200 ']);
  });

  it('when a POST with Content-Length: 0 expects 100-continue, then it is answered without 100 Continue and the connection stays open', async () => {
    const exchange = callback(0, { Expect: '100-continue' });
    const head = await exchange.firstHead;
    expect(head).to.match(/^HTTP\/1\.1 4\d\d /);
    expect(head).not.to.match(/\r\nConnection: close\r\n/i);
    exchange.socket.write('GET /healthz HTTP/1.1\r\nHost: jetpost.test\r\nConnection: close\r\n\r\n');
    expect(await exchange.all).to.match(/HTTP\/1\.1 200 OK/);
  });
});
