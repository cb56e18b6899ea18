// The database a process works with: DATABASE_URL, or the embedded PostgreSQL under the data
// directory (started, or adopted when another jetpost process already runs it), migrated.
import path from 'node:path';

import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { startEmbeddedPostgres } from './embedded.js';
import { runMigrations } from './migrate.js';
import { createPool, type Pool } from './pool.js';

export interface OpenDatabase {
  connectionString: string;
  pool: Pool;
  /** Closes the pool, then stops the embedded database if this process started it. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * Whether an embedded PostgreSQL found already running is this process's to stop. The service
   * says yes (it was left by a jetpost killed with SIGKILL); a CLI command says no (a jetpost may be
   * using it right now).
   */
  ownsRunningEmbedded: boolean;
}

export async function openDatabase(config: Config, log: Logger, { ownsRunningEmbedded }: OpenOptions): Promise<OpenDatabase> {
  let connectionString = config.database.url;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (connectionString === undefined) {
    const embedded = await startEmbeddedPostgres({ dir: path.resolve(config.dataDir), port: config.database.embeddedPort, log });
    connectionString = embedded.connectionString;
    if (!embedded.adopted || ownsRunningEmbedded) {
      stopEmbedded = () => embedded.stop();
    }
  }
  try {
    await runMigrations({ connectionString, schema: config.database.schema, log });
  } catch (error) {
    await stopEmbedded?.();
    throw error;
  }
  const pool = createPool({ connectionString, schema: config.database.schema, max: config.database.poolSize, log, timeouts: config.database.timeouts });
  return {
    connectionString,
    pool,
    async close() {
      await pool.end();
      await stopEmbedded?.();
    },
  };
}
