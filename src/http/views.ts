// Domain rows → the JSON the API answers with (openapi.yaml: Job, Recipient, Event). Ids and
// MessageIDs are strings: MessageIDs exceed 2^53 and would lose digits as JSON numbers.
import { type AppWebhook, type AppWithKeys, WEBHOOK_PAUSE_ENDS_BY_ITSELF } from '../domain/app.js';
import type { StoredEvent } from '../domain/event.js';
import { eventDetails } from '../domain/event-parse.js';
import type { AdminJobRow, QueuedJob } from '../domain/job.js';
import type { RecipientRow } from '../domain/recipient.js';
import { eventName } from '../domain/status.js';
import { CHANGE_TYPES } from '../domain/status-change.js';
import type { Suppression } from '../domain/suppression.js';
import type { DeliveryRow } from '../domain/webhook-delivery.js';
import type { JobView } from '../services/jobs.js';

export function statusUrl(jobId: string): string {
  return `/status/${jobId}`;
}

export function queuedJobJson(job: QueuedJob) {
  return { job_id: job.id, status: job.status, custom_id: job.customId, status_url: statusUrl(job.id) };
}

function recipientJson(recipient: RecipientRow) {
  return {
    email: recipient.email,
    name: recipient.name,
    kind: recipient.kind,
    status: recipient.status,
    message_id: recipient.messageId,
    message_uuid: recipient.messageUuid,
  };
}

function eventJson(event: StoredEvent) {
  return {
    type: eventName(event.type),
    email: event.email,
    message_id: event.messageId,
    occurred_at: event.occurredAt.toISOString(),
    details: eventDetails(event.payload),
  };
}

export function adminJobJson(job: AdminJobRow) {
  return {
    job_id: job.id,
    app: job.appName,
    status: job.status,
    custom_id: job.customId,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    last_error: job.lastError,
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
  };
}

export function appJson(app: AppWithKeys) {
  return {
    name: app.name,
    created_at: app.createdAt.toISOString(),
    keys: app.keys.map((key) => ({
      prefix: key.prefix,
      created_at: key.createdAt.toISOString(),
      revoked_at: key.revokedAt?.toISOString() ?? null,
    })),
  };
}

export function suppressionJson(suppression: Suppression) {
  return {
    email: suppression.email,
    reason: suppression.reason,
    detail: suppression.detail,
    created_at: suppression.createdAt.toISOString(),
  };
}

/** What ends a pause of an app's deliveries, for the operator who sees one. */
const PAUSE_ENDS = `it ends by itself at until: ${WEBHOOK_PAUSE_ENDS_BY_ITSELF}. To try at once, redeliver one of the deliveries (POST /admin/apps/{app}/webhook/deliveries/{id}/redeliver); a new URL (PUT) starts without a pause`;

export function webhookJson(webhook: AppWebhook) {
  return {
    url: webhook.url,
    secret: webhook.secret,
    event_types: webhook.eventTypes ?? CHANGE_TYPES,
    disabled_at: webhook.disabled?.at.toISOString() ?? null,
    disabled_reason: webhook.disabled?.reason ?? null,
    previous_secrets: webhook.previousSecrets.map((previous) => ({ secret: previous.secret, expires_at: previous.expiresAt.toISOString() })),
    paused: webhook.pause && {
      until: webhook.pause.until.toISOString(),
      pauses_in_row: webhook.pause.pausesInRow,
      last_status_code: webhook.pause.lastAttempt?.statusCode ?? null,
      last_error: webhook.pause.lastAttempt?.error ?? null,
      how_to_end: PAUSE_ENDS,
    },
  };
}

export function deliveryJson(delivery: DeliveryRow) {
  return {
    delivery_id: delivery.id,
    event_id: delivery.changeId,
    job_id: delivery.jobId,
    type: delivery.type,
    status: delivery.status,
    attempts: delivery.attempts,
    next_attempt_at: delivery.status === 'pending' ? delivery.nextAttemptAt.toISOString() : null,
    last_status_code: delivery.lastStatusCode,
    last_error: delivery.lastError,
    created_at: delivery.createdAt.toISOString(),
    delivered_at: delivery.deliveredAt?.toISOString() ?? null,
  };
}

export function jobViewJson({ job, recipients, events, eventsOmitted }: JobView) {
  return {
    job_id: job.id,
    status: job.status,
    custom_id: job.customId,
    metadata: job.metadata,
    priority: job.priority,
    send_at: job.sendAt?.toISOString() ?? null,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    last_error: job.lastError,
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
    accepted_at: job.acceptedAt?.toISOString() ?? null,
    recipients: recipients.map(recipientJson),
    events: events.map(eventJson),
    events_omitted: eventsOmitted,
  };
}
