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
