// The send gate is the consumer's last step before each Mailjet call: the leases are renewed first,
// then the gate is passed, then the call goes. A 429 that pauses the gate while this consumer is
// renewing its leases (another consumer's call got it) must hold this call back too.
import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import type { ClaimedJob } from '../../src/domain/job.js';
import type { RecipientRow } from '../../src/domain/recipient.js';
import type { RecordSummary } from '../../src/services/sending.js';
import { type ConsumerDeps,createConsumer } from '../../src/workers/consumer.js';
import { createSendGate } from '../../src/workers/send-gate.js';
import { createWakeup } from '../../src/workers/wakeup.js';
import { testLogger } from '../support/log.js';

const AT = new Date('2030-01-01T00:00:00Z');

const job: ClaimedJob = {
  id: '1',
  appId: '7',
  status: 'processing',
  customId: null,
  metadata: null,
  priority: 0,
  sendAt: null,
  runAt: AT,
  attempts: 1,
  maxAttempts: 3,
  lockedBy: 'consumer-1',
  lockedUntil: AT,
  lastError: null,
  recipientCount: 1,
  outcomeUnknown: false,
  createdAt: AT,
  updatedAt: AT,
  acceptedAt: null,
  content: { from: { email: 'app@example.com' }, subject: 'Hello', text: 'Hi' },
  lookUpOnly: false,
};

const recipient: RecipientRow = {
  id: '11',
  jobId: '1',
  position: 0,
  kind: 'to',
  email: 'a@example.com',
  name: null,
  status: 'pending',
  messageId: null,
  messageUuid: null,
  updatedAt: AT,
};

describe('consumer: the send gate comes right before the call', () => {
  it('when a 429 pauses the gate while the consumer renews its leases, then its call waits until the pause is over', async () => {
    const gate = createSendGate({ callsPerSecond: 0, random: () => 0.5 });
    let claims = 0;
    let pausedUntil: number | undefined;
    let sentAt: number | undefined;
    let recorded!: () => void;
    const done = new Promise<void>((resolve) => (recorded = resolve));
    const deps: ConsumerDeps = {
      id: 'consumer-1',
      claim: async () => (claims++ === 0 ? [job] : []),
      loadRecipients: async () => [recipient],
      send: async () => {
        sentAt = Date.now();
        return {
          status: 200,
          body: { Messages: [{ Status: 'success', To: [{ Email: 'a@example.com', MessageID: '576460765503091475', MessageUUID: 'uuid-1' }] }] },
          description: 'Mailjet 200',
        };
      },
      lookup: async () => [],
      record: async (): Promise<RecordSummary> => {
        recorded();
        return { accepted: ['1'], failed: [], deferred: [], lostLease: [] };
      },
      findSuppressed: async () => new Map(),
      markSuppressed: async () => undefined,
      extendLeases: async (ids) => {
        // Another consumer's call got a 429 during this round trip.
        gate.throttled(undefined);
        pausedUntil = gate.state().pausedUntil;
        return [...ids];
      },
      release: async (ids) => [...ids],
      nextRunAt: async () => null,
      poolEnded: () => false,
      wakeup: createWakeup(),
      gate,
      retry: { maxAttempts: 3, baseMs: 100, factor: 2, maxMs: 1_000, jitter: 0 },
      leaseMs: 60_000,
      idleCheckMs: 60_000,
      log: testLogger(),
      bus: createBus(),
    };
    const consumer = createConsumer(deps);

    void consumer.start();
    await done;
    await consumer.stop(5_000);

    expect(pausedUntil, 'the gate was paused').to.be.a('number');
    expect(sentAt, 'the call went').to.be.a('number');
    expect(sentAt!).to.be.at.least(pausedUntil!);
  });
});
