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
 * How many of a job's earlier events (or, on the dashboard, later status changes) a read counts at
 * most beyond those it shows: past this, it says "this many or more". Counting is a walk of the job's index entries (2 million, 100 jobs of a link
 * scanner's 20,000 clicks in one GET /status?ids=, took 2.5 to 4 s, past the statement timeout).
 */
export const OMITTED_EVENTS_COUNTED = 1_000;

/**
 * The events of one status answer, in bytes of JSON (about), all its jobs together (100 jobs of 100
 * events with 10,000-character URLs would answer 100 MB). Each job keeps its latest events, taken in
 * turns until this is spent (db/events-repo.ts); the read counts the rest as left out. (A dashboard
 * page has its own bound, PAGE_BYTES of HTML.)
 */
export const EVENTS_BYTES_PER_ANSWER = 2 * 1024 * 1024;
