// Send calls behind an egress proxy: an HTTPS Mailjet through a CONNECT tunnel, a plain-HTTP one as
// an absolute-URL request, both with the proxy's credentials; NO_PROXY hosts and a Mailjet on this
// machine directly. The proxy here answers as Mailjet itself (plain HTTP) or refuses the tunnel, so
// no name is ever looked up and nothing leaves the machine.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';

import { sendProxy } from '../../src/mailjet/agent.js';
import { createMailjetCall, SEND_PATH } from '../../src/mailjet/send-call.js';

const BODY = { Messages: [{ To: [{ Email: 'a@example.com' }], CustomID: 'jetpost-1' }] };
const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy'];

interface Seen {
  method: string;
  url: string;
  proxyAuthorization: string | undefined;
  authorization: string | undefined;
}

describe('send calls through a proxy', () => {
  let proxy: Server;
  let proxyUrl: string;
  const seen: Seen[] = [];
  const saved = new Map<string, string | undefined>();

  before(async () => {
    proxy = createServer((request: IncomingMessage, response) => {
      seen.push({
        method: request.method!,
        url: request.url!,
        proxyAuthorization: request.headers['proxy-authorization'],
        authorization: request.headers.authorization,
      });
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"Messages":[{"Status":"success","To":[{"Email":"a@example.com","MessageUUID":"u-1","MessageID":576460765503091475}]}]}');
      });
    });
    proxy.on('connect', (request: IncomingMessage, socket) => {
      seen.push({ method: 'CONNECT', url: request.url!, proxyAuthorization: request.headers['proxy-authorization'], authorization: undefined });
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://jet:p%40ss@127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    seen.length = 0;
    for (const name of PROXY_VARIABLES) {
      saved.set(name, process.env[name]);
      delete process.env[name];
    }
  });

  afterEach(() => {
    for (const [name, value] of saved) {
      if (value === undefined) {
        delete process.env[name];
      } else {
        process.env[name] = value;
      }
    }
  });

  after(() => {
    proxy.closeAllConnections();
    proxy.close();
  });

  const call = (baseUrl: string) =>
    createMailjetCall({ baseUrl: new URL(baseUrl), apiKey: 'key', apiSecret: 'secret', timeoutMs: 10_000 })(SEND_PATH, JSON.stringify(BODY));
  const proxyCredentials = `Basic ${Buffer.from('jet:p@ss').toString('base64')}`;

  it('when HTTP_PROXY is set and Mailjet is plain HTTP, then the call goes to the proxy as an absolute URL, with its credentials and the Mailjet keys', async () => {
    process.env['HTTP_PROXY'] = proxyUrl;

    const answer = await call('http://mailjet.invalid/base');

    expect(answer.status, JSON.stringify(answer)).to.equal(200);
    expect(seen).to.deep.equal([
      {
        method: 'POST',
        url: 'http://mailjet.invalid/base/v3.1/send',
        proxyAuthorization: proxyCredentials,
        authorization: `Basic ${Buffer.from('key:secret').toString('base64')}`,
      },
    ]);
  });

  it('when HTTPS_PROXY is set and Mailjet is HTTPS, then the call asks the proxy for a tunnel to Mailjet, and a refused tunnel is a network failure', async () => {
    process.env['https_proxy'] = proxyUrl;

    const answer = await call('https://api.mailjet.invalid');

    expect(seen).to.deep.equal([{ method: 'CONNECT', url: 'api.mailjet.invalid:443', proxyAuthorization: proxyCredentials, authorization: undefined }]);
    // Not Mailjet's 403 (about the sender): the call did not reach Mailjet.
    expect(answer).to.deep.include({ status: null, networkCode: 'EPROXY', neverSent: true });
  });

  it('when a plain-HTTP proxy asks for credentials (407), then the call is a network failure, not an answer from Mailjet', async () => {
    const strict = createServer((request, response) => {
      request.resume();
      response.writeHead(407, { 'proxy-authenticate': 'Basic realm="egress"' }).end('<html>credentials</html>');
    });
    await new Promise<void>((resolve) => strict.listen(0, '127.0.0.1', resolve));
    try {
      process.env['HTTP_PROXY'] = `http://127.0.0.1:${(strict.address() as AddressInfo).port}`;

      const answer = await call('http://mailjet.invalid');

      expect(answer).to.deep.include({ status: null, networkCode: 'EPROXY', neverSent: true });
    } finally {
      strict.closeAllConnections();
      strict.close();
    }
  });

  it('when the host is in NO_PROXY, or Mailjet is on this machine, then no proxy is used', () => {
    process.env['HTTPS_PROXY'] = proxyUrl;
    process.env['HTTP_PROXY'] = proxyUrl;
    process.env['NO_PROXY'] = '.mailjet.invalid';

    expect(sendProxy(new URL('https://api.mailjet.invalid'))).to.equal(null);
    expect(sendProxy(new URL('https://api.mailjet.com'))?.host).to.equal(new URL(proxyUrl).host);
    for (const local of ['http://127.0.0.1:4010', 'http://localhost:4010', 'http://[::1]:4010', 'http://127.8.9.10']) {
      expect(sendProxy(new URL(local)), local).to.equal(null);
    }
  });

  it('when the proxy variable is not a URL, then creating the call fails with a message that names the variables, not the value', () => {
    process.env['HTTPS_PROXY'] = 'http://user:secret@[bad';

    expect(() => createMailjetCall({ baseUrl: new URL('https://api.mailjet.com'), apiKey: 'k', apiSecret: 's', timeoutMs: 1_000 }))
      .to.throw(/HTTPS_PROXY or HTTP_PROXY/)
      .and.satisfy((error: Error) => !error.message.includes('secret'));
  });
});
