// HTTP_RESPONSE_IDLE_TIMEOUT_MS (http/write-stall.ts): a client that sends requests and never reads
// their answers, larger than the kernel's socket buffers, has its connection closed, with a log line
// naming the route; one that reads them slowly, a bit at a time, gets them whole. Four pages of the
// changes feed, 2 MiB each, pipelined on one connection, are the large answers; the tests wait for
// the close, never measure time.
import net from 'node:net';

import { expect } from 'chai';

import { message } from '../factories.js';
import { capturingLogger } from '../support/log.js';
import { eventually, startTestService, type TestService } from '../support/service.js';

/** HTTP_RESPONSE_IDLE_TIMEOUT_MS of the service. */
const IDLE_MS = 5_000;
/** Pages of the feed asked for at once on the connection (MAX_PIPELINED). */
const PAGES = 4;

describe('HTTP_RESPONSE_IDLE_TIMEOUT_MS: an answer its client does not take', () => {
  let service: TestService;
  const captured = capturingLogger('warn');
  let sockets: net.Socket[] = [];

  before(async () => {
    // Sent to the simulator: the changes of 750 jobs of 7 KB of metadata each fill pages of the feed to their 2 MiB.
    service = await startTestService({ mailjet: 'simulator', env: { HTTP_RESPONSE_IDLE_TIMEOUT_MS: String(IDLE_MS) }, log: captured.log });
    const metadata = { padding: 'x'.repeat(7_000) };
    for (let batch = 0; batch < 3; batch += 1) {
      const messages = Array.from({ length: 250 }, (_, index) => message({ to: `reader-${batch}-${index}@example.org`, metadata }));
      const res = await service.request('POST', '/queue', { body: { messages } });
      expect(res.status).to.equal(202);
    }
    await eventually(
      async () => {
        const page = await service.request('GET', '/status?after=0&limit=1000');
        return (await page.arrayBuffer()).byteLength > 2_000_000 || undefined;
      },
      120_000,
      'a full page of the feed',
    );
  });

  afterEach(() => {
    sockets.forEach((socket) => socket.destroy());
    sockets = [];
  });

  after(async () => {
    await service?.stop();
  });

  /** A connection that has sent PAGES requests for the feed's first page (the last asks for the close), reading nothing yet. */
  function pipelinedPages(): net.Socket {
    const socket = net.connect(Number(new URL(service.url).port), '127.0.0.1');
    socket.pause();
    socket.on('error', () => {});
    sockets.push(socket);
    const request = (last: boolean) =>
      `GET /status?after=0&limit=1000 HTTP/1.1\r\nHost: jetpost.test\r\nAuthorization: Bearer ${service.apiKey}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
    socket.write(Array.from({ length: PAGES }, (_, index) => request(index === PAGES - 1)).join(''));
    return socket;
  }

  /** Reads `socket` to its close: everything at once when `paceMs` is 0, otherwise 16 KB every `paceMs`. */
  function readToClose(socket: net.Socket, paceMs = 0): Promise<Buffer> {
    const chunks: Buffer[] = [];
    return new Promise((resolve) => {
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      if (paceMs === 0) {
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.resume();
        return;
      }
      const readSome = () => {
        const chunk = socket.read(16 * 1024) as Buffer | null;
        if (chunk !== null) {
          chunks.push(chunk);
        }
        if (!socket.destroyed) {
          setTimeout(readSome, paceMs);
        }
      };
      readSome();
    });
  }

  /** The 200 answers in `received` that came whole (each has a Content-Length), their bodies JSON. */
  function wholeAnswers(received: Buffer): number {
    let whole = 0;
    for (let at = 0; ;) {
      const headEnd = received.indexOf('\r\n\r\n', at);
      if (headEnd < 0) {
        return whole;
      }
      const head = received.subarray(at, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
      const end = headEnd + 4 + length;
      if (!head.startsWith('HTTP/1.1 200 ') || end > received.length) {
        return whole;
      }
      JSON.parse(received.subarray(headEnd + 4, end).toString('utf8'));
      whole += 1;
      at = end;
    }
  }

  const stallLines = () => captured.lines().filter((line) => line.includes('HTTP_RESPONSE_IDLE_TIMEOUT_MS'));

  it('when the client reads nothing of its answers, then the connection is closed before they are all sent, and a line names the route', async () => {
    const socket = pipelinedPages();
    const line = await eventually(async () => stallLines()[0], 50_000, 'the log line of the stalled answer');
    expect(JSON.parse(line)).to.deep.include({ level: 'warn', component: 'http', method: 'GET', route: '/status', status: 200, idleMs: IDLE_MS });
    expect(line).not.to.include(service.apiKey);
    // The server's side is gone: what the kernel held is read, then the close, short of the pages asked for.
    expect(wholeAnswers(await readToClose(socket))).to.be.lessThan(PAGES);
  });

  it('when the client reads its answers slowly, a bit at a time, then it gets them all, whole', async () => {
    const before = stallLines().length;
    // 16 KB every 10 ms at most (1.6 MB/s): the 8.5 MB of the pages take longer than IDLE_MS. The
    // kernel takes the bytes from the server in bursts of a third of its send buffer (up to 4 MB on
    // loopback), each within IDLE_MS at that pace.
    const received = await readToClose(pipelinedPages(), 10);
    expect(wholeAnswers(received)).to.equal(PAGES);
    expect(stallLines().slice(before)).to.deep.equal([]);
  });
});
