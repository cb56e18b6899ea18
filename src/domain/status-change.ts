// Status changes: the log apps hear about (the polling feed and webhooks), and its JSON, pure.
import { eventName } from './status.js';

export interface NewStatusChange {
  jobId: string;
  /** Null for a change of the job itself. */
  recipientId: string | null;
  oldStatus: string | null;
  newStatus: string;
  details: Record<string, unknown> | null;
}

/** A change as written: what the webhook outbox needs to queue its deliveries. */
export interface RecordedChange {
  id: string;
  appId: string;
}

/** A position in an app's changes feed: the writing transaction's id (xid8) and the change's id. */
export interface FeedCursor {
  txid: string;
  id: string;
}

export interface StatusChangeRow {
  id: string;
  /** The writing transaction's id (xid8), as text. */
  txid: string;
  jobId: string;
  customId: string | null;
  metadata: Record<string, unknown> | null;
  recipient: string | null;
  oldStatus: string | null;
  newStatus: string;
  details: Record<string, unknown> | null;
  createdAt: Date;
}

/** The webhook body and the entries of the polling feed. */
export function changeJson(change: StatusChangeRow) {
  return {
    /** The change's id: a repeated delivery of the same change carries the same id. */
    id: change.id,
    type: change.newStatus,
    created_at: change.createdAt.toISOString(),
    job_id: change.jobId,
    custom_id: change.customId,
    recipient: change.recipient,
    old_status: change.oldStatus,
    new_status: change.newStatus,
    // Stored with Mailjet's name of the event (`open`); the API says `opened`, as everywhere else.
    details: typeof change.details?.['event'] === 'string' ? { ...change.details, event: eventName(change.details['event']) } : change.details,
    metadata: change.metadata,
  };
}
