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
import { JobDeletedMeanwhileError } from '../domain/errors.js';
import type { StoredEvent } from '../domain/event.js';
import { planEventApplication } from '../domain/event-application.js';
import { acceptedToSentMs } from '../domain/event-time.js';
import { queueWebhookDeliveries } from './webhook-outbox.js';

/**
 * Returns, for each recipient the events moved to `sent`, the time from its job's acceptance to the
 * event as the metrics count it (acceptedToSentMs), for once the caller's transaction committed.
 */
export async function applyEvents(tx: Queryable, channels: NotifyChannels, events: readonly StoredEvent[]): Promise<{ sentAfterAcceptedMs: number[] }> {
  const jobIds = [...new Set(events.flatMap((event) => (event.recipientId !== null && event.jobId !== null ? [event.jobId] : [])))];
  if (jobIds.length === 0) {
    return { sentAfterAcceptedMs: [] };
  }
  // Jobs, then their recipients: the order every writer locks in, so writers never deadlock.
  const jobs = await lockJobs(tx, jobIds);
  if (jobs.size < jobIds.length) {
    throw new JobDeletedMeanwhileError('events were matched to a job deleted meanwhile');
  }
  const recipients = await lockRecipientsOfJobs(tx, jobIds);
  const plan = planEventApplication(events, new Map([...jobs].map(([id, job]) => [id, job.status])), recipients);
  await setRecipientStatuses(tx, plan.recipients);
  await setJobStatuses(tx, plan.jobs);
  const changes = await recordStatusChanges(tx, plan.changes);
  await queueWebhookDeliveries(tx, channels, changes);
  await suppressRecipients(tx, plan.suppressions);
  return {
    sentAfterAcceptedMs: plan.changes.flatMap((change) => {
      const acceptedAt = jobs.get(change.jobId)?.acceptedAt;
      const occurredAt = change.details?.['occurred_at'];
      return change.newStatus === 'sent' && acceptedAt && typeof occurredAt === 'string'
        ? // Only bounds the metric (an event dated in this host's future counts as now).
          // eslint-disable-next-line no-restricted-properties
          [acceptedToSentMs(Date.parse(occurredAt), acceptedAt.getTime(), Date.now())]
        : [];
    }),
  };
}
