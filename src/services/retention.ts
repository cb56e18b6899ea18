// Deletes the history past its retention, one replica at a time, in small batches. Each batch is its
// own short transaction that first tries the retention lock (an advisory lock of the transaction):
// when another replica holds it, this replica skips the rest of its pass. So no transaction stays
// open long, no lock outlives its batch, and a pooler in transaction mode is no problem.
//
// What goes (each kind with its own setting; 0 keeps it forever):
// - jobs settled for `jobsMs` (not queued, scheduled, processing or deferred; unchanged that long,
//   their recipients' statuses too; no webhook delivery still pending), with their recipients,
//   events, status changes and webhook deliveries (the trigger of sql/26_… and 27_… for recipients,
//   events and status changes, ON DELETE CASCADE for webhook deliveries);
// - idempotency keys `idempotencyKeysMs` after the request that used them;
// - events never matched to a message, `unmatchedEventsMs` after they were received;
// - rejected callback elements, `rejectedEventsMs` after they were received.
// Rate-limit windows are the rate-limit sweeper's (workers/rate-limit-sweeper.ts).
import type { Bus } from '../bus.js';
import { pruneUnmatchedEvents } from '../db/events-repo.js';
import { pruneIdempotencyKeys } from '../db/idempotency-repo.js';
import { pruneJobsWindow, type PruneWindow } from '../db/jobs-repo.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { pruneRejectedEvents } from '../db/rejected-events-repo.js';
import { tryRetentionLock } from '../db/retention-lock.js';
import { isStatementCancelled } from '../domain/errors.js';

export interface RetentionPolicy {
  /** How long each kind of history is kept, in ms; 0 keeps it forever. */
  jobsMs: number;
  idempotencyKeysMs: number;
  unmatchedEventsMs: number;
  rejectedEventsMs: number;
  /** Rows deleted (jobs: looked at, fewer after a window ran past the statement timeout) per statement. */
  batchSize: number;
}

/** The tables a pass deletes from, as the metric and the log name them. */
export type PrunedTable = 'email_send_jobs' | 'idempotency_keys' | 'email_events' | 'rejected_events';

export interface PassResult {
  /** Another replica held the retention lock: this pass stopped there. */
  skipped: boolean;
  deleted: Record<PrunedTable, number>;
}

export interface Retention {
  /** One pass over every kind of history; `stopping` is asked between batches. */
  prune(stopping: () => boolean): Promise<PassResult>;
}

class LockedElsewhere extends Error {}

export function createRetention({ pool, policy, bus }: { pool: Pool; policy: RetentionPolicy; bus: Bus }): Retention {
  /** One batch in its own transaction, under the retention lock. */
  async function batch<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return withTransaction(
      pool,
      async (tx) => {
        if (!(await tryRetentionLock(tx))) {
          throw new LockedElsewhere();
        }
        return work(tx);
      },
      // A batch of jobs deletes their recipients, events and changes too: more than a point query.
      { bulk: true },
    );
  }

  /**
   * Deletes jobs window after window until a window reaches the end of the table or jobs within
   * retention. A window deletes its jobs' whole history: 1,000 jobs of 50 recipients with 10 events
   * each took 6 to 11 s, so a window can run past the statement timeout, and failed at the same
   * place at every pass, the kinds pruned after the jobs with it. A window cancelled so is halved
   * and tried again, and grows back after each one that fits.
   */
  async function pruneJobs(stopping: () => boolean, count: (rows: number) => void): Promise<void> {
    let afterId = '0';
    let size = policy.batchSize;
    while (!stopping()) {
      let window: PruneWindow;
      try {
        window = await batch((tx) => pruneJobsWindow(tx, afterId, policy.jobsMs, size));
      } catch (error) {
        if (size > 1 && isStatementCancelled(error)) {
          size = Math.floor(size / 2);
          continue;
        }
        throw error;
      }
      count(window.deleted);
      if (window.done || window.lastId === null) {
        return;
      }
      afterId = window.lastId;
      size = Math.min(policy.batchSize, size * 2);
    }
  }

  /** Deletes with `prune` until a batch deletes less than a full batch. */
  async function pruneRows(stopping: () => boolean, count: (rows: number) => void, prune: (tx: Queryable) => Promise<number>): Promise<void> {
    while (!stopping()) {
      const deleted = await batch(prune);
      count(deleted);
      if (deleted < policy.batchSize) {
        return;
      }
    }
  }

  return {
    async prune(stopping) {
      const deleted: Record<PrunedTable, number> = { email_send_jobs: 0, idempotency_keys: 0, email_events: 0, rejected_events: 0 };
      const count = (table: PrunedTable) => (rows: number) => {
        deleted[table] += rows;
        if (rows > 0) {
          bus.emit('retention:pruned', { table, rows });
        }
      };
      const { batchSize } = policy;
      try {
        if (policy.jobsMs > 0) {
          await pruneJobs(stopping, count('email_send_jobs'));
        }
        if (policy.idempotencyKeysMs > 0) {
          await pruneRows(stopping, count('idempotency_keys'), (tx) => pruneIdempotencyKeys(tx, policy.idempotencyKeysMs, batchSize));
        }
        if (policy.unmatchedEventsMs > 0) {
          await pruneRows(stopping, count('email_events'), (tx) => pruneUnmatchedEvents(tx, policy.unmatchedEventsMs, batchSize));
        }
        if (policy.rejectedEventsMs > 0) {
          await pruneRows(stopping, count('rejected_events'), (tx) => pruneRejectedEvents(tx, policy.rejectedEventsMs, batchSize));
        }
      } catch (error) {
        if (error instanceof LockedElsewhere) {
          return { skipped: true, deleted };
        }
        throw error;
      }
      return { skipped: false, deleted };
    },
  };
}
