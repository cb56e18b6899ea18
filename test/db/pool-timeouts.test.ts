// The pool's timeouts (DATABASE_*_TIMEOUT_MS): a slow statement is cancelled by the server, a bulk
// transaction may take longer, and a server that says nothing at all (frozen behind a proxy) costs a
// bounded wait, never a hang; every one of those errors reads as "database unavailable" (a 503).
import { expect } from 'chai';

import { createPool, type DatabaseTimeouts, type Pool, withTransaction } from '../../src/db/pool.js';
import { databaseUnavailableDetail, isDatabaseUnavailable } from '../../src/domain/errors.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { type FreezableProxy, startFreezableProxy } from '../support/freezable-proxy.js';
import { testLogger } from '../support/log.js';

/** The statement timeout is short; the bulk one far longer than any wait this test accepts. */
const TIMEOUTS: DatabaseTimeouts = { connectMs: 500, statementMs: 300, bulkStatementMs: 60_000 };
/** Generous for a loaded machine, and far below the bulk timeout: a wait bounded by the short timeouts. */
const BOUNDED_MS = 15_000;

async function failure(work: () => Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const started = Date.now();
  try {
    await work();
  } catch (error) {
    return { error: error as Error, ms: Date.now() - started };
  }
  expect.fail('expected the call to fail');
}

describe('database timeouts (pool.ts)', () => {
  let db: TestDatabase;
  let proxy: FreezableProxy | undefined;
  const pools: Pool[] = [];

  afterEach(async () => {
    proxy?.thaw();
    await Promise.all(pools.splice(0).map((pool) => pool.end()));
    await proxy?.close();
    proxy = undefined;
    await db?.drop();
  });

  function pool(connectionString: string, max = 2): Pool {
    const created = createPool({ connectionString, schema: TEST_SCHEMA, max, log: testLogger(), timeouts: TIMEOUTS });
    pools.push(created);
    return created;
  }

  it('when a statement runs past DATABASE_STATEMENT_TIMEOUT_MS, then the server cancels it (a 503 error) and the connection stays usable', async () => {
    db = await createTestDatabase();
    const timed = pool(db.url, 1);

    const { error } = await failure(() => timed.query('select pg_sleep(2)'));
    const inTransaction = await failure(() => withTransaction(timed, (tx) => tx.query('select pg_sleep(2)')));

    expect((error as Error & { code?: string }).code).to.equal('57014');
    expect(isDatabaseUnavailable(error)).to.equal(true);
    expect(isDatabaseUnavailable(inTransaction.error)).to.equal(true);
    expect((await timed.query('select 1 as one')).rows).to.deep.equal([{ one: 1 }]);
  });

  it('when a bulk transaction runs a statement past the short timeout, then it is allowed to finish', async () => {
    db = await createTestDatabase();
    const timed = pool(db.url);

    const result = await withTransaction(
      timed,
      async (tx) => (await tx.query<{ slept: string }>("select pg_sleep(1)::text as slept, current_setting('statement_timeout') as limit")).rows,
      {
        bulk: true,
      },
    );
    // Back to the short timeout after the bulk transaction, on the same connection.
    const after = await timed.query<{ limit: string }>("select current_setting('statement_timeout') as limit");

    expect(result).to.deep.equal([{ slept: '', limit: '1min' }]);
    expect(after.rows[0]!.limit).to.equal('300ms');
  });

  it('when the server stops answering, then a query, a transaction and a bulk one fail within the short timeouts, and all work once it answers', async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await startFreezableProxy({ host: target.hostname, port: Number(target.port) });
    const frozen = pool(proxy.url(db.url), 3);
    // Three connections open and idle, as in a running service.
    await Promise.all([1, 2, 3].map(() => frozen.query('select pg_sleep(0.05)')));

    proxy.freeze();
    const failures = await Promise.all([
      failure(() => frozen.query('select 1')),
      failure(() => withTransaction(frozen, (tx) => tx.query('select 1'))),
      failure(() => withTransaction(frozen, (tx) => tx.query('select 1'), { bulk: true })),
      // No connection is free and no new one answers: waiting for one is bounded too.
      failure(() => frozen.query('select 1')),
      failure(() => frozen.query('select 1')),
    ]);
    proxy.thaw();

    for (const [index, { error, ms }] of failures.entries()) {
      expect(isDatabaseUnavailable(error), `call ${index}: ${error.message}`).to.equal(true);
      expect(ms, `call ${index}: ${error.message}`).to.be.below(BOUNDED_MS);
    }
    const messages = new Set(failures.map(({ error }) => error.message));
    expect(
      [...messages].some((message) => message === 'Query read timeout'),
      [...messages].join(' | '),
    ).to.equal(true);
    expect((await frozen.query('select 1 as one')).rows).to.deep.equal([{ one: 1 }]);
    expect(await withTransaction(frozen, async (tx) => (await tx.query('select 2 as two')).rows, { bulk: true })).to.deep.equal([{ two: 2 }]);
  });
});

describe('isDatabaseUnavailable', () => {
  it('when pg, pg-pool or PostgreSQL say the database is away or not answering, then it is true; for other errors false', () => {
    const unavailable = [
      new Error('timeout exceeded when trying to connect'),
      new Error('Connection terminated due to connection timeout'),
      new Error('Query read timeout'),
      new Error('Connection terminated unexpectedly'),
      new Error('Cannot use a pool after calling end on the pool'),
      Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
      Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' }),
      Object.assign(new Error('the database system is shutting down'), { code: '57P03' }),
      // The server ended the session for a timeout a DBA set (FATAL): a retry gets a new one.
      Object.assign(new Error('terminating connection due to idle-in-transaction timeout'), { code: '25P03' }),
      Object.assign(new Error('terminating connection due to transaction timeout'), { code: '25P04' }),
      Object.assign(new Error('terminating connection due to idle-session timeout'), { code: '57P05' }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ];
    const other = [
      new Error('syntax error'),
      Object.assign(new Error('duplicate key value'), { code: '23505' }),
      Object.assign(new Error('invalid input syntax'), { code: '22P02' }),
      'a string',
      null,
    ];

    for (const error of unavailable) {
      expect(isDatabaseUnavailable(error), (error as Error).message).to.equal(true);
    }
    for (const error of other) {
      expect(isDatabaseUnavailable(error), String(error)).to.equal(false);
    }
  });

  it('when PostgreSQL runs out of disk or memory (53100, 53200), then it is true: the request gets a 503 to retry, not a 500, as for no connection left (53300)', () => {
    const resources = [
      Object.assign(new Error('could not extend file "base/5/16528": No space left on device'), { code: '53100' }),
      Object.assign(new Error('out of memory'), { code: '53200' }),
      Object.assign(new Error('sorry, too many clients already'), { code: '53300' }),
    ];
    // A limit of the server's configuration that a statement meets: the same statement meets it again.
    const limit = Object.assign(new Error('out of shared memory'), { code: '53400' });

    expect(resources.map((error) => isDatabaseUnavailable(error))).to.deep.equal([true, true, true]);
    expect(isDatabaseUnavailable(limit)).to.equal(false);
  });

  it('when PostgreSQL has no connection left (53300), then the 503 says so, not that the database is unreachable', () => {
    expect(databaseUnavailableDetail(Object.assign(new Error('sorry, too many clients already'), { code: '53300' }))).to.equal(
      'the database has no connection left for jetpost (PostgreSQL 53300: its max_connections, or a limit of the user or the database): nothing was stored; retry shortly',
    );
  });
});
