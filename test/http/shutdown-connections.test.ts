// A stop while a client's request is in flight on a kept-alive connection: the request is answered,
// and then the connection is closed at once, so the stop does not wait out SHUTDOWN_TIMEOUT_MS.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'chai';

import { eventually, startTestService, type TestService } from '../support/service.js';

/** Far above what the stop needs, so that waiting it out cannot pass for a prompt stop. */
const SHUTDOWN_TIMEOUT_MS = 120_000;

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

describe('HTTP: a stop with a request in flight on a kept-alive connection', () => {
  let service: TestService | undefined;
  let socket: net.Socket | undefined;
  let stopping: Promise<unknown> | undefined;

  afterEach(async () => {
    socket?.destroy();
    await (stopping ?? service?.stop());
  });

  it('when the stop begins before the answer is written, then the request gets its 202 and the connection is closed without waiting out SHUTDOWN_TIMEOUT_MS', async () => {
    // The body waits for the stop, however long that takes here: no minimum rate (HTTP_BODY_MIN_RATE) cuts it.
    const started = await startTestService({ env: { WORKER_CONCURRENCY: '0', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), HTTP_BODY_MIN_RATE: '0' } });
    service = started;
    const port = Number(new URL(started.url).port);
    const body = JSON.stringify({ from: 'app@example.com', to: 'reader@example.com', subject: 'Hi', text: 'Hello' });

    const client = net.connect(port, '127.0.0.1');
    socket = client;
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.on('error', () => {});
    const closedByServer = new Promise<void>((resolve) => client.once('close', () => resolve()));
    // Expect: 100-continue makes the request's progress visible: its 100 Continue is written once the
    // handler reads the body, so the request is in flight from then until the body is sent.
    client.write(
      `POST /queue HTTP/1.1\r\nHost: jetpost.test\r\nAuthorization: Bearer ${started.apiKey}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await eventually(async () => (Buffer.concat(chunks).toString('utf8').startsWith('HTTP/1.1 100 Continue') ? true : undefined), 30_000, '100 Continue');

    stopping = started.stop();
    const stopped = stopping.then(() => 'stopped' as const);
    await eventually(async () => ((await refused(port)) ? true : undefined), 30_000, 'the server to stop listening');
    client.write(body);

    const first = await Promise.race([closedByServer.then(() => 'closed' as const), sleep(SHUTDOWN_TIMEOUT_MS / 2).then(() => 'still open' as const)]);
    expect(first).to.equal('closed');
    expect(Buffer.concat(chunks).toString('utf8')).to.match(/HTTP\/1\.1 202 Accepted/);
    expect(await Promise.race([stopped, sleep(SHUTDOWN_TIMEOUT_MS / 2).then(() => 'still stopping' as const)])).to.equal('stopped');
  });
});
