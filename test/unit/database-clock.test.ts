// The database's clock as the consumers, the webhook dispatcher and POST /queue read it: kept by the
// monotonic clock from the last read of the database's now(), whatever this host's wall clock does.
import { expect } from 'chai';

import { createDatabaseClock } from '../../src/services/database-clock.js';
import { installNodeClock } from '../support/clock-jump.js';
import { capturingLogger } from '../support/log.js';

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

  it('when a read first waits for a connection (a busy pool), then the wait is not taken for half the round trip: the clock is where the database said', async () => {
    const monotonic = { ms: 0 };
    const clock = createDatabaseClock({
      read: async (sending) => {
        // 800 ms for a connection, then a 10 ms round trip, the database reading its clock halfway.
        monotonic.ms += 800;
        sending();
        monotonic.ms += 5;
        const at = new Date(Date.parse('2026-12-03T22:00:00Z'));
        monotonic.ms += 5;
        return at;
      },
      monotonicMs: () => monotonic.ms,
    });
    await clock.sync();
    // 5 ms after the database read 22:00:00.000; taking the wait for the trip put it 400 ms ahead.
    expect(clock.now().toISOString()).to.equal('2026-12-03T22:00:00.005Z');
  });

  it("when this host's clock is 10 minutes off the database's, then a warning says so once, naming the webhook signatures it spoils, and a line when it is right again", async () => {
    const monotonic = { ms: 0 };
    const database = Date.parse('2026-12-03T22:00:00Z');
    let hostAheadMs = 600_000;
    const { log, lines } = capturingLogger('info');
    const clock = createDatabaseClock({
      read: async () => new Date(database + monotonic.ms),
      monotonicMs: () => monotonic.ms,
      wallMs: () => database + monotonic.ms + hostAheadMs,
      log,
    });
    await clock.sync();
    monotonic.ms += 60_000;
    await clock.sync();
    hostAheadMs = 2_000;
    monotonic.ms += 60_000;
    await clock.sync();

    const said = lines().map((line) => JSON.parse(line) as { level: string; message: string; hostClockAheadMs: number });
    expect(said.map(({ level, hostClockAheadMs }) => [level, hostClockAheadMs])).to.deep.equal([
      ['warn', 600_000],
      ['info', 2_000],
    ]);
    expect(said[0]!.message).to.include('10 minutes ahead of').and.include('webhook-timestamp').and.include('5 minutes');
    // The times jetpost keeps follow the database whatever this host's clock says.
    expect(clock.now().toISOString()).to.equal('2026-12-03T22:02:00.000Z');
  });
});
