// Mocha root hooks: one PostgreSQL for the whole run (see support/database.ts), and a check after
// each test that it closed what it opened through test support (see support/open-resources.ts).
import { startTestCluster, stopTestCluster } from './support/database.js';
import { stillOpen, testEnded, testStarted } from './support/open-resources.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120_000);
    await startTestCluster();
  },
  beforeEach() {
    testStarted();
  },
  // Root afterEach hooks run after those of the test's own describe blocks, which close what they opened.
  afterEach() {
    const left = testEnded();
    if (left.length > 0) {
      throw new Error(`the test left open: ${left.join(', ')} (stop or drop it in the test or its afterEach)`);
    }
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    const left = stillOpen();
    await stopTestCluster();
    if (left.length > 0) {
      throw new Error(`left open at the end of the run: ${left.join(', ')} (stop or drop it in an after hook)`);
    }
  },
};
