// A job as jetpost keeps it (email_send_jobs): one message, its lifecycle status and its lease.
import type { AddressedMessage } from './mailjet-outcome.js';
import type { MessageContent } from './message.js';
import type { RecipientRow } from './recipient.js';
import type { JobStatus } from './status.js';
import type { SuppressionReason } from './suppression.js';

/**
 * A job without its message (html, attachments: up to 14 MiB): what every read but the claim needs.
 * Reads never select the message column, so looking up big jobs costs no more than small ones.
 */
export interface JobRow {
  id: string;
  appId: string;
  status: JobStatus;
  customId: string | null;
  metadata: Record<string, unknown> | null;
  priority: number;
  sendAt: Date | null;
  runAt: Date;
  /** Attempts started so far (a claim counts as one). */
  attempts: number;
  maxAttempts: number;
  lockedBy: string | null;
  lockedUntil: Date | null;
  lastError: string | null;
  recipientCount: number;
  /** The last attempt ended without a clear answer: look the job up at Mailjet before resending. */
  outcomeUnknown: boolean;
  createdAt: Date;
  updatedAt: Date;
  acceptedAt: Date | null;
}

/** What POST /queue answers of a job it stored (or found stored, on a replay). */
export type QueuedJob = Pick<JobRow, 'id' | 'status' | 'customId'>;

export interface ClaimedJob extends JobRow {
  /** The message to send: only the claim reads it. */
  content: MessageContent;
  /**
   * Its attempts are spent but its last one's outcome is unknown: this claim is only to ask Mailjet
   * whether it was delivered, and it does not count as an attempt.
   */
  lookUpOnly: boolean;
  /**
   * Mailjet answered "success" for its last attempt without usable ids for its recipients: a look-up
   * that does not find it does not make it unsent (giveUpAfterLookUp).
   */
  acceptedUnresolved: boolean;
  /**
   * What earlier look-ups found of it, when they found some of its addresses only (lookUpResult): a
   * MessageID found once stays found. Empty otherwise.
   */
  foundEarlier: readonly AddressedMessage[];
  /** Since when its look-ups have not been answered (waitForLookUp); null while they are, or none was made. */
  lookUpFailingSince: Date | null;
  /** Its To, Cc and Bcc rows in order, read by the claim itself (no second round trip). */
  recipients: RecipientRow[];
  /** Those of its addresses suppressed for its app (lower-cased), with the reason: read by the claim too. */
  suppressed: ReadonlyMap<string, SuppressionReason>;
}

/** A job as the admin lists it, across apps. */
export interface AdminJobRow extends JobRow {
  appName: string;
}

/** The error a job keeps when the lease reaper finds its consumer gone. */
export const LEASE_EXPIRED_ERROR = 'the lease expired: the consumer holding this job stopped before recording a result';
