import { expect } from 'chai';

import { createSendGate, type SendGate } from '../../src/workers/send-gate.js';

/** A gate on a fake clock: sleeping advances time instead of waiting. */
function fakeGate(ratePerSecond: number): { gate: SendGate; clock: { now: number }; slept: number[] } {
  const clock = { now: 1_000_000 };
  const slept: number[] = [];
  const gate = createSendGate({
    ratePerSecond,
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
  it('when the rate is 100 recipients per second, then 1000 recipients take about 9 seconds after the first burst', async () => {
    const { gate, clock } = fakeGate(100);
    const start = clock.now;

    for (let i = 0; i < 20; i += 1) {
      expect(await gate.acquire(50)).to.equal(true);
    }

    // The bucket holds one second's worth (100) at first; the other 900 come at 100 per second.
    expect(clock.now - start).to.be.within(8_900, 9_100);
  });

  it('when the rate is 0, then calls are not limited', async () => {
    const { gate, slept } = fakeGate(0);

    for (let i = 0; i < 100; i += 1) {
      await gate.acquire(50);
    }

    expect(slept).to.deep.equal([]);
  });

  it('when a 429 came with Retry-After, then no call passes before it is over, and the pause grows while 429s repeat', async () => {
    const { gate, clock } = fakeGate(0);
    const at = clock.now;

    const first = gate.throttled(3_000);
    await gate.acquire(1);
    const passedAfterFirst = clock.now - at;
    const second = gate.throttled(undefined);
    const third = gate.throttled(undefined);

    expect(first).to.equal(3_000);
    expect(passedAfterFirst).to.be.at.least(3_000);
    expect(third).to.be.greaterThan(second);
    expect(gate.state().pausedUntil).to.be.a('number');
  });

  it('when a call got a real answer, then the 429 backoff starts over', () => {
    const { gate } = fakeGate(0);
    gate.throttled(undefined);
    gate.throttled(undefined);
    const grown = gate.throttled(undefined);

    gate.succeeded();

    expect(gate.throttled(undefined)).to.be.lessThan(grown);
  });

  it('when Mailjet answered 401, then nothing passes until the probe time, then exactly one probe, and success reopens the gate', async () => {
    const { gate, clock } = fakeGate(0);
    const probeAt = gate.unauthorized('Mailjet 401: bad key');
    const firstWait = probeAt - clock.now;

    expect(gate.state().blocked).to.equal('Mailjet 401: bad key');
    expect(await gate.acquire(1)).to.equal(true);
    expect(clock.now).to.be.at.least(probeAt);
    // A second caller waits while the probe is out; the probe fails again, so the wait grows.
    const waiting = gate.acquire(1);
    const nextProbeAt = gate.unauthorized('Mailjet 401: bad key');
    expect(nextProbeAt - clock.now).to.be.greaterThan(firstWait);
    expect(await waiting).to.equal(true);
    expect(clock.now).to.be.at.least(nextProbeAt);
    gate.succeeded();

    expect(gate.state().blocked).to.equal(undefined);
    const before = clock.now;
    await gate.acquire(1);
    expect(clock.now).to.equal(before);
  });

  it('when the gate is closed while a caller waits, then the caller gets false at once', async () => {
    const gate = createSendGate({ ratePerSecond: 0 });
    gate.throttled(60_000);

    const waiting = gate.acquire(1);
    gate.close();

    expect(await waiting).to.equal(false);
  });
});
