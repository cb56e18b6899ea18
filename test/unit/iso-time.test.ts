import { expect } from 'chai';
import fc from 'fast-check';

import { eventEffect } from '../../src/domain/event-application.js';
import { isoTimeFormatter } from '../../src/domain/iso-time.js';

describe('ISO times formatted once per run of equal times', () => {
  it('gives each date its own toISOString, whatever the dates before it (equal, or not, in any order)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 30 }), (seconds) => {
        const isoTime = isoTimeFormatter();
        for (const second of seconds) {
          const date = new Date(Date.UTC(2026, 11, 2, 12, 0, second));
          expect(isoTime(date)).to.equal(date.toISOString());
        }
      }),
    );
  });

  it("gives an event's effect its time as ISO text, the same as in its details, with a formatter shared by events of other times", () => {
    const isoTime = isoTimeFormatter();
    const times = ['2026-12-02T12:00:01.000Z', '2026-12-02T12:00:01.000Z', '2026-12-02T12:00:00.000Z', '2026-12-02T12:00:01.000Z'];
    for (const time of times) {
      const effect = eventEffect({ type: 'sent', occurredAt: new Date(time), hardBounce: undefined, payload: {} }, isoTime);
      expect(effect.occurredAt).to.equal(time);
      expect(effect.details).to.deep.equal({ event: 'sent', occurred_at: time });
    }
    expect(eventEffect({ type: 'open', occurredAt: new Date(times[2]!), hardBounce: undefined, payload: {} }).occurredAt).to.equal(times[2]);
  });
});
