// A recipient as jetpost keeps it (email_recipients): one To/Cc/Bcc address of a job, with Mailjet's
// ids once accepted, and the one rule that pairs Mailjet's per-address answers with these rows.
import { addressKey, eventAddressKey } from './email-address.js';
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

/** A MessageID Mailjet gave a recipient of `jobId` that a recipient of `holderJobId` holds already: not bound twice. */
export interface HeldMessageId {
  jobId: string;
  messageId: string;
  holderJobId: string;
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
 * Pairs Mailjet's per-address ids with our rows: same address (addressKey: any case, the domain in
 * Unicode or in its ASCII form, which Mailjet may answer for an address sent in the other) and, when
 * Mailjet names it, the same kind; each row at most once, the first of Mailjet's entries winning. An
 * entry that no row's key matches takes a row its address can be, spelt by another system
 * (eventAddressKey: ΟΔΟΣ sent and lower-cased with a final sigma, οδος, as many languages do).
 */
function matchRecipients<T extends MailjetRecipientIds>(
  rows: readonly RecipientRow[],
  items: readonly T[],
  keyOf: (row: RecipientRow) => string,
): Array<{ row: RecipientRow; ids: T }> {
  const unused = [...rows];
  const out: Array<{ row: RecipientRow; ids: T }> = [];
  for (const item of items) {
    const email = addressKey(item.email);
    const sameKind = (row: RecipientRow) => item.kind === undefined || row.kind === item.kind;
    let index = unused.findIndex((row) => sameKind(row) && keyOf(row) === email);
    if (index < 0) {
      const spelt = eventAddressKey(item.email);
      index = unused.findIndex((row) => sameKind(row) && eventAddressKey(row.email) === spelt);
    }
    if (index >= 0) {
      out.push({ row: unused.splice(index, 1)[0]!, ids: item });
    }
  }
  return out;
}

/** Mailjet's ids for a job's rows, paired once: what an acceptance is checked by and recorded with. */
export interface Pairing {
  /** Each row that has ids, with them. */
  pairs: AcceptedIds[];
  /** Mailjet's entries that match no row. */
  strays: number;
  /** The rows whose address Mailjet gave no id: no event can reach them. */
  unreached: RecipientRow[];
}

/**
 * matchRecipients, then each row left whose address another row was paired with gets that row's ids:
 * Mailjet counts an address given twice (To and Cc, or twice in To) once, and may answer it once.
 * Both rows then hold the same MessageID (its index is not unique).
 */
export function pairRecipients(rows: readonly RecipientRow[], items: readonly MailjetRecipientIds[]): Pairing {
  const keys = new Map(rows.map((row) => [row, addressKey(row.email)]));
  const keyOf = (row: RecipientRow) => keys.get(row)!;
  const matched = matchRecipients(rows, items, keyOf);
  const pairs = matched.map(({ row, ids }) => ({ recipientId: row.id, messageId: ids.messageId, messageUuid: ids.messageUuid }));
  const strays = items.length - matched.length;
  if (matched.length === rows.length) {
    return { pairs, strays, unreached: [] };
  }
  const byAddress = new Map(matched.map(({ row, ids }) => [keyOf(row), ids] as const));
  const paired = new Set(matched.map(({ row }) => row));
  const unreached: RecipientRow[] = [];
  for (const row of rows) {
    const ids = paired.has(row) ? undefined : byAddress.get(keyOf(row));
    if (ids !== undefined) {
      pairs.push({ recipientId: row.id, messageId: ids.messageId, messageUuid: ids.messageUuid });
    } else if (!paired.has(row)) {
      unreached.push(row);
    }
  }
  return { pairs, strays, unreached };
}

/** Groups a batch's recipient rows by job, every job present (with no rows if it has none). */
export function recipientsByJob(jobIds: readonly string[], rows: readonly RecipientRow[]): Map<string, RecipientRow[]> {
  const byJob = new Map<string, RecipientRow[]>(jobIds.map((id) => [id, []]));
  for (const row of rows) {
    byJob.get(row.jobId)?.push(row);
  }
  return byJob;
}
