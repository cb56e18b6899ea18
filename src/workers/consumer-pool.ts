// The consumers of this process, sharing one wake-up, one send gate, one Mailjet client and one
// adaptive limit on Mailjet calls in flight (domain/in-flight-limit.ts): consumer n claims only
// while n is below the limit, so the calls in flight follow Mailjet's latency and 429s, not the
// number of consumers. When the limit grows, the idle consumers are woken to claim.
//
// While the queue is caught up (the last claim was not a full batch), claims are spaced by a call's
// duration divided by the limit (domain/claim-pacing.ts): otherwise every enqueue wakes every idle
// consumer, each takes the one or two jobs just queued, all the slots fill with near-empty calls,
// and the next messages wait a whole call for a slot. Spaced out, each claim takes what arrived
// since the last one and a slot frees up about when the next claim is due: a message waits at most
// one spacing. A full batch means a backlog: every free consumer claims at once again.
import { hostname } from 'node:os';

import type { Bus } from '../bus.js';
import { createClaimPacing } from '../domain/claim-pacing.js';
import type { InFlightLimit } from '../domain/in-flight-limit.js';
import type { RetryPolicy } from '../domain/retry-policy.js';
import type { Logger } from '../log.js';
import type { MailjetClient } from '../mailjet/client.js';
import type { SendingService } from '../services/sending.js';
import { type CallSlots, createConsumer } from './consumer.js';
import type { WorkerLoop } from './loop.js';
import type { SendGate } from './send-gate.js';
import type { Wakeup } from './wakeup.js';

export interface ConsumerPoolOptions {
  sending: SendingService;
  mailjet: MailjetClient;
  wakeup: Wakeup;
  gate: SendGate;
  concurrency: number;
  /** How many of the consumers may work at once; absent: all of them. */
  inFlight?: InFlightLimit;
  batchSize: number;
  /** The sending service's lease time, in ms. */
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
  const { sending, mailjet, wakeup, gate, log, bus } = options;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const consumers: WorkerLoop[] = [];
  let started = false;
  let callsInFlight = 0;
  const limit = options.inFlight;
  const pacing = limit && createClaimPacing({ batchSize: options.batchSize, spacingMs: () => (limit.durationMs() ?? 0) / limit.current() });
  const slotsOf = (index: number): CallSlots | undefined => {
    return (
      limit &&
      pacing && {
        claimDelayMs: () => (index < limit.current() ? pacing.delayMs(performance.now()) : options.idleCheckMs),
        claimed: (count) => {
          if (pacing.claimed(count)) {
            // A backlog: the consumers waiting out a spacing claim now.
            wakeup.wake();
          }
        },
        callStarted: () => {
          callsInFlight += 1;
        },
        callEnded: (durationMs, slowDown) => {
          const before = limit.current();
          const after = limit.callEnded({ durationMs, slowDown, inFlight: callsInFlight });
          callsInFlight -= 1;
          if (after !== before) {
            bus.emit('mailjet:in-flight-limit', { limit: after });
            if (after > before) {
              wakeup.wake();
            }
          }
        },
      }
    );
  };

  for (let index = 0; index < options.concurrency; index += 1) {
    const id = `${instanceId}/${index}`;
    const slots = slotsOf(index);
    consumers.push(
      createConsumer({
        id,
        claim: () => sending.claim(id, options.batchSize),
        send: (body) => mailjet.send(body),
        lookup: (customId) => mailjet.findByCustomId(customId),
        record: (recipientsByJob, results) => sending.record(id, recipientsByJob, results),
        markSuppressed: (recipientIds) => sending.markSuppressed(recipientIds),
        extendLeases: (jobIds) => sending.extendLeases(id, jobIds),
        release: (jobIds) => sending.release(id, jobIds),
        nextRunAt: () => sending.nextRunAt(),
        poolEnded: () => sending.ended(),
        wakeup,
        gate,
        ...(slots && { slots }),
        retry: options.retry,
        leaseMs: options.leaseMs,
        idleCheckMs: options.idleCheckMs,
        log,
        bus,
      }),
    );
  }

  return {
    instanceId,
    start() {
      if (started) {
        return;
      }
      started = true;
      log.info('consumers started', {
        component: 'consumer-pool',
        instance: instanceId,
        concurrency: consumers.length,
        inFlightLimit: options.inFlight?.current(),
        batchSize: options.batchSize,
      });
      consumers.forEach((consumer) => void consumer.start());
    },
    async stop(deadlineMs) {
      const stopping = consumers.map((consumer) => consumer.stop(deadlineMs));
      gate.close();
      const results = await Promise.all(stopping);
      const finished = results.every((result) => result.finished);
      if (!finished) {
        // A query in progress on a frozen database cannot be cut short: past the halt grace, it is left behind.
        log.warn('consumers did not finish before the shutdown deadline; their leases will expire and the jobs return to the queue', {
          component: 'consumer-pool',
          deadlineMs,
          returnedAfterHalt: results.every((result) => result.returnedAfterHalt),
        });
      }
      return { finished };
    },
  };
}
