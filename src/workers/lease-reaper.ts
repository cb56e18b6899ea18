// Returns jobs whose lease expired to the queue: their consumer's process died or lost the database
// mid-batch. Every replica runs one; SKIP LOCKED keeps them out of each other's way. A returned job
// is marked "outcome unknown" so that its next consumer first asks Mailjet whether it was sent.
import { LEASE_EXPIRED_ERROR, reapExpiredLeases } from '../db/jobs-repo.js';
import { type Pool, withTransaction } from '../db/pool.js';
import { closePendingRecipients } from '../db/recipients-repo.js';
import { recordStatusChanges } from '../db/status-changes-repo.js';
import { coerceError } from '../domain/errors.js';
import type { Logger } from '../log.js';

export interface LeaseReaper {
  /** One pass; returns how many jobs it returned or failed. */
  reapOnce(): Promise<number>;
  stop(): Promise<void>;
}

export interface LeaseReaperOptions {
  pool: Pool;
  intervalMs: number;
  /** Called when jobs went back to the queue, to wake the consumers. */
  onRequeued: () => void;
  log: Logger;
}

const BATCH = 500;

export function startLeaseReaper({ pool, intervalMs, onRequeued, log }: LeaseReaperOptions): LeaseReaper {
  let running: Promise<number> | undefined;
  let stopped = false;

  async function reapOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      // Bulk: after a crash a pass returns up to BATCH jobs with their recipients and status changes.
      const reaped = await withTransaction(pool, async (tx) => {
        const rows = await reapExpiredLeases(tx, BATCH);
        const failed = rows.filter((row) => row.status === 'failed').map((row) => row.id);
        await closePendingRecipients(tx, failed, 'failed');
        await recordStatusChanges(
          tx,
          failed.map((jobId) => ({ jobId, recipientId: null, oldStatus: 'processing', newStatus: 'failed', details: { error: LEASE_EXPIRED_ERROR } })),
        );
        return rows;
      }, { bulk: true });
      if (reaped.length > 0) {
        log.warn('returned jobs whose lease expired (a consumer died mid-batch; they may have been sent)', {
          component: 'lease-reaper',
          requeued: reaped.filter((row) => row.status === 'deferred').map((row) => row.id),
          failed: reaped.filter((row) => row.status === 'failed').map((row) => row.id),
        });
        onRequeued();
      }
      total += reaped.length;
      if (reaped.length < BATCH || stopped) {
        return total;
      }
    }
  }

  const timer = setInterval(() => {
    if (running) {
      return;
    }
    running = reapOnce()
      .catch((error: unknown) => {
        log.warn('lease reaper pass failed', { component: 'lease-reaper', error: coerceError(error).message });
        return 0;
      })
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();

  return {
    reapOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
