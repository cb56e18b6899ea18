// The dispatcher's slots against silent receivers, with an outbox of its own: a call unanswered for
// a while gives up its slot to the next app's delivery, but the calls open at once stay bounded.
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

import { expect } from 'chai';

import type { AppRoom, ClaimOptions } from '../../src/db/webhook-deliveries-repo.js';
import { parseTargetPolicy } from '../../src/domain/target-policy.js';
import type { DueDelivery } from '../../src/domain/webhook-delivery.js';
import { formatSecret } from '../../src/domain/webhook-signature.js';
import { createWakeup } from '../../src/workers/wakeup.js';
import { createWebhookDispatcher } from '../../src/workers/webhook-dispatcher.js';
import { testLogger } from '../support/log.js';
import { eventually } from '../support/service.js';

describe('webhook dispatcher slots', function () {
  this.timeout(120_000);
  let server: Server | undefined;
  const sockets = new Set<Socket>();

  afterEach(async () => {
    sockets.forEach((socket) => socket.destroy());
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  it('when every app’s receiver is silent, then calls past WEBHOOK_BATCH_SIZE go out, one app each, and no more than ten times as many are open at once', async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;

    // An endless outbox: one due delivery for each of as many apps as a claim asks for.
    let made = 0;
    const claims: Array<{ limit: number; open: number; perApp: number }> = [];
    const due = (): DueDelivery => {
      made += 1;
      return {
        id: String(made),
        appId: String(made),
        url,
        disabledReason: null,
        secrets: [formatSecret(Buffer.alloc(32, 1))],
        attempts: 1,
        probe: false,
        pauses: 0,
        createdAt: new Date(),
        change: {
          id: String(made),
          txid: '1',
          jobId: '1',
          customId: null,
          metadata: null,
          recipient: null,
          oldStatus: null,
          newStatus: 'accepted',
          details: null,
          createdAt: new Date(),
        },
      };
    };
    const open = (room: AppRoom) => [...room.inFlight.values()].reduce((sum, count) => sum + count, 0);
    const wakeup = createWakeup();
    const dispatcher = createWebhookDispatcher({
      deliveries: {
        async claimDue(options: ClaimOptions) {
          claims.push({ limit: options.limit, open: open(options), perApp: Math.max(0, ...options.inFlight.values()) });
          return Array.from({ length: options.limit }, due);
        },
        async settle() {
          return true;
        },
        async nextDueAt() {
          return new Date();
        },
      },
      wakeup,
      policy: parseTargetPolicy('127.0.0.1'),
      timeoutMs: 600_000,
      retry: { baseMs: 1_000, factor: 2, maxMs: 10_000, jitter: 0 },
      retryWindowMs: 3_600_000,
      maxInFlight: 2,
      perAppInFlight: 1,
      idleCheckMs: 1_000,
      log: testLogger(),
    });
    dispatcher.start();
    let made20: number;
    try {
      await eventually(async () => (sockets.size >= 20 ? true : undefined), 90_000, 'twenty silent calls open');
      made20 = made;
    } finally {
      await dispatcher.stop(0);
      wakeup.close();
    }
    expect(made20, 'calls made').to.equal(20);
    for (const claim of claims) {
      expect(claim.open + claim.limit, 'calls open once a claim is launched').to.be.at.most(20);
      expect(claim.limit, 'a claim fills free slots only').to.be.at.most(2);
      expect(claim.perApp).to.be.at.most(1);
    }
  });
});
