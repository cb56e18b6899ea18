// The watch of the other replicas' settings (services/replica-settings.ts) warns once per difference
// of a live replica. What it remembers having warned of is the differences of the replicas alive at
// its last beat: it remembered every replica that ever differed, for as long as it ran, and a process
// living through months of deploys grew by each of them.
import { expect } from 'chai';

import { createReplicaSettingsWatch } from '../../src/services/replica-settings.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { capturingLogger } from '../support/log.js';

describe('replica settings watch', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase();
  });

  afterEach(async () => {
    await db?.drop();
  });

  it('when a replica that differs stops and comes back, then it is warned of again: the watch forgot it while it was gone', async () => {
    const other = createReplicaSettingsWatch({ pool: db.pool, settings: [{ name: 'MAX_ATTEMPTS', value: 3 }], log: capturingLogger('error').log });
    const captured = capturingLogger('warn');
    const watch = createReplicaSettingsWatch({ pool: db.pool, settings: [{ name: 'MAX_ATTEMPTS', value: 8 }], log: captured.log });
    const warnings = () => captured.lines().filter((line) => (JSON.parse(line) as { component?: string }).component === 'replicas').length;

    await other.beat();
    await watch.beat();
    await watch.beat();
    expect(warnings(), 'once while it runs').to.equal(1);

    await other.forget();
    await watch.beat();
    expect([...watch.differing()], 'gone').to.deep.equal([]);

    await other.beat();
    await watch.beat();
    expect(warnings(), 'back').to.equal(2);
    expect([...watch.differing()]).to.deep.equal([['MAX_ATTEMPTS', 1]]);
  });
});
