// Records what a Mailjet call did to each of its jobs, in one transaction: accepted jobs get their
// recipients' MessageIDs, failed and deferred jobs leave their lease, and events that arrived before
// the MessageIDs were known are applied now.
import { lockMessagesShared, matchKeptEvents } from '../db/events-repo.js';
import { acceptJobs, settleJobs,type Settlement } from '../db/jobs-repo.js';
import { type Pool, withTransaction } from '../db/pool.js';
import { type AcceptedIds, acceptRecipients, closePendingRecipients, type RecipientRow } from '../db/recipients-repo.js';
import { recordStatusChanges } from '../db/status-changes-repo.js';
import type { AcceptedRecipient } from '../domain/mailjet-outcome.js';
import type { SendResult } from '../domain/send-decision.js';
import { applyEvents } from './apply-events.js';

export interface RecordSummary {
  accepted: string[];
  failed: string[];
  deferred: string[];
  /** Jobs whose lease this consumer no longer held: another consumer owns their fate now. */
  lostLease: string[];
}

export async function recordSendResults(
  pool: Pool,
  workerId: string,
  recipientsByJob: ReadonlyMap<string, readonly RecipientRow[]>,
  results: readonly SendResult[],
): Promise<RecordSummary> {
  const accepted = results.filter((r): r is Extract<SendResult, { kind: 'accepted' }> => r.kind === 'accepted');
  const settlements: Settlement[] = results.flatMap((r): Settlement[] => {
    switch (r.kind) {
      case 'accepted':
        return [];
      case 'failed':
        return [{ id: r.jobId, status: 'failed', runAt: null, error: r.error, outcomeUnknown: r.outcomeUnknown ?? false, refundAttempt: false }];
      case 'deferred':
        return [{ id: r.jobId, status: 'deferred', runAt: r.runAt, error: r.error, outcomeUnknown: r.outcomeUnknown, refundAttempt: r.refundAttempt }];
    }
  });
  return withTransaction(pool, async (tx) => {
    await lockMessagesShared(
      tx,
      accepted.flatMap((r) => r.recipients),
    );
    const acceptedIds = await acceptJobs(
      tx,
      workerId,
      accepted.map((r) => r.jobId),
    );
    const acceptedSet = new Set(acceptedIds);
    await acceptRecipients(
      tx,
      accepted.filter((r) => acceptedSet.has(r.jobId)).flatMap((r) => matchRecipients(recipientsByJob.get(r.jobId) ?? [], r.recipients)),
    );
    const settled = await settleJobs(tx, workerId, settlements);
    const failed = settled.filter((s) => s.status === 'failed').map((s) => s.id);
    await closePendingRecipients(tx, failed, 'failed');
    await recordStatusChanges(tx, [
      ...acceptedIds.map((jobId) => ({ jobId, recipientId: null, oldStatus: 'processing', newStatus: 'accepted', details: null })),
      ...settled
        .filter((s) => s.status === 'failed')
        .map((s) => ({ jobId: s.id, recipientId: null, oldStatus: 'processing', newStatus: 'failed', details: { error: s.error } })),
    ]);
    await applyEvents(tx, await matchKeptEvents(tx, acceptedIds));
    const done = new Set([...acceptedIds, ...settled.map((s) => s.id)]);
    return {
      accepted: acceptedIds,
      failed,
      deferred: settled.filter((s) => s.status === 'deferred').map((s) => s.id),
      lostLease: results.map((r) => r.jobId).filter((id) => !done.has(id)),
    };
  });
}

/** Pairs Mailjet's per-recipient ids with our rows: same kind, same address, in order. */
export function matchRecipients(rows: readonly RecipientRow[], accepted: readonly AcceptedRecipient[]): AcceptedIds[] {
  const unused = [...rows];
  const out: AcceptedIds[] = [];
  for (const item of accepted) {
    const index = unused.findIndex((row) => row.kind === item.kind && row.email.toLowerCase() === item.email.toLowerCase());
    if (index >= 0) {
      const [row] = unused.splice(index, 1);
      out.push({ recipientId: row!.id, messageId: item.messageId, messageUuid: item.messageUuid });
    }
  }
  return out;
}
