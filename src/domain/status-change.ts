// Status changes: the log apps hear about (the polling feed and webhooks), and its JSON, pure.
import { eventName } from './status.js';

/**
 * What a change's `type` (its new status) can be: the job's own changes (accepted, failed,
 * cancelled) and a recipient's, caused by Mailjet events. Apps subscribe their webhook to these.
 */
export const CHANGE_TYPES = ['accepted', 'sent', 'opened', 'clicked', 'unsubscribed', 'spam', 'bounced', 'blocked', 'failed', 'cancelled'] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

/**
 * The subscription to store for the types an app chose: null (every type, those added later too)
 * when it chose them all; otherwise each type once, in CHANGE_TYPES order.
 */
export function eventTypeSubscription(chosen: readonly ChangeType[]): ChangeType[] | null {
  const subscribed = CHANGE_TYPES.filter((type) => chosen.includes(type));
  return subscribed.length === CHANGE_TYPES.length ? null : subscribed;
}

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
  /** Its new status: the webhook delivers it only to an app subscribed to the type. */
  type: string;
}

/**
 * The changes of one page of the feed, in bytes of JSON (about): 1,000 changes with their jobs'
 * metadata (8 KiB) and a bounce's long details would answer 20 MB. A page stops before the change
 * that would pass this (it holds one change at least, however large) and says that more are waiting.
 */
export const FEED_PAGE_BYTES = 2 * 1024 * 1024;

/** A page of the feed: its changes, oldest first, and whether more follow them now (past the limit or the bytes). */
export interface FeedPage {
  changes: StatusChangeRow[];
  more: boolean;
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
