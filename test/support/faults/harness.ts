// The fault suite's harness (test/faults): jetpost as real child processes against the Mailjet
// simulator running in the test process and a real PostgreSQL (a fresh database of the test
// cluster, or an embedded PostgreSQL of the scenario's own that it can stop, start and freeze).
// Everything a test opens through it is closed in afterEach.
import type { Pool } from '../../../src/db/pool.js';
import type { Simulator, SimulatorOptions } from '../../../src/simulator/server.js';
import { appName, makeApp } from '../../factories.js';
import { compiledBin } from '../compiled-bin.js';
import { createTestDatabase } from '../database.js';
import { describeExit, type JetpostOptions, type JetpostProcess, OUTPUT_LINES, spawnJetpost } from './jetpost-process.js';
import { type DataDir, type FaultDatabase, makeDataDir, type OwnPostgres, startOwnPostgres } from './own-postgres.js';
import { scenarioPort } from './ports.js';
import { startFaultSimulator } from './simulator.js';
import { waitReady } from './wait.js';

export interface AppKey {
  appId: string;
  key: string;
}

export interface FaultHarness {
  /** A fresh, migrated database of the test cluster. */
  database(): Promise<FaultDatabase>;
  /** An embedded PostgreSQL of its own in a temporary directory, migrated. */
  ownPostgres(): Promise<OwnPostgres>;
  /** A temporary data directory; whatever PostgreSQL runs there after the test is stopped, and the directory removed. */
  dataDir(): Promise<DataDir>;
  /** An app and its API key, created directly in the database. */
  app(pool: Pool): Promise<AppKey>;
  /** The simulator (with the children's API key), listening, calling back to 127.0.0.1:<eventsPort>/events. */
  simulator(eventsPort: number, options?: SimulatorOptions): Promise<Simulator>;
  /** Starts jetpost as a child process and waits until /readyz answers 200. */
  jetpost(options: JetpostOptions): Promise<JetpostProcess>;
  /** Starts jetpost as a child process without waiting for it (a start expected to fail). */
  spawn(options: JetpostOptions): Promise<JetpostProcess>;
  /** A free TCP port on 127.0.0.1 for a child's HTTP API, kept for its restarts (see scenarioPort). */
  port(): Promise<number>;
}

/**
 * Registers the afterEach of the calling describe: print the children's last lines when the test
 * failed, then SIGKILL every child, close every simulator and pool, drop the databases and stop the
 * embedded PostgreSQL servers.
 */
export function useFaultHarness(): FaultHarness {
  let children: JetpostProcess[] = [];
  let cleanups: Array<() => Promise<void>> = [];
  const onCleanup = (cleanup: () => Promise<void>) => {
    cleanups.push(cleanup);
  };

  afterEach(async function () {
    this.timeout(60_000);
    if (this.currentTest?.state === 'failed') {
      for (const child of children) {
        const exit = child.exitStatus();
        process.stderr.write(
          `\n--- last ${OUTPUT_LINES} lines of ${child.name} (pid ${child.pid}, ${exit ? `exited: ${describeExit(exit)}` : 'running'}) ---\n${child.output().join('\n')}\n`,
        );
      }
    }
    const current = children;
    children = [];
    await Promise.all(current.map((child) => child.kill()));
    const pending = cleanups.reverse();
    cleanups = [];
    for (const cleanup of pending) {
      await cleanup().catch((error: unknown) => process.stderr.write(`fault harness cleanup failed: ${String(error)}\n`));
    }
  });

  return {
    async database() {
      const db = await createTestDatabase();
      onCleanup(() => db.drop());
      return { url: db.url, pool: db.pool };
    },

    ownPostgres: () => startOwnPostgres(onCleanup),

    dataDir: () => makeDataDir(onCleanup),

    async app(pool) {
      const { id: appId, key } = await makeApp(pool, { name: appName('faults') });
      return { appId, key };
    },

    async simulator(eventsPort, options = {}) {
      const simulator = await startFaultSimulator(eventsPort, options);
      onCleanup(() => simulator.close());
      return simulator;
    },

    async jetpost(options) {
      const child = spawnJetpost(options, await compiledBin('jetpost'));
      children.push(child);
      await waitReady(child, options.databaseUrl === undefined ? 90_000 : 30_000);
      return child;
    },

    async spawn(options) {
      const child = spawnJetpost(options, await compiledBin('jetpost'));
      children.push(child);
      return child;
    },

    port: scenarioPort,
  };
}
