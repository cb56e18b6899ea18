// The database a process works with: DATABASE_URL, or the embedded PostgreSQL under the data
// directory (started, or adopted when one already runs there), migrated.
//
// With the embedded database the service owns the data directory (data-dir-owner.ts): a second
// service on it is refused before anything starts, and the owner stops the database when it closes,
// last. A CLI command borrows it: the last one out stops a server that no service owns (embedded.ts:
// stopUnlessInUse).
import path from 'node:path';

import { type Config, ConfigError } from '../config.js';
import { StartupError } from '../domain/errors.js';
import { finishedWithin } from '../finished-within.js';
import type { Logger } from '../log.js';
import { prepareDataDir } from './data-dir.js';
import { borrowDataDir, claimDataDir, liveDataDirOwner } from './data-dir-owner.js';
import { explainEmbeddedRefusal, holdsNoEmbeddedPostgres, startEmbeddedPostgres, walDiskFull } from './embedded.js';
import { runMigrations } from './migrate.js';
import { createPool, type Pool } from './pool.js';
import { isProcessAlive } from './process-liveness.js';

export interface OpenDatabase {
  /** The pool's: DATABASE_URL (perhaps a pooler), or the embedded database's. */
  connectionString: string;
  /** For a session of its own (LISTEN): DATABASE_DIRECT_URL when set, else connectionString. */
  directConnectionString: string;
  pool: Pool;
  /**
   * Closes the pool, then stops the embedded database if it is this process's to stop. Each step
   * has a deadline: connections still busy (a frozen database) or a server slow to shut down do not
   * hold the exit. Resolves to what it left behind that way (for the process's last log line).
   */
  close(): Promise<string[]>;
  /** The service's HTTP port once it listens, for the embedded database's owner file (PORT=0). */
  recordPort(port: number): Promise<void>;
  /**
   * The service's embedded PostgreSQL: resolves, with what happened, if its server exits without
   * being asked to (killed by the OOM killer, a `kill` of its pid), until close() begins; never
   * resolves with DATABASE_URL, or for a command.
   */
  readonly lost: Promise<string>;
}

export interface OpenOptions {
  /** 'service': owns the data directory; 'command': a CLI command borrowing it. */
  role: 'service' | 'command';
  /**
   * Aborted when the process exits at once (a service's second signal, a command's Ctrl-C), from the
   * moment the embedded database is spawned, during the start too: the database, if it is this
   * process's to stop, is asked for a fast shutdown without waiting, instead of being left running.
   * A command's stops only while it starts; once up, the command's close() stops it.
   */
  exitingNow?: AbortSignal | undefined;
  /**
   * Aborted by a signal during the start: once the embedded database is up (a first start's initdb
   * takes seconds), the migrations are not begun, or the statement they run is cancelled; the
   * database is stopped and the abort (or what it interrupted) thrown.
   */
  signal?: AbortSignal | undefined;
}

/** How long close() waits for connections in use to be given back. */
const POOL_END_MS = 1_000;
/** How long close() waits for the embedded PostgreSQL to finish its shutdown. */
const EMBEDDED_STOP_MS = 3_000;

interface EmbeddedHandle {
  /** Resolves to what it left behind, if anything. */
  stop(): Promise<string | undefined>;
  recordPort?(port: number): Promise<void>;
  /** The server, watched while the service runs (a command's server is not). */
  watched?: { pid: number; databaseDir: string };
}

/** How often the service looks whether its embedded PostgreSQL is still there. */
const EMBEDDED_WATCH_MS = 1_000;

/** Resolves once the server's process is gone, saying why when its disk is full, unless `closing` is aborted first. */
function whenGone({ pid, databaseDir }: { pid: number; databaseDir: string }, closing: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (closing.aborted) {
        clearInterval(timer);
      } else if (!isProcessAlive(pid)) {
        clearInterval(timer);
        void walDiskFull(databaseDir).then((full) =>
          resolve(`the embedded PostgreSQL (pid ${pid}) exited without being asked to${full === undefined ? '' : ` (${full}: free space there first)`}`),
        );
      }
    }, EMBEDDED_WATCH_MS);
    timer.unref();
  });
}

export async function openDatabase(config: Config, log: Logger, { role, exitingNow, signal }: OpenOptions): Promise<OpenDatabase> {
  let connectionString = config.database.url;
  let embedded: EmbeddedHandle | undefined;
  if (connectionString === undefined) {
    const opened = await openEmbedded(config, log, role, exitingNow);
    connectionString = opened.connectionString;
    embedded = opened.handle;
  }
  // The migrations hold a session-level advisory lock: through a pooler in transaction mode its
  // unlock could run on another server connection and leave the lock held there for good.
  const directConnectionString = config.database.directUrl ?? connectionString;
  try {
    signal?.throwIfAborted();
    // A command works on the jetpost a service created; only the service creates one.
    await runMigrations({
      signal,
      connectionString: directConnectionString,
      schema: config.database.schema,
      log,
      existingSchemaOnly: role === 'command',
      connectTimeoutMs: config.database.timeouts.connectMs,
    });
  } catch (error) {
    await embedded?.stop();
    if (signal?.aborted) {
      throw error;
    }
    if (embedded) {
      throw explainEmbeddedRefusal(error, config.dataDir) ?? error;
    }
    const setting = config.database.directUrl === undefined ? 'DATABASE_URL' : 'DATABASE_DIRECT_URL';
    throw explainDatabaseRefusal(explainPoolerRefusal(error, config.database.directUrl !== undefined), setting, config.database.schema);
  }
  const pool = createPool({
    connectionString,
    schema: config.database.schema,
    max: config.database.poolSize,
    log,
    timeouts: config.database.timeouts,
    sessionless: config.database.directUrl !== undefined,
  });
  // Through a pooler (DATABASE_DIRECT_URL set) the server's max_connections says nothing of the pooler's.
  if (role === 'service' && config.database.directUrl === undefined) {
    await refusePoolPastServer(pool, config.database.poolSize).catch(async (error: unknown) => {
      await pool.end();
      await embedded?.stop();
      throw error;
    });
  }
  let closing: Promise<string[]> | undefined;
  const closeBegun = new AbortController();
  return {
    connectionString,
    directConnectionString,
    pool,
    recordPort: async (port) => embedded?.recordPort?.(port),
    lost: embedded?.watched === undefined ? new Promise<string>(() => {}) : whenGone(embedded.watched, closeBegun.signal),
    close() {
      closeBegun.abort();
      closing ??= (async () => {
        const left: string[] = [];
        if (!(await finishedWithin(pool.end(), POOL_END_MS))) {
          log.warn('database connections were still in use at exit; closing without them', { component: 'db', waitedMs: POOL_END_MS });
          left.push('database connections still in use');
        }
        const embeddedLeft = await embedded?.stop();
        return embeddedLeft === undefined ? left : [...left, embeddedLeft];
      })();
      return closing;
    },
  };
}

/**
 * A DATABASE_POOL_SIZE past what the server takes started, and then failed only under load, each
 * connection past its max_connections refused (53300, "too many clients"). One process needs its
 * pool and its LISTEN connection; the server keeps superuser_reserved_connections to itself.
 */
async function refusePoolPastServer(pool: Pool, poolSize: number): Promise<void> {
  const { rows } = await pool.query<{ max: number; reserved: number }>(
    "select current_setting('max_connections')::int as max, current_setting('superuser_reserved_connections')::int as reserved",
  );
  const { max, reserved } = rows[0]!;
  const most = max - reserved - 1;
  if (poolSize > most) {
    throw new ConfigError(
      `invalid configuration: DATABASE_POOL_SIZE: "${poolSize}" is more than this database takes: at most ${most} (its max_connections ${max}, less ${reserved} reserved for superusers and jetpost's LISTEN connection)`,
    );
  }
}

/** PgBouncer in transaction mode refuses a session's settings at connect: name the setting to change. */
function explainPoolerRefusal(error: unknown, directUrlSet: boolean): unknown {
  if (!(error instanceof Error && error.message.startsWith('unsupported startup parameter'))) {
    return error;
  }
  const fix = directUrlSet
    ? 'DATABASE_DIRECT_URL goes through it too: point DATABASE_DIRECT_URL at the database itself, not the pooler'
    : 'DATABASE_URL goes through it: set DATABASE_DIRECT_URL to a direct connection to the same database';
  return new StartupError(
    `the database refused jetpost's session settings (${error.message}), as a connection pooler in transaction mode such as PgBouncer does. ${fix}`,
    {
      cause: error,
    },
  );
}

/**
 * A database that refuses jetpost at start (a wrong password, no such database or user, no right to
 * create jetpost's schema, nothing listening, no connection left, a server starting up) becomes one
 * line naming the setting to check, with PostgreSQL's own words, never the URL's password (the
 * embedded database's refusal: explainEmbeddedRefusal).
 */
function explainDatabaseRefusal(error: unknown, setting: string, schema: string): unknown {
  if (!(error instanceof Error)) {
    return error;
  }
  const code = (error as { code?: unknown }).code;
  if ((code === 'ENOENT' || code === 'EACCES') && (error as NodeJS.ErrnoException).syscall === 'open') {
    // pg reads sslrootcert, sslcert and sslkey when it parses the URL.
    return new StartupError(`${setting} names a file jetpost cannot read (${error.message}): check its sslrootcert, sslcert and sslkey`, { cause: error });
  }
  const advice = typeof code === 'string' ? DATABASE_REFUSALS[code] : UNCODED_REFUSALS.find(([message]) => message.test(error.message))?.[1];
  if (advice === undefined) {
    return error;
  }
  return new StartupError(`the database in ${setting} refused jetpost: ${error.message}. ${advice(setting, schema)}`, { cause: error });
}

/** Refusals pg raises with neither a SQLSTATE nor a system error code, by their message. */
const UNCODED_REFUSALS: Array<[RegExp, (setting: string) => string]> = [
  [
    /^The server does not support SSL connections$/,
    (setting) => `${setting} asks for SSL (its sslmode) and the server offers none: turn SSL on in PostgreSQL, or set sslmode=disable in ${setting}`,
  ],
  // The server asked for a SCRAM password (pg says so in its own terms).
  [
    /client password must be a string/,
    (setting) => `The server asks for a password and ${setting} gives none: put it in ${setting} (postgres://user:password@host/database)`,
  ],
];

const DATABASE_REFUSALS: Record<string, (setting: string, schema: string) => string> = {
  // invalid_password; invalid_authorization_specification (pg_hba.conf lets no such login in)
  '28P01': (setting) => `Check the user and password in ${setting}`,
  '28000': (setting) => `Check the user in ${setting}, and that the server's pg_hba.conf lets it in from here`,
  // too_many_connections: max_connections, or the role's or the database's connection limit
  '53300': () =>
    'PostgreSQL has no connection left for jetpost (its max_connections, or a connection limit of the user or the database): each replica holds up to DATABASE_POOL_SIZE connections and one more. Lower DATABASE_POOL_SIZE, raise the limit, or put PgBouncer in front (docs/deployment.md)',
  // cannot_connect_now
  '57P03': (setting) => `The PostgreSQL of ${setting} is starting up, shutting down or recovering: start jetpost again once it accepts connections`,
  // read_only_sql_transaction: a hot standby, or default_transaction_read_only on (the migrations write)
  '25006': (setting) =>
    `The database of ${setting} takes no writes (a hot standby, or default_transaction_read_only on for the database or its user): point ${setting} at the primary, or turn default_transaction_read_only off`,
  // invalid_catalog_name
  '3D000': (setting) => `Check the database name in ${setting}, or create that database`,
  // insufficient_privilege, creating the schema or its tables
  '42501': (setting, schema) =>
    `Create schema ${schema} with the user of ${setting} as its owner, or grant that user create on the database, or set DATABASE_SCHEMA to a schema it owns`,
  ECONNREFUSED: (setting) => `Nothing accepts connections at the host and port of ${setting}: check them, and that PostgreSQL is running`,
  // Also a connection that the server took but never answered on (a frozen server), past DATABASE_CONNECT_TIMEOUT_MS.
  ETIMEDOUT: (setting) => `Check that the PostgreSQL at the host and port of ${setting} is running and answering, and that no firewall drops its packets`,
  ENOTFOUND: (setting) => `The host of ${setting} does not resolve: check it`,
  EAI_AGAIN: (setting) => `The host of ${setting} does not resolve: check it`,
};

async function openEmbedded(
  config: Config,
  log: Logger,
  role: OpenOptions['role'],
  exitingNow: AbortSignal | undefined,
): Promise<{ connectionString: string; handle: EmbeddedHandle }> {
  // A command works on the database a service made, as on its schema (migrate.ts). On a DATA_DIR no
  // jetpost had run on (mistyped, or before the first start) it made the directory and a new cluster
  // there, left both behind, and then refused for want of the schema, naming DATABASE_SCHEMA.
  if (role === 'command' && (await holdsNoEmbeddedPostgres(config.dataDir))) {
    throw new StartupError(
      `DATA_DIR (${path.resolve(config.dataDir)}) holds no embedded PostgreSQL: jetpost has not run with it. Give the command the service's DATA_DIR (or its DATABASE_URL), or start jetpost once to create it`,
    );
  }
  await prepareDataDir(config.dataDir);
  const dir = path.resolve(config.dataDir);
  const options = { dir, port: config.database.embeddedPort, log, ownSession: true };
  if (role === 'command') {
    const loan = await borrowDataDir(dir);
    let server;
    try {
      server = await startEmbeddedPostgres({ ...options, exitingNow });
    } catch (error) {
      await loan.release();
      throw error;
    }
    // Whoever started it: the last command out stops a server no service owns. The one that
    // started it stopped it under another command still at work ("the database system is shutting
    // down"), and one that adopted it left it running.
    const stop = async () => {
      await loan.release();
      await server.stopUnlessInUse(async () => (await liveDataDirOwner(dir)) !== undefined || (await loan.othersBorrowing()), EMBEDDED_STOP_MS);
      return undefined;
    };
    return { connectionString: server.connectionString, handle: { stop } };
  }
  const claim = await claimDataDir(dir, config.dataDir, config.http.port);
  let server;
  try {
    server = await startEmbeddedPostgres({ ...options, exitingNow });
  } catch (error) {
    await claim.release();
    throw error;
  }
  const stop = async () => {
    if (await claim.held()) {
      const stopped = await server.stop(EMBEDDED_STOP_MS);
      if (!stopped) {
        log.warn('the embedded PostgreSQL is still shutting down; it finishes on its own', { component: 'embedded-postgres', pid: server.pid });
      }
      await claim.release();
      return stopped ? undefined : 'the embedded PostgreSQL, still shutting down';
    }
    log.warn('another jetpost has taken over the data directory: its database is left running', { component: 'embedded-postgres', dir });
    return 'the embedded PostgreSQL, now run by another jetpost';
  };
  exitingNow?.addEventListener(
    'abort',
    () => {
      if (claim.heldSync()) {
        server.requestStop();
      }
    },
    { once: true },
  );
  return {
    connectionString: server.connectionString,
    handle: { stop, recordPort: (port) => claim.recordPort(port), watched: { pid: server.pid, databaseDir: path.join(dir, 'pg') } },
  };
}
