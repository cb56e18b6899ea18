// DATABASE_POOL_SIZE against the server's max_connections: past it, the start stops with exit code
// 78's error (a ConfigError naming the setting, the value and the most it takes), not failing later
// under load, each connection past the limit refused.
import { expect } from 'chai';

import { ConfigError, loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/open.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testLogger } from '../support/log.js';

describe('DATABASE_POOL_SIZE and the server’s max_connections', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });

  after(async () => {
    await db.drop();
  });

  const open = (poolSize: number) =>
    openDatabase(loadConfig({ DATABASE_URL: db.url, DATABASE_POOL_SIZE: String(poolSize) }), testLogger(), { role: 'service' }).then(
      async (opened) => {
        await opened.close();
        return undefined;
      },
      (error: unknown) => error,
    );

  it('when the pool is larger than the server takes, then the start stops naming DATABASE_POOL_SIZE, the value and the most it may be', async () => {
    const { rows } = await db.pool.query<{ max: number; reserved: number }>(
      "select current_setting('max_connections')::int as max, current_setting('superuser_reserved_connections')::int as reserved",
    );
    const { max, reserved } = rows[0]!;
    const most = max - reserved - 1;
    expect(most, 'the test server takes fewer than 200').to.be.below(200);

    const refusal = await open(most + 1);

    expect(refusal).to.be.instanceOf(ConfigError);
    expect((refusal as Error).message).to.equal(
      `invalid configuration: DATABASE_POOL_SIZE: "${most + 1}" is more than this database takes: at most ${most} (its max_connections ${max}, less ${reserved} reserved for superusers and jetpost's LISTEN connection)`,
    );
    expect(await open(most), 'at the most it takes').to.equal(undefined);
  });
});
