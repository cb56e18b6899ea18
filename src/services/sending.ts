// The consumers' transitions: claim a batch (one statement: leased to one consumer), renew or give
// back its leases, leave suppressed addresses out, record what a Mailjet call did to each job (one
// transaction, shared by the calls of this process's consumers that end at about the same time:
// a group commit, group-commit.ts), and return the jobs of consumers that died (the lease reaper's pass). No
// transaction is open while Mailjet is called: the consumer calls between these steps.
import type { Bus } from '../bus.js';
import { type LateMatch, lockMessagesShared, matchKeptEvents } from '../db/events-repo.js';
import {
  acceptSentJobs,
  claimJobs,
  extendLeases,
  nextRunAt,
  reapExpiredLeases,
  releaseJobs,
  setJobErrors,
  settleJobs,
  type Settlement,
} from '../db/jobs-repo.js';
import { notify, type NotifyChannels } from '../db/notify.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { closePendingRecipients, setRecipientStatuses } from '../db/recipients-repo.js';
import { recordStatusChanges } from '../db/status-changes-repo.js';
import { type ClaimedJob, LEASE_EXPIRED_ERROR } from '../domain/job.js';
import type { HeldMessageId } from '../domain/recipient.js';
import type { SendResult } from '../domain/send-decision.js';
import type { RecordedChange } from '../domain/status-change.js';
import { storableText } from '../domain/storable-text.js';
import type { Logger } from '../log.js';
import { applyLateMatches, lateOtherAddress, reportOtherAddress } from './events.js';
import { createGroupCommit } from './group-commit.js';
import { queueWebhookDeliveries } from './webhook-outbox.js';

export interface RecordSummary {
  accepted: string[];
  failed: string[];
  deferred: string[];
  /** Jobs whose lease this consumer no longer held: another consumer owns their fate now. */
  lostLease: string[];
  /**
   * Accepted jobs not recorded because a recipient of another job holds one of their MessageIDs
   * (absent: none): still leased to this consumer, whose next record decides them (heldElsewhere).
   */
  heldElsewhere?: HeldMessageId[];
}

export interface ReapedJob {
  id: string;
  /** deferred: back in the queue, to be looked up at Mailjet first; failed: its attempts were spent. */
  status: 'failed' | 'deferred';
}

export interface SendingService {
  /**
   * Claims up to `limit` due jobs for `workerId`, leased for the service's lease time, with their
   * recipients and suppressed addresses: only as many as fit in `maxBytes` of message (the first
   * always does), the share of the process's claim budget (consumer-pool.ts) this claim reserved.
   */
  claim(workerId: string, limit: number, maxBytes: number): Promise<ClaimedJob[]>;
  /** Marks recipients left out of a send because their address is suppressed. */
  markSuppressed(recipientIds: readonly string[]): Promise<void>;
  /** Renews the leases; returns the ids still held. */
  extendLeases(workerId: string, jobIds: readonly string[]): Promise<string[]>;
  /**
   * Gives unsent jobs back to the queue without counting the attempt (`uncounted`: their claim counted
   * none: look-up only), and wakes the consumers of every replica: they are due at once.
   */
  release(workerId: string, jobIds: readonly string[], uncounted?: readonly string[]): Promise<string[]>;
  /** When the next claimable job falls due (null: none). */
  nextRunAt(): Promise<Date | null>;
  /**
   * Records what a Mailjet call (or a look-up) did to each job, in one transaction (shared with the
   * records of other consumers' calls that end meanwhile).
   */
  record(workerId: string, results: readonly SendResult[]): Promise<RecordSummary>;
  /** Returns up to `limit` jobs whose lease expired to the queue (or fails them when their attempts are spent). */
  reapExpiredLeases(limit: number): Promise<ReapedJob[]>;
  /** True once the pool has been ended for good: a failed query is then not worth retrying. */
  ended(): boolean;
}

export interface SendingServiceDeps {
  pool: Pool;
  channels: NotifyChannels;
  /** Where the events a record keeps aside are counted and logged (reportOtherAddress). */
  bus: Bus;
  log: Logger;
  /** How long a claim or a renewal holds a job, in ms. */
  leaseMs: number;
}

export function createSendingService({ pool, channels, bus, log, leaseMs }: SendingServiceDeps): SendingService {
  // Records of calls that end while the recordings under way are written go in together in the next
  // transaction; one record that cannot be written is then retried alone, never failing the others.
  const record = createGroupCommit<RecordRequest, RecordSummary>({
    write: async (requests) => {
      const { summaries, keptAside } = await recordSendResults(pool, channels, requests);
      reportOtherAddress(bus, log, lateOtherAddress(keptAside));
      return summaries;
    },
    weight: recordWeight,
    maxWeight: MAX_MESSAGE_IDS_PER_TRANSACTION,
    maxInFlight: RECORDS_IN_FLIGHT,
    writeAloneAfter: () => true,
  });
  return {
    claim: (workerId, limit, maxBytes) => claimJobs(pool, workerId, limit, leaseMs, maxBytes),
    markSuppressed: (recipientIds) => setRecipientStatuses(pool, new Map(recipientIds.map((id) => [id, 'suppressed']))),
    extendLeases: (workerId, jobIds) => extendLeases(pool, workerId, jobIds, leaseMs),
    release: (workerId, jobIds, uncounted) => releaseJobs(pool, workerId, jobIds, channels.jobs, uncounted),
    nextRunAt: () => nextRunAt(pool),
    record: (workerId, results) => record({ workerId, results }),
    reapExpiredLeases: (limit) => reap(pool, channels, limit),
    ended: () => pool.ending,
  };
}

/** What one consumer asks to record: the results of one Mailjet call (or look-up) for its jobs. */
export interface RecordRequest {
  workerId: string;
  results: readonly SendResult[];
}

/**
 * MessageIDs bound in one record transaction, at most. The acceptance takes an advisory lock per
 * MessageID it binds (jobs-repo's LOCK_MESSAGE_IDS) until it commits, and PostgreSQL's lock table is
 * shared by every connection (64 × max_connections by default, 6,400): at 1,600 a transaction (32
 * calls of 50), the records in flight of two replicas could fill it, and any statement needing a
 * lock would then fail "out of shared memory". At 800, three replicas catching up at once take
 * 4,800, with room left for their other locks.
 */
export const MAX_MESSAGE_IDS_PER_TRANSACTION = 800;
/** Calls' records in one transaction, at most (a record without MessageIDs counts as this share of them). */
const MAX_RECORDS_PER_TRANSACTION = 32;

/** A record's share of MAX_MESSAGE_IDS_PER_TRANSACTION: its MessageIDs, at least 1/32 of it. */
export function recordWeight({ results }: RecordRequest): number {
  let ids = 0;
  for (const result of results) {
    if (result.kind === 'accepted') {
      ids += result.recipients.length;
    }
  }
  return Math.max(ids, MAX_MESSAGE_IDS_PER_TRANSACTION / MAX_RECORDS_PER_TRANSACTION);
}

/**
 * Record transactions written at once. With one, a call that Mailjet answered while a record was
 * being written waited for all of it (tens to hundreds of ms under load) before its jobs were
 * accepted. Two records never touch the same job unless a lease was lost, and then each job's lease
 * guard decides as it does between replicas: which wins is the same as one at a time.
 */
const RECORDS_IN_FLIGHT = 2;

/**
 * The longest error a job keeps. Mailjet's reasons are part of it, as Mailjet wrote them: an answer
 * of up to 1 MiB could make it that long.
 */
const LAST_ERROR_LENGTH = 2000;

/** A job's error as its column can keep it: NUL escaped (a text column refuses it, and the whole record with it), cut to LAST_ERROR_LENGTH. */
function storedError(error: string): string {
  const { text, truncated } = storableText(error, LAST_ERROR_LENGTH);
  return truncated ? `${text}…` : text;
}

/**
 * Accepted jobs get their recipients' MessageIDs, failed and deferred jobs leave their lease, and
 * events that arrived before the MessageIDs were known are applied now: for several consumers' calls
 * in one transaction, each job guarded by its own consumer's lease.
 */
async function recordSendResults(
  pool: Pool,
  channels: NotifyChannels,
  requests: readonly RecordRequest[],
): Promise<{ summaries: RecordSummary[]; keptAside: LateMatch[] }> {
  const accepted = requests.flatMap(({ workerId, results }) => results.flatMap((r) => (r.kind === 'accepted' ? [{ workerId, result: r }] : [])));
  const settlements = requests.flatMap(({ workerId, results }) =>
    results.flatMap((r): Array<Settlement & { workerId: string }> => {
      switch (r.kind) {
        case 'accepted':
          return [];
        case 'failed':
          return [
            {
              workerId,
              id: r.jobId,
              status: 'failed',
              runAt: null,
              error: storedError(r.error),
              outcomeUnknown: r.outcomeUnknown ?? false,
              refundAttempt: false,
            },
          ];
        case 'deferred':
          return [
            {
              workerId,
              id: r.jobId,
              status: 'deferred',
              runAt: r.runAt,
              error: storedError(r.error),
              outcomeUnknown: r.outcomeUnknown,
              refundAttempt: r.refundAttempt,
              lookUpOnly: r.lookUpOnly ?? false,
              found: r.found,
              lookUpFailingSince: r.lookUpFailingSince,
            },
          ];
      }
    }),
  );
  return withTransaction(pool, async (tx) => {
    await lockMessagesShared(
      tx,
      accepted.flatMap((a) => a.result.recipients),
    );
    const acceptance = await acceptSentJobs(
      tx,
      accepted.map((a) => ({ id: a.result.jobId, workerId: a.workerId, recipients: a.result.recipients })),
    );
    const acceptedKeys = new Set(acceptance.accepted.map((job) => `${job.id}/${job.workerId}`));
    const acceptedIds = acceptance.accepted.map((job) => job.id);
    const unreachedChanges = await closeUnreached(
      tx,
      accepted.filter((a) => a.result.unreached !== undefined && acceptedKeys.has(`${a.result.jobId}/${a.workerId}`)).map((a) => a.result),
    );
    const settled = await settleJobs(tx, settlements);
    const failed = settled.filter((s) => s.status === 'failed');
    await closePendingRecipients(
      tx,
      failed.map((s) => s.id),
      'failed',
    );
    const changes = await recordStatusChanges(
      tx,
      failed.map((s) => ({ jobId: s.id, recipientId: null, oldStatus: 'processing', newStatus: 'failed', details: { error: s.error } })),
    );
    await queueWebhookDeliveries(tx, channels, [...acceptance.webhookChanges, ...unreachedChanges, ...changes]);
    const late = await applyLateMatches(tx, channels, await matchKeptEvents(tx, acceptedIds));
    const settledKeys = new Map(settled.map((s) => [`${s.id}/${s.workerId}`, s.status]));
    const heldByKey = new Map<string, HeldMessageId[]>();
    for (const { workerId, ...held } of acceptance.held) {
      heldByKey.set(`${held.jobId}/${workerId}`, [...(heldByKey.get(`${held.jobId}/${workerId}`) ?? []), held]);
    }
    const summaries = requests.map(({ workerId, results }): RecordSummary => {
      const summary: RecordSummary = { accepted: [], failed: [], deferred: [], lostLease: [] };
      for (const { jobId } of results) {
        const key = `${jobId}/${workerId}`;
        const held = heldByKey.get(key);
        if (held !== undefined) {
          (summary.heldElsewhere ??= []).push(...held);
          continue;
        }
        const status = acceptedKeys.has(key) ? 'accepted' : settledKeys.get(key);
        (status === undefined ? summary.lostLease : summary[status]).push(jobId);
      }
      return summary;
    });
    return { summaries, keptAside: late.otherAddress };
  });
}

/**
 * The recipients of accepted jobs that Mailjet gave no id even when looked up (giveUpUnreached): they
 * end `failed` with the error that says their outcome is unknown, which their job keeps too.
 */
async function closeUnreached(tx: Queryable, results: ReadonlyArray<Extract<SendResult, { kind: 'accepted' }>>): Promise<RecordedChange[]> {
  const closed = results.flatMap(({ jobId, unreached }) =>
    unreached === undefined ? [] : unreached.recipientIds.map((recipientId) => ({ jobId, recipientId, error: storedError(unreached.error) })),
  );
  if (closed.length === 0) {
    return [];
  }
  await setRecipientStatuses(tx, new Map(closed.map(({ recipientId }) => [recipientId, 'failed'])));
  await setJobErrors(tx, new Map(closed.map(({ jobId, error }) => [jobId, error])));
  return recordStatusChanges(
    tx,
    closed.map(({ jobId, recipientId, error }) => ({ jobId, recipientId, oldStatus: 'pending', newStatus: 'failed', details: { error } })),
  );
}

/** A lease that expired means its consumer's process died (or lost the database) mid-batch. */
async function reap(pool: Pool, channels: NotifyChannels, limit: number): Promise<ReapedJob[]> {
  // Bulk: after a crash a pass returns up to `limit` jobs with their recipients and status changes.
  return withTransaction(
    pool,
    async (tx) => {
      const rows = await reapExpiredLeases(tx, limit, LEASE_EXPIRED_ERROR);
      const failed = rows.filter((row) => row.status === 'failed').map((row) => row.id);
      await closePendingRecipients(tx, failed, 'failed');
      const changes = await recordStatusChanges(
        tx,
        failed.map((jobId) => ({ jobId, recipientId: null, oldStatus: 'processing', newStatus: 'failed', details: { error: LEASE_EXPIRED_ERROR } })),
      );
      await queueWebhookDeliveries(tx, channels, changes);
      // Due at once: the reaper's own consumers are woken by its caller, those of the other replicas
      // (all of them, on a replica with WORKER_CONCURRENCY=0) slept until their idle check.
      if (rows.length > failed.length) {
        await notify(tx, channels.jobs);
      }
      return rows;
    },
    { bulk: true },
  );
}
