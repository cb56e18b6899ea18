// Writes this process's throughput counts (services/throughput.ts) every few seconds. A failed write
// keeps the counts for the next turn, so it is logged at debug level only: the chart of another
// replica lags until then, this one's does not (it adds what is not written yet).
import type { Logger } from '../log.js';
import type { ThroughputCounter } from '../services/throughput.js';
import { createWorkerLoop, type WorkerLoop } from './loop.js';
import { createWakeup } from './wakeup.js';

/** How often counts are written: how long another replica's counts may lag in a chart. */
export const THROUGHPUT_FLUSH_MS = 5_000;

export function createThroughputFlusher({ throughput, log }: { throughput: Pick<ThroughputCounter, 'flush'>; log: Logger }): WorkerLoop {
  return createWorkerLoop({
    // Nothing wakes it early (but its own stop).
    wakeup: createWakeup(),
    backoff: { baseMs: THROUGHPUT_FLUSH_MS, factor: 1, maxMs: THROUGHPUT_FLUSH_MS, jitter: 0 },
    async turn() {
      await throughput.flush();
      return THROUGHPUT_FLUSH_MS;
    },
    onError(error) {
      log.debug('could not write the throughput counts; they are kept for the next turn', { component: 'throughput', error: error.message });
    },
  });
}
