// jsonBody reads plain UTF-8 JSON of a stated length itself and hands everything else to
// body-parser (http/json-body.ts). "application/json" takes the direct path; the same body as
// "application/json; charset=UTF-8" goes to body-parser (the type is not one of the exact strings
// read directly), and must get the same answer, bytes for bytes.
import { expect } from 'chai';
import express from 'express';

import { jsonBody } from '../../src/http/json-body.js';
import { errorHandler } from '../../src/http/problem.js';
import { type BodyServer, listenOnLoopback, postInParts } from '../support/body-server.js';
import { testLogger } from '../support/log.js';

describe('jsonBody', () => {
  let server: BodyServer;

  before(async () => {
    const app = express();
    const echo: express.RequestHandler = (req, res) => {
      res.json({ body: req.body as unknown });
    };
    app.post('/strict', jsonBody({ limit: '1kb', pace: { idleMs: 30_000, minBytesPerSecond: 0, windowMs: 5_000 } }), echo);
    app.post(
      '/lenient',
      jsonBody({
        limit: '1kb',
        pace: { idleMs: 30_000, minBytesPerSecond: 0, windowMs: 5_000 },
        strict: false,
        type: ['application/json', 'application/*+json'],
      }),
      echo,
    );
    app.use(errorHandler(testLogger()));
    server = await listenOnLoopback(app);
  });

  after(async () => {
    await server.close();
  });

  const text = (value: string) => [Buffer.from(value, 'utf8')];
  const bodies: Record<string, Buffer[]> = {
    'an object': text('{"a":1,"é":"ü"}'),
    'an array after white space': text(' \r\n\t[1,2]'),
    'a string': text('"just text"'),
    'a number': text('42'),
    'a byte order mark before an object': text('\uFEFF{"a":1}'),
    'a byte order mark alone': text('\uFEFF'),
    'white space alone': text('   '),
    'malformed JSON': text('{"a":'),
    'a raw NUL in a string': text('{"a":"\u0000"}'),
    'an escaped NUL and a lone surrogate': text('{"a":"\\u0000","b":"\\ud800"}'),
    'bytes that are not UTF-8': [Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d])],
    'a character split across two writes': [Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3]), Buffer.from([0xa9, 0x22, 0x7d])],
    'exactly the limit': text(`{"a":"${'x'.repeat(1024 - 8)}"}`),
    'one byte over the limit': text(`{"a":"${'x'.repeat(1024 - 7)}"}`),
  };

  for (const path of ['/strict', '/lenient']) {
    for (const [what, parts] of Object.entries(bodies)) {
      it(`when ${path} is sent ${what}, then reading it directly answers as body-parser does`, async () => {
        const direct = await postInParts(server.port, path, 'application/json', parts);
        const general = await postInParts(server.port, path, 'application/json; charset=UTF-8', parts);
        expect(direct).to.deep.equal(general);
      });
    }
  }

  it('when a body is read directly, then the answers are what body-parser gives (a sample, spelled out)', async () => {
    expect(await postInParts(server.port, '/strict', 'application/json', text('\uFEFF{"a":1}'))).to.deep.include({ status: 200, body: '{"body":{"a":1}}' });
    expect((await postInParts(server.port, '/strict', 'application/json', text('"just text"'))).status).to.equal(400);
    expect(await postInParts(server.port, '/lenient', 'application/json', text('"just text"'))).to.deep.include({ status: 200, body: '{"body":"just text"}' });
    const notUtf8 = await postInParts(server.port, '/lenient', 'application/json', bodies['bytes that are not UTF-8']!);
    expect(notUtf8.status).to.equal(400);
    expect(notUtf8.body).to.include('not valid UTF-8');
    expect((await postInParts(server.port, '/lenient', 'application/json', bodies['one byte over the limit']!)).status).to.equal(413);
  });

  it("when a body holds NaN (Python json.dumps's default for a float nan), then the 400 says NaN is not JSON, on either path", async () => {
    for (const type of ['application/json', 'application/json; charset=UTF-8']) {
      const answer = await postInParts(server.port, '/strict', type, text('{"metadata":{"ratio":NaN}}'));
      expect(answer.status, type).to.equal(400);
      expect(JSON.parse(answer.body), type).to.deep.include({ type: 'https://jetpost.dev/problems/malformed-json' });
      expect((JSON.parse(answer.body) as { detail: string }).detail, type)
        .to.contain('NaN')
        .and.not.contain('ratio');
    }
  });
});
