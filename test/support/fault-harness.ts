// The fault suite's harness (test/faults): jetpost as a real child process (src/bin/jetpost.ts,
// compiled once per run: see compiled-bin.ts) against the Mailjet simulator running in the test process and a real
// PostgreSQL (a fresh database of the test cluster, or an embedded PostgreSQL of its own that a
// scenario can stop and start). Every child, simulator, database and directory a test opens is
// closed in afterEach, and a process 'exit' hook SIGKILLs any child still alive, so a crashed run
// leaves nothing behind. Each scenario reports one line of figures; the lines are printed as a table
// at the end of the run and written to a file under os.tmpdir().
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { createPool, type Pool } from '../../src/db/pool.js';
import { customIdForJob } from '../../src/domain/mailjet-payload.js';
import { createAppWithKey } from '../../src/services/apps.js';
import { createSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server.js';
import { compiledBin } from './compiled-bin.js';
import { createTestDatabase, TEST_SCHEMA } from './database.js';
import { testLogger } from './log.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Lines of each child's stdout/stderr kept for the failure report. */
const OUTPUT_LINES = 100;

export const SIMULATOR_KEY = 'fault-suite-key';
export const SIMULATOR_SECRET = 'fault-suite-secret';
export const EVENTS_USER = 'mailjet';
export const EVENTS_PASSWORD = 'fault-suite-events';

// ---------------------------------------------------------------------------------------------
// Scale

export type FaultScale = 'fast' | 'full';

/** `FAULT_SCALE=full` (npm run test:faults) runs the big sizes; anything else the fast ones of `npm test`. */
export const FAULT_SCALE: FaultScale = process.env['FAULT_SCALE'] === 'full' ? 'full' : 'fast';

export function byScale<T>(sizes: { fast: T; full: T }): T {
  return sizes[FAULT_SCALE];
}

// ---------------------------------------------------------------------------------------------
// Waiting

export interface WaitOptions {
  timeoutMs: number;
  /** Between checks (default 50 ms). */
  intervalMs?: number;
  /** What the state was when the wait gave up, for the error message. */
  progress?: () => Promise<string> | string;
  /** Processes that must stay alive meanwhile: the wait fails at once if one exits. */
  watch?: readonly JetpostProcess[];
}

/** Thrown by a check to end the wait at once (e.g. the process it waits for has exited). */
export class WaitAbortedError extends Error {
  override readonly name = 'WaitAbortedError';
}

/**
 * Polls `check` until it returns something other than undefined or false, and returns that. After
 * `timeoutMs` it fails with a message naming what it waited for and the last progress seen.
 */
export async function waitUntil<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const started = Date.now();
  let lastError: unknown;
  for (;;) {
    for (const child of options.watch ?? []) {
      const exit = child.exitStatus();
      if (exit) {
        throw new WaitAbortedError(`${child.name} (pid ${child.pid}) exited (${describeExit(exit)}) while waiting for ${what}`);
      }
    }
    try {
      const value = await check();
      if (value !== undefined && value !== false) {
        return value;
      }
      lastError = undefined;
    } catch (error) {
      if (error instanceof WaitAbortedError) {
        throw error;
      }
      lastError = error;
    }
    if (Date.now() - started > options.timeoutMs) {
      let progress = '';
      if (options.progress) {
        progress = await Promise.resolve(options.progress()).then(
          (text) => `; last seen: ${text}`,
          (error: unknown) => `; progress unavailable: ${String(error)}`,
        );
      }
      const cause = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${(options.timeoutMs / 1000).toFixed(1)} s waiting for ${what}${progress}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

export function seconds(fromMs: number): string {
  return `${((Date.now() - fromMs) / 1000).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------
// jetpost child processes

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface JetpostProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** The environment it was started with (jetpost's settings, without PATH and HOME). */
  readonly env: Readonly<Record<string, string>>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** undefined while it runs. */
  exitStatus(): ExitStatus | undefined;
  /** The last lines it wrote on stdout and stderr. */
  output(): string[];
  signal(signal: NodeJS.Signals): void;
  /** Signals its whole process group, as a terminal's Ctrl-C does (needs ownProcessGroup). */
  signalGroup(signal: NodeJS.Signals): void;
  /** SIGKILL (unless it already exited) and wait for the exit. */
  kill(): Promise<ExitStatus>;
}

export interface JetpostOptions {
  name: string;
  port: number;
  /** A database of the test cluster; undefined: jetpost runs its embedded PostgreSQL (see harness.dataDir). */
  databaseUrl: string | undefined;
  simulator: Simulator;
  /** Overrides of the defaults below (any jetpost variable; '' unsets one). */
  env?: Record<string, string>;
  /** `npm start`, the way an operator runs it, instead of node directly. The pid is then npm's. */
  viaNpmStart?: boolean;
  /** Leader of a process group of its own, as a shell runs a command, so that signalGroup reaches all of it. */
  ownProcessGroup?: boolean;
}

/** The settings every child starts with, unless a scenario overrides them. */
export const JETPOST_DEFAULTS = {
  NODE_ENV: 'test',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  WORKER_CONCURRENCY: '4',
  BATCH_SIZE: '50',
  MAX_ATTEMPTS: '8',
  RETRY_BASE_MS: '100',
  RETRY_MAX_MS: '1000',
  // Short, so the reaper returns the jobs of a killed process within seconds (it runs every LEASE_MS / 4, at least 1 s).
  LEASE_MS: '3000',
  IDLE_CHECK_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '5000',
  MAILJET_TIMEOUT_MS: '5000',
} as const;

const liveChildren = new Set<ChildProcess>();
/** Data directories of the embedded PostgreSQL servers started here: stopped by the exit hook too. */
const livePostgresDirs = new Set<string>();
/** PostgreSQL processes a scenario froze (SIGSTOP): continued by the exit hook, or SIGQUIT could not reach them. */
const frozenPids = new Set<number>();
let exitHookInstalled = false;

/** When the test process ends, for whatever reason, nothing it started may survive it. */
function installExitHook(): void {
  if (exitHookInstalled) {
    return;
  }
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      killChild(child, 'SIGKILL');
    }
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

/** Its whole process group when it leads one (so that nothing it started outlives it), else the process. */
function killChild(child: ChildProcess, signal: NodeJS.Signals): void {
  if (groupLeaders.has(child)) {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // The group is empty already.
    }
  } else {
    child.kill(signal);
  }
}

const groupLeaders = new WeakSet<ChildProcess>();

/** `script`: src/bin/jetpost.ts compiled (compiled-bin.ts), so a child's start costs no compilation. */
function spawnJetpost(options: JetpostOptions, script: string): JetpostProcess {
  installExitHook();
  const simulatorUrl = options.simulator.url;
  if (simulatorUrl === undefined) {
    throw new Error('the simulator is not listening');
  }
  const env: Record<string, string> = {
    ...JETPOST_DEFAULTS,
    PORT: String(options.port),
    ...(options.databaseUrl === undefined ? {} : { DATABASE_URL: options.databaseUrl }),
    DATA_DIR: path.join(os.tmpdir(), `jetpost-faults-data-${options.port}`),
    MAILJET_API_KEY: SIMULATOR_KEY,
    MAILJET_API_SECRET: SIMULATOR_SECRET,
    MAILJET_BASE_URL: simulatorUrl,
    EVENTS_USERNAME: EVENTS_USER,
    EVENTS_PASSWORD: EVENTS_PASSWORD,
    ...options.env,
  };
  // Only what node needs from this process: no DATABASE_URL or other setting leaks in.
  const inherited = Object.fromEntries(['PATH', 'HOME', 'TMPDIR'].flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
  const [command, args] = options.viaNpmStart ? ['npm', ['start', '--silent']] : [process.execPath, ['--enable-source-maps', script]];
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...inherited, ...env, ...(options.viaNpmStart ? { npm_config_update_notifier: 'false' } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup === true,
  });
  if (child.pid === undefined) {
    throw new Error(`could not start ${options.name}`);
  }
  liveChildren.add(child);
  if (options.ownProcessGroup) {
    groupLeaders.add(child);
  }
  const lines: string[] = [];
  const keep = (stream: NodeJS.ReadableStream, label: string) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(`${label} ${line}`);
      }
      lines.splice(0, Math.max(0, lines.length - OUTPUT_LINES));
    });
  };
  keep(child.stdout!, `[${options.name} ${child.pid} out]`);
  keep(child.stderr!, `[${options.name} ${child.pid} err]`);
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      liveChildren.delete(child);
      resolve(status);
    });
  });
  return {
    name: options.name,
    pid: child.pid,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    env,
    exited,
    exitStatus: () => status,
    output: () => [...lines],
    signal(signal) {
      if (status === undefined) {
        child.kill(signal);
      }
    },
    signalGroup(signal) {
      if (!options.ownProcessGroup) {
        throw new Error(`${options.name} was not started in a process group of its own`);
      }
      process.kill(-child.pid!, signal);
    },
    async kill() {
      // The group too: an `npm start` child, or an orphan of one, must not survive the test.
      killChild(child, 'SIGKILL');
      return exited;
    },
  };
}

function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}

/**
 * Waits until GET /readyz answers 200; fails at once if the process exits meanwhile. The default
 * budget holds on a loaded 2-core machine, where a start (migrations included) took 6-7 s.
 */
export async function waitReady(child: JetpostProcess, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    `${child.name} (pid ${child.pid}) to answer 200 on /readyz`,
    async () => {
      const response = await fetch(`${child.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.text();
      return response.status === 200;
    },
    { timeoutMs, intervalMs: 100, watch: [child] },
  );
}

/** Waits for the process to exit; fails after `timeoutMs` without killing it (afterEach does). */
export async function waitForExit(child: JetpostProcess, timeoutMs: number): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${child.name} (pid ${child.pid}) did not exit within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-test resources

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
      cleanups.push(() => db.drop());
      return { url: db.url, pool: db.pool };
    },

    async ownPostgres() {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-faults-pg-'));
      cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
      // Outside the ephemeral range too: the port stays unbound for the whole outage, then is bound again.
      const port = await scenarioPort();
      const log = testLogger();
      let server: EmbeddedDatabase | undefined = await startEmbeddedPostgres({ dir, port, log, ownSession: false });
      livePostgresDirs.add(dir);
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
      cleanups.push(async () => {
        thaw();
        await pool.end().catch(() => undefined);
        await server?.stop();
        server = undefined;
        livePostgresDirs.delete(dir);
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
    },

    async dataDir() {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-faults-data-'));
      const pgPort = await scenarioPort();
      livePostgresDirs.add(dir);
      const pools: Pool[] = [];
      cleanups.push(async () => {
        await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
        await stopPostmaster(dir);
        livePostgresDirs.delete(dir);
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
    },

    async app(pool) {
      const { app, key } = await createAppWithKey(pool, `faults-${Math.random().toString(36).slice(2, 10)}`);
      return { appId: app.id, key };
    },

    async simulator(eventsPort, options = {}) {
      const simulator = createSimulator({
        apiKey: SIMULATOR_KEY,
        apiSecret: SIMULATOR_SECRET,
        callbackUrl: `http://${EVENTS_USER}:${EVENTS_PASSWORD}@127.0.0.1:${eventsPort}/events`,
        // A child being restarted misses callbacks for a second or two: retry them soon.
        callbackRetryDelayMs: 250,
        ...options,
      });
      cleanups.push(() => simulator.close());
      await simulator.listen(0);
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

/** Ports handed out in this run: never twice, since a scenario keeps its port across restarts. */
const usedPorts = new Set<number>();

/**
 * A port for a child's HTTP API, below Linux's ephemeral range (32768–60999): a port from `listen(0)`
 * would be released before the child binds it, and any server of this run listening on port 0 (a
 * simulator, another test's app) could take it in between.
 */
async function scenarioPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (usedPorts.has(port)) {
      continue;
    }
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) {
      usedPorts.add(port);
      return port;
    }
  }
  throw new Error('no free port found between 20000 and 32000');
}

// ---------------------------------------------------------------------------------------------
// Queueing and reading results

/** A one-recipient message. Addresses with "noevents" get no Mailjet events: the job stays `accepted`. */
export function message(to: string | string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { from: 'app@example.com', to, subject: 'fault suite', text: 'Hello from the fault suite', ...extra };
}

/** POST /queue in bulk requests of up to 500; returns the job ids in order. */
export async function queueMessages(url: string, key: string, messages: readonly Record<string, unknown>[]): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < messages.length; start += 500) {
    const response = await fetch(`${url}/queue`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: messages.slice(start, start + 500) }),
    });
    const text = await response.text();
    if (response.status !== 202) {
      throw new Error(`POST /queue answered ${response.status}: ${text}`);
    }
    ids.push(...(JSON.parse(text) as { jobs: Array<{ job_id: string }> }).jobs.map((job) => job.job_id));
  }
  return ids;
}

export interface JobFacts {
  id: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  outcomeUnknown: boolean;
}

export async function jobFacts(pool: Pool): Promise<JobFacts[]> {
  const { rows } = await pool.query<{ id: string; status: string; attempts: number; max_attempts: number; last_error: string | null; outcome_unknown: boolean }>(
    'select id::text, status, attempts, max_attempts, last_error, outcome_unknown from email_send_jobs order by id',
  );
  return rows.map((row) => ({
    id: row.id,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    lastError: row.last_error,
    outcomeUnknown: row.outcome_unknown,
  }));
}

/** Jobs per status, e.g. "accepted 380, processing 20". */
export async function statusCounts(pool: Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; count: number }>('select status, count(*)::int as count from email_send_jobs group by status');
  return Object.fromEntries(rows.map((row) => [row.status, row.count]));
}

export function describeCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? 'no jobs' : entries.map(([status, count]) => `${status} ${count}`).join(', ');
}

export async function countStatus(pool: Pool, status: string): Promise<number> {
  return (await statusCounts(pool))[status] ?? 0;
}

/** Waits until every one of `total` jobs has one of `statuses`, reporting the counts if it never happens. */
export async function waitForJobs(
  pool: Pool,
  total: number,
  statuses: readonly string[],
  options: { timeoutMs: number; watch?: readonly JetpostProcess[] },
): Promise<Record<string, number>> {
  return waitUntil(
    `all ${total} jobs to be ${statuses.join(' or ')}`,
    async () => {
      const counts = await statusCounts(pool);
      const settled = statuses.reduce((sum, status) => sum + (counts[status] ?? 0), 0);
      return settled === total ? counts : undefined;
    },
    { ...options, intervalMs: 100, progress: async () => describeCounts(await statusCounts(pool)) },
  );
}

/** The CustomID jetpost gives a job's message. */
export function customIdOf(jobId: string): string {
  return customIdForJob(jobId);
}

/** How often the simulator accepted each CustomID. */
export function acceptedCopies(simulator: Simulator): Map<string, number> {
  const copies = new Map<string, number>();
  for (const accepted of simulator.messages) {
    copies.set(accepted.customId, (copies.get(accepted.customId) ?? 0) + 1);
  }
  return copies;
}

/** CustomIDs the simulator accepted more than once: messages sent twice. */
export function sentTwice(simulator: Simulator): string[] {
  return [...acceptedCopies(simulator)].filter(([, count]) => count > 1).map(([customId]) => customId);
}

/** Jobs whose CustomID the simulator never accepted. */
export function neverSent(simulator: Simulator, jobIds: readonly string[]): string[] {
  const copies = acceptedCopies(simulator);
  return jobIds.filter((id) => !copies.has(customIdOf(id)));
}

/** Reads a counter of GET /metrics (summed over its labels); 0 when absent. */
export async function metric(child: JetpostProcess, name: string): Promise<number> {
  const text = await (await fetch(`${child.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

// ---------------------------------------------------------------------------------------------
// Figures

const figures: string[][] = [];
let reportRegistered = false;

/**
 * Prints one line of figures for a scenario now (`faults | <scenario> | <figure> | … | <duration>`),
 * and keeps it for the table at the end of the run. The first column names the scenario, the last
 * is its duration.
 */
export function recordFigures(scenario: string, ...figuresAndDuration: string[]): void {
  figures.push([scenario, ...figuresAndDuration]);
  process.stdout.write(`      faults | ${[scenario, ...figuresAndDuration].join(' | ')}\n`);
}

/** One row per scenario, sorted by its label ("1 …", "3b …"): scenario and duration aligned in columns, then the figures. */
export function figuresTable(rows: readonly string[][]): string {
  const sorted = [...rows].sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? '', 'en', { numeric: true }));
  const table = [['scenario', 'time', 'figures'], ...sorted.map((row) => [row[0] ?? '', row.at(-1) ?? '', row.slice(1, -1).join(' | ')])];
  const scenarioWidth = Math.max(...table.map((row) => row[0]!.length));
  const timeWidth = Math.max(...table.map((row) => row[1]!.length));
  return table.map(([scenario, time, rest]) => `${scenario!.padEnd(scenarioWidth)} | ${time!.padStart(timeWidth)} | ${rest}`).join('\n');
}

/**
 * Registers, once, a root-level after hook that prints the figures of every scenario that ran as a
 * table and writes it to <tmpdir>/jetpost-faults-latest.txt. Call it at the top of each fault file.
 */
export function reportFiguresAfterRun(): void {
  if (reportRegistered) {
    return;
  }
  reportRegistered = true;
  after(() => {
    if (figures.length === 0) {
      return;
    }
    const file = path.join(os.tmpdir(), 'jetpost-faults-latest.txt');
    const text = `jetpost fault suite, FAULT_SCALE=${FAULT_SCALE}, ${new Date().toISOString()}, ${os.cpus().length} CPUs, node ${process.version}\n${figuresTable(figures)}\n`;
    writeFileSync(file, text);
    process.stdout.write(`\n${text}(written to ${file})\n`);
  });
}
