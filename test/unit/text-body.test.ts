// textBody reads the /events body of a stated length itself when it is typed as JSON in UTF-8 (or
// not typed), and hands everything else to body-parser (http/text-body.ts). The same bytes sent as
// "application/json" (direct) and as "text/plain" (body-parser) must give the same text, bytes that
// are not UTF-8 and byte order marks included, and the same refusals; and whatever charset the type
// names, the text is the UTF-8 JSON is written in.
import { expect } from 'chai';
import express from 'express';

import { errorHandler } from '../../src/http/problem.js';
import { textBody } from '../../src/http/text-body.js';
import { type BodyServer, listenOnLoopback, postInParts } from '../support/body-server.js';
import { testLogger } from '../support/log.js';

describe('textBody', () => {
  let server: BodyServer;

  before(async () => {
    const app = express();
    app.post('/', textBody({ limit: '1kb', pace: { idleMs: 30_000, minBytesPerSecond: 0, windowMs: 5_000 } }), (req, res) => {
      // The text's UTF-16 code units, so that a U+FFFD or a byte order mark cannot hide.
      res.json({ body: req.body as unknown, units: typeof req.body === 'string' ? [...req.body].map((c) => c.codePointAt(0)) : null });
    });
    app.use(errorHandler(testLogger()));
    server = await listenOnLoopback(app);
  });

  after(async () => {
    await server.close();
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
      const general = await postInParts(server.port, '/', 'text/plain', parts);
      expect(await postInParts(server.port, '/', 'application/json', parts)).to.deep.equal(general);
      expect(await postInParts(server.port, '/', undefined, parts)).to.deep.equal(general);
    });
  }

  // Before: body-parser decoded as the charset said: josÃ© for josé (another address, another event),
  // or a 415 for one it did not know, which Mailjet retries for a day and then drops.
  for (const type of [
    'application/json; charset=iso-8859-1',
    'text/plain; charset=windows-1252',
    'text/plain; charset=utf-16',
    'application/json; charset=bogus',
  ]) {
    it(`when it is typed ${type}, then it is read as UTF-8 all the same`, async () => {
      const parts = bodies['an array of events']!;
      expect(await postInParts(server.port, '/', type, parts)).to.deep.equal(await postInParts(server.port, '/', 'application/json', parts));
    });
  }

  it('when a body is read directly, then the text is what body-parser gives (a sample, spelled out)', async () => {
    expect(await postInParts(server.port, '/', 'application/json', text('\uFEFF[1]'))).to.deep.include({
      status: 200,
      body: '{"body":"[1]","units":[91,49,93]}',
    });
    expect(JSON.parse((await postInParts(server.port, '/', 'application/json', bodies['bytes that are not UTF-8']!)).body)).to.deep.include({
      body: '["\uFFFD\uFFFD\uFFFD("]',
    });
    expect((await postInParts(server.port, '/', 'application/json', bodies['one byte over the limit']!)).status).to.equal(413);
  });
});
