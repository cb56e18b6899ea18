import { createServer, type Server, type Socket } from 'node:net';

import { expect } from 'chai';

import { loadConfig } from '../../src/config.js';
import { latestMigrationId, migrationsApplied, runMigrations } from '../../src/db/migrate.js';
import { openDatabase } from '../../src/db/open.js';
import { StartupError } from '../../src/domain/errors.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { testLogger } from '../support/log.js';

describe('migrations', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when another schema already has a table named migrations, then jetpost still migrates its own schema', async () => {
    db = await createTestDatabase({ migrated: false });
    await db.pool.query('create schema graphile_worker');
    await db.pool.query('create table graphile_worker.migrations (id int primary key, ran_at timestamptz)');
    await db.pool.query('insert into graphile_worker.migrations values (1, now())');

    const applied = await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });

    expect(applied).to.include('create-tables');
    const { rows } = await db.pool.query('select count(*)::int as n from email_send_jobs');
    expect(rows[0].n).to.equal(0);
    const foreign = await db.pool.query('select id from graphile_worker.migrations');
    expect(foreign.rows).to.deep.equal([{ id: 1 }]);
    expect(await migrationsApplied(db.pool, await latestMigrationId())).to.equal(true);
  });

  it('when run twice, then the second run applies nothing', async () => {
    db = await createTestDatabase({ migrated: false });
    await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });
    const second = await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });
    expect(second).to.deep.equal([]);
  });

  describe('when the database takes the connection but never answers', () => {
    let silent: Server;
    const sockets: Socket[] = [];

    beforeEach(async () => {
      // A frozen PostgreSQL: the kernel accepts the connection, nothing ever answers on it.
      silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    });

    afterEach(async () => {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => silent.close(resolve));
    });

    it('then the start stops after DATABASE_CONNECT_TIMEOUT_MS with one line naming the settings, instead of waiting for ever', async function () {
      // Without the connect timeout the start hangs: fail well before mocha's own timeout.
      this.timeout(15_000);
      const { port } = silent.address() as { port: number };
      const config = loadConfig({ DATABASE_URL: `postgres://jetpost:secret@127.0.0.1:${port}/jetpost`, DATABASE_CONNECT_TIMEOUT_MS: '300' });

      const error = await Promise.race([
        openDatabase(config, testLogger(), { role: 'command' }).then(
          () => new Error('opened a database that never answers'),
          (caught: unknown) => caught,
        ),
        new Promise((resolve) => setTimeout(() => resolve(new Error('still waiting after 10 s')), 10_000)),
      ]);

      expect(error).to.be.instanceOf(StartupError);
      expect((error as Error).message).to.match(/^the database in DATABASE_URL .*no answer within 300 ms \(DATABASE_CONNECT_TIMEOUT_MS\)\. Check /);
      expect((error as Error).message).not.to.include('secret');
    });
  });
});
