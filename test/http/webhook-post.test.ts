// One webhook POST against receivers that misbehave: the deadline covers the exchange up to the
// answer's head (not only a silent socket), the head is the answer (a body that drips or never ends
// is not waited for), and stop() can cut it short.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, globalAgent as httpsAgent } from 'node:https';
import net, { type AddressInfo } from 'node:net';

import { expect } from 'chai';

import { parseTargetPolicy } from '../../src/domain/target-policy.js';
import { postJson } from '../../src/webhooks/post.js';
import { eventually } from '../support/service.js';
import { TEST_TLS_CERT, TEST_TLS_KEY } from '../support/tls.js';

const loopback = parseTargetPolicy('127.0.0.1');

interface Receiver {
  url: URL;
  requests: number;
  /** Bytes of body the receiver wrote, and whether our side has closed the connection. */
  written: number;
  closed: boolean;
}

describe('webhook POST', () => {
  let server: Server | undefined;
  const timers = new Set<NodeJS.Timeout>();

  afterEach(async () => {
    for (const timer of timers) {
      clearInterval(timer);
    }
    timers.clear();
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  async function receiver(handle: (res: ServerResponse, state: Receiver) => void): Promise<Receiver> {
    const state: Receiver = { url: new URL('http://127.0.0.1/'), requests: 0, written: 0, closed: false };
    server = createServer((req: IncomingMessage, res) => {
      state.requests += 1;
      res.on('close', () => (state.closed = true));
      req.resume();
      req.on('end', () => handle(res, state));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    state.url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`);
    return state;
  }

  /** Writes `chunk` every `everyMs` for as long as the connection is open. */
  function drip(res: ServerResponse, state: Receiver, chunk: string, everyMs: number): void {
    const timer = setInterval(() => {
      if (state.closed) {
        clearInterval(timer);
        return;
      }
      res.write(chunk);
      state.written += chunk.length;
    }, everyMs);
    timers.add(timer);
  }

  for (const status of [200, 503]) {
    it(`when the receiver sends ${status} headers and then drips its body a byte at a time, then its status counts at once and the connection is closed`, async () => {
      const hook = await receiver((res, state) => {
        res.writeHead(status, { 'content-type': 'text/plain', 'retry-after': '7' });
        res.flushHeaders();
        drip(res, state, '.', 100);
      });

      // The deadline is longer than the test: only the head can end this exchange with a status.
      const result = await postJson(hook.url, '{}', {}, { timeoutMs: 120_000, policy: loopback });

      expect(result).to.deep.equal({ statusCode: status, retryAfter: '7' });
      await eventually(async () => (hook.closed ? true : undefined), 15_000, 'the connection closed after the head');
    });
  }

  it('when the receiver drips its status line and headers a byte at a time, then the exchange is cut at the deadline', async () => {
    const hook = await receiver((res, state) => {
      // Below the HTTP layer: the raw socket, so that even the status line comes slowly.
      const head = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-padding: ' + '.'.repeat(200);
      let sent = 0;
      const timer = setInterval(() => {
        if (state.closed || sent >= head.length) {
          clearInterval(timer);
          return;
        }
        res.socket?.write(head[sent]!);
        sent += 1;
        state.written += 1;
      }, 100);
      timers.add(timer);
    });

    const error = await postJson(hook.url, '{}', {}, { timeoutMs: 1_500, policy: loopback }).then(
      () => undefined,
      (reason: unknown) => reason as Error,
    );

    expect(error?.message).to.contain('1500 ms');
    expect(hook.written, 'the receiver was still sending its head when the deadline struck').to.be.above(0);
  });

  it('when the receiver answers 2xx with an endless body, then its status counts and the body is not read on', async function () {
    this.timeout(60_000);
    const chunk = 'x'.repeat(16 * 1024);
    const hook = await receiver((res, state) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const pump = () => {
        // Writes as fast as the reader takes it, forever.
        while (!state.closed && res.write(chunk)) {
          state.written += chunk.length;
        }
        if (!state.closed) {
          res.once('drain', pump);
        }
      };
      pump();
    });

    const result = await postJson(hook.url, '{}', {}, { timeoutMs: 120_000, policy: loopback });

    expect(result.statusCode).to.equal(200);
    await eventually(async () => (hook.closed ? true : undefined), 15_000, 'the connection closed after the head');
    // Socket buffers hold a few MB at most; an unbounded read would go on for ever.
    expect(hook.written).to.be.below(64 * 1024 * 1024);
  });

  it('when the receiver answers 2xx with a short body, then the connection is kept for the next POST', async () => {
    const sockets = new Set<unknown>();
    const hook = await receiver((res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
    server!.on('connection', (socket) => sockets.add(socket));

    for (let call = 0; call < 3; call += 1) {
      expect((await postJson(hook.url, '{}', {}, { timeoutMs: 10_000, policy: loopback })).statusCode).to.equal(200);
    }

    expect(sockets.size, 'connections opened for three POSTs').to.equal(1);
  });

  it("when an HTTPS receiver's short body comes in a TLS record after the head, then the connection is kept for the next POST: one handshake", async () => {
    // Each body goes once the POST has settled on the head: a record of its own, after it.
    const bodies: ServerResponse[] = [];
    const tls = createHttpsServer({ key: TEST_TLS_KEY, cert: TEST_TLS_CERT }, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
        res.flushHeaders();
        bodies.push(res);
      });
    });
    let handshakes = 0;
    tls.on('secureConnection', () => (handshakes += 1));
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    const port = (tls.address() as AddressInfo).port;
    const url = new URL(`https://127.0.0.1:${port}/hooks`);
    // The receiver's certificate is trusted by this test alone, and only until it ends.
    const agentOptions = httpsAgent.options as { ca?: string };
    agentOptions.ca = TEST_TLS_CERT;
    try {
      for (let call = 0; call < 3; call += 1) {
        expect((await postJson(url, '{}', {}, { timeoutMs: 10_000, policy: loopback })).statusCode).to.equal(200);
        const answer = bodies.shift()!;
        const connection = answer.socket!;
        answer.end('{"ok":true}');
        await eventually(
          async () =>
            connection.destroyed || Object.values(httpsAgent.freeSockets).some((sockets) => sockets?.some((socket) => socket.remotePort === port))
              ? true
              : undefined,
          10_000,
          'the connection back in the pool, or closed',
        );
      }
    } finally {
      delete agentOptions.ca;
      tls.closeAllConnections();
      await new Promise((resolve) => tls.close(resolve));
    }

    expect(handshakes, 'TLS handshakes for three POSTs').to.equal(1);
  });

  for (const [what, headers] of [
    ['one header of 20 KB', `x-big: ${'a'.repeat(20_000)}\r\n`],
    ['100 headers of 1 KB', Array.from({ length: 100 }, (_, index) => `x-cookie-${index}: ${'a'.repeat(1_000)}\r\n`).join('')],
  ] as const) {
    it(`when the receiver answers 2xx with ${what} (past Node's 16 KiB), then its status counts: it took the call, and is not sent it again`, async () => {
      const hook = await receiver((res) => {
        res.socket!.end(`HTTP/1.1 200 OK\r\n${headers}content-length: 0\r\n\r\n`);
      });

      const result = await postJson(hook.url, '{}', {}, { timeoutMs: 10_000, policy: loopback });

      expect(result.statusCode).to.equal(200);
    });
  }

  for (const [what, answer, wording] of [
    ['closes part-way through its status line and headers', 'HTTP/1.1 200 OK\r\nContent-', 'the receiver closed the connection before it answered'],
    ['answers bytes that are not HTTP', 'NOT HTTP AT ALL\r\n\r\n', "the receiver's answer is not valid HTTP/1.1"],
    [
      'answers a head over 256 KiB',
      `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(300 * 1024)}\r\n\r\n`,
      "the receiver's answer is not valid HTTP/1.1 (Parse Error: Header overflow)",
    ],
  ] as const) {
    it(`when the receiver ${what}, then the error says so in words, not as Node's bare "aborted" or "Parse Error"`, async () => {
      const hook = await receiver((res) => {
        res.socket!.end(answer);
      });

      const error = await postJson(hook.url, '{}', {}, { timeoutMs: 10_000, policy: loopback }).then(
        () => undefined,
        (reason: unknown) => reason as Error,
      );

      expect(error?.message).to.contain(wording);
    });
  }

  it("when an HTTPS receiver's certificate is one jetpost does not trust (self-signed, an internal CA), then the error says it is the receiver's TLS certificate, why, and how to trust its CA", async () => {
    const tls = createHttpsServer({ key: TEST_TLS_KEY, cert: TEST_TLS_CERT }, (_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    try {
      const url = new URL(`https://127.0.0.1:${(tls.address() as AddressInfo).port}/hooks`);

      const error = await postJson(url, '{}', {}, { timeoutMs: 10_000, policy: loopback }).then(
        () => undefined,
        (reason: unknown) => reason as Error,
      );

      expect(error?.message).to.equal(
        "the receiver's TLS certificate was refused: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT); it must come with its whole chain, up to a CA this jetpost trusts (an internal CA: NODE_EXTRA_CA_CERTS)",
      );
    } finally {
      tls.closeAllConnections();
      await new Promise((resolve) => tls.close(resolve));
    }
  });

  it('when an https URL reaches a receiver that speaks plain HTTP, then the error says the handshake failed and why in words, not as an OpenSSL trace', async () => {
    const hook = await receiver((res) => res.writeHead(204).end());
    hook.url.protocol = 'https:';

    const error = await postJson(hook.url, '{}', {}, { timeoutMs: 10_000, policy: loopback }).then(
      () => undefined,
      (reason: unknown) => reason as Error,
    );

    // OpenSSL's reason ("wrong version number" in OpenSSL 3.0) may be worded otherwise in later releases.
    expect(error?.message).to.match(/^the TLS handshake with the receiver failed: [a-z ]+ \(does it speak plain HTTP on this port, for an http:\/\/ URL\?\)$/);
  });

  it('when the receiver answers before it has read the body, then resets the connection, then its status counts and the failed rest of the write is no uncaught error', async () => {
    // Raw: the whole answer goes out on the first bytes of the request, then a reset. Node's client
    // has read the answer (keep-alive) while the body is still being written: the write then fails
    // on a socket without an error listener, which threw out of the process.
    const raw = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        socket.resetAndDestroy();
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    try {
      const url = new URL(`http://127.0.0.1:${(raw.address() as AddressInfo).port}/hooks`);
      const uncaught: unknown[] = [];
      const onUncaught = (error: unknown) => uncaught.push(error);
      const mochaListeners = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.on('uncaughtException', onUncaught);
      try {
        // More than the socket buffers take at once, so that the write is still going on.
        const result = await postJson(url, JSON.stringify({ x: 'y'.repeat(5_000_000) }), {}, { timeoutMs: 10_000, policy: loopback });
        expect(result.statusCode).to.equal(200);
        // The reset reaches the client's write after the answer: give it the time to.
        await new Promise((resolve) => setTimeout(resolve, 500));
      } finally {
        process.off('uncaughtException', onUncaught);
        mochaListeners.forEach((listener) => process.on('uncaughtException', listener));
      }
      expect(uncaught.map((error) => String(error))).to.deep.equal([]);
    } finally {
      await new Promise((resolve) => raw.close(resolve));
    }
  });

  for (const [what, head] of [
    ['with Upgrade headers (a WebSocket)', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['without Upgrade headers', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'],
  ] as const) {
    it(`when the receiver answers 101 Switching Protocols ${what} and keeps the connection, then the 101 is the answer at once and the connection is closed, not reused`, async () => {
      const connections: net.Socket[] = [];
      const closed: net.Socket[] = [];
      const raw = net.createServer((socket) => {
        connections.push(socket);
        socket.on('error', () => {});
        socket.on('close', () => closed.push(socket));
        socket.once('data', () => socket.write(head));
      });
      await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
      try {
        const url = new URL(`http://127.0.0.1:${(raw.address() as AddressInfo).port}/hooks`);

        // The deadline is longer than the test: only the 101 can end this exchange.
        const results = [
          await postJson(url, '{}', {}, { timeoutMs: 120_000, policy: loopback }),
          await postJson(url, '{}', {}, { timeoutMs: 120_000, policy: loopback }),
        ];

        expect(results.map((result) => result.statusCode)).to.deep.equal([101, 101]);
        expect(connections.length, 'connections for two calls').to.equal(2);
        await eventually(async () => (closed.length === 2 ? true : undefined), 15_000, 'both connections closed');
      } finally {
        connections.forEach((socket) => socket.destroy());
        await new Promise((resolve) => raw.close(resolve));
      }
    });
  }

  describe('on a kept-alive connection the receiver closes as it is reused', () => {
    const post = (url: URL) => postJson(url, '{}', {}, { timeoutMs: 10_000, policy: loopback });
    /** The error a call ends with, or undefined when it is answered. */
    const failureOf = (url: URL) =>
      post(url).then(
        () => undefined,
        (reason: unknown) => reason as Error,
      );

    /** A receiver answering 204 to each call but those `drop` picks (by the call's number on its connection, 1 first), which it ends with `ending`. */
    async function closing(
      drop: (callOnConnection: number, connection: number) => boolean,
      ending: string,
    ): Promise<{ url: URL; calls: Array<[number, number]> }> {
      const calls: Array<[number, number]> = [];
      const connections = new Map<unknown, number>();
      const perConnection = new Map<unknown, number>();
      server = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          const connection = connections.get(req.socket) ?? connections.size + 1;
          connections.set(req.socket, connection);
          const call = (perConnection.get(req.socket) ?? 0) + 1;
          perConnection.set(req.socket, call);
          calls.push([connection, call]);
          if (drop(call, connection)) {
            req.socket.end(ending);
          } else {
            res.writeHead(204).end();
          }
        });
      });
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`), calls };
    }

    it('when nothing of an answer came, then the call goes again at once on a new connection, once, and its answer counts', async () => {
      const hook = await closing((call) => call === 2, '');

      const first = await post(hook.url);
      const second = await post(hook.url);

      expect([first.statusCode, second.statusCode]).to.deep.equal([204, 204]);
      expect(hook.calls, '[connection, call on it]').to.deep.equal([
        [1, 1],
        [1, 2],
        [2, 1],
      ]);
    });

    it('when the new connection is closed too, then the attempt fails: one call again, no more', async () => {
      const hook = await closing((call, connection) => connection > 1 || call === 2, '');

      await post(hook.url);
      const error = await failureOf(hook.url);

      expect(error?.message).to.contain('the receiver closed the connection before it answered');
      expect(hook.calls).to.deep.equal([
        [1, 1],
        [1, 2],
        [2, 1],
      ]);
    });

    it('when part of an answer came before the close, then the call is not made again', async () => {
      const hook = await closing((call) => call === 2, 'HTTP/1.1 200 OK\r\nContent-');

      await post(hook.url);
      const error = await failureOf(hook.url);

      expect(error?.message).to.contain('the receiver closed the connection before it answered');
      expect(hook.calls).to.deep.equal([
        [1, 1],
        [1, 2],
      ]);
    });

    it('when a new connection is closed before an answer, then the call is not made again', async () => {
      const hook = await closing(() => true, '');

      const error = await failureOf(hook.url);

      expect(error?.message).to.contain('the receiver closed the connection before it answered');
      expect(hook.calls).to.deep.equal([[1, 1]]);
    });
  });

  it('when the signal aborts the exchange (shutdown), then it ends at once with the reason, not as an answer', async () => {
    // Reads the call and never answers.
    const hook = await receiver(() => {});
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('jetpost is stopping')), 300);

    const error = await postJson(hook.url, '{}', {}, { timeoutMs: 60_000, policy: loopback, signal: controller.signal }).then(
      () => undefined,
      (reason: unknown) => reason as Error,
    );

    expect(error?.message).to.contain('jetpost is stopping');
  });

  it('when the receiver answers 307 to an internal address, then the 307 is the answer: the redirect is not followed', async () => {
    const inside = createServer((_req, res) => res.writeHead(200).end());
    let reached = 0;
    inside.on('request', () => (reached += 1));
    await new Promise<void>((resolve) => inside.listen(0, '127.0.0.1', resolve));
    try {
      const hook = await receiver((res) => res.writeHead(307, { location: `http://127.0.0.1:${(inside.address() as AddressInfo).port}/admin` }).end());

      const result = await postJson(hook.url, '{}', {}, { timeoutMs: 10_000, policy: loopback });

      expect(result.statusCode).to.equal(307);
      expect(reached, 'requests at the redirect target').to.equal(0);
    } finally {
      inside.closeAllConnections();
      await new Promise((resolve) => inside.close(resolve));
    }
  });

  it('when the receiver accepts the connection and never reads, then a call larger than the socket buffers is cut at the deadline', async () => {
    const sockets: net.Socket[] = [];
    const deaf = net.createServer((socket) => {
      socket.pause();
      sockets.push(socket);
    });
    await new Promise<void>((resolve) => deaf.listen(0, '127.0.0.1', resolve));
    try {
      const url = new URL(`http://127.0.0.1:${(deaf.address() as AddressInfo).port}/hooks`);

      const error = await postJson(url, JSON.stringify({ x: 'y'.repeat(5_000_000) }), {}, { timeoutMs: 1_500, policy: loopback }).then(
        () => undefined,
        (reason: unknown) => reason as Error,
      );

      expect(error?.message).to.contain('no complete answer within 1500 ms');
    } finally {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => deaf.close(resolve));
    }
  });

  it('when a host name resolves to an internal address at delivery time, then it is not dialled', async () => {
    const hook = await receiver((res) => res.writeHead(204).end());
    const byName = new URL(hook.url);
    byName.hostname = 'localhost';

    const error = await postJson(byName, '{}', {}, { timeoutMs: 5_000, policy: parseTargetPolicy('') }).then(
      () => undefined,
      (reason: unknown) => reason as Error,
    );

    expect(error?.message).to.match(/refused to connect to localhost at internal address/);
    expect(hook.requests, 'requests the receiver saw').to.equal(0);
  });
});
