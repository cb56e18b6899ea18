import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { StartupError } from '../../src/domain/errors.js';
import { readOrCreateSecretFile } from '../../src/secret-file.js';
import { ensureDevApiKey } from '../../src/services/dev-key.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('secret files under DATA_DIR', () => {
  let dir: string;
  let db: TestDatabase | undefined;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-secrets-'));
  });

  afterEach(async () => {
    await db?.drop();
    db = undefined;
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('when the path is a directory, then the start stops with one line naming the path, not a stack trace', async () => {
    const file = path.join(dir, 'dev-events-password');
    await fs.mkdir(file);

    const error = await readOrCreateSecretFile(file).catch((caught: unknown) => caught);

    expect(error).to.be.instanceOf(StartupError);
    expect((error as Error).message).to.equal(`jetpost cannot use ${file} (EISDIR): it must be a file this user can read and write, or not exist yet`);
  });

  it('when the file exists but is empty and readable by others (touched, or cut short by a full disk), then the secret written into it is private to this user', async () => {
    const file = path.join(dir, 'dev-admin-key');
    await fs.writeFile(file, '', { mode: 0o644 });
    await fs.chmod(file, 0o644);

    const secret = await readOrCreateSecretFile(file);

    expect((await fs.readFile(file, 'utf8')).trim()).to.equal(secret);
    expect((await fs.stat(file)).mode & 0o777, 'mode of the file holding the secret').to.equal(0o600);
  });

  it('when the dev key file cannot be written, then the start stops naming it and the dev app gets no key nobody holds', async () => {
    db = await createTestDatabase();
    const file = path.join(dir, 'dev-api-key');
    await fs.mkdir(file);

    const error = await ensureDevApiKey(db.pool, dir).catch((caught: unknown) => caught);

    expect(error).to.be.instanceOf(StartupError);
    expect((error as Error).message).to.include(file);
    const { rows } = await db.pool.query('select count(*)::int as keys from api_keys');
    expect(rows[0].keys).to.equal(0);
  });
});
