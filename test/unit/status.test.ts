import { expect } from 'chai';

import {
  type DeliveryStatus,
  jobStatusFromRecipients,
  MAILJET_EVENT_TYPES,
  type MailjetEventType,
  nextRecipientStatus,
  type RecipientStatus,
  statusForEvent,
} from '../../src/domain/status.js';

interface Event {
  type: MailjetEventType;
  hardBounce: boolean | undefined;
  label: string;
}

/** The 7 Mailjet event types, with bounce both hard and soft (and as Mailjet may omit the flag). */
const EVENTS: Event[] = MAILJET_EVENT_TYPES.flatMap((type): Event[] =>
  type === 'bounce'
    ? [
        { type, hardBounce: true, label: 'hard bounce' },
        { type, hardBounce: false, label: 'soft bounce' },
        { type, hardBounce: undefined, label: 'bounce without hard_bounce' },
      ]
    : [{ type, hardBounce: undefined, label: type }],
);

const NEGATIVE: DeliveryStatus[] = ['bounced', 'blocked', 'spam', 'unsubscribed'];
const POSITIVE_EVENTS: MailjetEventType[] = ['sent', 'open', 'click'];

function apply(events: readonly Event[], from: RecipientStatus = 'accepted'): RecipientStatus {
  return events.reduce<RecipientStatus>((status, event) => nextRecipientStatus(status, statusForEvent(event.type, event.hardBounce)), from);
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) {
    return [[...items]];
  }
  return items.flatMap((item, index) => permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]));
}

const labels = (events: readonly Event[]): string => events.map((event) => event.label).join(' → ');

describe('statusForEvent', () => {
  it('when each Mailjet event type arrives, then it maps to its recipient status', () => {
    expect(statusForEvent('sent', undefined)).to.equal('sent');
    expect(statusForEvent('open', undefined)).to.equal('opened');
    expect(statusForEvent('click', undefined)).to.equal('clicked');
    expect(statusForEvent('bounce', true)).to.equal('bounced');
    expect(statusForEvent('blocked', undefined)).to.equal('blocked');
    expect(statusForEvent('spam', undefined)).to.equal('spam');
    expect(statusForEvent('unsub', undefined)).to.equal('unsubscribed');
  });

  it('when a bounce is soft (hard_bounce false), then it moves no status', () => {
    expect(statusForEvent('bounce', false)).to.equal(undefined);
  });
});

describe('nextRecipientStatus', () => {
  it('when any two events arrive in either order, then the final status is the same', () => {
    for (const first of EVENTS) {
      for (const second of EVENTS) {
        expect(apply([first, second]), `${first.label} / ${second.label}`).to.equal(apply([second, first]));
      }
    }
  });

  it('when any three events arrive in any of their 6 orders, then the final status is the same', () => {
    for (const a of EVENTS) {
      for (const b of EVENTS) {
        for (const c of EVENTS) {
          const results = permutations([a, b, c]).map((order) => apply(order));
          expect(new Set(results).size, labels([a, b, c])).to.equal(1);
        }
      }
    }
  });

  it('when events are repeated (delivered twice), then the final status equals that of each event once', () => {
    for (const a of EVENTS) {
      for (const b of EVENTS) {
        const once = apply([a, b]);
        expect(apply([a, a, b, b]), labels([a, b])).to.equal(once);
        expect(apply([b, a, b, a, a]), labels([a, b])).to.equal(once);
        expect(apply([a, b, a, b]), labels([a, b])).to.equal(once);
      }
    }
  });

  it('when a negative outcome is reached, then a later sent, open or click never overwrites it', () => {
    const negativeEvents = EVENTS.filter((event) => {
      const target = statusForEvent(event.type, event.hardBounce);
      return target !== undefined && NEGATIVE.includes(target);
    });
    expect(negativeEvents.map((event) => event.label)).to.have.members(['hard bounce', 'bounce without hard_bounce', 'blocked', 'spam', 'unsub']);
    for (const negative of negativeEvents) {
      const reached = apply([negative]);
      expect(NEGATIVE).to.include(reached);
      for (const positive of POSITIVE_EVENTS) {
        expect(nextRecipientStatus(reached, statusForEvent(positive, undefined)), `${negative.label} then ${positive}`).to.equal(reached);
      }
    }
  });

  it('when a recipient is bounced, blocked, spam or unsubscribed and a positive status arrives, then it stays put', () => {
    for (const negative of NEGATIVE) {
      for (const positive of ['accepted', 'sent', 'opened', 'clicked'] as const) {
        expect(nextRecipientStatus(negative, positive), `${negative} ← ${positive}`).to.equal(negative);
      }
    }
  });

  it('when positive events arrive, then the status moves forward along sent < opened < clicked and never back', () => {
    expect(apply(EVENTS.filter((event) => event.label === 'sent'))).to.equal('sent');
    expect(nextRecipientStatus('sent', 'opened')).to.equal('opened');
    expect(nextRecipientStatus('opened', 'clicked')).to.equal('clicked');
    expect(nextRecipientStatus('clicked', 'opened')).to.equal('clicked');
    expect(nextRecipientStatus('clicked', 'sent')).to.equal('clicked');
    expect(nextRecipientStatus('opened', 'sent')).to.equal('opened');
  });

  it('when a soft bounce arrives, then no status changes', () => {
    for (const status of ['accepted', 'sent', 'opened', 'clicked', 'spam'] as const) {
      expect(nextRecipientStatus(status, statusForEvent('bounce', false)), status).to.equal(status);
    }
  });

  it('when the recipient is pending, failed or cancelled, then no event moves it', () => {
    for (const status of ['pending', 'failed', 'cancelled'] as const) {
      for (const event of EVENTS) {
        expect(apply([event], status), `${status} + ${event.label}`).to.equal(status);
      }
    }
  });
});

describe('jobStatusFromRecipients', () => {
  it('when recipients have delivery statuses, then the job takes the highest-ranked one', () => {
    expect(jobStatusFromRecipients(['sent'])).to.equal('sent');
    expect(jobStatusFromRecipients(['accepted', 'clicked', 'sent'])).to.equal('clicked');
    expect(jobStatusFromRecipients(['clicked', 'bounced', 'opened'])).to.equal('bounced');
    expect(jobStatusFromRecipients(['spam', 'blocked', 'unsubscribed'])).to.equal('blocked');
  });

  it('when some recipients have non-delivery statuses, then they are ignored', () => {
    expect(jobStatusFromRecipients(['failed', 'accepted', 'cancelled', 'pending'])).to.equal('accepted');
    expect(jobStatusFromRecipients(['pending', 'opened', 'failed'])).to.equal('opened');
  });

  it('when no recipient has a delivery status, then the job status is undefined', () => {
    expect(jobStatusFromRecipients([])).to.equal(undefined);
    expect(jobStatusFromRecipients(['pending', 'failed', 'cancelled'])).to.equal(undefined);
  });

  it('when the recipients are listed in any order, then the job status is the same', () => {
    const statuses: RecipientStatus[] = ['sent', 'failed', 'spam', 'opened'];
    for (const order of permutations(statuses)) {
      expect(jobStatusFromRecipients(order)).to.equal('spam');
    }
  });
});
