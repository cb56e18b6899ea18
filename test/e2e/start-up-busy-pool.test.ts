// A start that finds a backlog (a restart after kill -9 under load): its consumers take every
// connection of the pool at once. Start-up's own queries must not wait behind them, and one the
// database does not answer in time must stop the start with a line saying which step and why.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';
import pg from 'pg';

import { loadConfig } from '../../src/config.js';
import { StartupError } from '../../src/domain/errors.js';
import { type Jetpost, startJetpost } from '../../src/main.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { testLogger } from '../support/log.js';

describe('start-up beside busy consumers (dev mode)', () => {
  let db: TestDatabase | undefined;
  let dataDir: string | undefined;
  let locker: pg.Client | undefined;
  let jetpost: Jetpost | undefined;

  afterEach(async () => {
    await locker?.end();
    await jetpost?.stop();
    await db?.drop();
    if (dataDir !== undefined) {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
    [db, dataDir, locker, jetpost] = [undefined, undefined, undefined, undefined];
  });

  /** Holds `lock table <table> in <mode> mode` in a transaction of its own until the test ends. */
  async function lockTable(table: string, mode: string): Promise<void> {
    locker = new pg.Client({ connectionString: db!.url });
    await locker.connect();
    await locker.query('begin');
    await locker.query(`lock table ${TEST_SCHEMA}.${table} in ${mode} mode`);
  }

  async function start(env: Record<string, string>): Promise<Jetpost> {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-busy-pool-'));
    const config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: db!.url,
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DEV_MODE: 'true',
      SIMULATOR_PORT: '0',
      DATABASE_POOL_SIZE: '2',
      WORKER_CONCURRENCY: '4',
      DATABASE_CONNECT_TIMEOUT_MS: '1000',
      ...env,
    });
    return startJetpost(config, { log: testLogger() });
  }

  it('when the consumers hold every connection of the pool, then dev mode still reads or creates its API key and the start completes', async () => {
    db = await createTestDatabase();
    // Each claim waits on the lock while holding its connection: a pool of 2 is taken by 4 consumers.
    await lockTable('email_send_jobs', 'exclusive');

    jetpost = await start({ DATABASE_STATEMENT_TIMEOUT_MS: '60000' });

    expect(jetpost.devApiKey).to.be.a('string').and.have.length.above(20);
    await locker!.query('commit');
  });

  it('when the database does not answer dev mode’s key query in time, then the start stops with one line naming the step and the timeouts', async () => {
    db = await createTestDatabase();
    await lockTable('api_keys', 'access exclusive');

    const refusal = await start({ DATABASE_STATEMENT_TIMEOUT_MS: '3000' }).then(
      (started) => {
        jetpost = started;
        return undefined;
      },
      (error: unknown) => error,
    );

    expect(refusal).to.be.instanceOf(StartupError);
    expect((refusal as StartupError).message).to.equal(
      'jetpost could not start: dev mode could not read or create the API key of app "dev", as the database did not answer in time (canceling statement due to statement timeout). A connection must come within DATABASE_CONNECT_TIMEOUT_MS (1000 ms) and a statement end within DATABASE_STATEMENT_TIMEOUT_MS (3000 ms): check that the database is not overloaded or locked by another session, then start again',
    );
  });
});
