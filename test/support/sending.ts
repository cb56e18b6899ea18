// The consumers' sending service as main builds it, on a test database, and a pool of consumers over it.
import { createBus } from '../../src/bus.js';
import { notifyChannels } from '../../src/db/notify.js';
import type { Pool } from '../../src/db/pool.js';
import { createMailjetClient } from '../../src/mailjet/client.js';
import { createSendingService, type SendingService, type SendingServiceDeps } from '../../src/services/sending.js';
import { type ConsumerPool, type ConsumerPoolOptions, createConsumerPool } from '../../src/workers/consumer-pool.js';
import { createSendGate } from '../../src/workers/send-gate.js';
import { createWakeup } from '../../src/workers/wakeup.js';
import { TEST_SCHEMA } from './database.js';
import { testLogger } from './log.js';
import { MAILJET_TEST_KEY, MAILJET_TEST_ORIGIN, MAILJET_TEST_SECRET } from './service.js';

/** Leases of two minutes; a bus and a log of its own unless given (what it counts and logs). */
export function testSendingService(pool: Pool, deps: Partial<Pick<SendingServiceDeps, 'bus' | 'log'>> = {}): SendingService {
  return createSendingService({ pool, channels: notifyChannels(TEST_SCHEMA), bus: deps.bus ?? createBus(), log: deps.log ?? testLogger(), leaseMs: 120_000 });
}

/**
 * Consumers over `sending`, as main wires them but for what `options` changes: one consumer, the
 * Mailjet of nock's MAILJET_TEST_ORIGIN, no send rate limit, batches of 50, leases of two minutes,
 * quick retries without jitter, and an idle check far longer than any test (a job left to it is
 * never sent in one).
 */
export function testConsumerPool(options: Partial<ConsumerPoolOptions> & Pick<ConsumerPoolOptions, 'sending'>): ConsumerPool {
  return createConsumerPool({
    mailjet: createMailjetClient({ apiKey: MAILJET_TEST_KEY, apiSecret: MAILJET_TEST_SECRET, baseUrl: MAILJET_TEST_ORIGIN, timeoutMs: 30_000 }),
    wakeup: createWakeup(),
    gate: createSendGate({ callsPerSecond: 0 }),
    concurrency: 1,
    batchSize: 50,
    leaseMs: 120_000,
    idleCheckMs: 600_000,
    retry: { maxAttempts: 3, baseMs: 100, factor: 2, maxMs: 1_000, jitter: 0, lookUpWindowMs: 86_400_000 },
    log: testLogger(),
    bus: createBus(),
    ...options,
  });
}
