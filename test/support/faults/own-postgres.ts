// PostgreSQL servers a scenario owns: an embedded server in a directory of its own that it may stop,
// start and freeze (SIGSTOP, like a database host that hangs), and a data directory for a jetpost
// that runs its own. A process 'exit' hook continues what was frozen and stops what still runs.
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../../src/db/embedded.js';
import { runMigrations } from '../../../src/db/migrate.js';
import { createPool, type Pool } from '../../../src/db/pool.js';
import { TEST_SCHEMA } from '../database.js';
import { testLogger } from '../log.js';
import { trackOpen } from '../open-resources.js';
import { scenarioPort } from './ports.js';

/** Registers what to undo after the test (run in reverse order of registration). */
export type OnCleanup = (cleanup: () => Promise<void>) => void;

export interface FaultDatabase {
  url: string;
  pool: Pool;
}

/** An embedded PostgreSQL of the scenario's own, which it may stop and start again (same dir and port). */
export interface OwnPostgres extends FaultDatabase {
  readonly port: number;
  readonly running: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /**
   * SIGSTOPs the postmaster and every process it forked (backends, background workers): the server
   * keeps its sockets open but answers nothing, like a database host that hangs. Returns the pids.
   */
  freeze(): Promise<number[]>;
  /** SIGCONTs what freeze() stopped. */
  thaw(): void;
}

/** A data directory for a jetpost that runs its own embedded PostgreSQL there. */
export interface DataDir {
  readonly dir: string;
  /** EMBEDDED_PG_PORT for the jetpost processes on this directory. */
  readonly pgPort: number;
  /** DATA_DIR and EMBEDDED_PG_PORT, for JetpostOptions.env. */
  readonly env: Record<string, string>;
  /** Whether a PostgreSQL server runs on the directory now. */
  postgresRunning(): Promise<boolean>;
  /** A pool on the embedded database, while a server runs on the directory (closed after the test). */
  connect(): Promise<Pool>;
  /** Starts the directory's PostgreSQL from the test (a later jetpost adopts it). */
  startPostgres(): Promise<void>;
}

/** Data directories of the embedded PostgreSQL servers started here: stopped by the exit hook too. */
const livePostgresDirs = new Set<string>();
/** PostgreSQL processes a scenario froze (SIGSTOP): continued by the exit hook, or SIGQUIT could not reach them. */
const frozenPids = new Set<number>();
let exitHookInstalled = false;

/** When the test process ends, for whatever reason, no PostgreSQL it started may survive it. */
function installExitHook(): void {
  if (exitHookInstalled) {
    return;
  }
  exitHookInstalled = true;
  process.on('exit', () => {
    continueFrozen();
    for (const dir of livePostgresDirs) {
      try {
        const pid = Number.parseInt(readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10);
        if (pid > 0) {
          // SIGQUIT: PostgreSQL's immediate shutdown; nothing here can wait for a slower one.
          process.kill(pid, 'SIGQUIT');
        }
      } catch {
        // Not running.
      }
    }
  });
}

function continueFrozen(): void {
  for (const pid of frozenPids) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Gone already.
    }
  }
  frozenPids.clear();
}

/** The direct children of `parent`, read from /proc (Linux): field 4 of /proc/<pid>/stat is the parent pid. */
async function childPids(parent: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '', 10);
    if (ppid === parent) {
      children.push(Number(entry));
    }
  }
  return children;
}

/** An embedded PostgreSQL of its own in a temporary directory, migrated. */
export async function startOwnPostgres(onCleanup: OnCleanup): Promise<OwnPostgres> {
  installExitHook();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-faults-pg-'));
  onCleanup(() => fs.rm(dir, { recursive: true, force: true }));
  // Outside the ephemeral range too: the port stays unbound for the whole outage, then is bound again.
  const port = await scenarioPort();
  const log = testLogger();
  let server: EmbeddedDatabase | undefined = await startEmbeddedPostgres({ dir, port, log, ownSession: false });
  livePostgresDirs.add(dir);
  const untrack = trackOpen(`embedded PostgreSQL of the scenario on port ${port}`);
  const connectionString = server.connectionString;
  await runMigrations({ connectionString, schema: TEST_SCHEMA, log });
  const pool = createPool({ connectionString, schema: TEST_SCHEMA, max: 5, log });
  const frozenHere = new Set<number>();
  const thaw = () => {
    for (const pid of frozenHere) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Exited meanwhile.
      }
      frozenPids.delete(pid);
    }
    frozenHere.clear();
  };
  // Stopped last (cleanups run in reverse): after the pool, before the directory goes.
  onCleanup(async () => {
    thaw();
    await pool.end().catch(() => undefined);
    await server?.stop();
    server = undefined;
    livePostgresDirs.delete(dir);
    untrack();
  });
  return {
    url: connectionString,
    pool,
    port,
    get running() {
      return server !== undefined;
    },
    async stop() {
      await server?.stop();
      server = undefined;
    },
    async start() {
      if (server === undefined) {
        server = await startEmbeddedPostgres({ dir, port, log, ownSession: false });
      }
    },
    async freeze() {
      const postmaster = await postmasterPid(dir);
      if (postmaster === undefined) {
        throw new Error(`no PostgreSQL server runs on ${dir}`);
      }
      // The postmaster first, so it forks nothing new while its children are being stopped.
      for (const pid of [postmaster, ...(await childPids(postmaster))]) {
        frozenPids.add(pid);
        frozenHere.add(pid);
        process.kill(pid, 'SIGSTOP');
      }
      return [...frozenHere];
    },
    thaw,
  };
}

/** A temporary data directory; whatever PostgreSQL runs there after the test is stopped, and the directory removed. */
export async function makeDataDir(onCleanup: OnCleanup): Promise<DataDir> {
  installExitHook();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-faults-data-'));
  const pgPort = await scenarioPort();
  livePostgresDirs.add(dir);
  const untrack = trackOpen(`data directory ${dir} (its PostgreSQL, pools)`);
  const pools: Pool[] = [];
  onCleanup(async () => {
    await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
    await stopPostmaster(dir);
    livePostgresDirs.delete(dir);
    untrack();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return {
    dir,
    pgPort,
    env: { DATA_DIR: dir, EMBEDDED_PG_PORT: String(pgPort) },
    postgresRunning: async () => (await postmasterPid(dir)) !== undefined,
    async connect() {
      const password = (await fs.readFile(path.join(dir, 'pg-password'), 'utf8')).trim();
      const pool = createPool({
        connectionString: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/postgres`,
        schema: TEST_SCHEMA,
        max: 3,
        log: testLogger(),
      });
      pools.push(pool);
      return pool;
    },
    async startPostgres() {
      await startEmbeddedPostgres({ dir, port: pgPort, log: testLogger(), ownSession: false });
    },
  };
}

/** The pid of the PostgreSQL server running on a data directory, if any. */
async function postmasterPid(dir: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (!(pid > 0)) {
    return undefined;
  }
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Fast shutdown of the server on a data directory, then immediate shutdown if it lingers. */
async function stopPostmaster(dir: string): Promise<void> {
  const pid = await postmasterPid(dir);
  if (pid === undefined) {
    return;
  }
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 10_000;
  while ((await postmasterPid(dir)) !== undefined) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGQUIT');
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
