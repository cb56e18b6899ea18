// A stop while requests are in flight. A request whose body has come whole is answered, and then its
// connection is closed at once; a body still arriving (or a callback still waiting for room to be
// read) is answered 503 at once, its connection closed, nothing of it stored. Either way the stop
// does not wait out SHUTDOWN_TIMEOUT_MS. A client still sending its body reads that 503: the rest it
// sends is read off for a moment (http/lingering-close.ts), where it met a reset (EPIPE, ECONNRESET).
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'chai';
import type { PoolClient } from 'pg';

import { parseAnswer, rawRequest } from '../support/raw-request.js';
import { EVENTS_PASSWORD, EVENTS_USER, eventually, startTestService, type TestService } from '../support/service.js';

/** Far above what the stop needs, so that waiting it out cannot pass for a prompt stop. */
const SHUTDOWN_TIMEOUT_MS = 120_000;
/** The bodies here stall for as long as a test needs: no minimum rate cuts them. */
const STALLING = { HTTP_BODY_MIN_RATE: '0', EVENTS_BODY_MIN_RATE: '0' };

/** Whether nothing listens on `port` any more: the server has begun to close. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(port, '127.0.0.1');
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', () => resolve(true));
  });
}

/** `promise`, or 'still waiting' once half of SHUTDOWN_TIMEOUT_MS has gone by. */
function withinHalfTheGrace<T>(promise: Promise<T>): Promise<T | 'still waiting'> {
  return Promise.race([promise, sleep(SHUTDOWN_TIMEOUT_MS / 2).then(() => 'still waiting' as const)]);
}

async function expectStopRefusal(raw: string): Promise<void> {
  const answer = parseAnswer(raw);
  expect(answer.status, raw).to.equal(503);
  expect(answer.headers.get('connection')).to.equal('close');
  expect(answer.headers.get('content-type')).to.match(/^application\/problem\+json/);
  expect(((await answer.json()) as { detail: string }).detail).to.match(/stopping.*nothing of it was stored/);
}

/** Whether `raw` holds an answer's head and the whole body its Content-Length states. */
function answerWhole(raw: Buffer): boolean {
  const end = raw.indexOf('\r\n\r\n');
  const length = /\r\ncontent-length: *(\d+)/i.exec(raw.subarray(0, Math.max(end, 0)).toString('latin1'));
  return end >= 0 && length !== null && raw.length >= end + 4 + Number(length[1]);
}

interface Upload {
  socket: net.Socket;
  /** Resolves once `bytes` of the body have been written. */
  wrote(bytes: number): Promise<void>;
  /** What the client read, the errors its socket met, and whether the server ended the connection (FIN) rather than reset it. */
  closed: Promise<{ answer: Buffer; errors: string[]; endedByServer: boolean }>;
}

/**
 * POST /queue of a 10 MB body, sent as a client of such bodies sends it: a piece every few
 * milliseconds, reading whatever comes back meanwhile. Once the answer is whole, `afterAnswer`:
 * 'stop' sends a few pieces more (the client has not looked yet) and then ends its side, as curl
 * does; 'flood' sends on as fast as the connection takes, without end, as a hostile client.
 */
function upload(started: TestService, afterAnswer: 'stop' | 'flood'): Upload {
  const port = Number(new URL(started.url).port);
  // Its side kept open when the server ends its own: a client may go on sending then.
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  sockets.push(socket);
  const piece = Buffer.alloc(16 * 1024, ' ');
  const chunks: Buffer[] = [];
  const errors: string[] = [];
  let written = 0;
  let endedByServer = false;
  let waiting: { bytes: number; resolve: () => void } | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
  socket.on('end', () => (endedByServer = true));
  const write = (data: Buffer) =>
    new Promise<void>((resolve) => {
      written += data.length;
      socket.write(data, () => resolve());
    });
  const send = async () => {
    await write(
      Buffer.from(
        `POST /queue HTTP/1.1\r\nHost: jetpost.test\r\nAuthorization: Bearer ${started.apiKey}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${10 * 1024 * 1024}\r\n\r\n{"text":"`,
      ),
    );
    while (!answerWhole(Buffer.concat(chunks)) && !socket.destroyed) {
      await write(piece);
      if (waiting && written >= waiting.bytes) {
        waiting.resolve();
      }
      await sleep(5);
    }
    if (afterAnswer === 'stop') {
      for (let more = 0; more < 4 && !socket.destroyed; more += 1) {
        await write(piece);
      }
      socket.end();
      return;
    }
    while (!socket.destroyed) {
      if (!socket.write(piece)) {
        await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
      }
    }
  };
  const closed = new Promise<{ answer: Buffer; errors: string[]; endedByServer: boolean }>((resolve) =>
    socket.once('close', () => resolve({ answer: Buffer.concat(chunks), errors, endedByServer })),
  );
  void send();
  return {
    socket,
    wrote: (bytes) => new Promise<void>((resolve) => (written >= bytes ? resolve() : (waiting = { bytes, resolve }))),
    closed,
  };
}

let sockets: net.Socket[] = [];

describe('HTTP: a stop with requests in flight', function () {
  // The races below give the stop half of SHUTDOWN_TIMEOUT_MS at a time.
  this.timeout(2 * SHUTDOWN_TIMEOUT_MS);
  let service: TestService | undefined;
  let stopping: Promise<unknown> | undefined;
  let locker: PoolClient | undefined;

  /**
   * Holds the jobs table (locker) and sends one message, which waits on the lock; once it waits,
   * begins the stop and waits for /readyz to say so. The message's answer comes after releaseLock.
   */
  async function queueBehindLockThenStop(started: TestService, body: object): Promise<{ answer: Promise<Response>; stopped: Promise<unknown> }> {
    locker = await started.db.pool.connect();
    await locker.query('begin');
    await locker.query('lock table email_send_jobs in share mode');
    const answer = started.request('POST', '/queue', { body });
    await eventually(
      async () => {
        const { rows } = await started.db.pool.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()",
        );
        return rows[0]!.n > 0 ? true : undefined;
      },
      30_000,
      'the message waiting on the lock',
    );
    const stopped = started.jetpost.stop();
    stopping = stopped;
    await eventually(async () => ((await fetch(`${started.url}/readyz`)).status === 503 ? true : undefined), 30_000, 'the drain to begin');
    return { answer, stopped };
  }

  /** Lets the held message be written: its answer. */
  async function releaseLock({ answer }: { answer: Promise<Response>; stopped: Promise<unknown> }): Promise<Response> {
    await locker!.query('commit');
    locker!.release();
    locker = undefined;
    return answer;
  }

  afterEach(async () => {
    await locker?.query('rollback');
    locker?.release();
    locker = undefined;
    sockets.forEach((socket) => socket.destroy());
    sockets = [];
    await stopping;
    await service?.stop();
    [service, stopping] = [undefined, undefined];
  });

  it('when the stop begins while a body is still arriving on a kept-alive connection, then it is answered 503 problem+json at once and the connection closed, without waiting out SHUTDOWN_TIMEOUT_MS', async () => {
    const started = await startTestService({ env: { ...STALLING, WORKER_CONCURRENCY: '0', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) } });
    service = started;
    const port = Number(new URL(started.url).port);
    const body = JSON.stringify({ from: 'app@example.com', to: 'reader@example.com', subject: 'Hi', text: 'Hello' });

    const client = net.connect(port, '127.0.0.1');
    sockets.push(client);
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.on('error', () => {});
    const closedByServer = new Promise<void>((resolve) => client.once('close', () => resolve()));
    // Expect: 100-continue makes the request's progress visible: its 100 Continue is written once the
    // handler reads the body, so the body is being read from then until it is sent.
    client.write(
      `POST /queue HTTP/1.1\r\nHost: jetpost.test\r\nAuthorization: Bearer ${started.apiKey}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await eventually(async () => (Buffer.concat(chunks).toString('utf8').startsWith('HTTP/1.1 100 Continue') ? true : undefined), 30_000, '100 Continue');

    stopping = started.jetpost.stop();
    const stopped = stopping.then(() => 'stopped' as const);

    expect(await withinHalfTheGrace(closedByServer.then(() => 'closed' as const))).to.equal('closed');
    // After its 100 Continue.
    const answer = Buffer.concat(chunks).toString('utf8');
    await expectStopRefusal(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(await withinHalfTheGrace(stopped)).to.equal('stopped');
    const { rows } = await started.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    expect(rows[0]!.n).to.equal(0);
  });

  it('when the stop begins while a client is still sending a large body, then the client reads the 503 problem+json (Connection: close) as it sends, the connection ends without a reset, nothing is stored, and every part of the stop finishes', async () => {
    const started = await startTestService({ env: { ...STALLING, WORKER_CONCURRENCY: '0', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) } });
    service = started;
    const client = upload(started, 'stop');
    await client.wrote(256 * 1024);

    stopping = started.jetpost.stop();
    const { answer, errors, endedByServer } = await client.closed;

    await expectStopRefusal(answer.toString('utf8'));
    expect({ errors, endedByServer }).to.deep.equal({ errors: [], endedByServer: true });
    expect(await stopping).to.deep.equal({ leftBehind: [] });
    const { rows } = await started.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    expect(rows[0]!.n).to.equal(0);
  });

  it('when a client goes on sending its body without end after the 503 of a stop, then the stop does not wait for it, and every part of it finishes', async () => {
    const started = await startTestService({ env: { ...STALLING, WORKER_CONCURRENCY: '0', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) } });
    service = started;
    const client = upload(started, 'flood');
    await client.wrote(256 * 1024);

    stopping = started.jetpost.stop();

    expect(await withinHalfTheGrace(stopping)).to.deep.equal({ leftBehind: [] });
    const { answer } = await client.closed;
    await expectStopRefusal(answer.toString('utf8'));
    const { rows } = await started.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    expect(rows[0]!.n).to.equal(0);
  });

  it('when the stop begins while a request that came whole waits on the database and callbacks are still arriving or waiting for room, then those callbacks get 503 at once, and the request gets its 202 and is stored once the database answers', async () => {
    const started = await startTestService({
      env: {
        ...STALLING,
        WORKER_CONCURRENCY: '0',
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        // The request held by the lock below must not be cancelled for it.
        DATABASE_STATEMENT_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        DATABASE_BULK_STATEMENT_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        EVENTS_BODY_LIMIT: '1kb',
        EVENTS_BODY_WAIT_MS: String(SHUTDOWN_TIMEOUT_MS),
      },
    });
    service = started;
    // One callback holds the whole budget, its body still arriving; another waits for room, unread.
    const auth = Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64');
    const callback = (stated: number) =>
      rawRequest(started.url, 'POST', '/events', { Authorization: `Basic ${auth}`, 'Content-Type': 'application/json', 'Content-Length': String(stated) }, '[');
    const budgetShows = (pattern: RegExp, what: string) =>
      eventually(async () => (pattern.test(await (await fetch(`${started.url}/metrics`)).text()) ? true : undefined), 30_000, what);
    // One after the other: sent together, the second could reach the budget first and hold it.
    const reading = callback(1024);
    sockets.push(reading.socket);
    await budgetShows(/^jetpost_events_budget_in_use_bytes 1024$/m, 'a callback holding the budget');
    const waiting = callback(2);
    sockets.push(waiting.socket);
    await budgetShows(/^jetpost_events_budget_waiting 1$/m, 'another callback waiting for room');

    // The message's job cannot be written until the lock is let go (taken once the callbacks are in
    // place: /metrics, read above, reads the jobs' figures from the database).
    const accepted = await queueBehindLockThenStop(started, { from: 'app@example.com', to: 'reader@example.com', subject: 'Hi', text: 'Hello' });

    // Answered while the message still waits on the lock: the stop did not wait for them.
    const callbacks = await withinHalfTheGrace(Promise.all([reading.answer, waiting.answer]));
    expect(callbacks).to.not.equal('still waiting');
    for (const raw of callbacks as string[]) {
      await expectStopRefusal(raw);
    }
    const answer = await releaseLock(accepted);
    expect(answer.status, await answer.clone().text()).to.equal(202);
    expect(await withinHalfTheGrace(accepted.stopped.then(() => 'stopped' as const))).to.equal('stopped');
    const { rows } = await started.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    expect(rows[0]!.n).to.equal(1);
  });

  it('when the stop begins while a request waits on the database, then until it is answered the port stays open: /healthz 200, /readyz 503 saying it is stopping, /metrics 200, a new POST /queue 503 problem+json with Retry-After and nothing stored; then the request gets its 202 and the port closes', async () => {
    const started = await startTestService({
      env: {
        WORKER_CONCURRENCY: '0',
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        DATABASE_STATEMENT_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        DATABASE_BULK_STATEMENT_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      },
    });
    service = started;
    const port = Number(new URL(started.url).port);
    const message = { from: 'app@example.com', to: 'reader@example.com', subject: 'Hi', text: 'Hello' };
    const accepted = await queueBehindLockThenStop(started, message);

    const ready = await fetch(`${started.url}/readyz`);
    expect(ready.status).to.equal(503);
    expect(ready.headers.get('retry-after')).to.equal('5');
    const report = (await ready.json()) as { status: string; checks: Record<string, { ok: boolean; detail?: string }> };
    expect(report.status).to.equal('not-ready');
    expect(report.checks['stopping']?.ok).to.equal(false);
    expect(report.checks['stopping']?.detail).to.match(/stopping \(draining\)/);
    expect((await fetch(`${started.url}/healthz`)).status).to.equal(200);
    const scrape = await fetch(`${started.url}/metrics`);
    expect(scrape.status).to.equal(200);
    expect(await scrape.text()).to.match(/^jetpost_jobs_enqueued_total /m);
    const late = await started.request('POST', '/queue', { body: { ...message, subject: 'Late' } });
    expect(late.status).to.equal(503);
    expect(late.headers.get('retry-after')).to.equal('5');
    expect(late.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(((await late.json()) as { detail: string }).detail).to.match(/stopping \(draining\).*nothing of it was stored/);
    // The first request is still in flight: the stop waits for it.
    expect(await refused(port)).to.equal(false);

    const answer = await releaseLock(accepted);
    expect(answer.status, await answer.clone().text()).to.equal(202);
    expect(await withinHalfTheGrace(accepted.stopped.then(() => 'stopped' as const))).to.equal('stopped');
    expect(await refused(port)).to.equal(true);
    const { rows: stored } = await started.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs');
    expect(stored[0]!.n).to.equal(1);
  });
});
