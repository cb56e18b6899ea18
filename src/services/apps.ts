// Apps and their keys: create an app with its first key, rotate and revoke keys, and authenticate a request's key.
import { findApiKeyByPrefix, findAppByName, insertApiKey, insertApp, lockApp, revokeApiKeys } from '../db/apps-repo.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { type App, APP_NAME_PATTERN, APP_NAME_RULE, type AppIdentity } from '../domain/app.js';
import { ConflictError, isUniqueViolation, NotFoundError, ValidationError } from '../domain/errors.js';
import { apiKeyMatches, apiKeyPrefix, generateApiKey } from './api-keys.js';

/** Creates an app and its first API key; the key is returned once and never stored. */
export async function createAppWithKey(pool: Pool, name: string): Promise<{ app: App; key: string }> {
  if (!APP_NAME_PATTERN.test(name)) {
    throw new ValidationError(`${JSON.stringify(name)} is not a valid app name`, [{ path: 'name', message: APP_NAME_RULE }]);
  }
  const exists = (existing: string) =>
    new ConflictError('app-exists', `an app named ${existing} already exists${existing === name ? '' : ' (app names are unique whatever their case)'}`);
  try {
    return await withTransaction(pool, async (tx) => {
      const existing = await findAppByName(tx, name);
      if (existing) {
        throw exists(existing.name);
      }
      const app = await insertApp(tx, name);
      const generated = generateApiKey();
      await insertApiKey(tx, app.id, generated.prefix, generated.hash);
      return { app, key: generated.key };
    });
  } catch (error) {
    // Two creations of one name at once: the loser meets a unique constraint, of the exact name or of
    // the name whatever its case (sql/35_…).
    if (isUniqueViolation(error, 'apps_name_key') || isUniqueViolation(error, 'apps_name_lower_key')) {
      throw exists(name);
    }
    throw error;
  }
}

/** The app of this name, or a 404. */
export async function findApp(db: Queryable, name: string): Promise<App> {
  const app = await findAppByName(db, name);
  if (!app) {
    throw new NotFoundError(`no app named ${name}`);
  }
  return app;
}

/**
 * Rotation: a new key for the app, shown once. The old keys keep working until revoked, so callers
 * can switch without downtime; `revokeOthers` revokes them at once instead.
 */
export async function addApiKey(pool: Pool, appName: string, revokeOthers: boolean): Promise<{ app: App; key: string; prefix: string; revoked: string[] }> {
  return withTransaction(pool, async (tx) => {
    const app = await findApp(tx, appName);
    await lockApp(tx, app.id);
    const generated = generateApiKey();
    await insertApiKey(tx, app.id, generated.prefix, generated.hash);
    const revoked = revokeOthers ? await revokeApiKeys(tx, app.id, null, generated.prefix) : [];
    return { app, key: generated.key, prefix: generated.prefix, revoked };
  });
}

/** Revokes one key, by its prefix: refused at once by every replica (docs/security.md: the key cache). */
export async function revokeApiKey(pool: Pool, appName: string, prefix: string): Promise<void> {
  const app = await findApp(pool, appName);
  const revoked = await revokeApiKeys(pool, app.id, prefix);
  if (revoked.length === 0) {
    throw new NotFoundError(`app ${appName} has no active key with prefix ${prefix}`);
  }
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
  return { id: row.appId, name: row.appName, keyId: row.keyId };
}
