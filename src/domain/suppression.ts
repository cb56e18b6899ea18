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
  const text = (field: string) => (typeof event.payload[field] === 'string' && event.payload[field] !== '' ? event.payload[field] : undefined);
  const entry = (reason: SuppressionReason, detail: string | undefined) => ({ reason, detail: detail ?? null });
  switch (event.type) {
    case 'bounce':
      return event.hardBounce === false ? undefined : entry('hard_bounce', [text('error_related_to'), text('error')].filter(Boolean).join(': ') || undefined);
    case 'spam':
      return entry('spam', text('source'));
    case 'unsub':
      return entry('unsubscribed', 'unsubscribed through Mailjet');
    default:
      return undefined;
  }
}
