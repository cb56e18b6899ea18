// Deletes the request counters whose window is long over (rate_limits), every minute. A missed pass
// only leaves a few dead rows, so a failed one is logged at debug level and tried at the next turn.
import type { Logger } from '../log.js';
import type { RateLimitCounters } from '../services/rate-limits.js';
import { createWorkerLoop, type WorkerLoop } from './loop.js';
import { createWakeup } from './wakeup.js';

const INTERVAL_MS = 60_000;

export function createRateLimitSweeper({ rateLimits, log }: { rateLimits: Pick<RateLimitCounters, 'deleteExpired'>; log: Logger }): WorkerLoop {
  return createWorkerLoop({
    // Nothing wakes the sweeper early (but its own stop).
    wakeup: createWakeup(),
    backoff: { baseMs: INTERVAL_MS, factor: 1, maxMs: INTERVAL_MS, jitter: 0 },
    async turn() {
      await rateLimits.deleteExpired();
      return INTERVAL_MS;
    },
    onError(error) {
      log.debug('could not delete expired rate-limit windows', { component: 'rate-limit', error: error.message });
    },
  });
}
