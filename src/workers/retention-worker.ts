// Runs the retention (services/retention.ts) every `intervalMs` on every replica; the retention lock
// lets one of them prune at a time, and the others skip their pass. A stop ends the pass between
// two batches.
import type { Logger } from '../log.js';
import type { Retention } from '../services/retention.js';
import { createWorkerLoop, type WorkerLoop } from './loop.js';
import { createWakeup } from './wakeup.js';

export function createRetentionWorker({ retention, intervalMs, log }: { retention: Retention; intervalMs: number; log: Logger }): WorkerLoop {
  return createWorkerLoop({
    // Nothing wakes it early (but its own stop).
    wakeup: createWakeup(),
    backoff: { baseMs: intervalMs, factor: 1, maxMs: intervalMs, jitter: 0 },
    async turn(context) {
      const started = performance.now();
      const pass = await retention.prune(() => context.stopping);
      const deleted = Object.values(pass.deleted).reduce((sum, rows) => sum + rows, 0);
      if (deleted > 0 || pass.skipped) {
        log.log(
          deleted > 0 ? 'info' : 'debug',
          pass.skipped ? 'retention: another replica is pruning; this one skipped the rest of its pass' : 'retention: deleted history past its retention',
          {
            component: 'retention',
            deleted: pass.deleted,
            ms: Math.round(performance.now() - started),
          },
        );
      }
      return intervalMs;
    },
    onError(error) {
      log.warn('retention pass failed; it is tried again at the next interval', { component: 'retention', error: error.message });
    },
  });
}
