// The database's clock as the consumers, the webhook dispatcher and POST /queue read it: kept by the
// monotonic clock from the last read of the database's now(), whatever this host's wall clock does.
import { expect } from 'chai';

import { createDatabaseClock } from '../../src/services/database-clock.js';
import { installNodeClock } from '../support/clock-jump.js';

describe('the database clock', () => {
  it("when the wall clock steps an hour, then the database's time read from it does not move; it follows the database's own, read again each minute", async () => {
    const monotonic = { ms: 1_000 };
    let database = Date.parse('2026-12-03T22:00:00Z');
    let reads = 0;
    const clock = createDatabaseClock({
      read: async () => {
        reads += 1;
        return new Date(database);
      },
      monotonicMs: () => monotonic.ms,
    });
    await clock.sync();
    const wall = installNodeClock();
    try {
      wall.jump(3_600_000);
      monotonic.ms += 10_000;
      expect(clock.now().toISOString()).to.equal('2026-12-03T22:00:10.000Z');
      wall.jump(-7_200_000);
      expect(clock.now().toISOString()).to.equal('2026-12-03T22:00:10.000Z');
    } finally {
      wall.restore();
    }
    // The database's host stepped its clock: followed at the first reading a minute after the last.
    database += 120_000;
    monotonic.ms += 60_000;
    clock.now();
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads).to.equal(2);
    expect(clock.now().toISOString()).to.equal('2026-12-03T22:02:00.000Z');
  });

  it('when a read waits long (a busy pool), then the offset of the last quick one is kept', async () => {
    const monotonic = { ms: 0 };
    const answers = [
      { at: '2026-12-03T22:00:00.000Z', takesMs: 10 },
      { at: '2026-12-03T22:00:10.000Z', takesMs: 5_000 },
    ];
    const clock = createDatabaseClock({
      read: async () => {
        const answer = answers.shift()!;
        monotonic.ms += answer.takesMs;
        return new Date(answer.at);
      },
      monotonicMs: () => monotonic.ms,
    });
    await clock.sync();
    await clock.sync();
    expect(clock.now().toISOString()).to.equal('2026-12-03T22:00:05.005Z');
  });
});
