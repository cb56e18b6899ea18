// Returns jobs whose lease expired to the queue: their consumer's process died or lost the database
// mid-batch. Every replica runs one; SKIP LOCKED keeps them out of each other's way. A returned job
// is marked "outcome unknown" so that its next consumer first asks Mailjet whether it was sent.
// A worker loop whose turn is one pass of at most BATCH jobs, every `intervalMs`.
import type { Backoff } from '../domain/retry-policy.js';
import type { Logger } from '../log.js';
import type { SendingService } from '../services/sending.js';
import { createWorkerLoop, type WorkerLoop } from './loop.js';
import { createWakeup } from './wakeup.js';

export interface LeaseReaperOptions {
  sending: Pick<SendingService, 'reapExpiredLeases'>;
  intervalMs: number;
  /** Called after a pass that returned jobs (to wake the consumers): how many were requeued, how many failed. */
  onRequeued: (reaped: { requeued: number; failed: number }) => void;
  log: Logger;
}

const BATCH = 500;
/** After a failed pass: no sooner than the next interval would have been, no later than a minute. */
const backoffFor = (intervalMs: number): Backoff => ({ baseMs: intervalMs, factor: 2, maxMs: Math.max(intervalMs, 60_000), jitter: 0 });

export function createLeaseReaper({ sending, intervalMs, onRequeued, log }: LeaseReaperOptions): WorkerLoop {
  return createWorkerLoop({
    // Nothing wakes the reaper early: it looks every interval (and is woken by its own stop).
    wakeup: createWakeup(),
    backoff: backoffFor(intervalMs),
    async turn() {
      const reaped = await sending.reapExpiredLeases(BATCH);
      if (reaped.length > 0) {
        const requeued = reaped.filter((row) => row.status === 'deferred').map((row) => row.id);
        const failed = reaped.filter((row) => row.status === 'failed').map((row) => row.id);
        log.warn('returned jobs whose lease expired (a consumer died mid-batch; they may have been sent)', { component: 'lease-reaper', requeued, failed });
        onRequeued({ requeued: requeued.length, failed: failed.length });
      }
      // A full batch: there may be more (after a crash), so go on at once.
      return reaped.length < BATCH ? intervalMs : 0;
    },
    onError(error) {
      log.warn('lease reaper pass failed', { component: 'lease-reaper', error: error.message });
    },
  });
}
