// A random secret kept in a file (mode 0600) so that it is the same on every start: the embedded
// PostgreSQL's password and, in dev mode, the admin key.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export async function readOrCreateSecretFile(file: string, bytes = 24): Promise<string> {
  try {
    const existing = (await fs.readFile(file, 'utf8')).trim();
    if (existing !== '') {
      return existing;
    }
  } catch {
    // Not there yet: create it below.
  }
  const secret = randomBytes(bytes).toString('base64url');
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
