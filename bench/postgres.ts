// The one PostgreSQL server every system in a run uses: DATABASE_URL when set (the bench creates and
// drops its own databases there, so the role needs CREATEDB), otherwise an embedded PostgreSQL in a
// temporary folder, removed at the end. Each system, and each jetpost scenario, gets a fresh
// database, so no run inherits another's tables, bloat or caches of its rows.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { createLogger } from '../src/log.js';
import { freePort } from './processes.js';

export interface BenchPostgres {
  /** Drops the database if it exists, then creates it empty; resolves its connection string. */
  freshDatabase(database: string): Promise<string>;
  dropDatabase(database: string): Promise<void>;
  /** PID of the postmaster when the server runs on this machine and its data folder can be read. */
  readonly postmasterPid: number | undefined;
  /** e.g. "PostgreSQL 17.6, embedded" and the settings that shape the figures. */
  readonly description: string;
  stop(): Promise<void>;
}

/** Every database the bench makes starts with this, so that stop() can remove them from a shared server. */
const DATABASE_PREFIX = 'jetpost_bench_';

export async function startBenchPostgres(databaseUrl: string | undefined): Promise<BenchPostgres> {
  let adminUrl = databaseUrl;
  let stopServer = async () => {};
  let dataDir: string | undefined;
  if (adminUrl === undefined) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-bench-pg-'));
    const embedded = await startEmbeddedPostgres({ dir, port: await freePort(), log: createLogger({ level: 'warn' }), ownSession: false });
    adminUrl = embedded.connectionString;
    dataDir = path.join(dir, 'pg');
    stopServer = async () => {
      // Also after Ctrl-C, when the terminal's SIGINT may have stopped the server already.
      await embedded.stop().catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    };
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  admin.on('error', (error) => process.stderr.write(`bench: the connection to PostgreSQL broke: ${error.message}\n`));
  try {
    await admin.connect();
  } catch (error) {
    await stopServer();
    throw new Error(`cannot connect to ${databaseUrl === undefined ? 'the embedded PostgreSQL' : 'DATABASE_URL'}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const { rows } = await admin.query<{ version: string; data_directory: string; settings: string }>(
      `select current_setting('server_version') as version,
              coalesce(current_setting('data_directory', true), '') as data_directory,
              concat_ws(', ', 'shared_buffers ' || current_setting('shared_buffers'), 'synchronous_commit ' || current_setting('synchronous_commit'),
                        'max_connections ' || current_setting('max_connections')) as settings`,
    );
    const info = rows[0]!;
    const postmasterPid = await readPostmasterPid(dataDir ?? info.data_directory);
    const created = new Set<string>();
    const urlFor = (database: string) => {
      const url = new URL(adminUrl);
      url.pathname = `/${database}`;
      return url.toString();
    };
    const drop = async (database: string) => {
      await admin.query(`drop database if exists ${pg.escapeIdentifier(database)} with (force)`);
      created.delete(database);
    };
    return {
      async freshDatabase(name) {
        const database = `${DATABASE_PREFIX}${name}`;
        await drop(database);
        await admin.query(`create database ${pg.escapeIdentifier(database)}`);
        created.add(database);
        return urlFor(database);
      },
      dropDatabase: (name) => drop(`${DATABASE_PREFIX}${name}`),
      postmasterPid,
      description: `PostgreSQL ${info.version}${databaseUrl === undefined ? ' (embedded)' : ' (DATABASE_URL)'}; ${info.settings}`,
      async stop() {
        for (const database of [...created]) {
          await drop(database).catch(() => undefined);
        }
        await admin.end();
        await stopServer();
      },
    };
  } catch (error) {
    await admin.end();
    await stopServer();
    throw error;
  }
}

/** The first line of postmaster.pid, when the data folder is on this machine and readable. */
async function readPostmasterPid(dataDir: string): Promise<number | undefined> {
  if (dataDir === '') {
    return undefined;
  }
  try {
    const pid = Number.parseInt((await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
