import { expect } from 'chai';

import { createSendGate, type SendGate } from '../../src/workers/send-gate.js';

/** A gate on a fake clock: sleeping advances time instead of waiting. */
function fakeGate(callsPerSecond: number): { gate: SendGate; clock: { now: number }; slept: number[] } {
  const clock = { now: 1_000_000 };
  const slept: number[] = [];
  const gate = createSendGate({
    callsPerSecond,
    now: () => clock.now,
    random: () => 0.5,
    sleep: async (ms) => {
      slept.push(ms);
      clock.now += ms;
    },
  });
  return { gate, clock, slept };
}

describe('send gate', () => {
  it('when the rate is 50 calls per second, then 500 calls take about 9 seconds after the first burst', async () => {
    const { gate, clock } = fakeGate(50);
    const start = clock.now;

    for (let i = 0; i < 500; i += 1) {
      expect(await gate.acquire()).to.equal(true);
    }

    // The bucket holds one second's worth (50) at first; the other 450 come at 50 per second.
    expect(clock.now - start).to.be.within(8_900, 9_100);
  });

  it('when calls come as fast as they may, then no window of a second holds more than the rate plus the first burst', async () => {
    const rate = 20;
    const { gate, clock } = fakeGate(rate);
    const passedAt: number[] = [];

    for (let i = 0; i < 400; i += 1) {
      await gate.acquire();
      passedAt.push(clock.now);
    }

    for (const [index, at] of passedAt.entries()) {
      const inWindow = passedAt.slice(index).filter((later) => later < at + 1_000).length;
      // A full bucket (one second's worth) plus what refills during that second.
      expect(inWindow).to.be.at.most(2 * rate);
    }
    // Past the first second, the long-run rate is the limit.
    const steady = passedAt.filter((at) => at >= passedAt[0]! + 1_000);
    const seconds = (steady.at(-1)! - steady[0]!) / 1000;
    expect(steady.length / seconds).to.be.within(rate * 0.95, rate * 1.05);
  });

  it('when the rate is 0, then calls are not limited', async () => {
    const { gate, slept } = fakeGate(0);

    for (let i = 0; i < 100; i += 1) {
      await gate.acquire();
    }

    expect(slept).to.deep.equal([]);
  });

  it('when a 429 came with Retry-After, then no call passes before it is over, and the pause grows while 429s repeat', async () => {
    const { gate, clock } = fakeGate(0);
    const at = clock.now;

    const first = gate.throttled(3_000);
    await gate.acquire();
    const passedAfterFirst = clock.now - at;
    const second = gate.throttled(undefined);
    // The next call goes once the pause is over, and is answered 429 again.
    await gate.acquire();
    const third = gate.throttled(undefined);

    expect(first).to.equal(3_000);
    expect(passedAfterFirst).to.be.at.least(3_000);
    expect(third).to.be.greaterThan(second);
    expect(gate.state().pausedUntil).to.be.a('number');
  });

  it('when the calls in flight when Mailjet began to rate limit all get a 429, then they pause the gate once: the pause grows only for 429s to calls made after it', async () => {
    const { gate, clock } = fakeGate(0);
    // Sixteen calls (MAILJET_MAX_IN_FLIGHT) had passed the gate when Mailjet began to answer 429.
    const pauses = Array.from({ length: 16 }, () => gate.throttled(2_000));

    expect(pauses).to.deep.equal(Array.from({ length: 16 }, () => 2_000));
    expect(gate.state().pausedUntil! - clock.now).to.equal(2_000);
    await gate.acquire();
    expect(gate.throttled(undefined)).to.equal(2_000);
  });

  it('when a call got a real answer, then the 429 backoff starts over', async () => {
    const { gate } = fakeGate(0);
    gate.throttled(undefined);
    await gate.acquire();
    gate.throttled(undefined);
    await gate.acquire();
    const grown = gate.throttled(undefined);

    gate.succeeded();

    expect(gate.throttled(undefined)).to.be.lessThan(grown);
  });

  it('when Mailjet answered 401, then nothing passes until the probe time, then exactly one probe, and success reopens the gate', async () => {
    const { gate, clock } = fakeGate(0);
    const firstWait = gate.unauthorized('Mailjet 401: bad key');
    const probeAt = clock.now + firstWait;

    expect(gate.state().blocked).to.equal('Mailjet 401: bad key');
    expect(await gate.acquire()).to.equal(true);
    expect(clock.now).to.be.at.least(probeAt);
    // A second caller waits while the probe is out; the probe fails again, so the wait grows.
    const waiting = gate.acquire();
    const nextWait = gate.unauthorized('Mailjet 401: bad key');
    const nextProbeAt = clock.now + nextWait;
    expect(nextWait).to.be.greaterThan(firstWait);
    expect(await waiting).to.equal(true);
    expect(clock.now).to.be.at.least(nextProbeAt);
    gate.succeeded();

    expect(gate.state().blocked).to.equal(undefined);
    const before = clock.now;
    await gate.acquire();
    expect(clock.now).to.equal(before);
  });

  it('when the calls in flight when the keys were refused all get a 401, then the first probe still goes after 30 s: only a refused probe makes the wait grow', async () => {
    const { gate } = fakeGate(0);
    // Sixteen calls (MAILJET_MAX_IN_FLIGHT) had passed the gate when the keys were revoked.
    const probeWaits = Array.from({ length: 16 }, () => gate.unauthorized('Mailjet 401: bad key'));

    expect(probeWaits).to.deep.equal(Array.from({ length: 16 }, () => 30_000));
    expect(await gate.acquire()).to.equal(true);
    expect(gate.unauthorized('Mailjet 401: bad key')).to.equal(60_000);
  });

  it('when the gate is closed while a caller waits, then the caller gets false at once', async () => {
    const gate = createSendGate({ callsPerSecond: 0 });
    gate.throttled(60_000);

    const waiting = gate.acquire();
    gate.close();

    expect(await waiting).to.equal(false);
  });
});
