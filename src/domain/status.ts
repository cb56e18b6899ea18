// The lifecycle rules, pure. A recipient's status only moves forward along one total order, so
// applying the same events in any order, any number of times, ends in the same state:
//
//   pending < accepted < sent < opened < clicked < unsubscribed < spam < bounced < blocked
//
// Every negative outcome ranks above every positive one, so a late `open` never hides a bounce.
// A job's status, once Mailjet accepted it, is the highest-ranked status among its recipients:
// a one-recipient job mirrors its recipient, and a job with a bounced recipient reads `bounced`
// (each recipient's own status is in GET /status).

export const RECIPIENT_STATUSES = [
  'pending',
  'accepted',
  'sent',
  'opened',
  'clicked',
  'unsubscribed',
  'spam',
  'bounced',
  'blocked',
  'failed',
  'cancelled',
  /** Left out of the send: the address is on the app's suppression list. */
  'suppressed',
] as const;
export type RecipientStatus = (typeof RECIPIENT_STATUSES)[number];

/** Statuses a recipient reaches through Mailjet: ordered, lowest first. */
export const DELIVERY_ORDER = ['accepted', 'sent', 'opened', 'clicked', 'unsubscribed', 'spam', 'bounced', 'blocked'] as const;
export type DeliveryStatus = (typeof DELIVERY_ORDER)[number];

export const JOB_STATUSES = ['queued', 'scheduled', 'processing', 'deferred', ...DELIVERY_ORDER, 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Jobs a consumer may claim (once run_at has come). */
export const CLAIMABLE_STATUSES = ['queued', 'scheduled', 'deferred'] as const satisfies readonly JobStatus[];
/** Jobs that have not been handed to Mailjet and may still be cancelled. */
export const CANCELLABLE_STATUSES = CLAIMABLE_STATUSES;

export const MAILJET_EVENT_TYPES = ['sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub'] as const;
export type MailjetEventType = (typeof MAILJET_EVENT_TYPES)[number];

export function deliveryRank(status: DeliveryStatus): number {
  return DELIVERY_ORDER.indexOf(status);
}

export function isDeliveryStatus(status: string): status is DeliveryStatus {
  return (DELIVERY_ORDER as readonly string[]).includes(status);
}

/**
 * The recipient status an event moves toward, or undefined when the event changes no status: a soft
 * bounce (`hard_bounce: false`, e.g. greylisting) means Mailjet is still trying, so it is history only.
 */
export function statusForEvent(type: MailjetEventType, hardBounce: boolean | undefined): DeliveryStatus | undefined {
  return type === 'bounce' && hardBounce === false ? undefined : EVENT_NAMES[type];
}

/**
 * A Mailjet event's name in jetpost's API: the status it moves toward (`open` → `opened`). One
 * vocabulary for the event history of /status, the changes feed, webhooks and the spec; Mailjet's
 * own names stay in what Mailjet sends and in what is stored.
 */
export const EVENT_NAMES = {
  sent: 'sent',
  open: 'opened',
  click: 'clicked',
  bounce: 'bounced',
  blocked: 'blocked',
  spam: 'spam',
  unsub: 'unsubscribed',
} as const satisfies Record<MailjetEventType, DeliveryStatus>;

/** The API's name of a stored event type; anything else (not a Mailjet type) as it is. */
export function eventName(type: string): string {
  return Object.hasOwn(EVENT_NAMES, type) ? EVENT_NAMES[type as MailjetEventType] : type;
}

/**
 * The recipient's status after an event. Only a recipient Mailjet accepted moves; `pending`, `failed`
 * and `cancelled` recipients never sent anything (or, `failed` in an accepted job, never got a
 * MessageID: no event names them), so an event for them changes nothing.
 */
export function nextRecipientStatus(current: RecipientStatus, target: DeliveryStatus | undefined): RecipientStatus {
  if (target === undefined || !isDeliveryStatus(current)) {
    return current;
  }
  return deliveryRank(target) > deliveryRank(current) ? target : current;
}

/** A job's status from its recipients', for a job Mailjet accepted; undefined when none was accepted. */
export function jobStatusFromRecipients(statuses: readonly RecipientStatus[]): DeliveryStatus | undefined {
  let highest: DeliveryStatus | undefined;
  for (const status of statuses) {
    if (isDeliveryStatus(status) && (highest === undefined || deliveryRank(status) > deliveryRank(highest))) {
      highest = status;
    }
  }
  return highest;
}
