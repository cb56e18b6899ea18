// The test suite's PostgreSQL: DATABASE_URL when set, else one embedded cluster for the whole run.
// Migrations run once into a template database; each test file clones it (`create database … template`),
// which takes milliseconds and keeps files independent.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { createPool, type Pool } from '../../src/db/pool.js';
import { testLogger } from './log.js';
import { trackOpen } from './open-resources.js';

export const TEST_SCHEMA = 'jetpost';
const TEMPLATE = `jetpost_test_template_${process.pid}`;

interface Cluster {
  /** Connection string to the maintenance database. */
  adminUrl: string;
  embedded: EmbeddedDatabase | undefined;
  tempDir: string | undefined;
}

let cluster: Cluster | undefined;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: cluster!.adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function startTestCluster(): Promise<void> {
  const log = testLogger();
  if (process.env['DATABASE_URL']) {
    cluster = { adminUrl: process.env['DATABASE_URL'], embedded: undefined, tempDir: undefined };
  } else {
    const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-test-'));
    const embedded = await startEmbeddedPostgres({ dir: tempDir, port: await freePort(), log, ownSession: false });
    cluster = { adminUrl: embedded.connectionString, embedded, tempDir };
  }
  await admin(async (client) => {
    await client.query(`drop database if exists ${TEMPLATE}`);
    await client.query(`create database ${TEMPLATE}`);
  });
  await runMigrations({ connectionString: withDatabase(cluster.adminUrl, TEMPLATE), schema: TEST_SCHEMA, log });
}

export async function stopTestCluster(): Promise<void> {
  if (!cluster) {
    return;
  }
  await admin((client) => client.query(`drop database if exists ${TEMPLATE}`)).catch(() => undefined);
  await cluster.embedded?.stop();
  if (cluster.tempDir) {
    await fs.rm(cluster.tempDir, { recursive: true, force: true });
  }
  cluster = undefined;
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database of its own (a clone of the template). `locale`: an unmigrated one with
 * that locale (LC_COLLATE and LC_CTYPE) instead of the cluster's, for what a database's locale may change.
 */
export async function createTestDatabase(options: { migrated?: boolean; locale?: 'C'; encoding?: 'SQL_ASCII' | 'LATIN1' } = {}): Promise<TestDatabase> {
  if (!cluster) {
    throw new Error('the test cluster is not running: is test/hooks.ts loaded (.mocharc.json)?');
  }
  const name = `jetpost_test_${randomBytes(6).toString('hex')}`;
  const from =
    options.encoding !== undefined
      ? ` template template0 locale 'C' encoding '${options.encoding}'`
      : options.locale !== undefined
        ? ` template template0 locale '${options.locale}'`
        : options.migrated === false
          ? ''
          : ` template ${TEMPLATE}`;
  await admin((client) => client.query(`create database ${name}${from}`));
  const url = withDatabase(cluster.adminUrl, name);
  const pool = createPool({ connectionString: url, schema: TEST_SCHEMA, max: 10, log: testLogger() });
  const closed = trackOpen(`test database ${name} (its pool)`);
  let dropped = false;
  return {
    name,
    url,
    pool,
    async drop() {
      if (dropped) {
        return;
      }
      dropped = true;
      closed();
      await pool.end();
      await admin((client) => client.query(`drop database if exists ${name} with (force)`));
    },
  };
}
