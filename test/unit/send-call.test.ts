// The Send API call reads Mailjet's answer as node-mailjet did: MessageIDs above 2^53 exact, a body
// that is not JSON as its text, and no answer (a timeout, a cut connection) as a network failure.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer } from 'node:net';

import { expect } from 'chai';

import { createMailjetCall, MAX_ANSWER_BYTES, SEND_PATH } from '../../src/mailjet/send-call.js';

const BODY = JSON.stringify({ Messages: [{ To: [{ Email: 'a@example.com' }], CustomID: 'jetpost-1' }] });

describe('the Send API call', () => {
  let server: Server;
  let handle: (request: IncomingMessage, response: ServerResponse, body: string) => void;
  let baseUrl: URL;

  before(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => handle(request, response, body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/base/`);
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const call = (timeoutMs = 10_000) => createMailjetCall({ baseUrl, apiKey: 'key', apiSecret: 'secret', timeoutMs })(SEND_PATH, BODY);

  it('when Mailjet answers 200 with a MessageID above 2^53, then the call went to the base path with the keys and the id comes back exact', async () => {
    let seen: { url?: string | undefined; authorization?: string | undefined; body?: string } = {};
    handle = (request, response, body) => {
      seen = { url: request.url, authorization: request.headers.authorization, body };
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"Messages":[{"Status":"success","To":[{"Email":"a@example.com","MessageUUID":"u-1","MessageID":576460765503091475}]}]}');
    };
    const answer = await call();
    expect(seen).to.deep.equal({ url: '/base/v3.1/send', authorization: `Basic ${Buffer.from('key:secret').toString('base64')}`, body: BODY });
    expect(answer.status).to.equal(200);
    expect(answer.body).to.deep.equal({
      Messages: [{ Status: 'success', To: [{ Email: 'a@example.com', MessageUUID: 'u-1', MessageID: '576460765503091475' }] }],
    });
  });

  it('when Mailjet answers 429 with an HTML page and Retry-After, then the status, the text and the header come back', async () => {
    handle = (_request, response) => {
      response.writeHead(429, { 'content-type': 'text/html', 'retry-after': '3' });
      response.end('<html>Too Many Requests</html>');
    };
    const answer = await call();
    expect(answer).to.deep.equal({
      status: 429,
      body: '<html>Too Many Requests</html>',
      retryAfter: '3',
      description: 'Mailjet 429: Request failed with status code 429',
    });
  });

  it('when Mailjet answers 401 with an error body, then its ErrorMessage is the description', async () => {
    handle = (_request, response) => {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end('{"ErrorIdentifier":"x","StatusCode":401,"ErrorMessage":"API key authentication/authorization failure."}');
    };
    const answer = await call();
    expect(answer.status).to.equal(401);
    expect(answer.description).to.equal('Mailjet 401: API key authentication/authorization failure.');
  });

  it('when Mailjet does not answer in time, then the call is a timeout with no status (its outcome unknown)', async () => {
    handle = () => undefined;
    const answer = await call(200);
    expect(answer.status).to.equal(null);
    expect(answer.networkCode).to.equal('ECONNABORTED');
    expect(answer.neverSent).to.equal(undefined);
  });

  it('when the connection is cut in the middle of the answer, then there is no status', async () => {
    handle = (request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
      response.write('{"Messages":[');
      setTimeout(() => request.socket.destroy(), 20);
    };
    const answer = await call();
    expect(answer.status).to.equal(null);
  });

  it('when Mailjet answers 200 with a body larger than any real answer, then it is not read whole and the outcome is unknown', async () => {
    let written = 0;
    handle = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      // Written as the client reads, up to four times the limit: the client must stop reading first.
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const write = () => {
        while (written < 4 * MAX_ANSWER_BYTES && !response.destroyed) {
          written += chunk.length;
          if (!response.write(chunk)) {
            response.once('drain', write);
            return;
          }
        }
        response.end('{"Messages":[]}');
      };
      write();
    };
    const answer = await call();
    expect(answer).to.deep.include({ status: null, body: undefined, networkCode: 'EANSWERTOOLARGE' });
    expect(answer.description).to.equal(`Mailjet's answer (HTTP 200) was over ${MAX_ANSWER_BYTES} bytes and was not read`);
  });

  it('when the connection is cut after the request was written, then there is no status and the call may have been sent', async () => {
    handle = (request) => request.socket.destroy();
    const answer = await call();
    expect(answer).to.deep.include({ status: null, networkCode: 'ECONNRESET' });
    expect(answer.neverSent).to.equal(undefined);
  });

  describe('when no connection is made, then the request never left', () => {
    const neverSent = (baseUrl: string, timeoutMs = 5_000) =>
      createMailjetCall({ baseUrl: new URL(baseUrl), apiKey: 'k', apiSecret: 's', timeoutMs })(SEND_PATH, BODY);
    /** A TCP server that accepts and never says a word: a TLS handshake with it never ends. */
    let silent: NetServer;
    before(async () => {
      silent = createNetServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    });
    after(() => silent.close());

    it('when nothing listens on the port (a real closed port), then it is ECONNREFUSED, never sent', async () => {
      const answer = await neverSent('http://127.0.0.1:1');
      expect(answer).to.deep.include({ status: null, networkCode: 'ECONNREFUSED', neverSent: true });
      expect(answer.description).to.match(/^Mailjet unreachable \(ECONNREFUSED\): never sent: connect ECONNREFUSED 127\.0\.0\.1:1$/);
    });

    it('when the host name does not resolve (.invalid), then it is a failed look-up, never sent', async () => {
      const answer = await neverSent('https://api.mailjet.invalid');
      // ENOTFOUND from a resolver that answers, EAI_AGAIN from one that cannot be reached.
      expect(answer.networkCode).to.be.oneOf(['ENOTFOUND', 'EAI_AGAIN']);
      expect(answer).to.deep.include({ status: null, neverSent: true });
      expect(answer.description).to.match(/^Mailjet unreachable \((ENOTFOUND|EAI_AGAIN)\): never sent: getaddrinfo /);
    });

    it('when the TLS handshake fails (a plain-HTTP server on the https port), then it is never sent', async () => {
      const answer = await neverSent(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
      expect(answer).to.deep.include({ status: null, neverSent: true });
      expect(answer.description).to.match(/^Mailjet unreachable \(EPROTO\): never sent: /);
    });

    it('when the TLS handshake does not end in time, then the timeout is never sent either', async () => {
      const answer = await neverSent(`https://127.0.0.1:${(silent.address() as AddressInfo).port}`, 200);
      expect(answer).to.deep.include({ status: null, networkCode: 'ECONNABORTED', neverSent: true });
      expect(answer.description).to.equal('Mailjet unreachable (ECONNABORTED): never sent: timeout of 200ms exceeded');
    });
  });
});
