// The message look-up by CustomID (GET /v3/REST/message): the rows it keeps as found. A row without
// usable ids counts as not found: it could only be recorded without an id no event can reach.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';
import nock from 'nock';

import { createMailjetClient } from '../../src/mailjet/client.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';

const ORIGIN = 'https://api.mailjet.test';

/** The client's look-up of `customId`, Mailjet answering these rows (as JSON text: IDs past 2^53 stay exact). */
function lookUp(customId: string, rows: readonly string[]) {
  nock(ORIGIN)
    .get('/v3/REST/message')
    .query(true)
    .reply(200, `{"Count":${rows.length},"Data":[${rows.join(',')}],"Total":${rows.length}}`, { 'content-type': 'application/json' });
  return createMailjetClient({ apiKey: 'k', apiSecret: 's', baseUrl: ORIGIN, timeoutMs: 5_000 }).findByCustomId(customId);
}

describe('the look-up by CustomID', () => {
  beforeEach(() => isolateNetwork());
  afterEach(() => restoreNetwork());

  it("when a row has SandboxMode's ID 0 (no message's), then it is not found; one of the CustomID asked for with no usable ID is, with its ID as text", async () => {
    const rows = [
      '{"ID":0,"UUID":"","CustomID":"jetpost-1","ContactAlt":"zero@example.com"}',
      '{"ID":576460765503091475,"UUID":"u-1","CustomID":"jetpost-1","ContactAlt":"a@example.com"}',
      '{"UUID":"u-3","CustomID":"jetpost-1","ContactAlt":"c@example.com"}',
      '{"ID":-5,"UUID":"u-4","CustomID":"jetpost-1","ContactAlt":"d@example.com"}',
    ];
    expect(await lookUp('jetpost-1', rows)).to.deep.equal([
      { messageId: '576460765503091475', messageUuid: 'u-1', email: 'a@example.com', named: true },
      { messageId: 'none', messageUuid: 'u-3', email: 'c@example.com', named: true },
      { messageId: '-5', messageUuid: 'u-4', email: 'd@example.com', named: true },
    ]);
  });

  // A filter Mailjet (or a proxy before it) did not apply lists other messages, the same address's
  // among them: taken for this job's, its id would record a message never sent as accepted.
  it("when a row names another CustomID, then it is not found: only rows of the CustomID asked for (or naming none, even as '') are", async () => {
    const rows = [
      '{"ID":576460765503091475,"UUID":"u-1","CustomID":"jetpost-12","ContactAlt":"a@example.com"}',
      '{"ID":576460765503091476,"UUID":"u-2","CustomID":"jetpost-1:order-7","ContactAlt":"a@example.com"}',
      '{"ID":576460765503091477,"UUID":"u-3","CustomID":"jetpost-1","ContactAlt":"a@example.com"}',
      '{"ID":576460765503091478,"UUID":"u-4","ContactAlt":"b@example.com"}',
      '{"ID":576460765503091479,"UUID":"u-5","CustomID":"","ContactAlt":"c@example.com"}',
    ];
    expect(await lookUp('jetpost-1', rows)).to.deep.equal([
      { messageId: '576460765503091477', messageUuid: 'u-3', email: 'a@example.com', named: true },
      { messageId: '576460765503091478', messageUuid: 'u-4', email: 'b@example.com' },
      { messageId: '576460765503091479', messageUuid: 'u-5', email: 'c@example.com' },
    ]);
  });

  // ShowContactAlt ignored (by Mailjet or a proxy): dropped, such a row made the job look unsent, and
  // it was sent again. Naming the CustomID asked for, it says Mailjet took a message of the job.
  it('when a row of the CustomID asked for has no ContactAlt (or an empty one), then it is found without an address', async () => {
    const rows = [
      '{"ID":576460765503091476,"UUID":"u-2","CustomID":"jetpost-1"}',
      '{"ID":576460765503091477,"UUID":"u-3","CustomID":"jetpost-1","ContactAlt":""}',
      '{"ID":576460765503091478,"UUID":"u-4","CustomID":"jetpost-12"}',
    ];
    expect(await lookUp('jetpost-1', rows)).to.deep.equal([
      { messageId: '576460765503091476', messageUuid: 'u-2', email: null, named: true },
      { messageId: '576460765503091477', messageUuid: 'u-3', email: null, named: true },
    ]);
  });

  // Naming neither, it may be any message of the account (the filter not applied either): the
  // answer cannot say the job's message is not there.
  it('when a row names neither its address nor a CustomID, then Mailjet could not be asked', async () => {
    const rows = ['{"ID":576460765503091475,"UUID":"u-1","CustomID":"jetpost-1","ContactAlt":"a@example.com"}', '{"ID":576460765503091476,"UUID":"u-2"}'];
    const answer = await lookUp('jetpost-1', rows);
    expect(answer).to.include({ status: 200, body: undefined });
    expect(Array.isArray(answer)).to.equal(false);
  });

  // node-mailjet turns a body it cannot parse into {}: read as an empty list, it would say "not sent"
  // and the job would be sent again, a duplicate when Mailjet had it.
  for (const [what, body] of [
    ['an HTML page', '<html><body>OK</body></html>'],
    ['JSON cut short', '{"Count":1,"Data":[{"ID":576460765503091475,"UUID":"u-1","CustomID":"jetpost-1","ContactAlt":"a@example.com"'],
    ['an empty body', ''],
    ['an object without Data', '{"Count":0,"Total":0}'],
  ]) {
    it(`when Mailjet answers 200 with ${what}, then Mailjet could not be asked: nothing says the message was not sent`, async () => {
      nock(ORIGIN).get('/v3/REST/message').query(true).reply(200, body, { 'content-type': 'application/json' });
      const client = createMailjetClient({ apiKey: 'k', apiSecret: 's', baseUrl: ORIGIN, timeoutMs: 5_000 });

      const answer = await client.findByCustomId('jetpost-1');
      expect(answer).to.include({ status: 200, body: undefined });
      expect(Array.isArray(answer)).to.equal(false);
    });
  }

  it('when Mailjet answers 429 with a Retry-After, then the look-up says so, for the send gate to pause, and carries no credentials', async () => {
    nock(ORIGIN).get('/v3/REST/message').query(true).reply(429, '<html>Too Many Requests</html>', { 'retry-after': '7' });
    const client = createMailjetClient({ apiKey: 'the-api-key', apiSecret: 'the-api-secret', baseUrl: ORIGIN, timeoutMs: 5_000 });

    const answer = await client.findByCustomId('jetpost-1');

    expect(answer).to.deep.equal({ status: 429, body: undefined, retryAfter: '7', description: 'Mailjet 429 on the look-up by CustomID' });
  });

  it('when Mailjet does not answer in time, then the look-up says it got no answer', async () => {
    nock(ORIGIN).get('/v3/REST/message').query(true).delay(500).reply(200, '{"Count":0,"Data":[],"Total":0}');
    const client = createMailjetClient({ apiKey: 'k', apiSecret: 's', baseUrl: ORIGIN, timeoutMs: 50 });

    expect(await client.findByCustomId('jetpost-1')).to.include({ status: null, networkCode: 'ECONNABORTED' });
  });

  // axios (under node-mailjet) bounded only the wait for the headers and each silence after them: an
  // answer whose body kept coming a byte at a time held its consumer for ever, and the job with it.
  it('when Mailjet answers the headers and then a body that never ends, then the look-up gives up at the timeout', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"Count":1,"Data":[');
      const drip = setInterval(() => response.write(' '), 10);
      response.on('close', () => clearInterval(drip));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = createMailjetClient({ apiKey: 'k', apiSecret: 's', baseUrl, timeoutMs: 200 });

      expect(await client.findByCustomId('jetpost-1')).to.include({ status: null, networkCode: 'ECONNABORTED' });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('when Mailjet answers an empty list, then the message is not found', async () => {
    nock(ORIGIN).get('/v3/REST/message').query(true).reply(200, '{"Count":0,"Data":[],"Total":0}', { 'content-type': 'application/json' });
    const client = createMailjetClient({ apiKey: 'k', apiSecret: 's', baseUrl: ORIGIN, timeoutMs: 5_000 });

    expect(await client.findByCustomId('jetpost-1')).to.deep.equal([]);
  });
});
