// apps and api_keys.
import { query, type Queryable } from './pool.js';

export interface App {
  id: string;
  name: string;
  createdAt: Date;
}

export interface ApiKeyRow {
  keyId: string;
  appId: string;
  appName: string;
  keyHash: Buffer;
  revokedAt: Date | null;
}

function toApp(row: Record<string, unknown>): App {
  return { id: String(row['id']), name: String(row['name']), createdAt: row['created_at'] as Date };
}

const INSERT_APP = `
  insert into apps (name)
  values ($1)
  returning id, name, created_at`;

export async function insertApp(db: Queryable, name: string): Promise<App> {
  const [row] = await query(db, INSERT_APP, [name]);
  return toApp(row!);
}

const FIND_APP_BY_NAME = `
  select id, name, created_at
  from apps
  where name = $1`;

export async function findAppByName(db: Queryable, name: string): Promise<App | undefined> {
  const [row] = await query(db, FIND_APP_BY_NAME, [name]);
  return row && toApp(row);
}

const INSERT_API_KEY = `
  insert into api_keys (app_id, prefix, key_hash)
  values ($1::bigint, $2, $3)
  returning id`;

export async function insertApiKey(db: Queryable, appId: string, prefix: string, keyHash: Buffer): Promise<string> {
  const [row] = await query(db, INSERT_API_KEY, [appId, prefix, keyHash]);
  return String(row!['id']);
}

const FIND_KEY_BY_PREFIX = `
  select k.id as key_id, k.app_id, a.name as app_name, k.key_hash, k.revoked_at
  from api_keys k
  join apps a on a.id = k.app_id
  where k.prefix = $1`;

export async function findApiKeyByPrefix(db: Queryable, prefix: string): Promise<ApiKeyRow | undefined> {
  const [row] = await query(db, FIND_KEY_BY_PREFIX, [prefix]);
  if (!row) {
    return undefined;
  }
  return {
    keyId: String(row['key_id']),
    appId: String(row['app_id']),
    appName: String(row['app_name']),
    keyHash: row['key_hash'] as Buffer,
    revokedAt: (row['revoked_at'] as Date | null) ?? null,
  };
}
