// What a consumer does with a claimed batch, pure: what each look-up of a possibly sent job means,
// which addresses to leave out as suppressed, and how to pack the rest into Send API calls. The
// consumer (workers/consumer.ts) does the I/O between these steps.
import { addressKey, eventAddressKey } from './email-address.js';
import type { ClaimedJob } from './job.js';
import { isStorableId, unstorableId } from './mailjet-ids.js';
import type { AddressedMessage, FoundMessage } from './mailjet-outcome.js';
import { countRecipients, packCalls, toMailjetMessage } from './mailjet-payload.js';
import { pairRecipients, type RecipientRow } from './recipient.js';
import { type DecisionContext, giveUpAfterLookUp, giveUpUnreached, type SendResult, unresolvedAcceptance, waitForLookUp } from './send-decision.js';
import { suppressionKey } from './suppression.js';

/** Jobs whose last attempt may have been sent: they are looked up at Mailjet by CustomID before anything is sent. */
export function jobsToLookUp(jobs: readonly ClaimedJob[]): ClaimedJob[] {
  return jobs.filter((job) => job.outcomeUnknown);
}

/**
 * What a look-up says (`found` undefined: Mailjet could not be asked, `why` saying what it answered),
 * with what earlier look-ups of the job found. A job Mailjet has is recorded, not resent; one Mailjet
 * could not be asked about waits (never sent blindly, waitForLookUp) and past its window is given up
 * on, outcome unknown; one with its attempts spent that Mailjet does not have fails. Undefined: none
 * of these, so the job is sent.
 */
export function lookUpResult(
  job: ClaimedJob,
  recipients: readonly RecipientRow[],
  found: readonly FoundMessage[] | undefined,
  context: DecisionContext,
  why = 'no answer',
): SendResult | undefined {
  if (found === undefined) {
    const wait = waitForLookUp(job, why, context);
    if (wait.kind === 'wait') {
      return wait.result;
    }
    job = { ...job, lastError: wait.lastError };
  }
  // A MessageID found once stays found (the earlier look-ups' first): Mailjet's index may show fewer
  // addresses later than it did. One past 2^63-1 cannot be stored: its address counts as not found,
  // but it says that Mailjet has the message. A row without its address is paired below, if at all.
  const [unstorable] = (found ?? []).filter((message) => !isStorableId(message.messageId));
  const storable = (found ?? []).filter((message) => isStorableId(message.messageId));
  const addressed = storable.filter((message): message is AddressedMessage => message.email !== null);
  // A row of the job with an address matching none sent (written in another form, or none) cannot
  // say whose it is, only that Mailjet took the message.
  // Matching as pairRecipients pairs: by the key, or as another system spells it.
  const sentKeys = new Set(recipients.map((row) => addressKey(row.email)));
  const sentSpellings = new Set(recipients.map((row) => eventAddressKey(row.email)));
  const isSent = (email: string) => sentKeys.has(addressKey(email)) || sentSpellings.has(eventAddressKey(email));
  const [unaddressed] = storable.filter((message) => message.email === null || (message.named === true && !isSent(message.email)));
  const { pairs, ...pairing } = pairRecipients(recipients, withoutSharedIds([...job.foundEarlier, ...addressed]));
  // A suppressed address was left out of the send looked up: Mailjet has nothing for it.
  const unreached = pairing.unreached.filter((row) => row.status !== 'suppressed');
  if (unaddressed !== undefined && pairs.length === 0 && new Set(unreached.map((row) => addressKey(row.email))).size === 1) {
    // Sent to one address, the message Mailjet holds under the job's CustomID can only be that
    // address's (several: the first, as for rows with addresses).
    const { messageId, messageUuid } = unaddressed;
    return { jobId: job.id, kind: 'accepted', recipients: unreached.map((row) => ({ recipientId: row.id, messageId, messageUuid })) };
  }
  if (pairs.length > 0 || unaddressed !== undefined) {
    if (unreached.length === 0) {
      return { jobId: job.id, kind: 'accepted', recipients: pairs };
    }
    // Mailjet has the message, so it is never sent again; its index may not show every address yet,
    // or show them without an address sent (such a row of the job cannot say whose it is).
    const sent = countRecipients(recipients.filter((row) => row.status !== 'suppressed'));
    const reason = `its look-up found ${sent - countRecipients(unreached)} of the ${sent} addresses sent${unaddressed === undefined ? '' : ', and messages of the job without an address sent'}`;
    if (job.lookUpOnly) {
      return giveUpUnreached(job, pairs, unreached, reason, found !== undefined);
    }
    const addressOf = new Map(recipients.map((row) => [row.id, row.email]));
    const kept = pairs.map(({ recipientId, messageId, messageUuid }) => ({ email: addressOf.get(recipientId)!, messageId, messageUuid }));
    return unresolvedAcceptance(job, reason, context, kept);
  }
  if (unstorable !== undefined) {
    // Mailjet has it: never sent again, and no event can reach it.
    const reason = `its look-up gives MessageID ${unstorable.messageId}, ${unstorableId(unstorable.messageId) === undefined ? 'not a 64-bit integer' : 'past 2^63-1, the largest jetpost stores'}`;
    return job.lookUpOnly
      ? {
          jobId: job.id,
          kind: 'failed',
          error: `Mailjet has the message, but ${reason}: it may well have been delivered, and no event can reach it`,
          outcomeUnknown: true,
        }
      : unresolvedAcceptance(job, reason, context);
  }
  if (job.lookUpOnly || found === undefined) {
    return giveUpAfterLookUp(job, found !== undefined);
  }
  return undefined;
}

/**
 * A look-up's rows without those whose MessageID it also gives another address: such an id cannot say
 * which recipient an event is about (as in a send's answer, mailjet-outcome.ts), so it is not found.
 * One address given twice may share its id.
 */
function withoutSharedIds(found: readonly AddressedMessage[]): readonly AddressedMessage[] {
  if (found.length < 2) {
    return found;
  }
  const addressById = new Map<string, string>();
  const shared = new Set<string>();
  for (const { messageId, email } of found) {
    const address = addressKey(email);
    if ((addressById.get(messageId) ?? address) !== address) {
      shared.add(messageId);
    }
    addressById.set(messageId, address);
  }
  return shared.size === 0 ? found : found.filter((message) => !shared.has(message.messageId));
}

export interface SuppressionPlan {
  /** Recipients left out of the send: their address is suppressed for their job's app. */
  leftOut: RecipientRow[];
  /** Each job's recipients still to send to. */
  recipientsByJob: Map<string, RecipientRow[]>;
  /** Jobs with no To address left: they fail with reason "suppressed", without a call. */
  failed: SendResult[];
  /** The jobs still to send. */
  jobs: ClaimedJob[];
}

/** `suppressed`: the reasons of the suppressed pairs, keyed by suppressionKey. */
export function planSuppression(
  jobs: readonly ClaimedJob[],
  recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>,
  suppressed: ReadonlyMap<string, string>,
): SuppressionPlan {
  const plan: SuppressionPlan = { leftOut: [], recipientsByJob: new Map(), failed: [], jobs: [] };
  for (const job of jobs) {
    const rows = recipientsByJob.get(job.id) ?? [];
    const isSuppressed = (row: RecipientRow) => suppressed.has(suppressionKey(job.appId, row.email));
    const out = rows.filter(isSuppressed);
    const kept = rows.filter((row) => !isSuppressed(row));
    plan.leftOut.push(...out);
    plan.recipientsByJob.set(job.id, kept);
    if (out.length > 0 && !kept.some((row) => row.kind === 'to')) {
      const reasons = out.map((row) => `${row.email} (${suppressed.get(suppressionKey(job.appId, row.email))})`).join(', ');
      plan.failed.push({ jobId: job.id, kind: 'failed', error: `suppressed: ${reasons}` });
    } else {
      plan.jobs.push(job);
    }
  }
  return plan;
}

/** One Send API call: its jobs and their messages (each a MailjetMessage's JSON text), in the same order, and its SandboxMode. */
export interface PlannedCall {
  jobs: ClaimedJob[];
  messageJson: string[];
  sandbox: boolean;
}

/**
 * The jobs' messages, packed in order into calls Mailjet accepts (recipients and bytes per call) of
 * at most `maxJobs` jobs. SandboxMode is a field of the whole call in v3.1, so sandbox jobs and real
 * ones are packed apart: a real message in a sandbox call would silently not be sent, a sandbox one
 * in a real call would be.
 */
export function planCalls(jobs: readonly ClaimedJob[], recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>, maxJobs = Infinity): PlannedCall[] {
  return [false, true].flatMap((sandbox) =>
    packJobs(
      jobs.filter((job) => (job.content.sandbox ?? false) === sandbox),
      recipientsByJob,
      sandbox,
      maxJobs,
    ),
  );
}

function packJobs(
  jobs: readonly ClaimedJob[],
  recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>,
  sandbox: boolean,
  maxJobs: number,
): PlannedCall[] {
  // Serialised here, once: the text measures the message and is what the call sends (sendBodyJson).
  const messageJson = jobs.map((job) =>
    JSON.stringify(
      toMailjetMessage({
        id: job.id,
        customId: job.customId,
        content: job.content,
        recipients: (recipientsByJob.get(job.id) ?? []).map((r) => ({ kind: r.kind, email: r.email, name: r.name ?? undefined })),
      }),
    ),
  );
  const sizes = jobs.map((job, index) => ({ recipients: countRecipients(recipientsByJob.get(job.id) ?? []), bytes: Buffer.byteLength(messageJson[index]!) }));
  return packCalls(sizes, undefined, undefined, maxJobs).map((indexes) => ({
    jobs: indexes.map((index) => jobs[index]!),
    messageJson: indexes.map((index) => messageJson[index]!),
    sandbox,
  }));
}

/** A call's two halves, in order: what goes instead of a call of several messages Mailjet refused as too large (413). */
export function splitCall(call: PlannedCall): PlannedCall[] {
  const half = Math.ceil(call.jobs.length / 2);
  return [
    { jobs: call.jobs.slice(0, half), messageJson: call.messageJson.slice(0, half), sandbox: call.sandbox },
    { jobs: call.jobs.slice(half), messageJson: call.messageJson.slice(half), sandbox: call.sandbox },
  ];
}

/** The recipients the jobs' messages go to, as Mailjet counts them. */
export function recipientsOfJobs(jobs: readonly ClaimedJob[], recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>): number {
  return jobs.reduce((sum, job) => sum + countRecipients(recipientsByJob.get(job.id) ?? []), 0);
}
