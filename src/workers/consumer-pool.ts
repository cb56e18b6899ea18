// WORKER_CONCURRENCY consumers in this process, sharing one wake-up, one send gate and one Mailjet client.
import { hostname } from 'node:os';

import type { Bus } from '../bus.js';
import { claimJobs, extendLeases, nextRunAt, releaseJobs } from '../db/jobs-repo.js';
import type { Pool } from '../db/pool.js';
import { findRecipients, setRecipientStatuses } from '../db/recipients-repo.js';
import { findSuppressed } from '../db/suppressions-repo.js';
import type { RetryPolicy } from '../domain/retry-policy.js';
import { finishedWithin } from '../finished-within.js';
import type { Logger } from '../log.js';
import type { MailjetClient } from '../mailjet/client.js';
import { recordSendResults } from '../services/sending.js';
import { type Consumer, createConsumer } from './consumer.js';
import type { SendGate } from './send-gate.js';
import type { Wakeup } from './wakeup.js';

/** How long halted consumers get to give back what they can (release unsent jobs) after the deadline. */
const HALT_GRACE_MS = 2_000;

export interface ConsumerPoolOptions {
  pool: Pool;
  mailjet: MailjetClient;
  wakeup: Wakeup;
  gate: SendGate;
  concurrency: number;
  batchSize: number;
  leaseMs: number;
  idleCheckMs: number;
  retry: RetryPolicy;
  log: Logger;
  bus: Bus;
  /** Distinguishes this process's leases from other replicas'. */
  instanceId?: string;
}

export interface ConsumerPool {
  readonly instanceId: string;
  start(): void;
  /**
   * Stops claiming and lets calls in flight finish (the rest of their batches is released unsent).
   * Resolves when every consumer has returned, or soon after `deadlineMs`: the consumers are then
   * halted (no more waiting on the database; what they hold returns through the lease reaper).
   */
  stop(deadlineMs: number): Promise<{ finished: boolean }>;
}

export function createConsumerPool(options: ConsumerPoolOptions): ConsumerPool {
  const { pool, mailjet, wakeup, gate, log, bus } = options;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const consumers: Consumer[] = [];
  const running: Promise<void>[] = [];

  for (let index = 0; index < options.concurrency; index += 1) {
    const id = `${instanceId}/${index}`;
    consumers.push(
      createConsumer({
        id,
        claim: () => claimJobs(pool, id, options.batchSize, options.leaseMs),
        loadRecipients: (jobIds) => findRecipients(pool, jobIds),
        send: (body) => mailjet.send(body),
        lookup: (customId) => mailjet.findByCustomId(customId),
        record: (recipientsByJob, results) => recordSendResults(pool, id, recipientsByJob, results),
        findSuppressed: (pairs) => findSuppressed(pool, pairs),
        markSuppressed: (recipientIds) => setRecipientStatuses(pool, new Map(recipientIds.map((rid) => [rid, 'suppressed']))),
        extendLeases: (jobIds) => extendLeases(pool, id, jobIds, options.leaseMs),
        release: (jobIds) => releaseJobs(pool, id, jobIds),
        nextRunAt: () => nextRunAt(pool),
        poolEnded: () => pool.ending,
        wakeup,
        gate,
        retry: options.retry,
        idleCheckMs: options.idleCheckMs,
        log,
        bus,
      }),
    );
  }

  return {
    instanceId,
    start() {
      if (running.length > 0) {
        return;
      }
      log.info('consumers started', { component: 'consumer-pool', instance: instanceId, concurrency: consumers.length, batchSize: options.batchSize });
      running.push(...consumers.map((consumer) => consumer.run()));
    },
    async stop(deadlineMs) {
      consumers.forEach((consumer) => consumer.stop());
      wakeup.close();
      gate.close();
      const all = Promise.all(running);
      const finished = await finishedWithin(all, deadlineMs);
      if (!finished) {
        consumers.forEach((consumer) => consumer.halt());
        // A query in progress on a frozen database cannot be cut short: past this, it is left behind.
        const returned = await finishedWithin(all, HALT_GRACE_MS);
        log.warn('consumers did not finish before the shutdown deadline; their leases will expire and the jobs return to the queue', {
          component: 'consumer-pool',
          deadlineMs,
          returnedAfterHalt: returned,
        });
      }
      running.length = 0;
      return { finished };
    },
  };
}
