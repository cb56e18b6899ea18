// The service's Node flags are defined once, in `npm start`'s script; the other ways to run the
// service carry the same (docs/deployment.md, "Memory").
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';

import { serveNodeFlags } from '../../scripts/serve-flags.js';

const ROOT = path.join(import.meta.dirname, '..', '..');

describe('the service’s Node flags', () => {
  it('when read from npm start, then they are the heap flags, and start:prod and bin/jetpost serve with the same', async () => {
    const flags = serveNodeFlags();
    const { scripts } = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const bin = await fs.readFile(path.join(ROOT, 'bin', 'jetpost'), 'utf8');

    expect(flags).to.include('--max-semi-space-size=8').and.include('--heap-growing-percent=50');
    expect(scripts['start:prod']).to.equal(`exec node --enable-source-maps ${flags.join(' ')} dist/src/bin/jetpost.js`);
    expect(bin).to.contain(`\nSERVE_FLAGS="${flags.join(' ')}"\n`);
  });

  it('when npm start’s script does not exec node on the bundle, then reading its flags fails, naming the script', () => {
    expect(() => serveNodeFlags('tsx src/bin/jetpost.ts')).to.throw(
      'npm start\'s script does not end with "exec node [flags] dist/server/jetpost.mjs": tsx src/bin/jetpost.ts',
    );
    expect(serveNodeFlags('node --import tsx scripts/build-server.ts && exec node dist/server/jetpost.mjs')).to.deep.equal([]);
  });
});
