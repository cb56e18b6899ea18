// Moves recipients and jobs forward from stored Mailjet events, inside the caller's transaction,
// and logs each recipient's change for the app (feed and webhooks; the job's own status follows
// from its recipients and is not logged twice).
// Used by the events ingest and by the recording of a send (for events that arrived first).
import type { StoredEvent } from '../db/events-repo.js';
import { lockJobs, setJobStatuses } from '../db/jobs-repo.js';
import type { Queryable } from '../db/pool.js';
import { lockRecipientsOfJobs, setRecipientStatuses } from '../db/recipients-repo.js';
import { recordStatusChanges } from '../db/status-changes-repo.js';
import { type SuppressionReason, suppressRecipients } from '../db/suppressions-repo.js';
import { eventDetails } from '../domain/event-parse.js';
import { isDeliveryStatus, type JobStatus, jobStatusFromRecipients, nextRecipientStatus, type RecipientStatus, statusForEvent } from '../domain/status.js';

export interface StatusChange {
  jobId: string;
  /** Undefined for a job-level change. */
  recipientId?: string;
  from: string;
  to: string;
}

export async function applyEvents(tx: Queryable, events: readonly StoredEvent[]): Promise<StatusChange[]> {
  const matched = events.filter((event) => event.recipientId !== null && event.jobId !== null);
  if (matched.length === 0) {
    return [];
  }
  const jobIds = [...new Set(matched.map((event) => event.jobId!))];
  const jobStatuses = await lockJobs(tx, jobIds);
  const recipients = await lockRecipientsOfJobs(tx, jobIds);
  const statusById = new Map<string, RecipientStatus>(recipients.map((r) => [r.id, r.status]));

  // Events in the order they happened: each one that moves a recipient forward is a step the app
  // hears about (sent, then opened, even when both arrive in one callback), with its details.
  const steps: Array<StatusChange & { cause: StoredEvent }> = [];
  const inOrder = [...matched].sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime() || Number(a.id) - Number(b.id));
  for (const event of inOrder) {
    const current = statusById.get(event.recipientId!);
    const next = current && nextRecipientStatus(current, statusForEvent(event.type, event.hardBounce));
    if (current !== undefined && next !== undefined && next !== current) {
      steps.push({ jobId: event.jobId!, recipientId: event.recipientId!, from: current, to: next, cause: event });
      statusById.set(event.recipientId!, next);
    }
  }

  const changes: StatusChange[] = steps.map(({ jobId, recipientId, from, to }) => ({ jobId, recipientId, from, to }));
  const recipientChanges = new Map<string, RecipientStatus>();
  for (const recipient of recipients) {
    const next = statusById.get(recipient.id)!;
    if (next !== recipient.status) {
      recipientChanges.set(recipient.id, next);
    }
  }

  const jobChanges = new Map<string, JobStatus>();
  for (const jobId of jobIds) {
    const current = jobStatuses.get(jobId);
    // Only jobs Mailjet accepted follow their recipients; a job that is, say, being retried keeps its own status.
    if (current === undefined || !isDeliveryStatus(current)) {
      continue;
    }
    const derived = jobStatusFromRecipients(recipients.filter((r) => r.jobId === jobId).map((r) => statusById.get(r.id)!));
    if (derived !== undefined && derived !== current) {
      jobChanges.set(jobId, derived);
      changes.push({ jobId, from: current, to: derived });
    }
  }
  await setRecipientStatuses(tx, recipientChanges);
  await setJobStatuses(tx, jobChanges);
  await recordStatusChanges(
    tx,
    steps.map((step) => ({
      jobId: step.jobId,
      recipientId: step.recipientId!,
      oldStatus: step.from,
      newStatus: step.to,
      details: { event: step.cause.type, occurred_at: step.cause.occurredAt.toISOString(), ...eventDetails(step.cause.payload) },
    })),
  );
  await suppressRecipients(tx, matched.flatMap(suppressionFor));
  return changes;
}

/** Hard bounces, spam complaints and unsubscribes keep the address from the app's future sends. */
function suppressionFor(event: StoredEvent): Array<{ recipientId: string; reason: SuppressionReason; detail: string | null }> {
  const text = (field: string) => (typeof event.payload[field] === 'string' && event.payload[field] !== '' ? (event.payload[field] as string) : undefined);
  const entry = (reason: SuppressionReason, detail: string | undefined) => [{ recipientId: event.recipientId!, reason, detail: detail ?? null }];
  switch (event.type) {
    case 'bounce':
      return event.hardBounce === false ? [] : entry('hard_bounce', [text('error_related_to'), text('error')].filter(Boolean).join(': ') || undefined);
    case 'spam':
      return entry('spam', text('source'));
    case 'unsub':
      return entry('unsubscribed', 'unsubscribed through Mailjet');
    default:
      return [];
  }
}
