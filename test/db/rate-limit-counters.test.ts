// The shared request counters (services/rate-limits.ts) count concurrent hits in one statement:
// each hit must still get its own exact count, as if they had been counted one at a time.
import { expect } from 'chai';

import { countHits } from '../../src/db/rate-limits-repo.js';
import { createRateLimitCounters } from '../../src/services/rate-limits.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('rate limit counters (services/rate-limits.ts)', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db?.drop();
  });

  it('when hits of two keys come at once from two replicas, then each key counts 1, 2, 3… with no count given twice or skipped', async () => {
    const replicas = [createRateLimitCounters(db.pool), createRateLimitCounters(db.pool)];
    const hits = await Promise.all(
      Array.from({ length: 60 }, (_, index) =>
        replicas[index % 2]!.hit(index % 3 === 0 ? 'a' : 'b', 60_000).then((count) => ({ key: index % 3 === 0 ? 'a' : 'b', count })),
      ),
    );

    for (const [key, expected] of [
      ['a', 20],
      ['b', 40],
    ] as const) {
      const counts = hits
        .filter((hit) => hit.key === key)
        .map((hit) => hit.count.hits)
        .sort((x, y) => x - y);
      expect(counts).to.deep.equal(Array.from({ length: expected }, (_, index) => index + 1));
    }
    const [stored] = (await db.pool.query<{ hits: number }>("select hits from rate_limits where key = 'b'")).rows;
    expect(stored?.hits).to.equal(40);
  });

  it('when a window is over, then the hits that come together start the new one at 1', async () => {
    const counters = createRateLimitCounters(db.pool);
    await counters.hit('a', 60_000);
    await db.pool.query("update rate_limits set reset_at = now() - interval '1 second'");

    const counts = await Promise.all([1, 2, 3].map(() => counters.hit('a', 60_000)));

    expect(counts.map((count) => count.hits).sort()).to.deep.equal([1, 2, 3]);
    expect(counts.every((count) => count.resetInMs > 50_000)).to.equal(true);
  });

  it('when hits are counted, then their transaction alone commits without waiting for the WAL flush, and the next one waits again', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await countHits(client, [{ key: 'a', hits: 1, windowMs: 60_000 }]);
      const during = await client.query<{ value: string }>("select current_setting('synchronous_commit') as value");
      await client.query('commit');
      const after = await client.query<{ value: string }>("select current_setting('synchronous_commit') as value");
      expect([during.rows[0]!.value, after.rows[0]!.value]).to.deep.equal(['off', 'on']);
    } finally {
      client.release();
    }
  });
});
