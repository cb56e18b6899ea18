// One data directory, one jetpost: the owner file refuses a second start while its owner lives,
// and is taken over when the owner is dead, or when its pid now belongs to another process.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { borrowDataDir, claimDataDir, DataDirInUseError, liveDataDirOwner } from '../../src/db/data-dir-owner.js';
import { processStartTime } from '../../src/db/process-liveness.js';

/** A live process other than this one, the way another jetpost would be. */
async function otherProcess(): Promise<{ pid: number; end: () => Promise<void> }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    pid: child.pid!,
    end: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

describe('data directory owner (jetpost.pid)', () => {
  let dir: string;
  const ownerFile = () => path.join(dir, 'jetpost.pid');
  const writeOwner = (owner: object) => fs.writeFile(ownerFile(), JSON.stringify(owner));

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-owner-'));
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('when the directory has no owner, then the claim writes this pid and port, and release removes the file', async () => {
    const claim = await claimDataDir(dir, './data', 3000);

    const written = JSON.parse(await fs.readFile(ownerFile(), 'utf8'));
    expect(written).to.include({ pid: process.pid, port: 3000 });
    expect(await claim.held()).to.equal(true);
    expect(claim.heldSync()).to.equal(true);
    expect(await fs.readdir(dir), 'temporary files left').to.deep.equal(['jetpost.pid']);
    await claim.release();
    expect(await fs.readdir(dir)).to.deep.equal([]);
  });

  it('when the service listens on another port than it claimed with (PORT=0), then recordPort writes it, and the file is still this process’s', async () => {
    const claim = await claimDataDir(dir, './data', 0);

    await claim.recordPort(41065);

    expect(JSON.parse(await fs.readFile(ownerFile(), 'utf8'))).to.include({ pid: process.pid, port: 41065 });
    expect(await claim.held()).to.equal(true);
    expect(claim.heldSync()).to.equal(true);
    expect(await fs.readdir(dir), 'temporary files left').to.deep.equal(['jetpost.pid']);
    await claim.release();
    expect(await fs.readdir(dir)).to.deep.equal([]);
  });

  it('when a live process owns the directory, then the claim is refused with its pid and port, and the file is left alone', async () => {
    const other = await otherProcess();
    try {
      await writeOwner({ pid: other.pid, port: 3100, processStart: processStartTime(other.pid) });
      const before = await fs.readFile(ownerFile(), 'utf8');

      const refusal = await claimDataDir(dir, './data', 3000).then(
        () => undefined,
        (error: unknown) => error,
      );

      expect(refusal).to.be.instanceOf(DataDirInUseError);
      expect((refusal as Error).message).to.contain(`jetpost is already running on ./data (pid ${other.pid}, port 3100)`);
      expect(await fs.readFile(ownerFile(), 'utf8')).to.equal(before);
      expect(await liveDataDirOwner(dir)).to.deep.include({ pid: other.pid, port: 3100 });
    } finally {
      await other.end();
    }
  });

  it('when the owner is dead (kill -9), then the claim takes the directory over', async () => {
    const other = await otherProcess();
    await writeOwner({ pid: other.pid, port: 3100, processStart: processStartTime(other.pid) });
    await other.end();

    expect(await liveDataDirOwner(dir)).to.equal(undefined);
    const claim = await claimDataDir(dir, './data', 3000);

    expect(JSON.parse(await fs.readFile(ownerFile(), 'utf8'))).to.include({ pid: process.pid, port: 3000 });
    expect(await claim.held()).to.equal(true);
  });

  it('when the owner file names a pid now used by another process, or this one, or holds garbage, then it is stale', async () => {
    const other = await otherProcess();
    try {
      for (const stale of [
        JSON.stringify({ pid: other.pid, port: 3100, processStart: '1' }),
        JSON.stringify({ pid: process.pid, port: 3100 }),
        'not json\u0000',
      ]) {
        await fs.writeFile(ownerFile(), stale);
        const claim = await claimDataDir(dir, './data', 3000);
        expect(await claim.held(), stale).to.equal(true);
        await claim.release();
      }
    } finally {
      await other.end();
    }
  });

  it('when another process has taken the directory over, then held() says so and release() leaves its file', async () => {
    const claim = await claimDataDir(dir, './data', 3000);
    const other = await otherProcess();
    try {
      await writeOwner({ pid: other.pid, port: 3100, processStart: processStartTime(other.pid) });

      expect(await claim.held()).to.equal(false);
      expect(claim.heldSync()).to.equal(false);
      await claim.release();
      expect(JSON.parse(await fs.readFile(ownerFile(), 'utf8'))).to.include({ pid: other.pid });
    } finally {
      await other.end();
    }
  });

  it('when the last command borrowing the embedded database ends, then pg.borrowers/ goes, with the file of a command killed before it; one still borrowing keeps it', async () => {
    const borrowers = path.join(dir, 'pg.borrowers');
    const killed = await otherProcess();
    const killedRecord = JSON.stringify({ pid: killed.pid, processStart: processStartTime(killed.pid) });
    await killed.end();
    const other = await otherProcess();
    try {
      const first = await borrowDataDir(dir);
      await fs.writeFile(path.join(borrowers, `${killed.pid}.pid`), killedRecord);
      await fs.writeFile(path.join(borrowers, `${other.pid}.pid`), JSON.stringify({ pid: other.pid, processStart: processStartTime(other.pid) }));
      await first.release();
      expect(await fs.readdir(borrowers)).to.deep.equal([`${other.pid}.pid`]);

      const last = await borrowDataDir(dir);
      await other.end();
      expect(await last.othersBorrowing()).to.equal(false);
      await last.release();
      expect(await fs.readdir(dir)).to.deep.equal([]);
    } finally {
      await other.end();
    }
  });
});
