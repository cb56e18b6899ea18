// One consumer: a worker loop (loop.ts) whose turn claims a batch of due jobs (one statement,
// committed), sends them to Mailjet in calls of at most 50 recipients, and records each call's
// results (one transaction). No transaction is open while Mailjet is called. When there is nothing
// to do it idles on the wake-up (no polling). What to do with a batch is decided by the pure
// planners of domain/send-plan.ts; this file is the I/O between them.
//
// Before each call the consumer renews the leases of the jobs still to send, then passes the
// process's send gate (rate limit, 429 pause, 401 stop), and calls at once: a 429 seen by another
// consumer meanwhile holds this call back too. A job whose last attempt ended without a clear answer
// is first looked up at Mailjet by its CustomID, so a timeout does not become a duplicate; each
// look-up passes the same gate and tells it what it heard, as a call does. On stop,
// calls in flight finish and the jobs not yet sent are released unsent. On halt (the shutdown
// deadline) nothing waits on the database any more: what could not be recorded or released keeps
// its lease, and the lease reaper returns it marked "outcome unknown" (looked up, not resent).
import { setTimeout as sleep } from 'node:timers/promises';

import type { Bus } from '../bus.js';
import { coerceError, isDeterministicDatabaseError } from '../domain/errors.js';
import type { ClaimedJob } from '../domain/job.js';
import { type CallOutcome, classifySendResponse, type FoundMessage, type LookupAnswer, type SendResponse } from '../domain/mailjet-outcome.js';
import { customIdForJob, sendBodyJson } from '../domain/mailjet-payload.js';
import type { HeldMessageId, RecipientRow } from '../domain/recipient.js';
import { type Backoff, backoffMs, type RetryPolicy } from '../domain/retry-policy.js';
import { decideSendResults, type DecisionContext, heldElsewhere, lookUpRefused, minimalResult, type SendResult } from '../domain/send-decision.js';
import { jobsToLookUp, lookUpResult, planCalls, type PlannedCall, planSuppression, recipientsOfJobs, splitCall } from '../domain/send-plan.js';
import { storableText } from '../domain/storable-text.js';
import { suppressionKey } from '../domain/suppression.js';
import type { Logger } from '../log.js';
import type { RecordSummary } from '../services/sending.js';
import { createWorkerLoop, type TurnContext, type WorkerLoop } from './loop.js';
import type { SendGate } from './send-gate.js';
import type { Wakeup } from './wakeup.js';

export interface ConsumerDeps {
  id: string;
  /** The most jobs in one Mailjet call (BATCH_SIZE): a claim may hold several calls' worth. */
  batchSize: number;
  /** Due jobs, leased to this consumer, each with its recipients and suppressed addresses. */
  claim: () => Promise<ClaimedJob[]>;
  /** The jobs of the last claim are no longer held (sent, recorded or given back). */
  batchEnded?: () => void;
  /** Makes a Send API call; `body` is its JSON text (sendBodyJson). */
  send: (body: string) => Promise<SendResponse>;
  /** Mailjet's messages for a CustomID, or what Mailjet answered instead of its list. */
  lookup: (customId: string) => Promise<LookupAnswer>;
  record: (results: readonly SendResult[]) => Promise<RecordSummary>;
  /** Marks recipients left out of a send because their address is suppressed. */
  markSuppressed: (recipientIds: readonly string[]) => Promise<void>;
  /** Renews the leases; returns the ids still held. */
  extendLeases: (jobIds: readonly string[]) => Promise<string[]>;
  /**
   * Gives unsent jobs back to the queue without counting the attempt. `uncounted`: those of them
   * whose claim counted none (look-up only, attempts spent): they keep their attempts, so they are
   * still only looked up, never sent.
   */
  release: (jobIds: readonly string[], uncounted: readonly string[]) => Promise<string[]>;
  /** When the next claimable job falls due (null: none). */
  nextRunAt: () => Promise<Date | null>;
  /** True once the pool has been ended for good: a failed query is then not worth retrying. */
  poolEnded: () => boolean;
  wakeup: Wakeup;
  gate: SendGate;
  /** The process's share of Mailjet calls in flight (consumer-pool.ts); absent: always claim. */
  slots?: CallSlots;
  retry: RetryPolicy;
  /**
   * How long a claim or a renewal holds a job. Before each call the leases are renewed once half of
   * it has passed since they were taken (a call waiting at the gate renews them every half of it):
   * the calls right after a claim hold fresh leases and skip that statement.
   */
  leaseMs: number;
  /** Longest idle sleep: a safety net for a missed notification, not the way work is found. */
  idleCheckMs: number;
  log: Logger;
  bus: Bus;
  /**
   * The clock of the times written for the database to compare with its now() (a retry's run_at,
   * since when look-ups go unanswered) and of those read from it (the next job due): the database's
   * (services/database-clock.ts), not this host's wall clock, whose step would move them all.
   */
  now?: () => Date;
  /** A monotonic clock (ms) for the age of leases: a wall-clock step must not make an old lease look fresh. */
  monotonicMs?: () => number;
  random?: () => number;
}

/** How a consumer takes part in the process's adaptive limit on Mailjet calls in flight. */
export interface CallSlots {
  /**
   * 0 when this consumer may claim now; otherwise how long it waits first (a wake-up ends the wait
   * early, and it asks again): beyond the limit it claims nothing (and holds no jobs) until woken, and
   * while the queue is caught up claims are spaced out (consumer-pool.ts).
   */
  claimDelayMs(): number;
  /** A claim returned `count` jobs. */
  claimed(count: number): void;
  /** A Mailjet call is about to go. */
  callStarted(): void;
  /**
   * That call ended (its result recorded); `slowDown` on a 429 or a transient failure. `answeredMs`:
   * how long Mailjet took to answer (or to fail), without the recording.
   */
  callEnded(durationMs: number, slowDown: boolean, answeredMs: number): void;
}

/** Between failed batches, and between attempts to record a Mailjet answer while the database is away. */
export const CONSUMER_BACKOFF: Backoff = { baseMs: 250, factor: 2, maxMs: 5_000, jitter: 0 };

interface Batch {
  jobs: ClaimedJob[];
  recipientsByJob: Map<string, RecipientRow[]>;
  /** When its leases were last taken or renewed (monotonicMs, read before the statement was sent). */
  leasedAt: number;
  /** Jobs a renewal found no longer ours (reaped, maybe claimed by another consumer): never sent by this one. */
  lost: Set<string>;
}

/**
 * What one look-up came to: Mailjet's list (`found` undefined: Mailjet could not be asked), a refusal
 * that asked nothing (a 429, a 401: the job's result is decided), the job no longer ours, or the
 * batch to be given back unsent.
 */
type LookedUp =
  | { kind: 'answered'; found: FoundMessage[] }
  | { kind: 'unanswered'; why: string }
  | { kind: 'refused'; result: SendResult }
  | { kind: 'lost' }
  | { kind: 'give-back' };

export function createConsumer(deps: ConsumerDeps): WorkerLoop {
  const { id, log, bus, wakeup, gate } = deps;
  const now = deps.now ?? (() => new Date());
  const monotonicMs = deps.monotonicMs ?? (() => performance.now());
  const random = deps.random ?? Math.random;
  /** What a decision on results needs: the retry policy, the clock, and when the send gate lets requests go again. */
  const decisionContext = (resumeAt: Date = now()): DecisionContext => ({ policy: deps.retry, now: now(), random, resumeAt });

  async function idleMs(): Promise<number> {
    try {
      const next = await deps.nextRunAt();
      if (next) {
        return Math.min(deps.idleCheckMs, Math.max(0, next.getTime() - now().getTime()) + 5);
      }
    } catch {
      // The claim will report the database problem; sleep the default.
    }
    return deps.idleCheckMs;
  }

  /**
   * Once Mailjet answered, its answer must be written: while the database is away, keep trying (the
   * lease protects the jobs, and recording "accepted" also wins over a reaped, unclaimed job). Until
   * the loop is halted at the shutdown deadline or the pool is ended for good: then the jobs are
   * left to the lease reaper, and this throws. A record the database refuses for its data is not
   * tried again as it is (recordApart). `minimal`: the results are already minimalResult's.
   */
  async function recordWithRetry(batch: Batch, results: readonly SendResult[], turn: TurnContext, minimal = false): Promise<RecordSummary> {
    const { halted } = turn;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const summary = await deps.record(results);
        if (summary.accepted.length > 0) {
          const accepted = new Set(summary.accepted);
          bus.emit('jobs:accepted', { waitedMs: batch.jobs.filter((job) => accepted.has(job.id)).map((job) => now().getTime() - job.createdAt.getTime()) });
        }
        return summary;
      } catch (thrown) {
        const error = coerceError(thrown);
        const fields = { component: 'consumer', consumer: id, jobs: results.map((r) => r.jobId), attempt, error: error.message };
        if (halted.aborted || deps.poolEnded()) {
          log.warn(
            'gave up recording Mailjet results: shutting down. The lease reaper returns these jobs, and they are looked up at Mailjet, not resent',
            fields,
          );
          throw new Error('shut down before the Mailjet results were recorded', { cause: thrown });
        }
        if (isDeterministicDatabaseError(thrown)) {
          return recordApart(batch, results, thrown, turn, minimal);
        }
        log.warn('could not record Mailjet results; retrying', fields);
        await sleep(backoffMs(CONSUMER_BACKOFF, attempt, random), undefined, { signal: halted }).catch(() => undefined);
      }
    }
  }

  /**
   * The database refused a record for the data it carries (a NUL byte in Mailjet's text, a value a
   * column rejects): the same record would be refused for ever and hold this consumer. So the jobs
   * are recorded one at a time, and one that is still refused gets a minimal record (minimalResult:
   * its fate without Mailjet's text, never a resend). One refused even then keeps its lease: the
   * lease reaper returns it marked outcome unknown, so it is looked up at Mailjet, not sent blindly.
   */
  async function recordApart(
    batch: Batch,
    results: readonly SendResult[],
    error: Error & { code: string },
    turn: TurnContext,
    minimal: boolean,
  ): Promise<RecordSummary> {
    const cause = `SQLSTATE ${error.code}: ${storableText(error.message, 200).text}`;
    const fields = { component: 'consumer', consumer: id, jobs: results.map((r) => r.jobId), error: cause };
    if (results.length > 1) {
      log.warn("the database refused a call's results for their data; recording its jobs one at a time", fields);
      const summaries: RecordSummary[] = [];
      for (const result of results) {
        summaries.push(await recordWithRetry(batch, [result], turn, minimal));
      }
      return {
        accepted: summaries.flatMap((s) => s.accepted),
        failed: summaries.flatMap((s) => s.failed),
        deferred: summaries.flatMap((s) => s.deferred),
        lostLease: summaries.flatMap((s) => s.lostLease),
      };
    }
    const [result] = results;
    if (result !== undefined && !minimal) {
      log.error(
        `the database refused this job's ${result.kind} result for its data; a minimal record is written instead (${result.kind}, without Mailjet's text). Look for what Mailjet answered that the column refused`,
        { ...fields, kind: result.kind },
      );
      return recordWithRetry(batch, [minimalResult(result, cause)], turn, true);
    }
    log.error(
      'the database refused even the minimal record of this job; it keeps its lease, and the lease reaper returns it marked outcome unknown, to be looked up at Mailjet, not resent',
      fields,
    );
    return { accepted: [], failed: [], deferred: [], lostLease: [] };
  }

  /**
   * Records results; the jobs whose acceptance was not recorded because a recipient of another job
   * holds a MessageID Mailjet gave them (still leased to this consumer) are then decided again
   * (heldElsewhere: looked up, never sent again) and recorded so.
   */
  async function recordResults(batch: Batch, results: readonly SendResult[], turn: TurnContext): Promise<RecordSummary> {
    const summary = await recordWithRetry(batch, results, turn);
    const held = summary.heldElsewhere ?? [];
    if (held.length === 0) {
      return summary;
    }
    log.error(
      'Mailjet gave MessageIDs that recipients of other jobs hold already: they stay with those recipients, whose events they keep reaching, and are not bound again. Mailjet took these messages, so they are never sent again: each is looked up by CustomID, and a recipient whose MessageID stays held ends failed. Check that MAILJET_BASE_URL reaches Mailjet itself (not a proxy or test double that replays answers, nor a simulator restarted with the same --seed over the same database)',
      { component: 'consumer', consumer: id, held: held.map((h) => ({ job: h.jobId, messageId: h.messageId, heldByJob: h.holderJobId })) },
    );
    const heldByJob = new Map<string, HeldMessageId[]>();
    for (const h of held) {
      heldByJob.set(h.jobId, [...(heldByJob.get(h.jobId) ?? []), h]);
    }
    const context = decisionContext();
    const again = results.flatMap((result) => {
      const job = batch.jobs.find((claimed) => claimed.id === result.jobId);
      const ids = heldByJob.get(result.jobId);
      return result.kind === 'accepted' && job !== undefined && ids !== undefined
        ? [heldElsewhere(job, result, ids, batch.recipientsByJob.get(job.id) ?? [], context)]
        : [];
    });
    const decided = await recordResults(batch, again, turn);
    return {
      accepted: [...summary.accepted, ...decided.accepted],
      failed: [...summary.failed, ...decided.failed],
      deferred: [...summary.deferred, ...decided.deferred],
      lostLease: [...summary.lostLease, ...decided.lostLease],
    };
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
   * What Mailjet holds under the job's CustomID. A job whose last attempt went out before the app's
   * custom_id was added to CustomID carries the bare `jetpost-<id>`: that form is asked too, or the
   * job would be sent again after an upgrade.
   */
  async function findCopies(job: ClaimedJob, batch: Batch, turn: TurnContext): Promise<LookedUp> {
    const first = await ask(job, customIdForJob(job.id, job.customId), batch, turn);
    if (!job.customId || first.kind !== 'answered' || first.found.length > 0) {
      return first;
    }
    return ask(job, customIdForJob(job.id), batch, turn);
  }

  /**
   * One look-up, made as a send call is: through the send gate (its rate limit, a 429 pause, a 401
   * stop), its answer passed on to the gate. A 429 or a 401 is a refusal that asked nothing (the job
   * waits for the gate, its attempt given back); any other failure a look-up that could not be made.
   */
  async function ask(job: ClaimedJob, customId: string, batch: Batch, turn: TurnContext): Promise<LookedUp> {
    const passed = await throughGate(
      batch,
      () => batch.jobs.map((held) => held.id),
      turn,
      () => !batch.lost.has(job.id),
    );
    if (passed !== 'acquired') {
      return { kind: passed };
    }
    const answer = await deps.lookup(customId);
    if (Array.isArray(answer)) {
      gate.succeeded();
      return { kind: 'answered', found: answer };
    }
    const outcome = classifySendResponse(answer, [], now());
    const resumeAt = passOnToGate(outcome);
    const refused = lookUpRefused(job, outcome, decisionContext(resumeAt));
    return refused === undefined ? { kind: 'unanswered', why: 'error' in outcome ? outcome.error : 'no answer' } : { kind: 'refused', result: refused };
  }

  /**
   * Looks up the jobs whose last attempt may have been sent and records what Mailjet says; returns
   * the jobs to send, or undefined when the jobs not recorded are to be given back unsent (a stop, or
   * sending stopped on a 401).
   */
  async function lookUp(batch: Batch, turn: TurnContext): Promise<ClaimedJob[] | undefined> {
    const results: SendResult[] = [];
    let giveBack = false;
    for (const job of jobsToLookUp(batch.jobs)) {
      const looked = await findCopies(job, batch, turn);
      if (looked.kind === 'give-back') {
        giveBack = true;
        break;
      }
      // Another consumer may hold it now: this one neither records it nor sends it (heldPart).
      if (looked.kind === 'lost') {
        continue;
      }
      const result =
        looked.kind === 'refused'
          ? looked.result
          : lookUpResult(
              job,
              batch.recipientsByJob.get(job.id) ?? [],
              looked.kind === 'answered' ? looked.found : undefined,
              decisionContext(),
              looked.kind === 'unanswered' ? looked.why : undefined,
            );
      if (result) {
        results.push(result);
      }
    }
    if (results.length > 0) {
      const summary = await recordResults(batch, results, turn);
      report(summary, { reconciled: results.map((r) => `${r.jobId}:${r.kind}`) });
    }
    const done = new Set(results.map((r) => r.jobId));
    const rest = batch.jobs.filter((job) => !done.has(job.id));
    if (giveBack) {
      await releaseUnsent(rest);
      return undefined;
    }
    return rest;
  }

  /** Leaves suppressed addresses out (recording the jobs that have no To address left); returns the jobs to send. */
  async function leaveOutSuppressed(batch: Batch, jobs: ClaimedJob[], turn: TurnContext): Promise<ClaimedJob[]> {
    const suppressed = new Map(jobs.flatMap((job) => [...job.suppressed].map(([email, reason]) => [suppressionKey(job.appId, email), reason] as const)));
    if (suppressed.size === 0) {
      return jobs;
    }
    const plan = planSuppression(jobs, batch.recipientsByJob, suppressed);
    for (const [jobId, rows] of plan.recipientsByJob) {
      batch.recipientsByJob.set(jobId, rows);
    }
    await deps.markSuppressed(plan.leftOut.map((row) => row.id));
    if (plan.failed.length > 0) {
      report(await recordWithRetry(batch, plan.failed, turn), { suppressed: plan.failed.map((r) => r.jobId) });
    }
    return plan.jobs;
  }

  /**
   * Makes the call and records what it did; returns the calls to make in its place: its halves when
   * Mailjet refused it as too large (413) and it has several messages (nothing was sent, so they go
   * in this same attempt), else none.
   */
  async function sendCall(batch: Batch, call: PlannedCall, turn: TurnContext): Promise<PlannedCall[]> {
    const started = monotonicMs();
    deps.slots?.callStarted();
    let slowDown = true;
    let answeredAt: number | undefined;
    try {
      const response = await deps.send(sendBodyJson(call.messageJson, call.sandbox));
      answeredAt = monotonicMs();
      const outcome = classifySendResponse(
        response,
        call.jobs.map((job) => customIdForJob(job.id, job.customId)),
        now(),
        call.sandbox,
      );
      slowDown = outcome.kind === 'transient';
      if (outcome.kind === 'too-large' && call.jobs.length > 1) {
        // An answer to the keys, as any other 4xx is (settleCall): a probe after a 401 has passed.
        gate.succeeded();
        log.warn('Mailjet refused a call as too large (413): its messages go again in two calls', {
          component: 'consumer',
          consumer: id,
          messages: call.jobs.length,
          error: outcome.error,
        });
        return splitCall(call);
      }
      await settleCall(batch, call, outcome, started, turn);
      return [];
    } finally {
      const ended = monotonicMs();
      deps.slots?.callEnded(ended - started, slowDown, (answeredAt ?? ended) - started);
    }
  }

  /** Tells the send gate what a request's answer says of the pace and the keys; returns when requests may go again. */
  function passOnToGate(outcome: CallOutcome): Date {
    let resumeAt = now();
    if (outcome.kind === 'transient') {
      if (outcome.rateLimited) {
        const pauseMs = gate.throttled(outcome.retryAfterMs);
        resumeAt = new Date(resumeAt.getTime() + pauseMs);
        log.warn('Mailjet is rate limiting (429): every consumer of this process pauses', { component: 'consumer', consumer: id, pauseMs });
      }
      // Says nothing about the keys: a probe after a 401 answered so must not leave sending stopped for good.
      gate.inconclusive();
    } else if (outcome.kind === 'unauthorized') {
      resumeAt = new Date(resumeAt.getTime() + gate.unauthorized(outcome.error));
      log.error(
        'Mailjet rejected the API key (401): sending is stopped and /readyz reports not ready. Check MAILJET_API_KEY and MAILJET_API_SECRET; a probe call is tried again later',
        { component: 'consumer', consumer: id, retryAt: resumeAt.toISOString(), error: outcome.error },
      );
    } else {
      gate.succeeded();
    }
    return resumeAt;
  }

  async function settleCall(batch: Batch, call: PlannedCall, outcome: CallOutcome, started: number, turn: TurnContext): Promise<void> {
    const resumeAt = passOnToGate(outcome);
    const results = decideSendResults(call.jobs, outcome, decisionContext(resumeAt), batch.recipientsByJob);
    const summary = await recordResults(batch, results, turn);
    const recipients = recipientsOfJobs(call.jobs, batch.recipientsByJob);
    bus.emit('mailjet:call', {
      messages: call.messageJson.length,
      recipients,
      outcome:
        outcome.kind === 'per-message'
          ? summary.accepted.length === call.jobs.length
            ? 'accepted'
            : 'partial'
          : outcome.kind === 'transient'
            ? 'transient'
            : 'permanent',
      durationMs: monotonicMs() - started,
    });
    report(summary, { messages: call.messageJson.length, recipients, ...(outcome.kind === 'per-message' ? {} : { error: outcome.error }) });
  }

  async function releaseUnsent(jobs: readonly ClaimedJob[]): Promise<void> {
    if (jobs.length === 0) {
      return;
    }
    const jobIds = jobs.map((job) => job.id);
    try {
      const released = await deps.release(
        jobIds,
        jobs.filter((job) => job.lookUpOnly).map((job) => job.id),
      );
      log.info('released unsent jobs', { component: 'consumer', consumer: id, jobs: released });
    } catch (error) {
      // Their leases will expire and the reaper will return them.
      log.warn('could not release unsent jobs', { component: 'consumer', consumer: id, jobs: jobIds, error: coerceError(error).message });
    }
  }

  /**
   * Renews the leases of the jobs still held once half a lease has passed since they were taken
   * (which also tells which are still ours: a reaped one may be another's now; a younger lease cannot
   * have expired, so it is still ours), then passes the gate for a request (a call or a look-up)
   * while it is still `wanted` (about jobs still ours). A long wait at the gate (a 429 pause, the rate
   * limit) renews the leases again every half lease, so the request goes with at least half a lease
   * left. 'give-back' when the jobs are to be given back unsent: the consumer stops, or sending is
   * stopped on a 401 (bad keys say nothing about the messages: they wait in the queue, their
   * attempts untouched, while no consumer claims until the probe call).
   */
  async function throughGate(batch: Batch, stillHeld: () => string[], turn: TurnContext, wanted: () => boolean): Promise<'acquired' | 'lost' | 'give-back'> {
    for (;;) {
      if (turn.stopping) {
        return 'give-back';
      }
      // Leases taken or renewed less than half a lease ago still hold: only those a renewal lost are not ours.
      if (monotonicMs() - batch.leasedAt >= deps.leaseMs / 2) {
        await renewLeases(batch, stillHeld());
      }
      if (!wanted()) {
        return 'lost';
      }
      // Waits only until the leases are half a lease old (look-ups before the first call age them
      // too), then renews them: a request always starts with at least half a lease left. A stop while
      // this waits at the gate closes the gate: the request is then given back, not made.
      const passed = await gate.acquireWithin(Math.max(0, deps.leaseMs / 2 - (monotonicMs() - batch.leasedAt)));
      if (passed === 'closed' || passed === 'stopped') {
        return 'give-back';
      }
      if (passed === 'acquired') {
        return 'acquired';
      }
    }
  }

  /** The part of the call still ours once it passed the gate (empty: none is), or undefined when its jobs are to be given back unsent. */
  async function holdAndPassGate(call: PlannedCall, stillToSend: () => string[], batch: Batch, turn: TurnContext): Promise<PlannedCall | undefined> {
    const passed = await throughGate(batch, stillToSend, turn, () => call.jobs.some((job) => !batch.lost.has(job.id)));
    if (passed === 'give-back') {
      return undefined;
    }
    return batch.lost.size === 0 ? call : heldPart(call, batch.lost);
  }

  function heldPart(call: PlannedCall, lost: ReadonlySet<string>): PlannedCall {
    const indexes = call.jobs.flatMap((job, index) => (lost.has(job.id) ? [] : [index]));
    return { jobs: indexes.map((index) => call.jobs[index]!), messageJson: indexes.map((index) => call.messageJson[index]!), sandbox: call.sandbox };
  }

  async function renewLeases(batch: Batch, jobIds: readonly string[]): Promise<void> {
    const renewing = monotonicMs();
    const held = new Set(await deps.extendLeases(jobIds));
    batch.leasedAt = renewing;
    // Kept for the later calls of the claim too: their jobs go out on this renewal's fresh leases.
    for (const jobId of jobIds) {
      if (!held.has(jobId)) {
        batch.lost.add(jobId);
      }
    }
  }

  async function process(claimed: ClaimedJob[], leasedAt: number, turn: TurnContext): Promise<void> {
    bus.emit('jobs:claimed', { consumer: id, count: claimed.length });
    const batch: Batch = { jobs: claimed, recipientsByJob: new Map(claimed.map((job) => [job.id, [...job.recipients]])), leasedAt, lost: new Set() };
    const toSend = await lookUp(batch, turn);
    if (toSend === undefined) {
      return;
    }
    const jobs = await leaveOutSuppressed(batch, toSend, turn);
    const calls = planCalls(jobs, batch.recipientsByJob, deps.batchSize);
    for (const [callIndex, call] of calls.entries()) {
      const unsent = (from: number) => calls.slice(from).flatMap((later) => later.jobs);
      const sendable = await holdAndPassGate(call, () => unsent(callIndex).map((job) => job.id), batch, turn);
      if (sendable === undefined) {
        await releaseUnsent(unsent(callIndex));
        return;
      }
      if (sendable.jobs.length > 0) {
        try {
          // Halves of a call refused as too large go next: the loop reaches what is added after it.
          calls.splice(callIndex + 1, 0, ...(await sendCall(batch, sendable, turn)));
        } catch (error) {
          // This call's results are the lease reaper's now; the later calls were never sent.
          await releaseUnsent(unsent(callIndex + 1));
          throw error;
        }
      }
    }
  }

  // Between a failed batch and a claim that works: the claim then goes as soon as the back-off is
  // over, without the spacing of claims. A turn that only waited out that spacing counted as one that
  // worked and reset the back-off: with the database away, each consumer tried (and logged an error)
  // about once a second for as long as it was away, instead of every 5 s.
  let failing = false;
  return createWorkerLoop({
    wakeup,
    backoff: CONSUMER_BACKOFF,
    random,
    done: deps.poolEnded,
    async turn(context) {
      // While sending is paused (429) or stopped (401), a claim would only keep jobs from the queue.
      const heldBackMs = gate.heldBackForMs();
      if (heldBackMs > 0) {
        return Math.min(heldBackMs, deps.idleCheckMs);
      }
      const delayMs = failing ? 0 : (deps.slots?.claimDelayMs() ?? 0);
      if (delayMs > 0) {
        return delayMs;
      }
      const claiming = monotonicMs();
      const jobs = await deps.claim();
      failing = false;
      deps.slots?.claimed(jobs.length);
      if (jobs.length === 0) {
        return idleMs();
      }
      try {
        await process(jobs, claiming, context);
      } finally {
        deps.batchEnded?.();
      }
      return 0;
    },
    onError(error, delayMs) {
      failing = true;
      log.error('consumer batch failed; backing off', { component: 'consumer', consumer: id, error: error.message, retryInMs: delayMs });
      bus.emit('consumer:error', { consumer: id, error });
    },
    onHalted(error) {
      log.warn('consumer halted at the shutdown deadline; the lease reaper returns what it held', {
        component: 'consumer',
        consumer: id,
        error: error.message,
      });
    },
  });
}
