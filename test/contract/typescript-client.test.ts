// The typed client in clients/typescript is generated from openapi.yaml by `npm run client:generate`:
// running that generation again must give the committed file, byte for byte, so that the client
// never lags behind the spec.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCHEMA_FILE = 'clients/typescript/schema.d.ts';
const GENERATE = `openapi-typescript openapi.yaml --output ${SCHEMA_FILE}`;

describe('clients/typescript', function () {
  this.timeout(90_000);

  it(`is what \`npm run client:generate\` (${GENERATE}) makes of openapi.yaml now`, async () => {
    const scripts = (JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts['client:generate']).to.equal(GENERATE);

    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-client-'));
    try {
      const fresh = path.join(dir, 'schema.d.ts');
      const [bin, ...args] = GENERATE.replace(SCHEMA_FILE, fresh).split(' ');
      await new Promise<void>((resolve, reject) => {
        execFile(process.execPath, [path.join(ROOT, 'node_modules', '.bin', bin!), ...args], { cwd: ROOT, timeout: 60_000 }, (error, _stdout, stderr) =>
          error ? reject(new Error(`${GENERATE}: ${stderr}`, { cause: error })) : resolve(),
        );
      });
      const committed = await fs.readFile(path.join(ROOT, SCHEMA_FILE), 'utf8');
      expect(committed === (await fs.readFile(fresh, 'utf8')), `${SCHEMA_FILE} is out of date: run npm run client:generate and commit it`).to.equal(true);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
