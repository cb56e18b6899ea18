// A random secret kept in a file (mode 0600) so that it is the same on every start: the embedded
// PostgreSQL's password and, in dev mode, the admin key.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { StartupError } from './domain/errors.js';

export async function readOrCreateSecretFile(file: string, bytes = 24): Promise<string> {
  const existing = await readSecretFile(file);
  if (existing !== '') {
    return existing;
  }
  const secret = randomBytes(bytes).toString('base64url');
  await writeSecretFile(file, secret);
  return secret;
}

/**
 * The file's secret, trimmed; '' when there is no such file. Any other failure (a directory, a file
 * this user may not read) stops the start: taking it for a missing file would write a new secret
 * over one that something else still uses.
 */
export async function readSecretFile(file: string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return '';
    }
    throw unusableSecretFile(file, error);
  }
}

/** Writes `secret` to `file` (mode 0600), creating its directory. */
export async function writeSecretFile(file: string, secret: string): Promise<void> {
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const handle = await fs.open(file, 'w', 0o600);
    try {
      // The mode of open() applies to a new file only: an existing one (an empty file left by
      // `touch`, or by a full disk) would keep its mode, perhaps readable by everyone.
      await handle.chmod(0o600);
      await handle.writeFile(`${secret}\n`);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw unusableSecretFile(file, error);
  }
}

function unusableSecretFile(file: string, error: unknown): StartupError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new StartupError(`jetpost cannot use ${path.resolve(file)} (${reason}): it must be a file this user can read and write, or not exist yet`, {
    cause: error,
  });
}
