// What stored Mailjet events do to their recipients and jobs, pure. Events are taken in the order
// they happened; each one that moves a recipient forward is a step the app hears about (sent, then
// opened, even when both arrive in one callback), with its details. A job Mailjet accepted then
// follows its recipients (its own change is not logged twice: the recipients' changes say it).
//
// The events ingest applies the same rules in one SQL statement (db/events-repo.ts,
// STORE_AND_APPLY): what each event asks for comes from eventEffect here, and
// test/db/events-apply-agreement.test.ts checks that the statement and planEventApplication agree.
import type { StoredEvent } from './event.js';
import { eventDetails } from './event-parse.js';
import type { RecipientRow } from './recipient.js';
import {
  type DeliveryStatus,
  isDeliveryStatus,
  type JobStatus,
  jobStatusFromRecipients,
  nextRecipientStatus,
  type RecipientStatus,
  statusForEvent,
} from './status.js';
import type { NewStatusChange } from './status-change.js';
import { type RecipientSuppression, suppressionFor, suppressionOf } from './suppression.js';

export interface EventApplication {
  /** New statuses of recipients (only those that change). */
  recipients: Map<string, RecipientStatus>;
  /** New statuses of jobs (only those that change). */
  jobs: Map<string, JobStatus>;
  /** Each recipient's steps, in the order the events happened: the changes apps hear about. */
  changes: NewStatusChange[];
  /** Addresses the events keep from the app's future sends. */
  suppressions: RecipientSuppression[];
}

/** What one event asks for, whatever the state it meets. */
export interface EventEffect {
  /** When it happened, as ISO 8601 text (as in `details`). */
  occurredAt: string;
  /** The status it moves its recipient toward; undefined: none (history only). */
  target: DeliveryStatus | undefined;
  /** The details of the change it makes, if it makes one. */
  details: Record<string, unknown>;
  /** The suppression of its address it causes, if any. */
  suppression: Omit<RecipientSuppression, 'recipientId'> | undefined;
}

/**
 * `isoTime` formats the event's time: the ingest gives one that formats a time shared by consecutive
 * events once (domain/iso-time.ts).
 */
export function eventEffect(
  event: Pick<StoredEvent, 'type' | 'occurredAt' | 'hardBounce' | 'payload'>,
  isoTime: (date: Date) => string = (date) => date.toISOString(),
): EventEffect {
  const occurredAt = isoTime(event.occurredAt);
  return {
    occurredAt,
    target: statusForEvent(event.type, event.hardBounce),
    details: { event: event.type, occurred_at: occurredAt, ...eventDetails(event.payload) },
    suppression: suppressionOf(event),
  };
}

/**
 * `events` matched to their recipients; `jobStatuses` and `recipients`: the current state of their
 * jobs (every recipient of every job, locked by the caller).
 */
export function planEventApplication(
  events: readonly StoredEvent[],
  jobStatuses: ReadonlyMap<string, JobStatus>,
  recipients: readonly RecipientRow[],
): EventApplication {
  const matched = events.filter((event) => event.recipientId !== null && event.jobId !== null);
  const statusById = new Map<string, RecipientStatus>(recipients.map((r) => [r.id, r.status]));

  const changes: NewStatusChange[] = [];
  const inOrder = [...matched].sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime() || Number(a.id) - Number(b.id));
  for (const event of inOrder) {
    const current = statusById.get(event.recipientId!);
    const effect = eventEffect(event);
    const next = current && nextRecipientStatus(current, effect.target);
    if (current !== undefined && next !== undefined && next !== current) {
      changes.push({ jobId: event.jobId!, recipientId: event.recipientId!, oldStatus: current, newStatus: next, details: effect.details });
      statusById.set(event.recipientId!, next);
    }
  }

  const recipientChanges = new Map<string, RecipientStatus>();
  for (const recipient of recipients) {
    const next = statusById.get(recipient.id)!;
    if (next !== recipient.status) {
      recipientChanges.set(recipient.id, next);
    }
  }

  const jobChanges = new Map<string, JobStatus>();
  for (const jobId of new Set(matched.map((event) => event.jobId!))) {
    const current = jobStatuses.get(jobId);
    // Only jobs Mailjet accepted follow their recipients; a job that is, say, being retried keeps its own status.
    if (current === undefined || !isDeliveryStatus(current)) {
      continue;
    }
    const derived = jobStatusFromRecipients(recipients.filter((r) => r.jobId === jobId).map((r) => statusById.get(r.id)!));
    if (derived !== undefined && derived !== current) {
      jobChanges.set(jobId, derived);
    }
  }
  // In the order the events happened: of two that suppress one address (a hard bounce, then an
  // unsubscribe), the first gives the reason, as a suppression already there keeps its own.
  return { recipients: recipientChanges, jobs: jobChanges, changes, suppressions: inOrder.flatMap(suppressionFor) };
}
