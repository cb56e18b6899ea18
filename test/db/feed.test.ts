// The changes feed (GET /status?after=…) must never skip a change, also when transactions commit
// out of the order in which they took their ids.
import { expect } from 'chai';

import { type Pool, withTransaction } from '../../src/db/pool.js';
import { readFeed, recordStatusChanges } from '../../src/db/status-changes-repo.js';
import { FEED_PAGE_BYTES } from '../../src/domain/status-change.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

async function jobOf(pool: Pool): Promise<{ appId: string; jobId: string }> {
  const app = await makeApp(pool);
  return { appId: app.id, jobId: await makeJob(pool, { appId: app.id }) };
}

const change = (jobId: string, newStatus: string) => ({ jobId, recipientId: null, oldStatus: null, newStatus, details: null });

/** Reads the whole feed from a cursor; returns the ids and the new cursor. */
async function drain(pool: Pool, appId: string, cursor: { txid: string; id: string }): Promise<{ ids: string[]; cursor: { txid: string; id: string } }> {
  const ids: string[] = [];
  for (;;) {
    const page = (await readFeed(pool, appId, cursor, 50, FEED_PAGE_BYTES)).changes;
    if (page.length === 0) {
      return { ids, cursor };
    }
    ids.push(...page.map((row) => row.id));
    const last = page.at(-1)!;
    cursor = { txid: last.txid, id: last.id };
  }
}

describe('changes feed', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when a transaction that took an earlier id commits after a later one, then the feed waits for it instead of skipping it', async () => {
    db = await createTestDatabase();
    const { appId, jobId } = await jobOf(db.pool);
    let releaseSlow!: () => void;
    const slowMayCommit = new Promise<void>((resolve) => (releaseSlow = resolve));
    let slowWrote!: () => void;
    const slowHasWritten = new Promise<void>((resolve) => (slowWrote = resolve));

    const slow = withTransaction(db.pool, async (tx) => {
      await recordStatusChanges(tx, [change(jobId, 'sent')]);
      slowWrote();
      await slowMayCommit;
    });
    await slowHasWritten;
    await withTransaction(db.pool, (tx) => recordStatusChanges(tx, [change(jobId, 'opened')]));
    const visible = await db.pool.query<{ id: string }>('select id::text from status_changes');

    const whileSlowRuns = await drain(db.pool, appId, { txid: '0', id: '0' });
    releaseSlow();
    await slow;
    const after = await drain(db.pool, appId, whileSlowRuns.cursor);
    const { rows } = await db.pool.query<{ id: string; new_status: string }>('select id::text, new_status from status_changes order by id');
    const [slowId, fastId] = [rows.find((r) => r.new_status === 'sent'), rows.find((r) => r.new_status === 'opened')];

    // "id > cursor" would already have handed out the later id and then skipped the earlier one.
    expect(rows.map((r) => r.new_status)).to.deep.equal(['sent', 'opened']);
    expect(visible.rows.map((r) => r.id)).to.deep.equal([fastId!.id]);
    expect(whileSlowRuns.ids).to.deep.equal([]);
    expect(after.ids.sort()).to.deep.equal([slowId!.id, fastId!.id].sort());
  });

  it('when 300 changes are written by concurrent transactions that commit in random order, then a reader polling all along sees each exactly once', async () => {
    db = await createTestDatabase();
    const { appId, jobId } = await jobOf(db.pool);
    let writing = true;
    const seen: string[] = [];
    const reader = (async () => {
      let cursor = { txid: '0', id: '0' };
      while (writing) {
        const read = await drain(db.pool, appId, cursor);
        seen.push(...read.ids);
        cursor = read.cursor;
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
      const rest = await drain(db.pool, appId, cursor);
      seen.push(...rest.ids);
    })();

    const writers = Array.from({ length: 300 }, (_, i) => async () => {
      await withTransaction(db.pool, async (tx) => {
        await recordStatusChanges(tx, [change(jobId, i % 2 === 0 ? 'sent' : 'opened')]);
        // Hold the transaction open a random while: later ids often commit first.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
      });
    });
    // Eight at a time (the pool has ten connections; the reader needs one).
    const queue = [...writers];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          await next();
        }
      }),
    );
    writing = false;
    await reader;

    const { rows } = await db.pool.query<{ id: string }>('select id::text from status_changes order by id');
    expect(seen).to.have.length(300);
    expect(new Set(seen).size).to.equal(300);
    expect([...seen].sort()).to.deep.equal(rows.map((r) => r.id).sort());
  });
});
