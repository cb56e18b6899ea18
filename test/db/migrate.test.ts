import { expect } from 'chai';

import { latestMigrationId, migrationsApplied, runMigrations } from '../../src/db/migrate.js';
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
});
