// Idle client connections stay open HTTP_KEEP_ALIVE_MS (src/main.ts), not Node's 5 s: a sender
// whose concurrency swings keeps its spare connections instead of opening a burst of new ones, and a
// load balancer with a 60 s idle timeout closes first. The server announces the timeout it applies.
import { Agent, request } from 'node:http';

import { expect } from 'chai';

import { HTTP_KEEP_ALIVE_MS } from '../../src/main.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { startTestService, type TestService } from '../support/service.js';

function get(url: string, agent: Agent): Promise<{ keepAlive: string | undefined; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ keepAlive: res.headers['keep-alive']?.toString(), reusedSocket: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP keep-alive', () => {
  let service: TestService | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    agent.destroy();
    await service?.stop();
    service = undefined;
    restoreNetwork();
  });

  it('keeps an idle connection longer than a load balancer does (60 s), and says so', async () => {
    service = await startTestService();
    expect(HTTP_KEEP_ALIVE_MS).to.be.greaterThan(60_000);
    const first = await get(`${service.url}/healthz`, agent);
    expect(first.keepAlive).to.equal(`timeout=${HTTP_KEEP_ALIVE_MS / 1000}`);
    const second = await get(`${service.url}/healthz`, agent);
    expect(second.reusedSocket).to.equal(true);
  });
});
