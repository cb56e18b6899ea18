import { createServer, type Server } from 'node:http';
import net from 'node:net';

import { expect } from 'chai';

import { limitPipelining, MAX_PIPELINED } from '../../src/http/connections.js';
import { trackInFlight } from '../../src/http/drain.js';

describe('the requests in flight that a stop waits for', () => {
  let server: Server;

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('when a connection closed for pipelining too deep had answers queued and requests read after it, then none of them is waited for', async () => {
    // Answered later than the client writes, so that the requests queue up behind the first.
    server = createServer(limitPipelining((_req, res) => setTimeout(() => res.end('ok'), 50)));
    const inFlight = trackInFlight(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;

    const socket = net.connect(port, '127.0.0.1');
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.on('error', () => {});
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(MAX_PIPELINED + 4));
    await closed;

    // Before, the answers queued behind the first never emitted 'close', and a stop waited for them
    // until its deadline (SHUTDOWN_TIMEOUT_MS).
    const settled = await Promise.race([
      inFlight.settled().then(() => 'settled'),
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 20 s'), 20_000)),
    ]);
    expect(settled).to.equal('settled');
  });
});
