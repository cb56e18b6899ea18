// The identity sequences of jetpost's tables, kept past the rows. A database moved by logical
// replication gets the rows but not the sequences (PostgreSQL replicates no sequence data): on the
// new cluster each is back at its start, so every insert would take an id the moved rows hold (a
// duplicate key, a 500 on POST /queue) or, where retention deleted the oldest rows, reuse an id
// silently: a webhook-id or change id that receivers deduplicate on, dropping the new delivery.
import pg from 'pg';

import type { Queryable } from './pool.js';

// The schema's identity columns whose sequences this user may read (one it may not read has a null
// last_value and might be set back: it is left out).
const IDENTITY_COLUMNS = `
  select c.relname as table_name, a.attname as column_name, s.sequence_name
  from pg_attribute a
  join pg_class c on c.oid = a.attrelid
  join pg_namespace n on n.oid = c.relnamespace
  cross join lateral (select pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) as sequence_name) as s
  where n.nspname = $1
    and c.relkind = 'r'
    and a.attidentity <> ''
    and not a.attisdropped
    and s.sequence_name is not null
    and has_sequence_privilege(s.sequence_name, 'usage, select')
  order by c.relname`;

// Where a sequence stands now; null for one never read.
const SEQUENCE_POSITION = `
  select coalesce(last_value, 0)::text as last_value
  from pg_sequences
  where format('%I.%I', schemaname, sequencename) = $1`;

const ADVANCE = 'select setval($1, $2::bigint)';

/**
 * How long reading a table's largest id waits for a lock: the migrations' connection has no statement
 * timeout, and a session holding a table exclusively (a VACUUM FULL, a `lock table`) must not hold
 * the start for ever; the start's own statements then answer for the database, within their timeouts.
 */
const LOCK_TIMEOUT_MS = 2_000;

export interface IdentitySequences {
  /** Tables (schema-qualified) whose sequence was behind their rows and now follows them. */
  advanced: string[];
  /** Tables that another session held locked for longer than LOCK_TIMEOUT_MS: not checked. */
  locked: string[];
}

/** Moves every identity sequence of `schema` that is behind its table's rows past them. */
export async function advanceIdentitySequences(db: Queryable, schema: string): Promise<IdentitySequences> {
  const result: IdentitySequences = { advanced: [], locked: [] };
  const { rows } = await db.query(IDENTITY_COLUMNS, [schema]);
  await db.query(`set lock_timeout = ${LOCK_TIMEOUT_MS}`);
  try {
    for (const row of rows) {
      const name = `${schema}.${String(row['table_name'])}`;
      const table = `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(String(row['table_name']))}`;
      // Names from the catalogue, quoted: no value of the statement comes from outside. Through the primary key.
      const top = await db
        .query(`select coalesce(max(${pg.escapeIdentifier(String(row['column_name']))}), 0)::text as id from ${table}`)
        .catch((error: unknown) => {
          if ((error as { code?: unknown }).code === LOCK_NOT_AVAILABLE) {
            return undefined;
          }
          throw error;
        });
      if (top === undefined) {
        result.locked.push(name);
        continue;
      }
      const maxId = BigInt(top.rows[0]?.['id'] as string);
      // Read after the rows, not before: replicas already running keep taking ids meanwhile, and a
      // position read first would look behind the rows they add and be set back over ids they took.
      // Read after, it is at or past every id the rows hold unless the sequence really is behind.
      const position = await db.query(SEQUENCE_POSITION, [row['sequence_name']]);
      if (maxId > BigInt((position.rows[0]?.['last_value'] as string | undefined) ?? '0')) {
        await db.query(ADVANCE, [row['sequence_name'], maxId.toString()]);
        result.advanced.push(name);
      }
    }
  } finally {
    await db.query('reset lock_timeout');
  }
  return result;
}

/** SQLSTATE 55P03: lock_timeout ran out. */
const LOCK_NOT_AVAILABLE = '55P03';
