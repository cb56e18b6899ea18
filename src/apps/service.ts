// Apps and their keys: create an app with its first key, and authenticate a request's key.
import { type App,findApiKeyByPrefix, findAppByName, insertApiKey, insertApp } from '../db/apps-repo.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { ConflictError } from '../errors.js';
import { apiKeyMatches, apiKeyPrefix, generateApiKey } from './api-keys.js';

export interface AppIdentity {
  id: string;
  name: string;
}

/** Creates an app and its first API key; the key is returned once and never stored. */
export async function createAppWithKey(pool: Pool, name: string): Promise<{ app: App; key: string }> {
  return withTransaction(pool, async (tx) => {
    if (await findAppByName(tx, name)) {
      throw new ConflictError('app-exists', `an app named ${name} already exists`);
    }
    const app = await insertApp(tx, name);
    const generated = generateApiKey();
    await insertApiKey(tx, app.id, generated.prefix, generated.hash);
    return { app, key: generated.key };
  });
}

/** The app a key belongs to, or undefined for an unknown, malformed or revoked key. */
export async function authenticateApiKey(db: Queryable, key: string): Promise<AppIdentity | undefined> {
  const prefix = apiKeyPrefix(key);
  if (prefix === undefined) {
    return undefined;
  }
  const row = await findApiKeyByPrefix(db, prefix);
  if (!row || row.revokedAt !== null || !apiKeyMatches(key, row.keyHash)) {
    return undefined;
  }
  return { id: row.appId, name: row.appName };
}
