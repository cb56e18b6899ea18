// One consumer: claim a batch of due jobs (one statement, committed), send them to Mailjet in calls
// of at most 50 recipients, record each call's results (one transaction). No transaction is open
// while Mailjet is called. When there is nothing to do it sleeps on the wake-up (no polling).
//
// Before each call the consumer passes the process's send gate (rate limit, 429 pause, 401 stop)
// and renews the leases of the jobs still to send. A job whose last attempt ended without a clear
// answer is first looked up at Mailjet by its CustomID, so a timeout does not become a duplicate.
// On stop, calls in flight finish and the jobs not yet sent are released unsent. On halt (the
// shutdown deadline) nothing waits on the database any more: what could not be recorded or released
// keeps its lease, and the lease reaper returns it marked "outcome unknown" (looked up, not resent).
import { setTimeout as sleep } from 'node:timers/promises';

import type { Bus } from '../bus.js';
import type { ClaimedJob, JobRow } from '../db/jobs-repo.js';
import type { RecipientRow } from '../db/recipients-repo.js';
import { suppressionKey } from '../db/suppressions-repo.js';
import { coerceError } from '../domain/errors.js';
import { type AcceptedRecipient, classifySendResponse, type SendResponse } from '../domain/mailjet-outcome.js';
import { customIdForJob, type MailjetMessage, type MailjetSendBody, messageBytes, packCalls, toMailjetMessage } from '../domain/mailjet-payload.js';
import type { RetryPolicy } from '../domain/retry-policy.js';
import { decideSendResults, giveUpAfterLookUp, retryOrFail, type SendResult } from '../domain/send-decision.js';
import type { Logger } from '../log.js';
import type { FoundMessage } from '../mailjet/client.js';
import type { RecordSummary } from '../services/sending.js';
import type { SendGate } from './send-gate.js';
import type { Wakeup } from './wakeup.js';

export interface ConsumerDeps {
  id: string;
  claim: () => Promise<ClaimedJob[]>;
  loadRecipients: (jobIds: readonly string[]) => Promise<RecipientRow[]>;
  send: (body: MailjetSendBody) => Promise<SendResponse>;
  /** Mailjet's messages for a CustomID; undefined when Mailjet could not be asked. */
  lookup: (customId: string) => Promise<FoundMessage[] | undefined>;
  record: (recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>, results: readonly SendResult[]) => Promise<RecordSummary>;
  /** The suppressed (app, address) pairs among those given (see suppressionKey). */
  findSuppressed: (pairs: ReadonlyArray<{ appId: string; email: string }>) => Promise<Map<string, string>>;
  /** Marks recipients left out of a send because their address is suppressed. */
  markSuppressed: (recipientIds: readonly string[]) => Promise<void>;
  /** Renews the leases; returns the ids still held. */
  extendLeases: (jobIds: readonly string[]) => Promise<string[]>;
  /** Gives unsent jobs back to the queue without counting the attempt. */
  release: (jobIds: readonly string[]) => Promise<string[]>;
  /** When the next claimable job falls due (null: none). */
  nextRunAt: () => Promise<Date | null>;
  /** True once the pool has been ended for good: a failed query is then not worth retrying. */
  poolEnded: () => boolean;
  wakeup: Wakeup;
  gate: SendGate;
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
  /** Stops claiming; the batch in hand stops at its next call. */
  stop(): void;
  /** Stops waiting on the database too (the shutdown deadline): see the top of this file. */
  halt(): void;
}

const ERROR_BACKOFF_MS = [250, 500, 1_000, 2_000, 5_000];

interface Batch {
  jobs: ClaimedJob[];
  recipientsByJob: Map<string, RecipientRow[]>;
}

export function createConsumer(deps: ConsumerDeps): Consumer {
  const { id, log, bus, wakeup, gate } = deps;
  const now = deps.now ?? (() => new Date());
  const random = deps.random ?? Math.random;
  let stopping = false;
  const halted = new AbortController();
  let failures = 0;
  /** A pause that halt() cuts short. */
  const pause = (ms: number) => sleep(ms, undefined, { signal: halted.signal }).catch(() => undefined);

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

  /**
   * Once Mailjet answered, its answer must be written: while the database is away, keep trying (the
   * lease protects the jobs, and recording "accepted" also wins over a reaped, unclaimed job). Until
   * halt() or a pool ended for good: then the jobs are left to the lease reaper, and throws.
   */
  async function recordWithRetry(batch: Batch, results: readonly SendResult[]): Promise<RecordSummary> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await deps.record(batch.recipientsByJob, results);
      } catch (thrown) {
        const error = coerceError(thrown);
        const fields = { component: 'consumer', consumer: id, jobs: results.map((r) => r.jobId), attempt: attempt + 1, error: error.message };
        if (halted.signal.aborted || deps.poolEnded()) {
          log.warn('gave up recording Mailjet results: shutting down. The lease reaper returns these jobs, and they are looked up at Mailjet, not resent', fields);
          throw new Error('shut down before the Mailjet results were recorded', { cause: thrown });
        }
        log.warn('could not record Mailjet results; retrying', fields);
        await pause(ERROR_BACKOFF_MS[Math.min(attempt, ERROR_BACKOFF_MS.length - 1)]!);
      }
    }
  }

  function report(summary: RecordSummary, extra: Record<string, unknown>): void {
    const clean = summary.failed.length === 0 && summary.deferred.length === 0 && summary.lostLease.length === 0;
    log.log(clean ? 'debug' : 'warn', 'send results recorded', {
      component: 'consumer',
      consumer: id,
      accepted: summary.accepted.length,
      failed: summary.failed,
      deferred: summary.deferred,
      ...extra,
    });
    if (summary.lostLease.length > 0) {
      log.warn('lease lost before the result was recorded; another consumer may send these jobs again', {
        component: 'consumer',
        consumer: id,
        jobs: summary.lostLease,
      });
    }
    for (const [status, ids] of [
      ['accepted', summary.accepted],
      ['failed', summary.failed],
      ['deferred', summary.deferred],
    ] as const) {
      if (ids.length > 0) {
        bus.emit('jobs:settled', { status, count: ids.length });
      }
    }
  }

  /**
   * Jobs whose last attempt may have been sent are looked up at Mailjet first: one Mailjet has is
   * recorded, not resent; one Mailjet could not be asked about waits (never sent blindly); one with
   * its attempts spent that Mailjet does not have fails. The rest go on to be sent.
   */
  async function reconcile(batch: Batch): Promise<ClaimedJob[]> {
    const results: SendResult[] = [];
    const context = { policy: deps.retry, now: now(), random, unauthorizedRetryAt: now() };
    for (const job of batch.jobs.filter((candidate) => candidate.outcomeUnknown)) {
      if (stopping) {
        // The rest is released unsent below, still marked outcome unknown.
        break;
      }
      const found = await deps.lookup(customIdForJob(job.id));
      const recipients = matchFound(batch.recipientsByJob.get(job.id) ?? [], found ?? []);
      if (recipients.length > 0) {
        results.push({ jobId: job.id, kind: 'accepted', recipients });
      } else if (job.lookUpOnly) {
        results.push(giveUpAfterLookUp(job, found !== undefined));
      } else if (found === undefined) {
        results.push(retryOrFail(job, `could not ask Mailjet whether the last attempt was delivered (${job.lastError ?? 'no answer'})`, context, { outcomeUnknown: true }));
      }
    }
    if (results.length > 0) {
      const summary = await recordWithRetry(batch, results);
      report(summary, { reconciled: results.map((r) => `${r.jobId}:${r.kind}`) });
    }
    const done = new Set(results.map((r) => r.jobId));
    return batch.jobs.filter((job) => !done.has(job.id));
  }

  /**
   * Suppressed addresses are left out of the send (their recipients marked `suppressed`); a job with
   * no To address left fails with reason "suppressed", without calling Mailjet. Returns the jobs to send.
   */
  async function leaveOutSuppressed(batch: Batch, jobs: ClaimedJob[]): Promise<ClaimedJob[]> {
    const suppressed = await deps.findSuppressed(
      jobs.flatMap((job) => (batch.recipientsByJob.get(job.id) ?? []).map((r) => ({ appId: job.appId, email: r.email }))),
    );
    if (suppressed.size === 0) {
      return jobs;
    }
    const leftOut: RecipientRow[] = [];
    const failed: SendResult[] = [];
    for (const job of jobs) {
      const rows = batch.recipientsByJob.get(job.id) ?? [];
      const isSuppressed = (row: RecipientRow) => suppressed.has(suppressionKey(job.appId, row.email));
      const out = rows.filter(isSuppressed);
      if (out.length === 0) {
        continue;
      }
      leftOut.push(...out);
      const kept = rows.filter((row) => !isSuppressed(row));
      batch.recipientsByJob.set(job.id, kept);
      if (!kept.some((row) => row.kind === 'to')) {
        const reasons = out.map((row) => `${row.email} (${suppressed.get(suppressionKey(job.appId, row.email))})`).join(', ');
        failed.push({ jobId: job.id, kind: 'failed', error: `suppressed: ${reasons}` });
      }
    }
    await deps.markSuppressed(leftOut.map((row) => row.id));
    if (failed.length > 0) {
      report(await recordWithRetry(batch, failed), { suppressed: failed.map((r) => r.jobId) });
    }
    const done = new Set(failed.map((r) => r.jobId));
    return jobs.filter((job) => !done.has(job.id));
  }

  async function sendCall(batch: Batch, jobs: readonly JobRow[], messages: MailjetMessage[]): Promise<void> {
    const started = Date.now();
    const response = await deps.send({ Messages: messages });
    const outcome = classifySendResponse(response, messages.length, now());
    let unauthorizedRetryAt = now();
    if (outcome.kind === 'transient' && outcome.rateLimited) {
      const pauseMs = gate.throttled(outcome.retryAfterMs);
      log.warn('Mailjet is rate limiting (429): every consumer of this process pauses', { component: 'consumer', consumer: id, pauseMs });
    } else if (outcome.kind === 'unauthorized') {
      unauthorizedRetryAt = new Date(gate.unauthorized(outcome.error));
      log.error(
        'Mailjet rejected the API key (401): sending is stopped and /readyz reports not ready. Check MAILJET_API_KEY and MAILJET_API_SECRET; a probe call is tried again later',
        { component: 'consumer', consumer: id, retryAt: unauthorizedRetryAt.toISOString(), error: outcome.error },
      );
    } else if (outcome.kind !== 'transient') {
      gate.succeeded();
    }
    const results = decideSendResults(jobs, outcome, { policy: deps.retry, now: now(), random, unauthorizedRetryAt });
    const summary = await recordWithRetry(batch, results);
    const recipients = jobs.reduce((sum, job) => sum + recipientsToSend(batch, job), 0);
    bus.emit('mailjet:call', {
      messages: messages.length,
      recipients,
      outcome:
        outcome.kind === 'per-message' ? (summary.accepted.length === jobs.length ? 'accepted' : 'partial') : outcome.kind === 'transient' ? 'transient' : 'permanent',
      durationMs: Date.now() - started,
    });
    report(summary, { messages: messages.length, recipients, ...(outcome.kind === 'per-message' ? {} : { error: outcome.error }) });
  }

  async function releaseUnsent(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) {
      return;
    }
    try {
      const released = await deps.release(jobIds);
      log.info('released unsent jobs', { component: 'consumer', consumer: id, jobs: released });
    } catch (error) {
      // Their leases will expire and the reaper will return them.
      log.warn('could not release unsent jobs', { component: 'consumer', consumer: id, jobs: jobIds, error: coerceError(error).message });
    }
  }

  async function process(claimed: ClaimedJob[]): Promise<void> {
    bus.emit('jobs:claimed', { consumer: id, count: claimed.length });
    const recipients = await deps.loadRecipients(claimed.map((job) => job.id));
    const batch: Batch = { jobs: claimed, recipientsByJob: new Map(claimed.map((job) => [job.id, []])) };
    for (const recipient of recipients) {
      batch.recipientsByJob.get(recipient.jobId)?.push(recipient);
    }
    const jobs = await leaveOutSuppressed(batch, await reconcile(batch));
    const messages = jobs.map((job) =>
      toMailjetMessage({
        id: job.id,
        content: job.content,
        recipients: (batch.recipientsByJob.get(job.id) ?? []).map((r) => ({ kind: r.kind, email: r.email, name: r.name ?? undefined })),
      }),
    );
    const calls = packCalls(messages.map((message, index) => ({ recipients: recipientsToSend(batch, jobs[index]!), bytes: messageBytes(message) })));
    for (const [callIndex, indexes] of calls.entries()) {
      const unsent = () => calls.slice(callIndex).flat().map((index) => jobs[index]!.id);
      const callRecipients = indexes.reduce((sum, index) => sum + recipientsToSend(batch, jobs[index]!), 0);
      if (stopping || !(await gate.acquire(callRecipients)) || stopping) {
        await releaseUnsent(unsent());
        return;
      }
      // Renewing the leases also tells which jobs are still ours: a reaped one may be another's now.
      const held = new Set(await deps.extendLeases(unsent()));
      const sendable = indexes.filter((index) => held.has(jobs[index]!.id));
      if (sendable.length > 0) {
        try {
          await sendCall(
            batch,
            sendable.map((index) => jobs[index]!),
            sendable.map((index) => messages[index]!),
          );
        } catch (error) {
          // This call's results are the lease reaper's now; the later calls were never sent.
          await releaseUnsent(calls.slice(callIndex + 1).flat().map((index) => jobs[index]!.id));
          throw error;
        }
      }
    }
  }

  return {
    async run() {
      while (!stopping && !deps.poolEnded()) {
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
          if (halted.signal.aborted) {
            log.warn('consumer halted at the shutdown deadline; the lease reaper returns what it held', { component: 'consumer', consumer: id, error: error.message });
            break;
          }
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
    halt() {
      stopping = true;
      halted.abort();
    },
  };
}

/** The recipients a job's message goes to: its own, less any left out as suppressed. */
function recipientsToSend(batch: Batch, job: JobRow): number {
  return batch.recipientsByJob.get(job.id)?.length ?? 0;
}

/** Pairs the messages Mailjet found for a job with its recipients, by address. */
function matchFound(rows: readonly RecipientRow[], found: readonly FoundMessage[]): AcceptedRecipient[] {
  const out: AcceptedRecipient[] = [];
  for (const row of rows) {
    const match = found.find((message) => message.email.toLowerCase() === row.email.toLowerCase());
    if (match) {
      out.push({ kind: row.kind, email: row.email, messageId: match.messageId, messageUuid: match.messageUuid });
    }
  }
  return out;
}
