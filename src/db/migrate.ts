// Runs the migrations in sql/ with postgres-migrations, inside jetpost's own schema, and then moves
// any identity sequence left behind its table's rows (identity-sequences.ts) past them.
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';
import { migrate } from 'postgres-migrations';

import { StartupError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { MIGRATIONS_DIR } from '../paths.js';
import { cancelOnAbort } from './cancel-on-abort.js';
import { advanceIdentitySequences } from './identity-sequences.js';

// postgres-migrations 5.x checks for its bookkeeping table by name in *any* schema, so a database that
// already holds e.g. graphile_worker.migrations makes it skip the creation and then fail to select from
// "migrations". Creating our own copy first (the same definition as its 0_create-migrations-table)
// makes that check true for the table it will actually use.
// Each is created only when missing: PostgreSQL checks the right to create before it looks whether
// the object exists, so `if not exists` failed for a user that owns the schema but may not create
// schemas in the database (or may not create tables in a schema already migrated).
// Replicas starting together on an empty database all found the schema missing and created it: all
// but one failed the start on its unique name. The block runs under a lock of its own until it
// commits (not the migrations' lock: a replica holding that one may be building an index
// concurrently, which waits for every open transaction, this one's too).
const PREPARE_SCHEMA = (schema: string) => `
  do $$
  begin
    perform pg_advisory_xact_lock(-8525285245963000604);
    if to_regnamespace('${schema}') is null then
      create schema ${schema};
    end if;
    if to_regclass('${schema}.migrations') is null then
      create table ${schema}.migrations (
        id integer primary key,
        name varchar(100) unique not null,
        hash varchar(40) not null,
        executed_at timestamp default current_timestamp
      );
    end if;
  end
  $$;`;

// Whether the schema holds migrations of ours: postgres-migrations' own first row has id 0, ours start at 1.
const JETPOST_SCHEMA_EXISTS = `
  select to_regclass(format('%I.migrations', $1::text)) is not null as has_table`;
const JETPOST_MIGRATED = (schema: string) => `
  select exists (select 1 from ${schema}.migrations where id >= 1) as migrated`;

export interface MigrateOptions {
  connectionString: string;
  /** A checked SQL identifier (config.ts). */
  schema: string;
  log: Logger;
  /**
   * Only bring an existing jetpost schema up to date, never create one (the admin CLI): a mistyped
   * DATABASE_SCHEMA would otherwise get a new, empty jetpost of its own.
   */
  existingSchemaOnly?: boolean;
  /**
   * How long connecting may take (DATABASE_CONNECT_TIMEOUT_MS): a database that accepts the
   * connection but never answers (frozen, or a firewall that drops packets) must stop the start, not
   * hang it. Unset: no limit (tools and tests). The migrations' own wait for another replica's lock
   * comes after the connection and is not bounded by it.
   */
  connectTimeoutMs?: number;
  /**
   * Aborted by a signal during the start: the statement the migrations run is cancelled (a
   * transactional migration rolls back, a concurrent build leaves its index invalid, for the next
   * start to drop and build again), instead of the stop waiting for it, many minutes for an index
   * on a big table.
   */
  signal?: AbortSignal | undefined;
}

export async function runMigrations({
  connectionString,
  schema,
  log,
  existingSchemaOnly = false,
  connectTimeoutMs,
  signal,
}: MigrateOptions): Promise<string[]> {
  // The database's own statement_timeout and idle_in_transaction_session_timeout are for its other
  // users: at 1 ms (or at a few seconds, before an index build on a big table) they cancelled the
  // migrations, and jetpost could not start. The service's own statements have DATABASE_STATEMENT_TIMEOUT_MS.
  const client = new pg.Client({
    connectionString,
    options: `-c search_path=${schema} -c statement_timeout=0 -c idle_in_transaction_session_timeout=0`,
    // Names the session holding the migrations lock to the replicas waiting for it, and in pg_stat_activity.
    application_name: 'jetpost migrations',
    connectionTimeoutMillis: connectTimeoutMs ?? 0,
  });
  client.on('error', (error) => log.warn('migration connection error', { component: 'migrate', error: error.message }));
  const connectStartedAt = performance.now();
  // A signal while connecting ends the attempt at once (nothing begun, nothing to cancel): the stop
  // would otherwise wait out DATABASE_CONNECT_TIMEOUT_MS for a database that does not answer, and
  // pg's end() waits for the server too.
  const stopConnecting = () => client.connection.stream.destroy();
  signal?.addEventListener('abort', stopConnecting, { once: true });
  await client
    .connect()
    .catch((error: unknown) => {
      signal?.throwIfAborted();
      throw connectTimeoutMs !== undefined && performance.now() - connectStartedAt >= connectTimeoutMs
        ? Object.assign(new Error(`no answer within ${connectTimeoutMs} ms (DATABASE_CONNECT_TIMEOUT_MS)`, { cause: error }), { code: 'ETIMEDOUT' })
        : error;
    })
    .finally(() => signal?.removeEventListener('abort', stopConnecting));
  let cancelling: { end(): Promise<void> } | undefined;
  try {
    // A signal that came as the connection was made.
    signal?.throwIfAborted();
    const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    cancelling = cancelOnAbort(pid, { connectionString, connectTimeoutMs, log, signal });
    await refuseOtherEncodings(client);
    if (existingSchemaOnly && !(await holdsJetpost(client, schema))) {
      throw new StartupError(`no jetpost schema ${schema} in this database; check DATABASE_SCHEMA, or start jetpost once to create it`);
    }
    await client.query(PREPARE_SCHEMA(schema));
    // A pooler that drops the search_path startup option (PgBouncer's ignore_startup_parameters)
    // would make the migrations create jetpost's tables in another schema.
    const current = (await client.query<{ schema: string | null }>('select current_schema() as schema')).rows[0]?.schema;
    if (current !== schema) {
      throw new StartupError(
        `the migrations' connection works in schema ${current ?? '(none)'} instead of ${schema}: the database or a pooler in front of it dropped the search_path option. Point DATABASE_DIRECT_URL (or DATABASE_URL) at the database itself`,
      );
    }
    await refuseForeignMigrationsTable(client, schema);
    await repairInterruptedIndexBuilds(client, schema, log, signal);
    const applied = await migrate({ client }, MIGRATIONS_DIR, {
      logger: (message) => log.debug(message, { component: 'migrate' }),
    }).catch((error: unknown) => {
      // postgres-migrations compares the hash of every file with the one recorded when it was applied.
      const reason = error instanceof Error ? /Hashes don't match for migrations '[^']*'\./.exec(error.message)?.[0] : undefined;
      if (reason === undefined) {
        throw error;
      }
      throw new StartupError(
        `the migrations recorded in ${schema}.migrations are not this release's sql/ (${reason}): DATABASE_SCHEMA names a schema whose migrations another tool keeps, or a migration was edited after it was applied. ${OWN_SCHEMA}`,
        { cause: error },
      );
    });
    const names = applied.map((migration) => migration.name);
    if (names.length > 0) {
      log.info('applied migrations', { component: 'migrate', schema, migrations: names });
    }
    // Still under the migrations lock: replicas starting together advance the sequences one at a time.
    const sequences = await advanceIdentitySequences(client, schema);
    if (sequences.advanced.length > 0) {
      log.warn('identity sequences were behind their tables (a database moved by logical replication): moved past the rows', {
        component: 'migrate',
        tables: sequences.advanced,
      });
    }
    if (sequences.locked.length > 0) {
      log.warn('could not check the identity sequences of tables another session holds locked; they are checked at the next start', {
        component: 'migrate',
        tables: sequences.locked,
      });
    }
    return names;
  } catch (error) {
    throw signal?.aborted ? interrupted(error, signal) : error;
  } finally {
    await cancelling?.end();
    await client.end();
  }
}

/** What a signal interrupted, and what the next start does about it, in one line. */
function interrupted(error: unknown, signal: AbortSignal): Error {
  const migration = error instanceof Error ? /An error occurred running '([^']*)'/.exec(error.message)?.[1] : undefined;
  const why = signal.reason instanceof Error ? signal.reason.message : 'the start was aborted';
  return new Error(
    migration === undefined
      ? `the migrations were interrupted by ${why}: the next start applies what is left`
      : `migration ${migration} was interrupted by ${why} (its statement cancelled): the next start applies it again`,
    { cause: error },
  );
}

// postgres-migrations' own advisory lock (its with-lock.js), per session and re-entrant: taken here
// first, the look for invalid indexes below runs while no other replica can be building one. It is
// held until the connection ends, after the migrations. Tried, not waited for, as postgres-migrations
// does: a `create index concurrently` of the replica holding it waits for every transaction open
// when it started, a statement waiting for the lock included, which would be a deadlock.
const MIGRATIONS_LOCK_KEY = '-8525285245963000605';
const TRY_MIGRATIONS_LOCK = `select pg_try_advisory_lock(${MIGRATIONS_LOCK_KEY}) as locked`;
const LOCK_RETRY_MS = 1_000;
// The session holding that lock (a bigint key is classid: its high 32 bits, objid: its low 32, objsubid 1).
const MIGRATIONS_LOCK_HOLDER = `
  select a.pid, a.application_name as application, host(a.client_addr) as address, a.backend_start as since
  from pg_locks l
  join pg_stat_activity a on a.pid = l.pid
  where l.locktype = 'advisory' and l.granted and l.objsubid = 1
    and l.classid::bigint = (${MIGRATIONS_LOCK_KEY}::bigint >> 32) & 4294967295
    and l.objid::bigint = ${MIGRATIONS_LOCK_KEY}::bigint & 4294967295
    and l.database = (select oid from pg_database where datname = current_database())`;

// An invalid index is being built right now when a session that builds an index (CREATE INDEX or
// REINDEX … CONCURRENTLY) holds a lock on its table: the progress row names the table only to the
// same role (or pg_read_all_stats), pg_locks to every role.
const INVALID_INDEXES = `
  select c.relname as name, exists (
      select 1
      from pg_stat_progress_create_index p
      join pg_locks l on l.pid = p.pid
      where p.pid <> pg_backend_pid() and l.locktype = 'relation' and l.relation = i.indrelid
        and l.database = (select oid from pg_database where datname = current_database())
    ) as building
  from pg_index i
  join pg_class c on c.oid = i.indexrelid
  where c.relnamespace = to_regnamespace($1) and not i.indisvalid
  order by 1`;
const LAST_APPLIED = 'select coalesce(max(id), 0) as id from migrations';

/**
 * An index left invalid by a `create index concurrently` that did not finish (a signal during the
 * start, PostgreSQL restarted, the statement cancelled) stays in the catalogue. Its migration, run
 * again, would fail on the name, or, written `if not exists`, be recorded as done over an index no
 * query can use. With migrations to apply, each such index is dropped (no query uses it) and its
 * migration builds it anew; one that another session is building right now (an operator's REINDEX
 * CONCURRENTLY) is neither dropped nor waited for: the start stops, to be made again once that build
 * is done. Without migrations to apply, the index is only reported.
 */
async function repairInterruptedIndexBuilds(client: pg.Client, schema: string, log: Logger, signal: AbortSignal | undefined): Promise<void> {
  for (let tries = 0; (await client.query<{ locked: boolean }>(TRY_MIGRATIONS_LOCK)).rows[0]?.locked !== true; tries += 1) {
    if (tries === 0) {
      await logLockHolder(client, log);
    }
    await sleep(LOCK_RETRY_MS, undefined, { signal });
  }
  const invalid = (await client.query<{ name: string; building: boolean }>(INVALID_INDEXES, [schema])).rows;
  if (invalid.length === 0) {
    return;
  }
  const lastApplied = Number((await client.query<{ id: number }>(LAST_APPLIED)).rows[0]?.id ?? 0);
  if (lastApplied >= (await latestMigrationId())) {
    log.warn('invalid index: no query uses it; rebuild it with REINDEX INDEX CONCURRENTLY', {
      component: 'migrate',
      indexes: invalid.map(({ name }) => `${schema}.${name}`),
    });
    return;
  }
  const building = invalid.filter((index) => index.building).map(({ name }) => `${schema}.${name}`);
  if (building.length > 0) {
    throw new StartupError(
      `invalid index ${building.join(', ')}, which another session is building right now (REINDEX or CREATE INDEX CONCURRENTLY): start jetpost again once that build has finished`,
    );
  }
  for (const { name } of invalid) {
    // Concurrently: the table stays writable for the replicas still running while the drop waits for their transactions.
    await client.query(`drop index concurrently if exists ${schema}.${client.escapeIdentifier(name)}`);
    log.warn('dropped an invalid index left by an interrupted concurrent build; its migration builds it again', {
      component: 'migrate',
      index: `${schema}.${name}`,
    });
  }
}

/**
 * A start waiting for another replica's migrations (an index built on a big table takes minutes)
 * opens no port and would say nothing meanwhile: one line says what it waits for, and whom.
 */
async function logLockHolder(client: pg.Client, log: Logger): Promise<void> {
  const holder = (await client.query<{ pid: number; application: string; address: string | null; since: Date | null }>(MIGRATIONS_LOCK_HOLDER)).rows[0];
  log.info(
    `waiting for the migrations lock, held by another session${holder ? ` (PostgreSQL pid ${holder.pid}${holder.application ? `, ${holder.application}` : ''}${holder.address ? ` from ${holder.address}` : ''})` : ''}: another replica is applying migrations; this start goes on, and opens its port, once they are done`,
    {
      component: 'migrate',
      holderPid: holder?.pid ?? null,
      holderApplication: holder?.application || null,
      holderAddress: holder?.address ?? null,
      holderSince: holder?.since?.toISOString() ?? null,
    },
  );
}

/**
 * Addresses, names and subjects come in every script, and the address keys (sql/44 on) are built of
 * Unicode: in a SQL_ASCII or LATIN1 database a migration failed on "requested character too large
 * for encoding", after the schema was made, and a LATIN1 one would refuse an emoji of a subject.
 */
async function refuseOtherEncodings(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ encoding: string; database: string }>(
    "select current_setting('server_encoding') as encoding, current_database() as database",
  );
  const { encoding, database } = rows[0]!;
  if (encoding !== 'UTF8') {
    throw new StartupError(
      `the database ${database} is in the ${encoding} encoding; jetpost needs a UTF8 one (names, subjects and addresses come in every script): create one with CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0 and point DATABASE_URL at it`,
    );
  }
}

const OWN_SCHEMA = "Set DATABASE_SCHEMA to a schema of jetpost's own (jetpost creates it)";
const MIGRATIONS_COLUMNS = `
  select column_name as name
  from information_schema.columns
  where table_schema = $1 and table_name = 'migrations'`;
/** The columns of postgres-migrations' table that it reads and writes. */
const BOOKKEEPING_COLUMNS = ['id', 'name', 'hash'];

/**
 * A schema shared with another tool may hold that tool's `migrations` (TypeORM, Sequelize…):
 * postgres-migrations read it as its own and failed with a stack trace saying that its scripts had
 * changed.
 */
async function refuseForeignMigrationsTable(client: pg.Client, schema: string): Promise<void> {
  const columns = new Set((await client.query<{ name: string }>(MIGRATIONS_COLUMNS, [schema])).rows.map((row) => row.name));
  const missing = BOOKKEEPING_COLUMNS.find((column) => !columns.has(column));
  if (missing !== undefined) {
    throw new StartupError(
      `${schema}.migrations is not the migrations table of jetpost (it has no column ${missing}): DATABASE_SCHEMA names a schema whose migrations another tool keeps. ${OWN_SCHEMA}`,
    );
  }
}

async function holdsJetpost(client: pg.Client, schema: string): Promise<boolean> {
  const { rows } = await client.query<{ has_table: boolean }>(JETPOST_SCHEMA_EXISTS, [schema]);
  if (rows[0]?.has_table !== true) {
    return false;
  }
  return (await client.query<{ migrated: boolean }>(JETPOST_MIGRATED(schema))).rows[0]?.migrated === true;
}

/** The newest migration id in sql/ and whether the database has it: what /readyz reports. */
export async function migrationsApplied(db: Pick<pg.Pool, 'query'>, expected: number): Promise<boolean> {
  const result = await db.query<{ max: number | null }>('select max(id) as max from migrations');
  return (result.rows[0]?.max ?? -1) >= expected;
}

/** The highest migration number in sql/. */
export async function latestMigrationId(): Promise<number> {
  const files = await fs.readdir(MIGRATIONS_DIR);
  return Math.max(0, ...files.map((file) => Number.parseInt(file, 10)).filter(Number.isInteger));
}
