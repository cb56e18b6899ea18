// The connection pool and the two helpers every repo uses. Only db/ imports pg.
import pg from 'pg';

import type { Logger } from '../log.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** The pool or a transaction's client: repos take one first so the caller owns the transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;
export type Row = Record<string, unknown>;

export interface PoolOptions {
  connectionString: string;
  schema: string;
  max: number;
  log: Logger;
  applicationName?: string;
}

export function createPool({ connectionString, schema, max, log, applicationName = 'jetpost' }: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    application_name: applicationName,
    // Fail fast when the database is away: a request gets a 503 instead of hanging.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // The schema is a checked identifier (config.ts); startup options avoid a round trip per connection.
    options: `-c search_path=${schema}`,
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
  return pool;
}

export async function query<T extends Row = Row>(db: Queryable, text: string, values: unknown[] = []): Promise<T[]> {
  const result = await db.query<T>(text, values);
  return result.rows;
}

export async function withTransaction<T>(pool: Pool, work: (tx: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  // pg-pool listens for errors only on idle clients: a checked-out client whose backend is killed
  // (a database restart, a failover) emits 'error', which would crash the process unheard. The
  // query in progress rejects on its own; the client is not reused.
  const onError = () => {
    broken = true;
  };
  client.on('error', onError);
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
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
