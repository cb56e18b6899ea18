// The dispatcher's slots against silent receivers, with an outbox of its own: a call unanswered for
// a while gives up its slot to the next app's delivery, but the calls open at once stay bounded.
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

import { expect } from 'chai';

import type { AppRoom, ClaimOptions } from '../../src/db/webhook-deliveries-repo.js';
import { parseTargetPolicy } from '../../src/domain/target-policy.js';
import type { DeliveryOutcome, DueDelivery } from '../../src/domain/webhook-delivery.js';
import { formatSecret } from '../../src/domain/webhook-signature.js';
import type { WebhookDeliveries } from '../../src/services/webhooks.js';
import { createWakeup, type Wakeup } from '../../src/workers/wakeup.js';
import { createWebhookDispatcher, type WebhookDispatcher } from '../../src/workers/webhook-dispatcher.js';
import { testLogger } from '../support/log.js';
import { eventually } from '../support/service.js';

/** A due delivery of app `id` (its own app), to `url`. */
function dueDelivery(id: string, url: string): DueDelivery {
  return {
    id,
    appId: id,
    url,
    disabledReason: null,
    secrets: [formatSecret(Buffer.alloc(32, 1))],
    attempts: 1,
    probe: false,
    pauses: 0,
    createdAt: new Date(),
    change: {
      id,
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
}

/** A dispatcher of 2 slots, 1 per app, over `deliveries`, whose calls are never cut by their deadline. */
function dispatcherOf(wakeup: Wakeup, deliveries: WebhookDeliveries): WebhookDispatcher {
  return createWebhookDispatcher({
    deliveries,
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
}

describe('webhook dispatcher slots', function () {
  this.timeout(120_000);
  let server: Server | undefined;
  const sockets = new Set<Socket>();

  afterEach(async () => {
    sockets.forEach((socket) => socket.destroy());
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  async function silentUrl(): Promise<string> {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  }

  it('when every app’s receiver is silent, then calls past WEBHOOK_BATCH_SIZE go out, one app each, and no more than ten times as many are open at once', async () => {
    const url = await silentUrl();

    // An endless outbox: one due delivery for each of as many apps as a claim asks for.
    let made = 0;
    const claims: Array<{ limit: number; open: number; perApp: number }> = [];
    const due = () => dueDelivery(String((made += 1)), url);
    const open = (room: AppRoom) => [...room.inFlight.values()].reduce((sum, count) => sum + count, 0);
    const wakeup = createWakeup();
    const dispatcher = dispatcherOf(wakeup, {
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

  it('when a claim made before stop() launches its deliveries after the stop deadline, then they are cut short at once and due again, not left open', async () => {
    const url = await silentUrl();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let claimed = false;
    const settled: DeliveryOutcome[] = [];
    const wakeup = createWakeup();
    const dispatcher = dispatcherOf(wakeup, {
      async claimDue() {
        if (claimed) {
          return [];
        }
        claimed = true;
        // A claim slow to come back (a loaded database): it returns after stop()'s deadline.
        await released;
        return [dueDelivery('1', url)];
      },
      async settle(_delivery, outcome) {
        settled.push(outcome);
        return true;
      },
      async nextDueAt() {
        return null;
      },
    });
    dispatcher.start();
    await eventually(async () => (claimed ? true : undefined), 30_000, 'the claim under way');
    const stopped = dispatcher.stop(50);
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    await stopped;
    wakeup.close();
    const [outcome] = await eventually(async () => (settled.length > 0 ? settled : undefined), 30_000, 'the late delivery recorded');
    expect(outcome).to.deep.include({ kind: 'retry', statusCode: null });
    expect(outcome!.kind === 'retry' && outcome!.error).to.match(/^cut short: jetpost stopped/);
  });
});
