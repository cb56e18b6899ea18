// A recipient as jetpost keeps it (email_recipients): one To/Cc/Bcc address of a job, with Mailjet's
// ids once accepted, and the one rule that pairs Mailjet's per-address answers with these rows.
import type { RecipientKind } from './message.js';
import type { RecipientStatus } from './status.js';

export interface RecipientRow {
  id: string;
  jobId: string;
  position: number;
  kind: RecipientKind;
  email: string;
  name: string | null;
  status: RecipientStatus;
  /** Decimal string: 64-bit, above 2^53. */
  messageId: string | null;
  messageUuid: string | null;
  updatedAt: Date;
}

/** Mailjet's ids for one of our recipients. */
export interface AcceptedIds {
  recipientId: string;
  messageId: string;
  messageUuid: string;
}

/** What Mailjet says it has for one address: from a send's answer (with its kind) or a look-up (without). */
export interface MailjetRecipientIds {
  email: string;
  /** Absent when Mailjet does not say (a message look-up): the address alone decides. */
  kind?: RecipientKind | undefined;
  messageId: string;
  messageUuid: string;
}

/**
 * Pairs Mailjet's per-address ids with our rows: same address (any case) and, when Mailjet names
 * it, the same kind; each row at most once, the first of Mailjet's entries winning.
 */
export function matchRecipients<T extends MailjetRecipientIds>(rows: readonly RecipientRow[], items: readonly T[]): Array<{ row: RecipientRow; ids: T }> {
  const unused = [...rows];
  const out: Array<{ row: RecipientRow; ids: T }> = [];
  for (const item of items) {
    const email = item.email.toLowerCase();
    const index = unused.findIndex((row) => (item.kind === undefined || row.kind === item.kind) && row.email.toLowerCase() === email);
    if (index >= 0) {
      out.push({ row: unused.splice(index, 1)[0]!, ids: item });
    }
  }
  return out;
}

/** Groups a batch's recipient rows by job, every job present (with no rows if it has none). */
export function recipientsByJob(jobIds: readonly string[], rows: readonly RecipientRow[]): Map<string, RecipientRow[]> {
  const byJob = new Map<string, RecipientRow[]>(jobIds.map((id) => [id, []]));
  for (const row of rows) {
    byJob.get(row.jobId)?.push(row);
  }
  return byJob;
}
