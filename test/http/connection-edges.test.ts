// What a client does with its connection around a whole request (http/connections.ts): bytes past
// the body it stated, its side shut once the request is written. A request that is stored gets its
// answer; what cannot be parsed is answered problem+json, after it. Requests are written by hand
// over sockets of their own.
import net from 'node:net';

import { expect } from 'chai';

import { MAX_PIPELINED } from '../../src/http/connections.js';
import { message } from '../factories.js';
import { parseAnswer } from '../support/raw-request.js';
import { startTestService, type TestService } from '../support/service.js';

/** Writes `bytes` on a connection of its own (then shuts its side if `halfClose`) and gives all the server wrote once it closed. */
function exchange(url: string, bytes: string, { halfClose = false } = {}): Promise<string> {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  const answer = new Promise<string>((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8'))));
  socket.write(bytes);
  if (halfClose) {
    socket.end();
  }
  return answer;
}

/** The answers in `raw`, one after another (each states its Content-Length). */
function answers(raw: string): Response[] {
  const found: Response[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const headEnd = rest.indexOf('\r\n\r\n');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(rest.slice(0, headEnd))?.[1] ?? 0);
    const end = headEnd + 4 + length;
    found.push(parseAnswer(rest.slice(0, end)));
    rest = rest.slice(end);
  }
  return found;
}

describe('HTTP connections: bytes past a request, a client that shuts its side', () => {
  let service: TestService;

  before(async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0' } });
  });

  after(async () => {
    await service?.stop();
  });

  function queueRequest(body: string, headers: Record<string, string> = {}): string {
    const lines = Object.entries({
      Host: 'jetpost.test',
      Authorization: `Bearer ${service.apiKey}`,
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
      ...headers,
    }).map(([name, value]) => `${name}: ${value}\r\n`);
    return `POST /queue HTTP/1.1\r\n${lines.join('')}\r\n${body}`;
  }

  async function jobsWith(customId: string): Promise<number> {
    const { rows } = await service.db.pool.query<{ n: number }>('select count(*)::int as n from email_send_jobs where custom_id = $1', [customId]);
    return rows[0]!.n;
  }

  for (const connection of ['keep-alive', 'close']) {
    it(`when bytes that are not a request follow a whole POST /queue (Connection: ${connection}), then its 202 comes first, then a 400 problem+json, and the message is stored once`, async () => {
      const customId = `bytes past the body, ${connection}`;
      const raw = await exchange(
        service.url,
        `${queueRequest(JSON.stringify(message({ custom_id: customId })), { Connection: connection })}garbage past the body\r\n\r\n`,
      );
      const [accepted, refused, ...more] = answers(raw);
      expect(accepted?.status).to.equal(202);
      expect(await accepted!.json()).to.include({ status: 'queued' });
      expect(more).to.deep.equal([]);
      if (refused !== undefined) {
        // Past Connection: close, the server may close without reading on.
        expect(refused.status).to.equal(400);
        expect(refused.headers.get('content-type')).to.equal('application/problem+json');
        expect(await refused.json()).to.include({ type: 'https://jetpost.dev/problems/malformed-request', status: 400 });
      } else {
        expect(connection).to.equal('close');
      }
      expect(await jobsWith(customId)).to.equal(1);
    });
  }

  it('when two whole requests come pipelined before bytes that are not one, then both are answered 202 in order before the 400', async () => {
    const first = queueRequest(JSON.stringify(message({ custom_id: 'pipelined, first' })));
    const second = queueRequest(JSON.stringify(message({ custom_id: 'pipelined, second' })));
    const raw = await exchange(service.url, `${first}${second}\u0001\u0002\r\n\r\n`);
    const statuses = answers(raw).map((answer) => answer.status);
    expect(statuses).to.deep.equal([202, 202, 400]);
    expect(await jobsWith('pipelined, first')).to.equal(1);
    expect(await jobsWith('pipelined, second')).to.equal(1);
  });

  for (const connection of ['keep-alive', 'close']) {
    it(`when the client shuts its side once a whole POST /queue is written (nc -N, Connection: ${connection}), then it gets its 202, stored once`, async () => {
      const customId = `half-closed, ${connection}`;
      const raw = await exchange(service.url, queueRequest(JSON.stringify(message({ custom_id: customId })), { Connection: connection }), { halfClose: true });
      const [accepted, ...more] = answers(raw);
      expect(accepted?.status).to.equal(202);
      expect(await accepted!.json()).to.include({ status: 'queued' });
      expect(more).to.deep.equal([]);
      expect(await jobsWith(customId)).to.equal(1);
    });
  }

  it('when the client shuts its side after two pipelined requests, then both get their 202, in order', async () => {
    const first = queueRequest(JSON.stringify(message({ custom_id: 'half-closed, first' })));
    const second = queueRequest(JSON.stringify(message({ custom_id: 'half-closed, second' })));
    const statuses = answers(await exchange(service.url, `${first}${second}`, { halfClose: true })).map((answer) => answer.status);
    expect(statuses).to.deep.equal([202, 202]);
  });

  it('when the client shuts its side once a whole chunked body is written, then 400 says why (body-parser would take it for read), and nothing is stored', async () => {
    const body = JSON.stringify(message({ custom_id: 'half-closed, chunked' }));
    const request = queueRequest(`${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`, { 'Content-Length': '', 'Transfer-Encoding': 'chunked' });
    const [refused, ...more] = answers(await exchange(service.url, request.replace('Content-Length: \r\n', ''), { halfClose: true }));
    expect(refused?.status).to.equal(400);
    expect((await refused!.json()) as { detail: string })
      .to.have.property('detail')
      .that.matches(/^the connection was shut on the client side/);
    expect(more).to.deep.equal([]);
    expect(await jobsWith('half-closed, chunked')).to.equal(0);
  });

  it('when the client shuts its side part-way through a body (by Content-Length or chunked), then 400 saying so and nothing is stored', async () => {
    const body = JSON.stringify(message({ custom_id: 'half-closed, cut' }));
    const chunked = queueRequest(`${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n`, { 'Content-Length': '', 'Transfer-Encoding': 'chunked' });
    for (const request of [queueRequest(body).slice(0, -10), chunked.replace('Content-Length: \r\n', '')]) {
      const [refused, ...more] = answers(await exchange(service.url, request, { halfClose: true }));
      expect(refused?.status).to.equal(400);
      expect((await refused!.json()) as { detail: string })
        .to.have.property('detail')
        .that.matches(/^the connection was shut on the client side before the whole request arrived .*: send the request again, whole$/);
      expect(more).to.deep.equal([]);
    }
    expect(await jobsWith('half-closed, cut')).to.equal(0);
  });

  it('when a request line cannot be parsed, then 400 problem+json and the connection closed, as before', async () => {
    const [refused, ...more] = answers(await exchange(service.url, 'NOT A REQUEST\r\n\r\n'));
    expect(refused?.status).to.equal(400);
    expect(await refused!.json()).to.include({ title: 'Bad Request', status: 400 });
    expect(more).to.deep.equal([]);
  });

  for (const [what, framing] of [
    ['two Content-Lengths of one value', (length: number) => `Content-Length: ${length}\r\nContent-Length: ${length}`],
    ['two Content-Lengths of two values', (length: number) => `Content-Length: ${length}\r\nContent-Length: 5`],
    ['a Content-Length that is a list', (length: number) => `Content-Length: ${length}, ${length}`],
    ['a Content-Length of -1', () => 'Content-Length: -1'],
    ['a Content-Length and then Transfer-Encoding: chunked', (length: number) => `Content-Length: ${length}\r\nTransfer-Encoding: chunked`],
    ['Transfer-Encoding: chunked and then a Content-Length', (length: number) => `Transfer-Encoding: chunked\r\nContent-Length: ${length}`],
    ['Transfer-Encoding: chunked twice', () => 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked'],
  ] as const) {
    it(`when a POST /queue has ${what}, then 400 malformed-request saying in words that its length cannot be told (not llhttp's code), nothing stored`, async () => {
      const customId = `framing: ${what}`;
      const body = JSON.stringify(message({ custom_id: customId }));
      const head = queueRequest('').replace(/Content-Length: 0\r\n/, `${framing(Buffer.byteLength(body))}\r\n`);

      const [refused, ...more] = answers(await exchange(service.url, `${head}${body}`));

      expect(refused?.status).to.equal(400);
      const problem = (await refused!.json()) as { type: string; detail: string };
      expect(problem.type).to.equal('https://jetpost.dev/problems/malformed-request');
      expect(problem.detail).to.match(/where the request body ends cannot be told/);
      expect(problem.detail).not.to.match(/HPE_/);
      expect(more).to.have.length(0);
      expect(await jobsWith(customId)).to.equal(0);
    });
  }

  for (const [what, line, says] of [
    ['a folded header line (obs-fold)', 'X-Note: 1\r\n  folded', 'Unexpected whitespace'],
    ['a space before the colon', 'Idempotency-Key : k1', 'Invalid header'],
    ['a bare LF ending a header line', 'X-Note: 1\nX-Other: 2', 'Missing expected CR'],
  ] as const) {
    it(`when a POST /queue has ${what}, then 400 malformed-request saying what llhttp found, in its words, nothing stored`, async () => {
      const customId = `header line: ${what}`;
      const body = JSON.stringify(message({ custom_id: customId }));
      const request = queueRequest(body).replace('\r\n\r\n', `\r\n${line}\r\n\r\n`);

      const [refused, ...more] = answers(await exchange(service.url, request));

      expect(refused?.status).to.equal(400);
      expect(((await refused!.json()) as { detail: string }).detail).to.contain(says);
      expect(more).to.have.length(0);
      expect(await jobsWith(customId)).to.equal(0);
    });
  }

  it('when an HTTP/1.1 request has no Host header (GET, or POST /queue), then 400 problem+json saying so, the connection closed, nothing stored', async () => {
    const [refusedGet, ...afterGet] = answers(await exchange(service.url, 'GET /healthz HTTP/1.1\r\n\r\n'));
    expect(refusedGet?.status).to.equal(400);
    expect(refusedGet!.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(await refusedGet!.json()).to.include({ type: 'https://jetpost.dev/problems/malformed-request', status: 400 });
    expect(afterGet).to.deep.equal([]);
    const request = queueRequest(JSON.stringify(message({ custom_id: 'no host' }))).replace('Host: jetpost.test\r\n', '');
    const [refused, ...more] = answers(await exchange(service.url, `${request}${request}`));
    expect(refused?.status).to.equal(400);
    expect(refused!.headers.get('connection')).to.equal('close');
    expect((await refused!.json()) as { detail: string })
      .to.have.property('detail')
      .that.matches(/^an HTTP\/1\.1 request needs a Host header/);
    expect(more).to.deep.equal([]);
    expect(await jobsWith('no host')).to.equal(0);
    // HTTP/1.0 needs none.
    const [healthy] = answers(await exchange(service.url, 'GET /healthz HTTP/1.0\r\n\r\n'));
    expect(healthy?.status).to.equal(200);
  });

  it('when a header that must come once comes twice (Idempotency-Key, Authorization, Content-Type, Host), then 400 naming it, nothing stored; a list header twice is fine', async () => {
    const body = JSON.stringify(message({ custom_id: 'header twice' }));
    const twice: Record<string, string> = {
      'Idempotency-Key': 'Idempotency-Key: key-a\r\nIdempotency-Key: key-b',
      Authorization: `Authorization: Bearer ${service.apiKey}\r\nauthorization: Bearer jp_other`,
      'Content-Type': 'Content-Type: application/json\r\nContent-Type: text/plain',
      Host: 'Host: jetpost.test\r\nHost: other.test',
    };
    for (const [name, lines] of Object.entries(twice)) {
      const request = queueRequest(body, { Connection: 'close' }).replace(/^Host: .*$/m, `Host: jetpost.test\r\nX-Twice: 1`);
      const head =
        name === 'Idempotency-Key'
          ? request.replace('X-Twice: 1', lines)
          : request.replace('X-Twice: 1\r\n', '').replace(new RegExp(`^${name}: .*$`, 'm'), lines);
      const [refused, ...more] = answers(await exchange(service.url, head));
      expect(refused?.status, name).to.equal(400);
      const problem = (await refused!.json()) as { type: string; detail: string };
      expect(problem.type).to.equal('https://jetpost.dev/problems/duplicate-header');
      expect(problem.detail).to.match(new RegExp(`^the request has the header ${name} more than once`, 'i'));
      expect(problem.detail).not.to.include(service.apiKey);
      expect(more).to.deep.equal([]);
    }
    expect(await jobsWith('header twice')).to.equal(0);
    const [listed] = answers(
      await exchange(service.url, queueRequest(body, { Connection: 'close', Accept: 'application/json' }).replace('Accept:', 'Accept: text/plain\r\nAccept:')),
    );
    expect(listed?.status).to.equal(202);
  });

  it('when a header that must come once comes again past the 2,000th header, or a transfer coding there, then it is refused as before the 2,000th, nothing stored', async () => {
    // Node kept the first 2,000 headers only (maxHeadersCount) and dropped the rest unsaid; 2,000
    // short ones fit in the 16 KB a head may take.
    const filler = Array.from({ length: 2000 }, (_, i) => `X-${i}: a\r\n`).join('');
    const body = JSON.stringify(message({ custom_id: 'header 2001' }));
    const twice = queueRequest(body, { Connection: 'close', 'Idempotency-Key': 'key-a' }).replace('\r\n\r\n', `\r\n${filler}Idempotency-Key: key-b\r\n\r\n`);
    const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const coded = `POST /queue HTTP/1.1\r\nHost: jetpost.test\r\nAuthorization: Bearer ${service.apiKey}\r\nContent-Type: application/json\r\n${filler}Transfer-Encoding: gzip, chunked\r\n\r\n${chunked}`;

    const [duplicate, ...afterDuplicate] = answers(await exchange(service.url, twice));
    const [transferCoding, ...afterCoding] = answers(await exchange(service.url, coded));

    expect(duplicate?.status).to.equal(400);
    expect(await duplicate!.json()).to.include({ type: 'https://jetpost.dev/problems/duplicate-header' });
    expect(transferCoding?.status).to.equal(501);
    expect(await transferCoding!.json()).to.include({ type: 'https://jetpost.dev/problems/transfer-coding-not-implemented' });
    expect([...afterDuplicate, ...afterCoding]).to.deep.equal([]);
    expect(await jobsWith('header 2001')).to.equal(0);
  });

  it('when a client asks for a tunnel (CONNECT), then 405 problem+json saying jetpost is not a proxy, and the connection closed', async () => {
    const [refused, ...more] = answers(await exchange(service.url, 'CONNECT mail.example.com:443 HTTP/1.1\r\nHost: mail.example.com:443\r\n\r\n'));
    expect(refused?.status).to.equal(405);
    expect(refused!.headers.get('content-type')).to.equal('application/problem+json');
    expect(refused!.headers.get('allow')).to.equal('DELETE, GET, HEAD, OPTIONS, POST, PUT');
    expect(await refused!.json()).to.include({ type: 'https://jetpost.dev/problems/method-not-allowed', status: 405 });
    expect(more).to.deep.equal([]);
  });

  it('when a client asks OPTIONS * (the server itself), then 200 with every method jetpost takes in Allow and no content; another method with * is a 400 problem', async () => {
    const [server, get, remove] = answers(
      await exchange(
        service.url,
        'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nGET * HTTP/1.1\r\nHost: x\r\n\r\nDELETE * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      ),
    );

    expect(server?.status).to.equal(200);
    // The same list as a refused CONNECT gives: every method some path takes, and OPTIONS.
    expect(server!.headers.get('allow')).to.equal('DELETE, GET, HEAD, OPTIONS, POST, PUT');
    expect(server!.headers.get('content-length')).to.equal('0');
    expect(await server!.text()).to.equal('');
    for (const refused of [get, remove]) {
      expect(refused?.status).to.equal(400);
      expect(refused!.headers.get('content-type')).to.match(/^application\/problem\+json/);
      expect(await refused!.json()).to.deep.include({ type: 'https://jetpost.dev/problems/bad-request', status: 400 });
    }
  });

  for (const codings of ['gzip, chunked', 'deflate,chunked', 'x-custom, chunked']) {
    it(`when a POST /queue comes with Transfer-Encoding: ${codings} (a plain body labelled so), then 501 problem+json, the connection closed and nothing stored`, async () => {
      const customId = `transfer coding ${codings}`;
      const body = JSON.stringify(message({ custom_id: customId }));
      const lines = [
        'POST /queue HTTP/1.1',
        'Host: jetpost.test',
        `Authorization: Bearer ${service.apiKey}`,
        'Content-Type: application/json',
        `Transfer-Encoding: ${codings}`,
      ];
      const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;

      const [refused, ...more] = answers(await exchange(service.url, `${lines.join('\r\n')}\r\n\r\n${chunked}`));

      expect(refused?.status).to.equal(501);
      expect(refused!.headers.get('connection')).to.equal('close');
      expect(await refused!.json()).to.include({ type: 'https://jetpost.dev/problems/transfer-coding-not-implemented', status: 501 });
      expect(more).to.have.length(0);
      expect(await jobsWith(customId)).to.equal(0);
    });
  }

  for (const version of ['HTTP/2.0', 'HTTP/0.9', 'HTTP/3.0', 'HTTP/1.2', 'HTTP/2', 'HTTP/1.10']) {
    it(`when a POST /queue's request line says ${version}, then 505 problem+json, the connection closed and nothing stored`, async () => {
      const customId = `version ${version}`;
      const body = JSON.stringify(message({ custom_id: customId }));

      const [refused, ...more] = answers(await exchange(service.url, queueRequest(body).replace(' HTTP/1.1\r\n', ` ${version}\r\n`)));

      expect(refused?.status).to.equal(505);
      expect(refused!.headers.get('connection')).to.equal('close');
      expect(await refused!.json()).to.include({
        type: 'https://jetpost.dev/problems/http-version-not-supported',
        title: 'HTTP Version Not Supported',
        status: 505,
      });
      expect(more).to.have.length(0);
      expect(await jobsWith(customId)).to.equal(0);
    });
  }

  for (const [what, version] of [
    ['a word after the version', 'HTTP/1.1 extra'],
    ['the version twice', 'HTTP/1.1 HTTP/1.1'],
    ['a space after the version', 'HTTP/1.1 '],
    ['two spaces after the version', 'HTTP/1.1  '],
    ['a tab after the version', 'HTTP/1.1\t'],
    ['a letter stuck to the version', 'HTTP/1.1x'],
    ['a NUL after the version', 'HTTP/1.1\u0000'],
  ] as const) {
    it(`when a POST /queue's request line has ${what}, then 400 malformed-request naming the request line (not a 505: the version is HTTP/1.1), the connection closed and nothing stored`, async () => {
      const customId = `request line with ${what}`;
      const body = JSON.stringify(message({ custom_id: customId }));

      const [refused, ...more] = answers(await exchange(service.url, queueRequest(body).replace(' HTTP/1.1\r\n', ` ${version}\r\n`)));

      expect(refused?.status).to.equal(400);
      expect(refused!.headers.get('connection')).to.equal('close');
      const problem = (await refused!.json()) as { type: string; detail: string };
      expect(problem.type).to.equal('https://jetpost.dev/problems/malformed-request');
      expect(problem.detail).to.contain('request line');
      expect(more).to.have.length(0);
      expect(await jobsWith(customId)).to.equal(0);
    });
  }

  for (const [what, replace] of [
    ['the request line', (request: string) => request.replace(' HTTP/1.1\r\n', ' HTTP/1.1\n')],
    ['every line of the head', (request: string) => request.replaceAll('\r\n', '\n')],
    ['a header line', (request: string) => request.replace('\r\nContent-Type', '\nContent-Type')],
  ] as const) {
    it(`when ${what} of a POST /queue ends with LF alone (printf … | nc without -C), then 400 malformed-request saying lines end with CRLF, nothing stored`, async () => {
      const customId = `bare LF in ${what}`;
      const [refused, ...more] = answers(await exchange(service.url, replace(queueRequest(JSON.stringify(message({ custom_id: customId }))))));

      expect(refused?.status).to.equal(400);
      const problem = (await refused!.json()) as { type: string; detail: string };
      expect(problem.type).to.equal('https://jetpost.dev/problems/malformed-request');
      expect(problem.detail).to.contain('ends with LF ("\\n") alone').and.contain('with CRLF');
      expect(more).to.have.length(0);
      expect(await jobsWith(customId)).to.equal(0);
    });
  }

  it('when a client opens with the HTTP/2 preface (PRI * HTTP/2.0, prior knowledge), then 505 problem+json', async () => {
    const [refused] = answers(await exchange(service.url, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    expect(refused?.status).to.equal(505);
    expect(await refused!.json()).to.include({ type: 'https://jetpost.dev/problems/http-version-not-supported', status: 505 });
  });

  it('when an HTTP/1.0 POST /queue comes with Transfer-Encoding: chunked, then 400 problem+json, the connection closed and nothing stored (RFC 9112 §6.1: its framing is faulty)', async () => {
    const customId = 'http/1.0 chunked';
    const body = JSON.stringify(message({ custom_id: customId }));
    const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const head = queueRequest('', { 'Transfer-Encoding': 'chunked' })
      .replace(' HTTP/1.1\r\n', ' HTTP/1.0\r\n')
      .replace(/Content-Length: 0\r\n/, '');

    const [refused, ...more] = answers(await exchange(service.url, `${head}${chunked}`));

    expect(refused?.status).to.equal(400);
    expect(refused!.headers.get('connection')).to.equal('close');
    expect(await refused!.json()).to.include({ type: 'https://jetpost.dev/problems/malformed-request', status: 400 });
    expect(more).to.have.length(0);
    expect(await jobsWith(customId)).to.equal(0);
  });

  it('when a request line says HTTP/1.0, then it is served', async () => {
    const [answer] = answers(await exchange(service.url, 'GET /healthz HTTP/1.0\r\n\r\n'));
    expect(answer?.status).to.equal(200);
  });

  it('when the headers are too large, then 431 problem+json', async () => {
    const [refused] = answers(await exchange(service.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(refused?.status).to.equal(431);
    expect(await refused!.json()).to.include({ type: 'https://jetpost.dev/problems/headers-too-large', status: 431 });
  });

  it('when the URL alone is over 16 KB (GET /status with 10,000 ids), then the 431 says that the URL counts, and the most ids a look-up takes', async () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => i + 1).join(',');
    const [refused] = answers(await exchange(service.url, `GET /status?ids=${ids} HTTP/1.1\r\nHost: x\r\n\r\n`));
    expect(refused?.status).to.equal(431);
    expect(((await refused!.json()) as { detail: string }).detail).to.match(/a long URL or query string included: GET \/status takes at most 100 ids/);
  });

  it('when a connection sends more requests ahead of their answers than MAX_PIPELINED, then it is closed, and the requests past that are not handled', async () => {
    // A client that writes many requests at once and reads nothing made every answer be held in memory
    // (400 such connections, 50 GET /openapi.yaml each: 3 GB). The last one asks to close, so that a
    // server that answers them all ends the exchange too.
    const count = MAX_PIPELINED + 4;
    const requests = Array.from({ length: count }, (_, index) =>
      queueRequest(JSON.stringify(message({ custom_id: `pipelined deep, ${index}` })), index === count - 1 ? { Connection: 'close' } : {}),
    );
    const raw = await exchange(service.url, requests.join(''));
    expect(raw.split('HTTP/1.1 ').length - 1, 'answers').to.be.at.most(MAX_PIPELINED);
    for (let index = MAX_PIPELINED; index < count; index += 1) {
      expect(await jobsWith(`pipelined deep, ${index}`), `request ${index}`).to.equal(0);
    }
  });
});
