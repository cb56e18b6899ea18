// WORKER_CONCURRENCY consumers in this process, sharing one wake-up and one Mailjet client.
import { hostname } from 'node:os';

import type { Bus } from '../bus.js';
import { claimJobs, nextRunAt } from '../db/jobs-repo.js';
import type { Pool } from '../db/pool.js';
import { findRecipients } from '../db/recipients-repo.js';
import { recordSendResults } from '../jobs/record-sends.js';
import type { RetryPolicy } from '../jobs/retry-policy.js';
import type { Logger } from '../log.js';
import type { MailjetClient } from '../mailjet/client.js';
import { type Consumer, createConsumer } from './consumer.js';
import type { Wakeup } from './wakeup.js';

export interface ConsumerPoolOptions {
  pool: Pool;
  mailjet: MailjetClient;
  wakeup: Wakeup;
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
  /** Stops claiming, lets in-flight batches finish, resolves when every consumer has returned. */
  stop(): Promise<void>;
}

export function createConsumerPool(options: ConsumerPoolOptions): ConsumerPool {
  const { pool, mailjet, wakeup, log, bus } = options;
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
        record: (recipientsByJob, results) => recordSendResults(pool, id, recipientsByJob, results),
        nextRunAt: () => nextRunAt(pool),
        wakeup,
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
    async stop() {
      consumers.forEach((consumer) => consumer.stop());
      wakeup.close();
      await Promise.all(running);
      running.length = 0;
    },
  };
}
