// Dev mode only: a development app whose API key is kept in a file under the data directory, so
// that a newcomer's curl works on every start, not only the first.
import path from 'node:path';

import { findAppByName, insertApiKey, insertApp } from '../db/apps-repo.js';
import { type Pool, withTransaction } from '../db/pool.js';
import { readSecretFile, writeSecretFile } from '../secret-file.js';
import { apiKeyPrefix, generateApiKey } from './api-keys.js';
import { authenticateApiKey } from './apps.js';

export const DEV_APP_NAME = 'dev';

export async function ensureDevApiKey(pool: Pool, dataDir: string): Promise<{ key: string; file: string; created: boolean }> {
  const file = path.resolve(dataDir, 'dev-api-key');
  const existing = await readSecretFile(file);
  if (apiKeyPrefix(existing) !== undefined && (await authenticateApiKey(pool, existing))) {
    return { key: existing, file, created: false };
  }
  const key = await withTransaction(pool, async (tx) => {
    const app = (await findAppByName(tx, DEV_APP_NAME)) ?? (await insertApp(tx, DEV_APP_NAME));
    const generated = generateApiKey();
    await insertApiKey(tx, app.id, generated.prefix, generated.hash);
    // Before the commit: a file that cannot be written leaves no key behind that nobody holds.
    await writeSecretFile(file, generated.key);
    return generated.key;
  });
  return { key, file, created: true };
}
