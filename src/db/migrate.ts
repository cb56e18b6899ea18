// Runs the migrations in sql/ with postgres-migrations, inside jetpost's own schema.
import fs from 'node:fs/promises';

import pg from 'pg';
import { migrate } from 'postgres-migrations';

import { StartupError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { MIGRATIONS_DIR } from '../paths.js';

// postgres-migrations 5.x checks for its bookkeeping table by name in *any* schema, so a database that
// already holds e.g. graphile_worker.migrations makes it skip the creation and then fail to select from
// "migrations". Creating our own copy first (the same definition as its 0_create-migrations-table)
// makes that check true for the table it will actually use.
const PREPARE_SCHEMA = (schema: string) => `
  create schema if not exists ${schema};
  create table if not exists ${schema}.migrations (
    id integer primary key,
    name varchar(100) unique not null,
    hash varchar(40) not null,
    executed_at timestamp default current_timestamp
  );`;

export interface MigrateOptions {
  connectionString: string;
  /** A checked SQL identifier (config.ts). */
  schema: string;
  log: Logger;
}

export async function runMigrations({ connectionString, schema, log }: MigrateOptions): Promise<string[]> {
  const client = new pg.Client({ connectionString, options: `-c search_path=${schema}` });
  client.on('error', (error) => log.warn('migration connection error', { component: 'migrate', error: error.message }));
  await client.connect();
  try {
    await client.query(PREPARE_SCHEMA(schema));
    // A pooler that drops the search_path startup option (PgBouncer's ignore_startup_parameters)
    // would make the migrations create jetpost's tables in another schema.
    const current = (await client.query<{ schema: string | null }>('select current_schema() as schema')).rows[0]?.schema;
    if (current !== schema) {
      throw new StartupError(
        `the migrations' connection works in schema ${current ?? '(none)'} instead of ${schema}: the database or a pooler in front of it dropped the search_path option. Point DATABASE_DIRECT_URL (or DATABASE_URL) at the database itself`,
      );
    }
    const applied = await migrate({ client }, MIGRATIONS_DIR, {
      logger: (message) => log.debug(message, { component: 'migrate' }),
    });
    const names = applied.map((migration) => migration.name);
    if (names.length > 0) {
      log.info('applied migrations', { component: 'migrate', schema, migrations: names });
    }
    return names;
  } finally {
    await client.end();
  }
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
