// The test suite's own service helper: a start that fails must take its data directory and database
// with it. Empty /tmp/jetpost-data-* directories were left behind by test runs that way.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { startTestService } from '../support/service.js';

describe('startTestService', () => {
  let tmp: string | undefined;
  const tmpdir = process.env['TMPDIR'];

  afterEach(async () => {
    if (tmpdir === undefined) {
      delete process.env['TMPDIR'];
    } else {
      process.env['TMPDIR'] = tmpdir;
    }
    if (tmp !== undefined) {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  it('when the configuration is refused or the service cannot start, then no data directory is left behind', async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-test-service-'));
    // os.tmpdir() reads TMPDIR at each call: the service's data directory goes here, apart from other runs'.
    process.env['TMPDIR'] = tmp;

    const refusals = [
      await startTestService({ env: { PORT: 'not-a-port' } }).catch((error: unknown) => error),
      // 192.0.2.1 is TEST-NET-1: never this machine's address.
      await startTestService({ env: { HOST: '192.0.2.1' } }).catch((error: unknown) => error),
    ];

    expect(refusals.map((refusal) => (refusal as Error).message)).to.satisfy((messages: string[]) => messages.every((message) => message.length > 0));
    expect(await fs.readdir(tmp)).to.deep.equal([]);
  });
});
