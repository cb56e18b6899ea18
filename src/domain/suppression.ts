// Suppressions, pure: per app, the addresses not to send to, and which events put an address there.
import type { StoredEvent } from './event.js';

export type SuppressionReason = 'hard_bounce' | 'spam' | 'unsubscribed' | 'manual';

export interface Suppression {
  email: string;
  reason: SuppressionReason;
  detail: string | null;
  createdAt: Date;
}

/** A recipient whose address an event suppresses for its job's app. */
export interface RecipientSuppression {
  recipientId: string;
  reason: SuppressionReason;
  detail: string | null;
}

/** The key of a suppressed (app, address) pair: addresses compare in lower case. */
export function suppressionKey(appId: string, email: string): string {
  return `${appId} ${email.toLowerCase()}`;
}

/** Hard bounces, spam complaints and unsubscribes keep the address from the app's future sends. */
export function suppressionFor(event: StoredEvent): RecipientSuppression[] {
  const suppression = suppressionOf(event);
  return suppression === undefined ? [] : [{ recipientId: event.recipientId!, ...suppression }];
}

/** Why an event keeps its address from the app's future sends, if it does, with the event's detail. */
export function suppressionOf(event: Pick<StoredEvent, 'type' | 'hardBounce' | 'payload'>): Omit<RecipientSuppression, 'recipientId'> | undefined {
  switch (event.type) {
    case 'bounce':
      return event.hardBounce === false
        ? undefined
        : {
            reason: 'hard_bounce',
            detail: [textField(event.payload, 'error_related_to'), textField(event.payload, 'error')].filter(Boolean).join(': ') || null,
          };
    case 'spam':
      return { reason: 'spam', detail: textField(event.payload, 'source') ?? null };
    case 'unsub':
      return { reason: 'unsubscribed', detail: 'unsubscribed through Mailjet' };
    default:
      return undefined;
  }
}

/** A non-empty string field of the event, or undefined. */
function textField(payload: Record<string, unknown>, field: string): string | undefined {
  const value = payload[field];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
