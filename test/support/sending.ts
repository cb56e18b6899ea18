// The consumers' sending service as main builds it, on a test database.
import { createBus } from '../../src/bus.js';
import { notifyChannels } from '../../src/db/notify.js';
import type { Pool } from '../../src/db/pool.js';
import { createSendingService, type SendingService, type SendingServiceDeps } from '../../src/services/sending.js';
import { TEST_SCHEMA } from './database.js';
import { testLogger } from './log.js';

/** Leases of two minutes; a bus and a log of its own unless given (what it counts and logs). */
export function testSendingService(pool: Pool, deps: Partial<Pick<SendingServiceDeps, 'bus' | 'log'>> = {}): SendingService {
  return createSendingService({ pool, channels: notifyChannels(TEST_SCHEMA), bus: deps.bus ?? createBus(), log: deps.log ?? testLogger(), leaseMs: 120_000 });
}
