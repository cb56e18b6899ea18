// A Mailjet event as jetpost keeps it (email_events): the append-only, deduplicated history.
import type { MailjetEventType } from './status.js';

/** An event as stored, with where it was matched (null ids: kept aside, message not known yet). */
export interface StoredEvent {
  id: string;
  type: MailjetEventType;
  occurredAt: Date;
  recipientId: string | null;
  jobId: string | null;
  messageId: string | null;
  messageUuid: string | null;
  email: string | null;
  hardBounce: boolean | undefined;
  payload: Record<string, unknown>;
}

/**
 * How many of a job's earlier events a read counts at most beyond those it shows: past this, it says
 * "this many or more". Counting is a walk of the job's index entries (2 million, 100 jobs of a link
 * scanner's 20,000 clicks in one GET /status?ids=, took 2.5 to 4 s, past the statement timeout).
 */
export const OMITTED_EVENTS_COUNTED = 1_000;
