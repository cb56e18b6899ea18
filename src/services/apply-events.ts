// Moves recipients and jobs forward from stored Mailjet events, inside the caller's transaction:
// the events ingest, and the recording of a send (for events that arrived first). The rules are
// domain/event-application.ts; this is the transition: lock, write, log the changes for the app
// (feed and webhooks), suppress.
import { lockJobs, setJobStatuses } from '../db/jobs-repo.js';
import type { NotifyChannels } from '../db/notify.js';
import type { Queryable } from '../db/pool.js';
import { lockRecipientsOfJobs, setRecipientStatuses } from '../db/recipients-repo.js';
import { recordStatusChanges } from '../db/status-changes-repo.js';
import { suppressRecipients } from '../db/suppressions-repo.js';
import type { StoredEvent } from '../domain/event.js';
import { planEventApplication } from '../domain/event-application.js';
import { queueWebhookDeliveries } from './webhook-outbox.js';

export async function applyEvents(tx: Queryable, channels: NotifyChannels, events: readonly StoredEvent[]): Promise<void> {
  const jobIds = [...new Set(events.flatMap((event) => (event.recipientId !== null && event.jobId !== null ? [event.jobId] : [])))];
  if (jobIds.length === 0) {
    return;
  }
  // Jobs, then their recipients: the order every writer locks in, so writers never deadlock.
  const jobStatuses = await lockJobs(tx, jobIds);
  const recipients = await lockRecipientsOfJobs(tx, jobIds);
  const plan = planEventApplication(events, jobStatuses, recipients);
  await setRecipientStatuses(tx, plan.recipients);
  await setJobStatuses(tx, plan.jobs);
  const changes = await recordStatusChanges(tx, plan.changes);
  await queueWebhookDeliveries(tx, channels, changes);
  await suppressRecipients(tx, plan.suppressions);
}
