// The consumers of this process, sharing one wake-up, one send gate, one Mailjet client and one
// adaptive limit on Mailjet calls in flight (domain/in-flight-limit.ts): consumer n claims only
// while n is below the limit, so the calls in flight follow Mailjet's latency and 429s, not the
// number of consumers. When the limit grows, the idle consumers are woken to claim.
//
// While the queue is caught up (the last claim was not a full batch), claims are spaced by a call's
// duration divided by half the limit (domain/claim-pacing.ts): otherwise every enqueue wakes every
// idle consumer, each takes the one or two jobs just queued, all the slots fill with near-empty
// calls, and the next messages wait a whole call for a slot. Spaced out, each claim takes what
// arrived since the last one, and about half the slots stay free: a message waits one spacing, not
// for a call to end, even while some calls run late. A full batch means a backlog: every free
// consumer claims at once again.
//
// A backlog is claimed several batches at a time while Mailjet answers fast (claim-pacing.ts), each
// consumer still sending one call of at most a batch at a time: fewer, bigger claims cost the
// database less per message.
//
// The consumers also share one budget of claimed message bytes (domain/claim-budget.ts): a consumer
// claims only while its claim fits in it, and the idle consumers are woken when there is room again.
import { hostname } from 'node:os';

import type { Bus } from '../bus.js';
import { type ClaimBudgetOptions, createClaimBudget, heldBytes } from '../domain/claim-budget.js';
import { createClaimPacing } from '../domain/claim-pacing.js';
import type { InFlightLimit } from '../domain/in-flight-limit.js';
import type { ClaimedJob } from '../domain/job.js';
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
  /** Bytes of claimed messages the process holds at most (plus one message per claim in flight). */
  claimBudget?: ClaimBudgetOptions;
  /** The sending service's lease time, in ms. */
  leaseMs: number;
  idleCheckMs: number;
  retry: RetryPolicy;
  log: Logger;
  bus: Bus;
  /** Distinguishes this process's leases from other replicas'. */
  instanceId?: string;
  /** The clock of the times the consumers write for the database (services/database-clock.ts). */
  now?: () => Date;
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

/**
 * The default claim budget: four claims of 8 MiB in flight at once. A message of up to 14 MiB is
 * still claimed (alone), and small messages are never held back by it.
 */
export const CLAIM_BUDGET: ClaimBudgetOptions = { totalBytes: 32 * 1024 * 1024, claimBytes: 8 * 1024 * 1024 };

export function createConsumerPool(options: ConsumerPoolOptions): ConsumerPool {
  const { sending, mailjet, wakeup, gate, log, bus } = options;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const consumers: WorkerLoop[] = [];
  const budget = createClaimBudget(options.claimBudget ?? CLAIM_BUDGET);
  let started = false;
  let callsInFlight = 0;
  const limit = options.inFlight;
  const pacing = limit && createClaimPacing({ batchSize: options.batchSize, callMs: () => limit.durationMs() ?? 0, slots: () => limit.current() });
  const slotsOf = (index: number): CallSlots => {
    // A consumer has one call in flight at a time: what the limit's cuts were when it started.
    let cutsAtStart = 0;
    return {
      claimDelayMs: () => {
        if (!budget.fits()) {
          // Woken when a claim or a finished batch makes room.
          return options.idleCheckMs;
        }
        if (limit === undefined || pacing === undefined) {
          return 0;
        }
        return index < limit.current() ? pacing.delayMs(performance.now()) : options.idleCheckMs;
      },
      claimed: (count) => {
        if (pacing?.claimed(count)) {
          // A backlog: the consumers waiting out a spacing claim now.
          wakeup.wake();
        }
      },
      callStarted: () => {
        callsInFlight += 1;
        cutsAtStart = limit?.cuts() ?? 0;
      },
      callEnded: (durationMs, slowDown, answeredMs) => {
        pacing?.answered(answeredMs);
        if (limit !== undefined) {
          const before = limit.current();
          const after = limit.callEnded({ durationMs, slowDown, inFlight: callsInFlight, cutsAtStart });
          if (after !== before) {
            bus.emit('mailjet:in-flight-limit', { limit: after });
          }
          // A consumer now past the limit sleeps until the idle check, and those within it slept on
          // timers set before its call deferred jobs (a 5xx, a reset): they must see when those fall due.
          if (after > before || index >= after) {
            wakeup.wake();
          }
        }
        callsInFlight -= 1;
      },
    };
  };
  /** A claim within the budget: its messages count until batchEnded(). */
  const claimWithin = async (id: string, held: { bytes: number }): Promise<ClaimedJob[]> => {
    const maxBytes = budget.reserve();
    if (maxBytes === undefined) {
      // Another consumer took the room since claimDelayMs(): this one is woken when there is some again.
      return [];
    }
    let jobs: ClaimedJob[] = [];
    try {
      jobs = await sending.claim(id, pacing?.claimSize() ?? options.batchSize, maxBytes);
      return jobs;
    } finally {
      held.bytes = jobs.reduce((sum, job) => sum + heldBytes(job.content), 0);
      // The consumers that found no room sleep until there is some; a claim that found nothing does
      // not wake them: nothing was due (a job queued or falling due later wakes the consumers
      // itself), and with more consumers than claims fit, each empty claim waking the others kept
      // an idle process claiming in a circle, about 800 claims a second.
      if (budget.settle(held.bytes) && jobs.length > 0) {
        wakeup.wake();
      }
    }
  };
  const batchEnded = (held: { bytes: number }) => {
    if (budget.release(held.bytes)) {
      wakeup.wake();
    }
    held.bytes = 0;
  };

  for (let index = 0; index < options.concurrency; index += 1) {
    const id = `${instanceId}/${index}`;
    const held = { bytes: 0 };
    consumers.push(
      createConsumer({
        id,
        batchSize: options.batchSize,
        claim: () => claimWithin(id, held),
        batchEnded: () => batchEnded(held),
        send: (body) => mailjet.send(body),
        lookup: (customId) => mailjet.findByCustomId(customId),
        record: (results) => sending.record(id, results),
        markSuppressed: (recipientIds) => sending.markSuppressed(recipientIds),
        extendLeases: (jobIds) => sending.extendLeases(id, jobIds),
        release: (jobIds, uncounted) => sending.release(id, jobIds, uncounted),
        nextRunAt: () => sending.nextRunAt(),
        poolEnded: () => sending.ended(),
        wakeup,
        gate,
        slots: slotsOf(index),
        retry: options.retry,
        leaseMs: options.leaseMs,
        idleCheckMs: options.idleCheckMs,
        log,
        bus,
        ...(options.now === undefined ? {} : { now: options.now }),
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
