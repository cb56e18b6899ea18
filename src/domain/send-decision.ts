// What becomes of each job of a Mailjet call, pure: accepted with its MessageIDs, deferred to a
// later attempt, or failed for good (the dead-letter state, with the reason kept).
import type { AcceptedRecipient, AddressedMessage, CallOutcome, MessageOutcome } from './mailjet-outcome.js';
import { countRecipients } from './mailjet-payload.js';
import { type AcceptedIds, type HeldMessageId, pairRecipients, type RecipientRow } from './recipient.js';
import { backoffMs, nextRetry, retryDelayMs, type RetryPolicy } from './retry-policy.js';

export type SendResult =
  | {
      readonly jobId: string;
      readonly kind: 'accepted';
      /** Each recipient row's ids, paired once (pairRecipients): recorded as they are. */
      readonly recipients: readonly AcceptedIds[];
      /**
       * Rows Mailjet gave no id even when looked up (giveUpUnreached): closed `failed` with this
       * error, since their outcome is unknown and no event can reach them.
       */
      readonly unreached?: { readonly recipientIds: readonly string[]; readonly error: string };
    }
  | {
      readonly jobId: string;
      readonly kind: 'failed';
      readonly error: string;
      /** Mailjet may still have it: a re-queue must look it up before sending. */
      readonly outcomeUnknown?: boolean;
    }
  | {
      readonly jobId: string;
      readonly kind: 'deferred';
      readonly error: string;
      readonly runAt: Date;
      /** Mailjet may have sent it (timeout, 5xx): look it up by CustomID before sending again. */
      readonly outcomeUnknown: boolean;
      /** The attempt does not count: the call never had a chance (sending is paused on bad keys). */
      readonly refundAttempt: boolean;
      /** Mailjet accepted it (unresolvedAcceptance): its attempts are spent, so it is only ever looked up, never sent again. */
      readonly lookUpOnly?: boolean;
      /** What its look-ups found so far, when some of its addresses only: kept for the next look-up (a found MessageID stays found). */
      readonly found?: readonly AddressedMessage[];
      /** Since when Mailjet has not answered its look-ups (waitForLookUp): absent, its last one was answered or none was made. */
      readonly lookUpFailingSince?: Date;
    };

export interface AttemptedJob {
  id: string;
  /** Attempts made, this one included. */
  attempts: number;
  maxAttempts: number;
}

export interface DecisionContext {
  policy: RetryPolicy;
  now: Date;
  random: () => number;
  /** After a 401 or a 429, when the send gate lets calls go again (its stop or its pause). */
  resumeAt: Date;
}

/** A transient failure: retry with backoff, or fail once the job's attempts are spent. */
export function retryOrFail(
  job: AttemptedJob,
  error: string,
  context: DecisionContext,
  options: { retryAfterMs?: number | undefined; outcomeUnknown?: boolean } = {},
): SendResult {
  const policy = { ...context.policy, maxAttempts: job.maxAttempts };
  const decision = nextRetry(policy, { attemptsMade: job.attempts, now: context.now, random: context.random, retryAfterMs: options.retryAfterMs });
  const outcomeUnknown = options.outcomeUnknown ?? false;
  if (decision.kind === 'retry') {
    return { jobId: job.id, kind: 'deferred', error, runAt: decision.runAt, outcomeUnknown, refundAttempt: false };
  }
  if (outcomeUnknown) {
    // The last attempt may have been delivered: a "never sent" verdict needs Mailjet's word first,
    // so the job comes back once more, only to be looked up (see giveUpAfterLookUp).
    const delayMs = retryDelayMs(policy, job.attempts, context.random, options.retryAfterMs);
    return { jobId: job.id, kind: 'deferred', error, runAt: new Date(context.now.getTime() + delayMs), outcomeUnknown, refundAttempt: false };
  }
  return { jobId: job.id, kind: 'failed', error: `gave up after ${job.attempts} attempts: ${error}` };
}

/** How the error of a job Mailjet accepted without usable ids begins (unresolvedAcceptance, giveUpUnreached). */
const UNRESOLVED_ACCEPTANCE = 'Mailjet accepted it, but ';

/**
 * A job Mailjet answered "success" for without a usable MessageID for each recipient (a missing,
 * malformed or repeated id, or an address that matches none sent). It must not be sent again, and no
 * event can reach a recipient without its id: it is deferred to be looked up by CustomID (after a
 * backoff, so that Mailjet's message index has it), with its attempts spent so that it is never sent.
 * `found`: what a look-up found of it already (some addresses), kept for the next one.
 */
export function unresolvedAcceptance(job: AttemptedJob, reason: string, context: DecisionContext, found?: readonly AddressedMessage[]): SendResult {
  const delayMs = backoffMs(context.policy, job.attempts, context.random);
  return {
    jobId: job.id,
    kind: 'deferred',
    error: `${UNRESOLVED_ACCEPTANCE}${reason}: it is looked up by CustomID for its MessageIDs, never sent again`,
    runAt: new Date(context.now.getTime() + delayMs),
    outcomeUnknown: true,
    refundAttempt: false,
    lookUpOnly: true,
    ...(found === undefined ? {} : { found }),
  };
}

/** How a job's error goes on once Mailjet has not answered its look-ups, after the error of its last send. */
const LOOK_UP_UNANSWERED = '; its look-up by CustomID has not been answered since ';
/** The longest wait between two look-ups of a job that Mailjet does not answer (RETRY_MAX_MS when that is shorter). */
export const LOOK_UP_MAX_WAIT_MS = 15 * 60_000;

export type LookUpWait = { readonly kind: 'wait'; readonly result: SendResult } | { readonly kind: 'give-up'; readonly lastError: string };

/**
 * A look-up that Mailjet did not answer (a 5xx, a timeout, a reset, an answer without its list) says
 * nothing of the message: the job is not sent on it and spends no attempt on it (`why`: what Mailjet
 * answered). It is looked up again after as long as its look-ups have gone unanswered so far, so the
 * waits double, from RETRY_BASE_MS up to LOOK_UP_MAX_WAIT_MS: a look-up outage of hours costs each
 * job a few dozen look-ups, and once Mailjet answers again the job is resolved within that wait.
 * Once LOOKUP_RETRY_WINDOW_MS has passed since the first unanswered one, 'give-up': the job is then
 * given up on as one Mailjet could not be asked about, `lastError` saying since when.
 */
export function waitForLookUp(
  job: AttemptedJob & { lookUpOnly: boolean; lastError: string | null; lookUpFailingSince: Date | null },
  why: string,
  context: DecisionContext,
): LookUpWait {
  const since = job.lookUpFailingSince ?? context.now;
  const unansweredMs = context.now.getTime() - since.getTime();
  const sendError = job.lastError?.split(LOOK_UP_UNANSWERED)[0] ?? 'no answer';
  const unanswered = `${sendError}${LOOK_UP_UNANSWERED}${since.toISOString()} (${why})`;
  if (unansweredMs >= context.policy.lookUpWindowMs) {
    return { kind: 'give-up', lastError: `${unanswered}, LOOKUP_RETRY_WINDOW_MS and more` };
  }
  const waitMs = backoffMs(
    { ...context.policy, baseMs: Math.max(context.policy.baseMs, unansweredMs), maxMs: Math.min(context.policy.maxMs, LOOK_UP_MAX_WAIT_MS) },
    1,
    context.random,
  );
  const giveUpAt = new Date(since.getTime() + context.policy.lookUpWindowMs).toISOString();
  return {
    kind: 'wait',
    result: {
      jobId: job.id,
      kind: 'deferred',
      error: `${unanswered}: it is looked up again, never sent before a look-up answers, and given up on (outcome unknown) if none has by ${giveUpAt}`,
      runAt: new Date(context.now.getTime() + waitMs),
      outcomeUnknown: true,
      // The claim of a job with attempts left counted one; a look-up-only claim counted none.
      refundAttempt: !job.lookUpOnly,
      lookUpFailingSince: since,
    },
  };
}

/**
 * For a job whose attempts are spent and whose last attempt's outcome is unknown, once Mailjet was
 * asked (`found`: it does not have the message) or could not be asked (`found: false`).
 */
export function giveUpAfterLookUp(job: AttemptedJob & { lastError: string | null; acceptedUnresolved: boolean }, lookedUp: boolean): SendResult {
  const { attempts } = job;
  // Its mark, or its error's wording: a replica of a release before sql/32_… (still running during a
  // rolling upgrade) marks such a job only so, and a job it deferred may be looked up much later. Read
  // as a plain unknown outcome, it would fail as "Mailjet has no such message", and a re-queue would
  // then send it again without a look-up. Only jetpost's own wording starts so.
  if (job.acceptedUnresolved || job.lastError?.startsWith(UNRESOLVED_ACCEPTANCE) === true) {
    // Mailjet said it took the message: a look-up that does not find it does not make it unsent.
    return {
      jobId: job.id,
      kind: 'failed',
      error: `${job.lastError}; the look-up ${lookedUp ? 'did not find it' : 'could not be made'}, so its recipients' ids are unknown: it may well have been delivered (a re-queue looks it up first)`,
      outcomeUnknown: true,
    };
  }
  return lookedUp
    ? { jobId: job.id, kind: 'failed', error: `gave up after ${attempts} attempts (Mailjet has no such message): ${job.lastError ?? 'unknown error'}` }
    : {
        jobId: job.id,
        kind: 'failed',
        error: `gave up after ${attempts} attempts; the last one's outcome is unknown and Mailjet could not be asked, so it may have been delivered: ${job.lastError ?? 'unknown error'}`,
        outcomeUnknown: true,
      };
}

/**
 * The last look-up of a job Mailjet's look-ups have found for some of its addresses only (`lookedUp`
 * false: that last one could not be made): it is accepted with those, and the rest are closed, since
 * no event can ever reach a recipient without its id. Their outcome is unknown (Mailjet took the
 * message: they may well have been delivered), and the error says so. With none found by address
 * (Mailjet named the job's messages without their addresses), the job fails so, outcome unknown.
 */
export function giveUpUnreached(
  job: Pick<AttemptedJob, 'id'>,
  pairs: readonly AcceptedIds[],
  unreached: readonly RecipientRow[],
  reason: string,
  lookedUp = true,
): SendResult {
  const addresses = [...new Set(unreached.map((row) => row.email.toLowerCase()))].join(', ');
  const last = lookedUp ? 'the last look-up gave no MessageID for' : 'the last look-up could not be made, and none gave a MessageID for';
  const error = `${UNRESOLVED_ACCEPTANCE}${reason}: ${last} ${addresses}, so their outcome is unknown (they may well have been delivered) and no event can reach them`;
  if (pairs.length === 0) {
    return { jobId: job.id, kind: 'failed', error, outcomeUnknown: true };
  }
  return { jobId: job.id, kind: 'accepted', recipients: pairs, unreached: { recipientIds: unreached.map((row) => row.id), error } };
}

/**
 * A job whose acceptance was not recorded because a recipient of another job holds one of the
 * MessageIDs Mailjet gave it (`held`, recorded with `accepted`): that id stays with its first holder,
 * which its events keep reaching. Mailjet took the message, so it is never sent again. Until its
 * attempts are spent it is looked up by CustomID (unresolvedAcceptance), which gives the ids Mailjet
 * holds for it; once they are (its look-up gave a held id again), it is accepted with its other
 * recipients' ids, and each recipient whose id is held ends `failed`, its outcome unknown: no event
 * can reach it. With no other recipient, the job ends `failed`, its outcome unknown.
 */
export function heldElsewhere(
  job: AttemptedJob & { lookUpOnly: boolean },
  accepted: Extract<SendResult, { kind: 'accepted' }>,
  held: readonly HeldMessageId[],
  rows: readonly RecipientRow[],
  context: DecisionContext,
): SendResult {
  const heldIds = new Set(held.map((h) => h.messageId));
  const [first] = held;
  const reason = `its answer gives MessageID ${first?.messageId ?? '?'} (held by job ${first?.holderJobId ?? '?'}) ${held.length > 1 ? `and ${held.length - 1} more MessageIDs ` : ''}that a recipient of another job holds already`;
  if (!job.lookUpOnly) {
    return unresolvedAcceptance(job, reason, context);
  }
  const pairs = accepted.recipients.filter((pair) => !heldIds.has(pair.messageId));
  const heldRows = new Set(accepted.recipients.filter((pair) => heldIds.has(pair.messageId)).map((pair) => pair.recipientId));
  const addresses = [...new Set(rows.filter((row) => heldRows.has(row.id)).map((row) => row.email.toLowerCase()))].join(', ');
  const error = [
    `${UNRESOLVED_ACCEPTANCE}${reason}: it stays with that recipient, so ${addresses} cannot have it; their outcome is unknown (they may well have been delivered) and no event can reach them`,
    ...(accepted.unreached === undefined ? [] : [accepted.unreached.error]),
  ].join('; ');
  // With those its look-up already gave no id (giveUpUnreached).
  const unreachedIds = new Set([...heldRows, ...(accepted.unreached?.recipientIds ?? [])]);
  const unreached = rows.filter((row) => unreachedIds.has(row.id));
  if (pairs.length === 0) {
    return { jobId: job.id, kind: 'failed', error, outcomeUnknown: true };
  }
  return { jobId: job.id, kind: 'accepted', recipients: pairs, unreached: { recipientIds: unreached.map((row) => row.id), error } };
}

/**
 * What is kept of a result the database refused as it came (`cause` names the refusal): nothing of
 * Mailjet's free text, and nothing that would let the job be sent again. An accepted job keeps its
 * recipients' MessageIDs (checked 64-bit integers, what events are matched by) without their
 * MessageUUIDs; a failed or deferred job keeps its fate with an error that says what was lost.
 */
export function minimalResult(result: SendResult, cause: string): SendResult {
  switch (result.kind) {
    case 'accepted':
      return { ...result, recipients: result.recipients.map((recipient) => ({ ...recipient, messageUuid: '' })) };
    case 'failed':
      return { ...result, error: `failed; its error text could not be stored (${cause})` };
    case 'deferred':
      return { ...result, error: `deferred; its error text could not be stored (${cause})` };
  }
}

/**
 * A success checked against the rows sent: an address Mailjet names that matches none of them, or an
 * address sent that Mailjet gives no id, leaves a recipient that no event can reach, so the job is
 * looked up instead (unresolvedAcceptance). Otherwise it is accepted with the pairs.
 */
function acceptance(job: AttemptedJob, rows: readonly RecipientRow[], answered: readonly AcceptedRecipient[], context: DecisionContext): SendResult {
  const { pairs, strays, unreached } = pairRecipients(rows, answered);
  if (strays > 0) {
    return unresolvedAcceptance(job, 'its answer names an address that matches none sent', context);
  }
  if (unreached.length > 0) {
    const sent = countRecipients(rows);
    return unresolvedAcceptance(job, `its answer gives ${sent - countRecipients(unreached)} of the ${sent} addresses sent a MessageID`, context);
  }
  return { jobId: job.id, kind: 'accepted', recipients: pairs };
}

function fromMessageOutcome(job: AttemptedJob, outcome: MessageOutcome | undefined, rows: readonly RecipientRow[], context: DecisionContext): SendResult {
  if (outcome === undefined) {
    return retryOrFail(job, "Mailjet's answer gave no result for this message that matches it: it may have been sent", context, { outcomeUnknown: true });
  }
  if (outcome.kind === 'accepted') {
    return acceptance(job, rows, outcome.recipients, context);
  }
  if (outcome.kind === 'unresolved') {
    return unresolvedAcceptance(job, outcome.reason, context);
  }
  return outcome.transient ? retryOrFail(job, outcome.error, context) : { jobId: job.id, kind: 'failed', error: outcome.error };
}

/** A job of a call that Mailjet refused whole and that sent nothing (a 401, a 429): deferred to `runAt`, its attempt given back. */
function waitForGate(job: AttemptedJob, error: string, runAt: Date): SendResult {
  return { jobId: job.id, kind: 'deferred', error, runAt, outcomeUnknown: false, refundAttempt: true };
}

/**
 * When the jobs of a request Mailjet refused whole for the pace (429) or the keys (401) go again:
 * when the send gate lets requests go (its pause or its stop), and after a 429 not before their own
 * Retry-After either, within the backoff's cap.
 */
function refusedRunAt(outcome: Extract<CallOutcome, { kind: 'transient' | 'unauthorized' }>, context: DecisionContext): Date {
  const retryAfterMs = outcome.kind === 'transient' ? Math.min(outcome.retryAfterMs ?? 0, context.policy.maxMs) : 0;
  return new Date(Math.max(context.resumeAt.getTime(), context.now.getTime() + retryAfterMs));
}

/**
 * A job whose look-up by CustomID Mailjet refused whole, for the pace (429) or the keys (401): Mailjet
 * was not asked, so, as a refused call's jobs do, it waits for the send gate with its claim's attempt
 * given back (a look-up-only claim counted none), still to be looked up before any send; the window
 * of its unanswered look-ups (waitForLookUp) goes on. Undefined for any other failure: the look-up is
 * then one that could not be made (lookUpResult).
 */
export function lookUpRefused(
  job: AttemptedJob & { lookUpOnly: boolean; lookUpFailingSince: Date | null },
  outcome: CallOutcome,
  context: DecisionContext,
): SendResult | undefined {
  if (outcome.kind !== 'unauthorized' && !(outcome.kind === 'transient' && outcome.rateLimited === true)) {
    return undefined;
  }
  return {
    jobId: job.id,
    kind: 'deferred',
    error: `could not ask Mailjet whether the last attempt was delivered: ${outcome.error}; it is looked up once sending resumes`,
    runAt: refusedRunAt(outcome, context),
    outcomeUnknown: true,
    refundAttempt: !job.lookUpOnly,
    ...(job.lookUpFailingSince === null ? {} : { lookUpFailingSince: job.lookUpFailingSince }),
  };
}

/** Jobs in the order their messages were sent in the call; `recipientsByJob`: the rows each was sent to. */
export function decideSendResults(
  jobs: readonly AttemptedJob[],
  outcome: CallOutcome,
  context: DecisionContext,
  recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>,
): SendResult[] {
  switch (outcome.kind) {
    case 'per-message':
      return jobs.map((job, index) => fromMessageOutcome(job, outcome.messages[index], recipientsByJob.get(job.id) ?? [], context));
    case 'transient':
      if (outcome.rateLimited === true) {
        // Mailjet sent nothing and says nothing about the messages, only about the pace: they wait for
        // the pause (and their own Retry-After, within the backoff's cap), their attempts untouched, so
        // that a long spell of 429s delays them instead of failing messages never sent.
        return jobs.map((job) => waitForGate(job, outcome.error, refusedRunAt(outcome, context)));
      }
      return jobs.map((job) => retryOrFail(job, outcome.error, context, { retryAfterMs: outcome.retryAfterMs, outcomeUnknown: outcome.outcomeUnknown }));
    case 'unauthorized':
      // Bad keys say nothing about the messages: they wait, their attempts untouched, until sending resumes.
      return jobs.map((job) => waitForGate(job, outcome.error, refusedRunAt(outcome, context)));
    case 'permanent':
      return jobs.map((job) => ({ jobId: job.id, kind: 'failed', error: outcome.error }));
    case 'too-large':
      // The consumer sends a call of several messages again in halves (splitCall): this is one message alone.
      return jobs.map((job) => ({ jobId: job.id, kind: 'failed', error: `${outcome.error}: the message is larger than Mailjet takes` }));
  }
}
