// EVENTS_BODY_BUDGET: the callbacks in progress at once reserve their bodies' bytes in one budget
// (http/body-budget.ts). Observed through /metrics (jetpost_events_budget_*), never through time.
import type net from 'node:net';

import { expect } from 'chai';

import { eventText } from '../support/mailjet-events.js';
import { parseAnswer, type RawRequest, rawRequest } from '../support/raw-request.js';
import { EVENTS_PASSWORD, EVENTS_USER, eventually, startTestService, type TestService } from '../support/service.js';

/** EVENTS_BODY_LIMIT (1kb) in bytes: the budget, by default, and what the holder below states. */
const LIMIT = 1024;
/** The holders here stall their bodies for as long as a test needs: no minimum rate (HTTP_BODY_MIN_RATE, EVENTS_BODY_MIN_RATE) cuts them. */
const HOLDING = { HTTP_BODY_MIN_RATE: '0', EVENTS_BODY_MIN_RATE: '0' };

describe('POST /events: the budget of callback bodies in progress', () => {
  let service: TestService;
  let sockets: net.Socket[] = [];

  afterEach(async () => {
    sockets.forEach((socket) => socket.destroy());
    sockets = [];
    await service?.stop();
  });

  /** A callback over a socket of its own that states `declared` bytes and sends `sent` of them, for now. */
  function rawCallback(declared: number, sent: string): RawRequest {
    const auth = Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64');
    const callback = rawRequest(
      service.url,
      'POST',
      '/events',
      { Authorization: `Basic ${auth}`, 'Content-Type': 'application/json', 'Content-Length': String(declared) },
      sent,
    );
    sockets.push(callback.socket);
    return callback;
  }

  /** A chunked callback over a socket of its own, its body `sent` so far as one chunk (more may follow with `chunk`). */
  function chunkedCallback(sent: string): RawRequest {
    const auth = Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64');
    const callback = rawRequest(
      service.url,
      'POST',
      '/events',
      { Authorization: `Basic ${auth}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      chunk(sent),
    );
    sockets.push(callback.socket);
    return callback;
  }

  /** `data` framed as one chunk of a chunked body ('' as its last). */
  function chunk(data: string): string {
    return `${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n${data === '' ? '\r\n' : ''}`;
  }

  async function stored(table: string): Promise<number> {
    const { rows } = await service.db.pool.query<{ n: number }>(`select count(*)::int as n from ${table}`);
    return rows[0]!.n;
  }

  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
    return line === undefined ? 0 : Number(line.slice(name.length + 1));
  }

  /** Waits until the budget shows `inUse` bytes reserved and `waiting` callbacks waiting. */
  async function budgetIs(inUse: number, waiting: number): Promise<void> {
    await eventually(
      async () =>
        (await metric('jetpost_events_budget_in_use_bytes')) === inUse && (await metric('jetpost_events_budget_waiting')) === waiting ? true : undefined,
      10_000,
      `the budget at ${inUse} bytes in use, ${waiting} waiting`,
    );
  }

  it('when a callback arrives while the budget is full and it may not wait, then 503 problem+json with Retry-After, but one that came whole gets in beside; the budget is whole again after aborted and failed callbacks', async () => {
    service = await startTestService({ env: { ...HOLDING, WORKER_CONCURRENCY: '0', EVENTS_BODY_LIMIT: '1kb', EVENTS_BODY_WAIT_MS: '0' } });
    const holder = rawCallback(LIMIT, '[');
    await budgetIs(LIMIT, 0);

    // Its body came with its headers: it is in memory already, and is counted past the budget.
    expect((await service.postEvents('[]')).status).to.equal(200);
    await budgetIs(LIMIT, 0);
    // Its body has yet to come: it would need room.
    const refused = parseAnswer(await rawCallback(2, '[').answer);

    expect(refused.status).to.equal(503);
    expect(refused.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).to.equal('30');
    expect(((await refused.json()) as { type: string }).type).to.match(/service-unavailable$/);
    expect(await metric('jetpost_events_budget_waits_total{outcome="refused"}')).to.equal(1);

    // A client that leaves half-way gives its bytes back.
    holder.socket.destroy();
    await budgetIs(0, 0);

    // Failed callbacks give theirs back too: malformed JSON (400), a body over the limit (413), a body
    // shorter than stated (400), a client that half-closes before its body is whole.
    expect((await service.postEvents('[{"event":')).status).to.equal(400);
    expect((await service.postEvents(`["${'x'.repeat(2000)}"]`)).status).to.equal(413);
    // Half-closed at once: answered 400 by the route, or by Node's parser while the credentials are
    // checked (the connection is then gone before the budget is asked: it must not reserve).
    const short = rawCallback(100, '[]');
    short.socket.end();
    expect(await short.answer).to.match(/^HTTP\/1\.1 400 /);
    await budgetIs(0, 0);

    // The whole budget is free: a callback at the limit gets in at once.
    expect((await service.postEvents(`[${' '.repeat(LIMIT - 2)}]`)).status).to.equal(200);
    await budgetIs(0, 0);
  });

  it('when callbacks wait for room, then one that leaves holds nothing, and the others get in, in turn, once the callback ahead is answered', async () => {
    service = await startTestService({ env: { ...HOLDING, WORKER_CONCURRENCY: '0', EVENTS_BODY_LIMIT: '1kb', EVENTS_BODY_WAIT_MS: '600000' } });
    const holder = rawCallback(LIMIT, '[');
    await budgetIs(LIMIT, 0);
    const leaving = rawCallback(2, '[');
    await budgetIs(LIMIT, 1);
    leaving.socket.destroy();
    await budgetIs(LIMIT, 0);

    const waiting = rawCallback(2, '[');
    await budgetIs(LIMIT, 1);
    waiting.socket.write(']');
    holder.socket.write(`${' '.repeat(LIMIT - 2)}]`);

    expect(await holder.answer).to.match(/^HTTP\/1\.1 200 /);
    expect(await waiting.answer).to.match(/^HTTP\/1\.1 200 /);
    await budgetIs(0, 0);
    expect(await metric('jetpost_events_budget_waits_total{outcome="admitted"}')).to.equal(1);
  });

  it('when chunked callbacks arrive, then each holds only the bytes it sent; one that grows past the room left is refused part-way with 503 and its connection closed, nothing stored, and the other goes on; one over the limit gets 413', async () => {
    // 256 KiB of budget; a chunked body reserves 64 KiB before it is read, then grows with its bytes.
    const limit = 256 * 1024;
    service = await startTestService({ env: { ...HOLDING, WORKER_CONCURRENCY: '0', EVENTS_BODY_LIMIT: '256kb', EVENTS_BODY_WAIT_MS: '0' } });
    const part = 100 * 1024;
    const event = eventText('sent', '1152921504606846976', 'ada@example.org', 1_700_000_000);
    const growing = chunkedCallback(`[${event},${' '.repeat(part - event.length - 2)}`);
    const finishing = chunkedCallback(`[${' '.repeat(part - 1)}`);
    await budgetIs(2 * part, 0);

    // Two chunked callbacks in progress leave room: a callback beside them gets in at once.
    expect((await service.postEvents('[]')).status).to.equal(200);

    // 300 KiB would be held: the one that grows is refused, the rest of its body unread.
    growing.socket.write(chunk(' '.repeat(part)));
    const refused = parseAnswer(await growing.answer);
    expect(refused.status).to.equal(503);
    expect(refused.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).to.equal('30');
    expect(refused.headers.get('connection')).to.equal('close');
    expect(((await refused.json()) as { detail: string }).detail).to.match(/nothing was stored/);
    await budgetIs(part, 0);
    expect(await metric('jetpost_events_budget_waits_total{outcome="refused_part_way"}')).to.equal(1);

    // The other grows into the room given back, up to the whole limit, and is stored.
    finishing.socket.write(chunk(`${' '.repeat(limit - part - 1)}]`) + chunk(''));
    expect(await finishing.answer).to.match(/^HTTP\/1\.1 200 /);
    await budgetIs(0, 0);
    expect(await stored('email_events')).to.equal(0);
    expect(await stored('rejected_events')).to.equal(0);
    expect(await metric('jetpost_events_budget_waits_total{outcome="refused"}')).to.equal(0);

    // A chunked body over the limit, the budget free, is refused for its size (413), not for want of room (503).
    const oversized = chunkedCallback(`[${' '.repeat(limit)}]`);
    oversized.socket.write(chunk(''));
    expect(await oversized.answer).to.match(/^HTTP\/1\.1 413 /);
    await budgetIs(0, 0);
  });

  it('when four callbacks of 3 MB arrive at once with a budget of 4 MB, then each waits its turn unread and all are stored: none is refused, at once or part-way', async function () {
    // 60,000 events to store: far longer than a test's default on a loaded host.
    this.timeout(300_000);
    // As scenario 4e of the fault suite at its fast scale. Waiting may take as long as it needs here.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', EVENTS_BODY_LIMIT: '4mb', EVENTS_BODY_WAIT_MS: '300000' } });
    // About 200 bytes each: 3 MB a callback.
    const events = 15_000;
    const bodies = [0, 1, 2, 3].map((callback) => {
      const first = 1152921504606846976n + BigInt(callback * events);
      return `[${Array.from({ length: events }, (_, n) => eventText('sent', String(first + BigInt(n)), `reader-${n}@example.org`, 1_700_000_000)).join(',')}]`;
    });
    expect(bodies.every((body) => body.length > 3_000_000 && body.length < 4 * 1024 * 1024)).to.equal(true);

    const answers = await Promise.all(bodies.map((body) => service.postEvents(body)));

    expect(answers.map((answer) => answer.status)).to.deep.equal([200, 200, 200, 200]);
    for (const answer of answers) {
      expect(await answer.json()).to.deep.include({ received: events, stored: events });
    }
    expect(await stored('email_events')).to.equal(4 * events);
    expect(await metric('jetpost_events_budget_waits_total{outcome="refused"}')).to.equal(0);
    expect(await metric('jetpost_events_budget_waits_total{outcome="refused_part_way"}')).to.equal(0);
    await budgetIs(0, 0);
  });
});
