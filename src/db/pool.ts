// The connection pool and the two helpers every repo uses. Only db/ imports pg.
import pg from 'pg';

import type { Logger } from '../log.js';

export type Row = Record<string, unknown>;
/** The pool or a transaction: repos take one first so the caller owns the transaction. */
export interface Queryable {
  query<T extends Row = Row>(text: string | PreparedStatement, values?: unknown[]): Promise<pg.QueryResult<T>>;
}

/**
 * A big statement run often: prepared under its name once per connection, so that the server parses
 * and plans it once rather than at every run. A sessionless pool runs it unnamed (its transactions
 * share server connections, which would not all hold the prepared statement).
 */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

/** How long the database may take before jetpost gives up on it (config.ts: DATABASE_*_TIMEOUT_MS). */
export interface DatabaseTimeouts {
  /** A new connection, or a free one of the pool when all are busy. */
  connectMs: number;
  /** statement_timeout of every statement, unless its transaction is a bulk one. */
  statementMs: number;
  /** statement_timeout in a bulk transaction (withTransaction's `bulk`): big batches, the lease reaper. */
  bulkStatementMs: number;
}

export type Pool = pg.Pool & {
  /** undefined: no statement or read timeout (a pool made without them, e.g. a test's own). */
  readonly timeouts?: DatabaseTimeouts | undefined;
  /** What a sessionless pool runs right after `begin` (its settings, `set local`); undefined otherwise. */
  readonly transactionSettings?: string;
};

/**
 * statement_timeout is enforced by the server, which cannot enforce anything while it is frozen or
 * unreachable: the client gives up this much later on its own, so a live server cancels a slow
 * statement first (its connection stays usable) and only a silent one costs a connection.
 */
const READ_TIMEOUT_GRACE_MS = 500;
/** pg's message when a query's read timeout (query_timeout) fires. */
const READ_TIMEOUT_MESSAGE = 'Query read timeout';

export interface PoolOptions {
  connectionString: string;
  schema: string;
  max: number;
  log: Logger;
  applicationName?: string;
  /** Omitted by tools and tests that wait as long as the database takes. */
  timeouts?: DatabaseTimeouts;
  /**
   * The connections go through a pooler in transaction mode (PgBouncer): each transaction may run
   * on a different server connection, shared with other clients, so nothing can be set for the
   * session (PgBouncer refuses the startup parameters `options` and `statement_timeout` outright).
   * The search_path and statement_timeout then go with every transaction (`set local`, sent with
   * its `begin`), and a statement outside a transaction runs in one of its own.
   */
  sessionless?: boolean;
}

export function createPool({ connectionString, schema, max, log, applicationName = 'jetpost', timeouts, sessionless = false }: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    application_name: applicationName,
    // Fail fast when the database is away or does not answer: a request gets a 503 instead of hanging.
    // For pg-pool this bounds both connecting and waiting for a free client.
    connectionTimeoutMillis: timeouts?.connectMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    // The kernel notices a peer that vanished (host down, network cut) on an idle connection.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...(timeouts === undefined ? {} : { query_timeout: timeouts.statementMs + READ_TIMEOUT_GRACE_MS }),
    // The schema is a checked identifier (config.ts); startup options avoid a round trip per connection.
    ...(sessionless ? {} : { options: `-c search_path=${schema}`, ...(timeouts === undefined ? {} : { statement_timeout: timeouts.statementMs }) }),
  });
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', (error) => log.warn('idle database connection lost', { component: 'db', error: error.message }));
  // A client in use can emit 'error' too (its backend killed by a restart or a failover), sometimes
  // more than once, and pg-pool only listens on idle clients or once per query. The query in
  // progress rejects and its caller handles that; this listener only keeps the event from crashing
  // the process.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  if (!sessionless) {
    return Object.assign(pool, { timeouts });
  }
  // A checked identifier and a whole number (config.ts), as in the startup options they replace.
  const transactionSettings = [
    `set local search_path to ${schema}`,
    ...(timeouts === undefined ? [] : [`set local statement_timeout = ${timeouts.statementMs}`]),
  ].join('; ');
  const sessionlessPool = Object.assign(pool, { timeouts, transactionSettings });
  // Two more round trips than a bare statement (begin, commit): the price of sharing server connections.
  const queryInTransaction = (text: string | PreparedStatement, values?: unknown[]) => withTransaction(sessionlessPool, (tx) => tx.query(text, values));
  return Object.assign(sessionlessPool, { query: queryInTransaction as pg.Pool['query'] });
}

export async function query<T extends Row = Row>(db: Queryable, text: string | PreparedStatement, values: unknown[] = []): Promise<T[]> {
  const result = await db.query<T>(text, values);
  return result.rows;
}

export interface TransactionOptions {
  /**
   * A transaction allowed to run long (DATABASE_BULK_STATEMENT_TIMEOUT_MS): a big POST /queue or
   * /events batch, the lease reaper. Everything else keeps the short timeout, which is what makes a
   * database that stops answering a quick 503.
   */
  bulk?: boolean;
}

/** True when pg gave up waiting for the server's answer (query_timeout): the connection is unusable. */
function isReadTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === READ_TIMEOUT_MESSAGE;
}

export async function withTransaction<T>(pool: Pool, work: (tx: Queryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const client = await pool.connect();
  const bulkMs = options.bulk ? pool.timeouts?.bulkStatementMs : undefined;
  // In a bulk transaction every statement gets the longer read timeout too (pg takes it per query).
  const sessionless = pool.transactionSettings !== undefined;
  const tx: Queryable =
    bulkMs === undefined && !sessionless
      ? client
      : {
          query<R extends Row>(text: string | PreparedStatement, values?: unknown[]) {
            // pg takes query_timeout per query as well as per client; @types/pg does not list it.
            const config: pg.QueryConfig & { query_timeout?: number } = {
              text: typeof text === 'string' ? text : text.text,
              ...(typeof text === 'string' || sessionless ? {} : { name: text.name }),
              ...(values === undefined ? {} : { values }),
              ...(bulkMs === undefined ? {} : { query_timeout: bulkMs + READ_TIMEOUT_GRACE_MS }),
            };
            return client.query<R>(config);
          },
        };
  let broken = false;
  // pg-pool listens for errors only on idle clients: a checked-out client whose backend is killed
  // (a database restart, a failover) emits 'error', which would crash the process unheard. The
  // query in progress rejects on its own; the client is not reused.
  const onError = () => {
    broken = true;
  };
  client.on('error', onError);
  try {
    // With the short timeout even in a bulk transaction: a database that does not answer is found
    // out before any long wait starts.
    // One round trip: the settings go with the begin (a whole number from config.ts, not input).
    const settings = [pool.transactionSettings, bulkMs === undefined ? undefined : `set local statement_timeout = ${Math.trunc(bulkMs)}`];
    await client.query(['begin', ...settings.filter((setting) => setting !== undefined)].join('; '));
    const result = await work(tx);
    await tx.query('commit');
    return result;
  } catch (error) {
    if (isReadTimeout(error)) {
      // The server said nothing: a rollback would wait behind the unanswered statement. Closing the
      // connection ends the transaction (the server rolls it back when it reads the close).
      broken = true;
      throw error;
    }
    try {
      await client.query('rollback');
    } catch {
      // The connection itself is gone: drop the client rather than return it to the pool.
      broken = true;
    }
    throw error;
  } finally {
    if (!broken) {
      client.off('error', onError);
    }
    client.release(broken);
  }
}

/**
 * The database server's clock, read by a statement of its own on a connection taken from `pool`;
 * `sending` is called as that statement goes, after any wait for the connection. Within a
 * transaction, as statement_timestamp() (now() would be the time of its begin).
 */
export async function databaseNow(pool: Pool, sending: () => void = () => {}): Promise<Date> {
  return withTransaction(pool, async (tx) => {
    sending();
    const [row] = await query(tx, 'select statement_timestamp() as now');
    return row!['now'] as Date;
  });
}
