// QUEUE_BODY_BUDGET: the POST /queue bodies in progress at once reserve their bytes in one budget
// (http/body-budget.ts); one that finds no room is refused 503 at once, its body unread. The bodies
// here come a part at a time, so what holds room is set by the test, never by timing.
import type net from 'node:net';

import { expect } from 'chai';

import { message } from '../factories.js';
import { parseAnswer, type RawRequest, rawRequest } from '../support/raw-request.js';
import { eventually, startTestService, type TestService } from '../support/service.js';

/** QUEUE_BODY_LIMIT, hence the budget (its default). */
const LIMIT = 256 * 1024;
/** The bodies below stall for as long as a test needs: no minimum rate cuts them. */
const ENV = { HTTP_BODY_MIN_RATE: '0', HTTP_BODY_IDLE_TIMEOUT_MS: '0', WORKER_CONCURRENCY: '0', QUEUE_BODY_LIMIT: '256kb' };

/** A POST /queue body of exactly `bytes` bytes: one message, its text padded. */
function bodyOf(bytes: number): string {
  const empty = JSON.stringify(message({ text: '' }));
  return JSON.stringify(message({ text: 'x'.repeat(bytes - empty.length) }));
}

describe('POST /queue: the budget of bodies in progress', () => {
  let service: TestService;
  let sockets: net.Socket[] = [];

  afterEach(async () => {
    sockets.forEach((socket) => socket.destroy());
    sockets = [];
    await service?.stop();
  });

  /** A POST /queue over a socket of its own, stating `body`'s length and sending its first `sent` bytes, for now. */
  function rawPost(body: string, sent: number, headers: Record<string, string> = {}): RawRequest {
    const post = rawRequest(
      service.url,
      'POST',
      '/queue',
      { Authorization: `Bearer ${service.apiKey}`, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), ...headers },
      body.slice(0, sent),
    );
    sockets.push(post.socket);
    return post;
  }

  /** A chunked POST /queue over a socket of its own, `sent` so far as one chunk. */
  function chunkedPost(sent: string, headers: Record<string, string> = {}): RawRequest {
    const post = rawRequest(
      service.url,
      'POST',
      '/queue',
      { Authorization: `Bearer ${service.apiKey}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', ...headers },
      chunk(sent),
    );
    sockets.push(post.socket);
    return post;
  }

  /**
   * Resolves once `post` (sent with `Expect: 100-continue`) was answered 100 Continue: jetpost writes
   * it as it begins to read the body, in the room reserved for it (http/expect-continue.ts).
   */
  function admitted(post: RawRequest): Promise<void> {
    return new Promise((resolve) => {
      let received = '';
      const onData = (data: Buffer) => {
        received += data.toString('latin1');
        if (received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
          post.socket.off('data', onData);
          resolve();
        }
      };
      post.socket.on('data', onData);
    });
  }

  /** The final answer of a request that was answered 100 Continue first. */
  function afterContinue(raw: string): string {
    return raw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
  }

  function chunk(data: string): string {
    return `${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n${data === '' ? '\r\n' : ''}`;
  }

  async function storedJobs(): Promise<number> {
    const { rows } = await service.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    return rows[0]!.n;
  }

  async function expectRefused(raw: string, detail: RegExp): Promise<void> {
    const refused = parseAnswer(raw);
    expect(refused.status).to.equal(503);
    expect(refused.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).to.equal('30');
    expect(((await refused.json()) as { detail: string }).detail).to.match(detail);
  }

  it('when ten large bodies arrive at once and two fit in the budget, then the eight others are refused 503 with Retry-After before their bodies are read; the two are stored, and the eight, sent again, too: none is lost', async () => {
    service = await startTestService({ env: ENV });
    const size = 100 * 1024;
    const bodies = Array.from({ length: 10 }, () => bodyOf(size));
    // Each sends one byte of its body: none can be answered 202 before the test sends the rest.
    const posts = bodies.map((body) => rawPost(body, 1));
    const answered: string[] = [];
    posts.forEach((post) => void post.answer.then((raw) => answered.push(raw)));
    await eventually(async () => (answered.length >= 8 ? true : undefined), 60_000, 'eight answers');
    for (const raw of answered) {
      await expectRefused(raw, /nothing was read or stored/);
    }
    expect(await storedJobs()).to.equal(0);

    // The two holding room get their bodies' rest.
    const admitted = posts.flatMap((post, index) => (post.socket.readyState === 'open' ? [{ post, body: bodies[index]! }] : []));
    expect(admitted).to.have.length(2);
    admitted.forEach(({ post, body }) => post.socket.write(body.slice(1)));
    for (const { post } of admitted) {
      expect(await post.answer).to.match(/^HTTP\/1\.1 202 /);
    }
    expect(answered).to.have.length(10);
    expect(await storedJobs()).to.equal(2);

    // The refused are sent again, each once its answer says so, until every one is stored.
    let again = bodies.slice(0, 8);
    while (again.length > 0) {
      const answers = await Promise.all(
        again.map((body) => service.request('POST', '/queue', { rawBody: body, headers: { 'content-type': 'application/json' } })),
      );
      answers.forEach((answer) => expect([202, 503]).to.include(answer.status));
      again = again.filter((_, index) => answers[index]!.status === 503);
    }
    expect(await storedJobs()).to.equal(10);
  });

  it('when the budget is full, then a small body that came whole gets in beside it, and a chunked body that grows past the room left is refused part-way with 503, its connection closed, nothing stored', async () => {
    service = await startTestService({ env: ENV });
    const holderBody = bodyOf(LIMIT - 64 * 1024);
    const holder = rawPost(holderBody, 1, { Expect: '100-continue' });
    // A chunked body reserves 64 KiB to get in: the budget is then full.
    const growing = chunkedPost('{', { Expect: '100-continue' });
    // Both hold their room before anything else is asked: otherwise the body refused below could come first, get room, and wait for ever.
    await Promise.all([admitted(holder), admitted(growing)]);

    // Its body came with its headers: in memory already, it is counted past the budget.
    expect((await service.request('POST', '/queue', { body: message() })).status).to.equal(202);
    // Its body has yet to come: it would need room.
    await expectRefused(await rawPost(bodyOf(20 * 1024), 1).answer, /nothing was read or stored/);

    growing.socket.write(chunk('x'.repeat(100 * 1024)));
    await expectRefused(afterContinue(await growing.answer), /nothing was stored/);
    expect(parseAnswer(afterContinue(await growing.answer)).headers.get('connection')).to.equal('close');

    holder.socket.write(holderBody.slice(1));
    expect(afterContinue(await holder.answer)).to.match(/^HTTP\/1\.1 202 /);
    expect(await storedJobs()).to.equal(2);
    // The room is whole again: a body at the limit gets in.
    expect((await service.request('POST', '/queue', { rawBody: bodyOf(LIMIT), headers: { 'content-type': 'application/json' } })).status).to.equal(202);
  });
});
