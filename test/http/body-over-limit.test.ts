// A body that goes on past the route's limit, sent as fast as the connection takes it: chunked and
// endless, or of a stated length far over the limit. body-parser answers its 413 only once it has read
// the whole request off the connection, so such a body was read (and thrown away) for as long as its
// client kept sending, up to Node's requestTimeout (5 minutes): gigabytes, with no answer. The tests
// write until an answer comes, and count the bytes written, never the time.
import net from 'node:net';

import { expect } from 'chai';

import { parseAnswer } from '../support/raw-request.js';
import { EVENTS_PASSWORD, EVENTS_USER, startTestService, type TestService } from '../support/service.js';

/** QUEUE_BODY_LIMIT and EVENTS_BODY_LIMIT here. */
const LIMIT = 64 * 1024;
/** What the client writes at most before it stops on its own: far past the limit. */
const WRITE_AT_MOST = 64 * 1024 * 1024;

interface Sent {
  answer: Response;
  /** Bytes of body the client had written when the answer came (or when it stopped). */
  written: number;
}

/** Writes `head`, then `piece` after piece, as fast as the socket takes them, until an answer comes or WRITE_AT_MOST is written. */
function sendUntilAnswered(url: string, head: string, piece: Buffer, end: Buffer = Buffer.alloc(0)): Promise<Sent> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    const chunks: Buffer[] = [];
    let written = 0;
    let answered = false;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      answered = true;
    });
    socket.on('close', () => resolve({ answer: parseAnswer(Buffer.concat(chunks).toString('utf8')), written }));
    const pump = () => {
      while (!answered && !socket.destroyed && written < WRITE_AT_MOST) {
        written += piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (!answered && !socket.destroyed) {
        socket.end(end);
      }
    };
    socket.write(head, pump);
  });
}

describe('request bodies past the limit, sent without end', function () {
  this.timeout(180_000);
  let service: TestService;

  before(async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_BODY_LIMIT: '64kb', EVENTS_BODY_LIMIT: '64kb' } });
  });

  after(async () => {
    await service?.stop();
  });

  const data = Buffer.alloc(16 * 1024, 'a');
  const chunk = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
  const lastChunk = Buffer.from('0\r\n\r\n');

  /** Each reader with a body limit: what it is, its path, the rest of its head, its limit. */
  const readers = [
    ['POST /queue', '/queue', () => `Authorization: Bearer ${service.apiKey}\r\nContent-Type: application/json`, LIMIT],
    [
      'POST /events',
      '/events',
      () => `Authorization: Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}\r\nContent-Type: application/json`,
      LIMIT,
    ],
    // No key needed: the login form is read before the key in it is checked.
    ['the dashboard login form', '/dashboard/login', () => 'Content-Type: application/x-www-form-urlencoded', 16 * 1024],
  ] as const;

  for (const [what, path, headers, limit] of readers) {
    it(`when a chunked body to ${what} goes on without end past the limit, then 413 comes while it is still being sent, the connection closed`, async () => {
      const head = `POST ${path} HTTP/1.1\r\nHost: jetpost.test\r\n${headers()}\r\nTransfer-Encoding: chunked\r\n\r\n`;

      const { answer, written } = await sendUntilAnswered(service.url, head, chunk, lastChunk);

      expect(answer.status).to.equal(413);
      expect(await answer.text()).to.contain(`${limit} bytes`);
      expect(written, 'bytes written before the answer').to.be.below(WRITE_AT_MOST);
    });
  }

  for (const [what, path, headers, limit] of readers) {
    it(`when a body to ${what} states a length over the limit (no Expect) and comes slowly, then 413 at once, not the 408 of a slow body`, async () => {
      // The head tells the body is too large: a slow one was held to the pace first (408 after 5 s).
      const socket = net.connect(Number(new URL(service.url).port), '127.0.0.1');
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.on('error', () => {});
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(`POST ${path} HTTP/1.1\r\nHost: jetpost.test\r\n${headers()}\r\nContent-Length: ${limit * 10}\r\n\r\n{"a`);

      await closed;
      const answer = parseAnswer(Buffer.concat(received).toString('utf8'));

      expect(answer.status).to.equal(413);
      expect(answer.headers.get('connection')).to.equal('close');
      expect(await answer.text()).to.contain(`${limit} bytes`);
    });
  }

  it('when a gzip body to POST /queue states a length past what any body within the limit takes compressed, and comes slowly, then 413 at once', async () => {
    const socket = net.connect(Number(new URL(service.url).port), '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.on('close', resolve));
    const head = `POST /queue HTTP/1.1\r\nHost: jetpost.test\r\nAuthorization: Bearer ${service.apiKey}\r\nContent-Type: application/json\r\nContent-Encoding: gzip`;
    socket.write(`${head}\r\nContent-Length: ${LIMIT * 10}\r\n\r\n\u001f\u008b`);

    await closed;

    expect(parseAnswer(Buffer.concat(received).toString('latin1')).status).to.equal(413);
  });

  it('when a POST /queue states a body of 1 GB (no Expect) and sends it as fast as it can, then 413 comes while it is still being sent', async () => {
    const head = `POST /queue HTTP/1.1\r\nHost: jetpost.test\r\nAuthorization: Bearer ${service.apiKey}\r\nContent-Type: application/json\r\nContent-Length: ${1024 ** 3}\r\n\r\n`;

    const { answer, written } = await sendUntilAnswered(service.url, head, data);

    expect(answer.status).to.equal(413);
    expect(written, 'bytes written before the answer').to.be.below(WRITE_AT_MOST);
  });
});
