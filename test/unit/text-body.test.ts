// textBody reads the /events body of a stated length itself when it is typed as JSON in UTF-8 (or
// not typed), and hands everything else to body-parser's text parser (http/text-body.ts). The same
// bytes sent as "application/json" (direct) and as "text/plain" (body-parser) must give the same
// text, bytes that are not UTF-8 and byte order marks included, and the same refusals.
import { once } from 'node:events';
import { type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';
import express from 'express';

import { errorHandler } from '../../src/http/problem.js';
import { textBody } from '../../src/http/text-body.js';
import { testLogger } from '../support/log.js';

interface Answer {
  status: number;
  body: string;
}

/** POSTs `parts` (written one after the other, a moment apart) and reads the answer. */
async function post(port: number, type: string | undefined, parts: Buffer[]): Promise<Answer> {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const headers = { 'content-length': length, ...(type === undefined ? {} : { 'content-type': type }) };
  const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers });
  const answered = once(req, 'response') as Promise<[IncomingMessage]>;
  for (const part of parts) {
    req.write(part);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  req.end();
  const [res] = await answered;
  const chunks: Buffer[] = [];
  for await (const chunk of res) {
    chunks.push(chunk as Buffer);
  }
  return { status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') };
}

describe('textBody', () => {
  let server: Server;
  let port: number;

  before(async () => {
    const app = express();
    app.post('/', textBody({ limit: '1kb' }), (req, res) => {
      // The text's UTF-16 code units, so that a U+FFFD or a byte order mark cannot hide.
      res.json({ body: req.body as unknown, units: typeof req.body === 'string' ? [...req.body].map((c) => c.codePointAt(0)) : null });
    });
    app.use(errorHandler(testLogger()));
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const text = (value: string) => [Buffer.from(value, 'utf8')];
  const bodies: Record<string, Buffer[]> = {
    'an array of events': text('[{"event":"open","MessageID":576460765503091475,"email":"é@example.com"}]'),
    'a byte order mark before the text': text('\uFEFF[1]'),
    'two byte order marks': text('\uFEFF\uFEFF[1]'),
    'a byte order mark alone': text('\uFEFF'),
    'a byte order mark split across two writes': [Buffer.from([0xef, 0xbb]), Buffer.from([0xbf, 0x5b, 0x5d])],
    'a raw NUL': text('["\u0000"]'),
    'bytes that are not UTF-8': [Buffer.from([0x5b, 0x22, 0xe9, 0xff, 0xc3, 0x28, 0x22, 0x5d])],
    'a character cut short at the end': [Buffer.from([0x5b, 0x22, 0xe2, 0x82])],
    'a character split across two writes': [Buffer.from([0x5b, 0x22, 0xc3]), Buffer.from([0xa9, 0x22, 0x5d])],
    'an invalid byte split across two writes': [Buffer.from([0x5b, 0x22, 0xe2, 0x82]), Buffer.from([0x28, 0xf0, 0x9f]), Buffer.from([0x98, 0x80, 0x22])],
    'exactly the limit': text(`["${'x'.repeat(1024 - 4)}"]`),
    'one byte over the limit': text(`["${'x'.repeat(1024 - 3)}"]`),
  };

  for (const [what, parts] of Object.entries(bodies)) {
    it(`when it is sent ${what}, then reading it directly gives what body-parser gives`, async () => {
      const general = await post(port, 'text/plain', parts);
      expect(await post(port, 'application/json', parts)).to.deep.equal(general);
      expect(await post(port, undefined, parts)).to.deep.equal(general);
    });
  }

  it('when a body is read directly, then the text is what body-parser gives (a sample, spelled out)', async () => {
    expect(await post(port, 'application/json', text('\uFEFF[1]'))).to.deep.equal({ status: 200, body: '{"body":"[1]","units":[91,49,93]}' });
    expect(JSON.parse((await post(port, 'application/json', bodies['bytes that are not UTF-8']!)).body)).to.deep.include({ body: '["\uFFFD\uFFFD\uFFFD("]' });
    expect((await post(port, 'application/json', bodies['one byte over the limit']!)).status).to.equal(413);
  });
});
