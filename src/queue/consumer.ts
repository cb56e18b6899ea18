// One consumer: claim a batch of due jobs (one statement, committed), send them to Mailjet in calls
// of at most 50 recipients, record each call's results (one transaction). No transaction is open
// while Mailjet is called. When there is nothing to do it sleeps on the wake-up (no polling).
import type { Bus } from '../bus.js';
import type { JobRow } from '../db/jobs-repo.js';
import type { RecipientRow } from '../db/recipients-repo.js';
import { coerceError } from '../errors.js';
import type { RecordSummary } from '../jobs/record-sends.js';
import type { RetryPolicy } from '../jobs/retry-policy.js';
import { decideSendResults, type SendResult } from '../jobs/send-decision.js';
import type { Logger } from '../log.js';
import { classifySendResponse, type SendResponse } from '../mailjet/outcome.js';
import { type MailjetMessage, type MailjetSendBody, messageBytes, packCalls, toMailjetMessage } from '../mailjet/payload.js';
import type { Wakeup } from './wakeup.js';

export interface ConsumerDeps {
  id: string;
  claim: () => Promise<JobRow[]>;
  loadRecipients: (jobIds: readonly string[]) => Promise<RecipientRow[]>;
  send: (body: MailjetSendBody) => Promise<SendResponse>;
  record: (recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>, results: readonly SendResult[]) => Promise<RecordSummary>;
  /** When the next claimable job falls due (null: none). */
  nextRunAt: () => Promise<Date | null>;
  wakeup: Wakeup;
  retry: RetryPolicy;
  /** Longest idle sleep: a safety net for a missed notification, not the way work is found. */
  idleCheckMs: number;
  log: Logger;
  bus: Bus;
  now?: () => Date;
  random?: () => number;
}

export interface Consumer {
  /** Runs until stop(); never rejects. */
  run(): Promise<void>;
  stop(): void;
}

const ERROR_BACKOFF_MS = [250, 500, 1_000, 2_000, 5_000, 10_000];

export function createConsumer(deps: ConsumerDeps): Consumer {
  const { id, log, bus, wakeup } = deps;
  const now = deps.now ?? (() => new Date());
  const random = deps.random ?? Math.random;
  let stopping = false;
  let failures = 0;

  async function idle(seen: number): Promise<void> {
    let delay = deps.idleCheckMs;
    try {
      const next = await deps.nextRunAt();
      if (next) {
        delay = Math.min(delay, Math.max(0, next.getTime() - now().getTime()) + 5);
      }
    } catch {
      // The claim will report the database problem; sleep the default.
    }
    await wakeup.wait(seen, delay);
  }

  async function sendCall(jobs: readonly JobRow[], messages: MailjetMessage[], recipientsByJob: Map<string, RecipientRow[]>): Promise<void> {
    const started = Date.now();
    const response = await deps.send({ Messages: messages });
    const outcome = classifySendResponse(response, messages.length, now());
    const results = decideSendResults(jobs, outcome, { policy: deps.retry, now: now(), random });
    const summary = await recordWithRetry(recipientsByJob, results);
    const recipients = jobs.reduce((sum, job) => sum + job.recipientCount, 0);
    bus.emit('mailjet:call', {
      messages: messages.length,
      recipients,
      outcome: outcome.kind === 'per-message' ? (summary.accepted.length === jobs.length ? 'accepted' : 'partial') : outcome.kind === 'transient' ? 'transient' : 'permanent',
      durationMs: Date.now() - started,
    });
    const level = outcome.kind === 'per-message' && summary.failed.length === 0 && summary.deferred.length === 0 ? 'debug' : 'warn';
    log.log(level, 'mailjet call done', {
      component: 'consumer',
      consumer: id,
      messages: messages.length,
      recipients,
      accepted: summary.accepted.length,
      failed: summary.failed,
      deferred: summary.deferred,
      ...(outcome.kind === 'per-message' ? {} : { error: outcome.error }),
    });
    if (summary.lostLease.length > 0) {
      log.warn('lease lost before the result was recorded; another consumer may send these jobs again', {
        component: 'consumer',
        consumer: id,
        jobs: summary.lostLease,
      });
    }
    for (const [status, ids] of [['accepted', summary.accepted], ['failed', summary.failed], ['deferred', summary.deferred]] as const) {
      if (ids.length > 0) {
        bus.emit('jobs:settled', { status, count: ids.length });
      }
    }
  }

  /**
   * Once Mailjet answered, its answer must be written: if the database is briefly away, keep trying
   * (the lease still protects the jobs) rather than let the lease expire and the jobs be sent again.
   */
  async function recordWithRetry(
    recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>,
    results: readonly SendResult[],
  ): Promise<RecordSummary> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await deps.record(recipientsByJob, results);
      } catch (error) {
        if (attempt >= ERROR_BACKOFF_MS.length * 2) {
          throw error;
        }
        log.warn('could not record Mailjet results; retrying', {
          component: 'consumer',
          consumer: id,
          jobs: results.map((r) => r.jobId),
          error: coerceError(error).message,
        });
        await new Promise((resolve) => setTimeout(resolve, ERROR_BACKOFF_MS[Math.min(attempt, ERROR_BACKOFF_MS.length - 1)]));
      }
    }
  }

  async function process(jobs: JobRow[]): Promise<void> {
    bus.emit('jobs:claimed', { consumer: id, count: jobs.length });
    const recipients = await deps.loadRecipients(jobs.map((job) => job.id));
    const recipientsByJob = new Map<string, RecipientRow[]>(jobs.map((job) => [job.id, []]));
    for (const recipient of recipients) {
      recipientsByJob.get(recipient.jobId)?.push(recipient);
    }
    const messages = jobs.map((job) =>
      toMailjetMessage({
        id: job.id,
        content: job.content,
        recipients: (recipientsByJob.get(job.id) ?? []).map((r) => ({ kind: r.kind, email: r.email, name: r.name ?? undefined })),
      }),
    );
    const calls = packCalls(messages.map((message, index) => ({ recipients: jobs[index]!.recipientCount, bytes: messageBytes(message) })));
    for (const indexes of calls) {
      await sendCall(
        indexes.map((index) => jobs[index]!),
        indexes.map((index) => messages[index]!),
        recipientsByJob,
      );
    }
  }

  return {
    async run() {
      while (!stopping) {
        const seen = wakeup.generation;
        try {
          const jobs = await deps.claim();
          failures = 0;
          if (jobs.length === 0) {
            await idle(seen);
          } else {
            await process(jobs);
          }
        } catch (thrown) {
          const error = coerceError(thrown);
          failures += 1;
          log.error('consumer batch failed; backing off', { component: 'consumer', consumer: id, error: error.message });
          bus.emit('consumer:error', { consumer: id, error });
          await wakeup.wait(wakeup.generation, ERROR_BACKOFF_MS[Math.min(failures - 1, ERROR_BACKOFF_MS.length - 1)]!);
        }
      }
    },
    stop() {
      stopping = true;
    },
  };
}
