// Mocha root hooks: one PostgreSQL for the whole run (see support/database.ts).
import { startTestCluster, stopTestCluster } from './support/database.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120_000);
    await startTestCluster();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopTestCluster();
  },
};
