// The dashboard's throughput counts (services/throughput.ts): each process counts what it enqueued
// and what Mailjet accepted, from the bus, and adds its counts to throughput_minutes; a read gives
// the table's counts and this process's not written yet, each once.
import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import type { Pool } from '../../src/db/pool.js';
import { throughputMinutes, throughputSince } from '../../src/domain/dashboard.js';
import { createThroughputCounter } from '../../src/services/throughput.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const MINUTE = Date.parse('2030-01-01T12:00:00Z');

/** A replica's counter on `pool`, on a bus of its own, at the time `clock.now`. */
function replica(pool: Pool, clock: { now: number }) {
  const bus = createBus((error) => {
    throw error;
  });
  return { bus, counter: createThroughputCounter({ pool, bus, now: () => clock.now }) };
}

/** The window's minutes that have counts, as [minute ISO, enqueued, accepted]. */
async function chart(counter: ReturnType<typeof createThroughputCounter>, now: number): Promise<Array<[string, number, number]>> {
  const minutes = throughputMinutes(new Date(now), await counter.read(throughputSince(new Date(now))));
  return minutes.filter((m) => m.enqueued + m.accepted > 0).map((m) => [m.minute.toISOString(), m.enqueued, m.accepted]);
}

describe('throughput counts per minute', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase();
  });

  afterEach(async () => {
    await db?.drop();
  });

  it("when two replicas enqueue and get acceptances, then each reads its own counts at once and the other's once written, none twice", async () => {
    const clock = { now: MINUTE + 10_000 };
    const a = replica(db.pool, clock);
    const b = replica(db.pool, clock);
    a.bus.emit('jobs:enqueued', { appId: '1', count: 3 });
    a.bus.emit('jobs:settled', { status: 'accepted', count: 2 });
    a.bus.emit('jobs:settled', { status: 'failed', count: 4 });
    b.bus.emit('jobs:enqueued', { appId: '2', count: 5 });
    clock.now = MINUTE + 70_000;
    b.bus.emit('jobs:settled', { status: 'accepted', count: 1 });
    b.bus.emit('jobs:settled', { status: 'deferred', count: 9 });

    expect(await chart(a.counter, clock.now)).to.deep.equal([['2030-01-01T12:00:00.000Z', 3, 2]]);
    await b.counter.flush();
    await b.counter.flush();
    expect(await chart(a.counter, clock.now)).to.deep.equal([
      ['2030-01-01T12:00:00.000Z', 8, 2],
      ['2030-01-01T12:01:00.000Z', 0, 1],
    ]);
    // Reads and flushes at once: a read never counts what a flush is writing twice.
    const reads = await Promise.all([chart(a.counter, clock.now), a.counter.flush(), chart(a.counter, clock.now), chart(b.counter, clock.now)]);
    for (const read of [reads[0], reads[2], reads[3]]) {
      expect(read).to.deep.equal([
        ['2030-01-01T12:00:00.000Z', 8, 2],
        ['2030-01-01T12:01:00.000Z', 0, 1],
      ]);
    }
    const { rows } = await db.pool.query('select minute, enqueued::int, accepted::int from throughput_minutes order by minute');
    expect(rows).to.deep.equal([
      { minute: new Date(MINUTE), enqueued: 8, accepted: 2 },
      { minute: new Date(MINUTE + 60_000), enqueued: 0, accepted: 1 },
    ]);
    a.counter.close();
    b.counter.close();
  });

  it('when the database refuses a write, then its counts are kept, read, and written with the next one; a closed counter counts no more', async () => {
    const clock = { now: MINUTE };
    let refuse = true;
    const failing = new Proxy(db.pool, {
      get(target, property, receiver) {
        if (property === 'query' && refuse) {
          return () => Promise.reject(new Error('connection terminated unexpectedly'));
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const bus = createBus();
    const counter = createThroughputCounter({ pool: failing, bus, now: () => clock.now });
    bus.emit('jobs:enqueued', { appId: '1', count: 4 });

    const refused = await counter.flush().then(
      () => undefined,
      (error: Error) => error.message,
    );
    expect(refused).to.equal('connection terminated unexpectedly');
    bus.emit('jobs:enqueued', { appId: '1', count: 1 });
    refuse = false;
    expect(await chart(counter, clock.now)).to.deep.equal([['2030-01-01T12:00:00.000Z', 5, 0]]);
    await counter.flush();
    counter.close();
    bus.emit('jobs:enqueued', { appId: '1', count: 100 });
    await counter.flush();

    expect(await chart(counter, clock.now)).to.deep.equal([['2030-01-01T12:00:00.000Z', 5, 0]]);
  });

  it('when counts are written, then the minutes older than a day go', async () => {
    const clock = { now: Date.now() - 2 * 24 * 3600 * 1000 };
    const old = replica(db.pool, clock);
    old.bus.emit('jobs:enqueued', { appId: '1', count: 1 });
    await old.counter.flush();
    clock.now = Date.now();
    old.bus.emit('jobs:enqueued', { appId: '1', count: 2 });
    await old.counter.flush();

    const { rows } = await db.pool.query('select enqueued::int from throughput_minutes');
    expect(rows).to.deep.equal([{ enqueued: 2 }]);
    old.counter.close();
  });
});
