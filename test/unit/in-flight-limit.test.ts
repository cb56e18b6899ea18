import { expect } from 'chai';

import { createInFlightLimit, type InFlightLimit } from '../../src/domain/in-flight-limit.js';

/** Reports `calls` calls of `durationMs` that each ended with the window full. */
function fullRounds(limit: InFlightLimit, calls: number, durationMs: number): void {
  for (let i = 0; i < calls; i += 1) {
    limit.callEnded({ durationMs, slowDown: false, inFlight: limit.current(), cutsAtStart: limit.cuts() });
  }
}

describe('in-flight limit', () => {
  it('when nothing was seen yet, then the limit is the maximum', () => {
    expect(createInFlightLimit({ max: 16, callsPerSecond: 0 }).current()).to.equal(16);
  });

  it('when calls keep every slot busy and succeed, then the limit grows about one per round, up to the maximum and never past it', () => {
    const limit = createInFlightLimit({ max: 16, callsPerSecond: 0, initial: 4 });
    expect(limit.current()).to.equal(4);

    fullRounds(limit, 5, 200);
    expect(limit.current()).to.equal(5);

    fullRounds(limit, 1_000, 200);
    expect(limit.current()).to.equal(16);
  });

  it('when slots are left idle, then the limit does not grow', () => {
    const limit = createInFlightLimit({ max: 16, callsPerSecond: 0, initial: 4 });

    for (let i = 0; i < 100; i += 1) {
      limit.callEnded({ durationMs: 200, slowDown: false, inFlight: 1, cutsAtStart: limit.cuts() });
    }

    expect(limit.current()).to.equal(4);
  });

  it('when the calls in flight fail together, then the limit halves once, and again only for a call started after that', () => {
    const limit = createInFlightLimit({ max: 16, callsPerSecond: 0 });

    // 16 calls started before any cut, cut off by one outage.
    for (let inFlight = 16; inFlight >= 1; inFlight -= 1) {
      limit.callEnded({ durationMs: 200, slowDown: true, inFlight, cutsAtStart: 0 });
    }
    expect(limit.current()).to.equal(8);

    // A call made after that cut fails too: the outage goes on, and the limit halves again.
    limit.callEnded({ durationMs: 200, slowDown: true, inFlight: 8, cutsAtStart: limit.cuts() });
    expect(limit.current()).to.equal(4);
  });

  it('when Mailjet says slow down, then the limit halves, never below 1, and grows back only by one per round', () => {
    const limit = createInFlightLimit({ max: 32, callsPerSecond: 0, initial: 16 });

    limit.callEnded({ durationMs: 200, slowDown: true, inFlight: 16, cutsAtStart: limit.cuts() });
    expect(limit.current()).to.equal(8);
    for (let i = 0; i < 10; i += 1) {
      limit.callEnded({ durationMs: 200, slowDown: true, inFlight: 8, cutsAtStart: limit.cuts() });
    }
    expect(limit.current()).to.equal(1);

    // Growth is additive: about one slot per round of `limit` full calls.
    fullRounds(limit, 1, 200);
    expect(limit.current()).to.equal(2);
    fullRounds(limit, 2, 200);
    expect(limit.current()).to.equal(2);
    fullRounds(limit, 1, 200);
    expect(limit.current()).to.equal(3);
  });

  it('when a rate limit is set, then the limit follows rate × call duration (Little’s law) plus one spare', () => {
    const limit = createInFlightLimit({ max: 64, callsPerSecond: 50, initial: 4 });

    fullRounds(limit, 200, 200);
    // 50 calls/s × 0.2 s = 10 calls in flight, and one spare.
    expect(limit.current()).to.equal(11);

    // Mailjet slows down to 600 ms: more calls in flight are needed for the same rate.
    fullRounds(limit, 1_000, 600);
    expect(limit.current()).to.equal(31);

    // And speeds up again: the limit comes back down.
    fullRounds(limit, 200, 100);
    expect(limit.current()).to.equal(6);
  });

  it('when the rate needs more calls than the maximum, then the maximum holds', () => {
    const limit = createInFlightLimit({ max: 8, callsPerSecond: 50, initial: 4 });

    fullRounds(limit, 200, 1_000);

    expect(limit.current()).to.equal(8);
  });

  it('whatever it is told, then the limit is a whole number between 1 and the maximum', () => {
    const limit = createInFlightLimit({ max: 5, callsPerSecond: 3, initial: 50 });
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;

    for (let i = 0; i < 5_000; i += 1) {
      const value = limit.callEnded({
        durationMs: random() * 5_000,
        slowDown: random() < 0.1,
        inFlight: Math.floor(random() * 10),
        cutsAtStart: limit.cuts() - Math.floor(random() * 2),
      });
      expect(Number.isInteger(value)).to.equal(true);
      expect(value).to.be.within(1, 5);
    }
  });
});
