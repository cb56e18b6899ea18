// GET /status?after=…: the changes feed as an app polls it, with cursors it was given and ones it
// was not.
import fs from 'node:fs/promises';

import { expect } from 'chai';

import { StartupError } from '../../src/domain/errors.js';
import { startJetpost } from '../../src/main.js';
import { rebaseMovedChanges } from '../../src/services/moved-database.js';
import { TEST_SCHEMA } from '../support/database.js';
import { testLogger } from '../support/log.js';
import { startTestService, type TestService } from '../support/service.js';

interface Feed {
  changes: Array<{ id: string; type: string; job_id: string }>;
  next_cursor: string;
  has_more: boolean;
}

interface Problem {
  type: string;
  detail?: string;
  errors?: Array<{ path: string; message: string }>;
}

describe('GET /status?after=: the changes feed', function () {
  this.timeout(120_000);
  let service: TestService;

  before(async () => {
    // No consumers: the only changes are the cancellations the test makes.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_RATE_LIMIT: '0' } });
  });

  after(async () => {
    await service?.stop();
  });

  async function cancelledJob(): Promise<string> {
    const queued = (await (await service.request('POST', '/queue', { body: { from: 'app@example.com', to: 'a@example.com', text: 'x' } })).json()) as {
      job_id: string;
    };
    expect((await service.request('DELETE', `/queue/${queued.job_id}`)).status).to.equal(200);
    return queued.job_id;
  }

  /** Every change from `after` on, page by page, and the cursor at the end. */
  async function drain(after: string): Promise<{ ids: string[]; changes: Feed['changes']; cursor: string }> {
    const changes: Feed['changes'] = [];
    let cursor = after;
    for (;;) {
      const { status, body } = await read(cursor);
      expect(status, JSON.stringify(body)).to.equal(200);
      const page = body as Feed;
      if (page.changes.length === 0) {
        return { ids: changes.map((change) => change.id), changes, cursor };
      }
      changes.push(...page.changes);
      cursor = page.next_cursor;
    }
  }

  async function read(after: string): Promise<{ status: number; body: unknown }> {
    const res = await service.request('GET', `/status?after=${encodeURIComponent(after)}`);
    return { status: res.status, body: await res.json() };
  }

  it('when an app reads to the end, then the empty page gives its cursor back; a cursor past every transaction yet is a 400 naming after', async () => {
    const jobId = await cancelledJob();
    const first = await read('0');
    expect(first.status).to.equal(200);
    const page = first.body as Feed;
    expect(page.changes.map((change) => [change.job_id, change.type])).to.deep.include([jobId, 'cancelled']);

    const caughtUp = await read(page.next_cursor);
    expect(caughtUp).to.deep.equal({ status: 200, body: { changes: [], next_cursor: page.next_cursor, has_more: false } });

    // A cursor this database never gave (made up, or kept from another installation) would read
    // nothing until transaction ids caught up with it, then skip every change made before.
    const [txid, id] = page.next_cursor.split('.');
    for (const ahead of [`${BigInt(txid!) + 1_000_000n}.${id!}`, '18446744073709551615.1']) {
      const refused = await read(ahead);
      expect(refused.status, ahead).to.equal(400);
      expect((refused.body as Problem).type).to.match(/validation-failed$/);
      expect((refused.body as Problem).errors?.map((error) => error.path)).to.deep.equal(['after']);
      expect((refused.body as Problem).detail, 'what the app is to do')
        .to.include('Read again from after=0')
        .and.to.include('do not retry this cursor');
    }

    const later = await cancelledJob();
    const next = (await read(page.next_cursor)).body as Feed;
    expect(next.changes.map((change) => [change.job_id, change.type])).to.deep.equal([[later, 'cancelled']]);
  });

  it('when the changes waiting hold more than 2 MiB, then a page stops before the change that would pass it and says has_more; following next_cursor gives each change once, and a client that waits after a short page misses none', async () => {
    const { cursor: start } = await drain('0');
    const jobs = [await cancelledJob(), await cancelledJob(), await cancelledJob(), await cancelledJob()];
    // 900 KB of details on each of the first three changes (a bounce's long text), 3 MB on the last: alone over the bound.
    await service.db.pool.query(`update status_changes set details = jsonb_build_object('error', repeat('x', 900000)) where job_id = any($1::bigint[])`, [
      jobs.slice(0, 3),
    ]);
    await service.db.pool.query(`update status_changes set details = jsonb_build_object('error', repeat('y', 3000000)) where job_id = $1`, [jobs[3]]);

    const pages: Feed[] = [];
    let cursor = start;
    for (;;) {
      const res = await service.request('GET', `/status?after=${encodeURIComponent(cursor)}&limit=100`);
      const body = await res.text();
      expect(Buffer.byteLength(body), 'one page').to.be.below(3_200_000);
      const page = JSON.parse(body) as Feed;
      pages.push(page);
      cursor = page.next_cursor;
      if (!page.has_more) {
        break;
      }
    }
    // Two changes of 900 KB fit in 2 MiB, the third does not; the 3 MB one comes alone, on a page of its own.
    expect(pages.map((page) => [page.changes.map((change) => change.job_id), page.has_more])).to.deep.equal([
      [jobs.slice(0, 2), true],
      [[jobs[2]], true],
      [[jobs[3]], false],
    ]);
    // A client that reads only while pages are full (fewer than limit: "caught up for now") reads on at its next poll, from the same cursor.
    const polled: string[] = [];
    let saved = start;
    for (let poll = 0; poll < 5; poll += 1) {
      const page = (await read(saved)).body as Feed;
      polled.push(...page.changes.map((change) => change.job_id));
      saved = page.next_cursor;
    }
    expect(polled).to.deep.equal(jobs);
  });

  it('when the database was moved to a PostgreSQL whose transaction ids are lower, then a saved cursor is refused and a start is refused in one line naming the rebase of docs/operations.md; after it, jetpost starts, after=0 gives every change kept, the old before the new, and the saved cursor stays refused', async () => {
    const pool = service.jetpost.pool;
    await cancelledJob();
    const saved = await drain('0');
    // The move: every stored change now carries a transaction id far past this server's, as after a
    // dump and restore into a new cluster (the ids of the cluster it came from are kept in the rows).
    const SHIFT = 10n ** 12n;
    await pool.query(`update status_changes set txid = (txid::text::numeric + ${SHIFT})::text::xid8`);
    const [savedTxid, savedId] = saved.cursor.split('.');
    const savedCursor = `${BigInt(savedTxid!) + SHIFT}.${savedId!}`;
    expect((await read(savedCursor)).status, 'the saved cursor, before the rebase').to.equal(400);
    // Without the rebase, the old changes are hidden from every reader until this server's ids pass them.
    expect((await drain('0')).ids, 'after=0 before the rebase').to.deep.equal([]);

    // A replica starting on the moved database (the operator skipped the rebase) is refused.
    const rebase = rebaseMovedChanges(TEST_SCHEMA);
    const refused = await startJetpost(service.config, { log: testLogger() }).then(
      async (started) => {
        await started.stop();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(refused, 'the start on the moved database').to.be.instanceOf(StartupError);
    expect((refused as Error).message).to.include(`Run ${rebase} then start jetpost again`);
    expect((refused as Error).message).not.to.include('\n');

    const operations = await fs.readFile(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    expect(operations).to.include(rebase);
    await pool.query(rebase);
    const replica = await startJetpost(service.config, { log: testLogger() });
    await replica.stop();
    // Run again (by a second operator, or after jetpost wrote changes here), it changes nothing.
    expect((await pool.query(rebase)).rowCount, 'the rebase run a second time').to.equal(0);
    const later = await cancelledJob();
    const again = await drain('0');

    expect(again.ids.slice(0, saved.ids.length)).to.deep.equal(saved.ids);
    expect(again.changes.at(-1)).to.deep.include({ job_id: later, type: 'cancelled' });
    expect(again.ids).to.have.length(saved.ids.length + 1);
    expect((await read(savedCursor)).status, 'the saved cursor, after the rebase').to.equal(400);
  });
});
