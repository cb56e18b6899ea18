// DATA_DIR is checked and created before anything is written under it: a path that cannot hold
// jetpost's data is one StartupError naming DATA_DIR, never a hang in Node's recursive mkdir (/proc)
// or a stack trace later.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { prepareDataDir } from '../../src/db/data-dir.js';
import { StartupError } from '../../src/domain/errors.js';

async function refusal(dir: string): Promise<string> {
  const error = await prepareDataDir(dir).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error, `prepareDataDir(${dir.slice(0, 60)})`).to.be.instanceOf(StartupError);
  const message = (error as Error).message;
  expect(message).to.match(/^DATA_DIR \(/);
  expect(message).to.match(/Set DATA_DIR to a directory on a disk that jetpost may write to$/);
  expect(message).not.to.include('\n');
  return message;
}

describe('DATA_DIR preparation', () => {
  let tmp: string;

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-data-dir-'));
  });

  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('when DATA_DIR holds a line break, then the start refuses in one line before initdb does, with a stack trace', async () => {
    for (const name of ['data\nnext', 'data\rnext']) {
      const message = await refusal(path.join(tmp, name));
      expect(message).to.include('contains a line break, which PostgreSQL refuses in a path');
      expect(message).to.include(`DATA_DIR (${tmp}/data\\u000${name.includes('\n') ? 'a' : 'd'}next)`);
    }
    expect(await fs.readdir(tmp)).to.deep.equal([]);
  });

  it('when DATA_DIR, or a directory on the way to it, is a symbolic link that leads nowhere, then the start refuses in one line naming it, not with a stack trace', async () => {
    const link = path.join(tmp, 'data');
    await fs.symlink(path.join(tmp, 'gone', 'data'), link);

    expect(await refusal(link)).to.include(`is not usable: ${link} is a symbolic link to ${path.join(tmp, 'gone', 'data')}, which does not exist`);
    expect(await refusal(path.join(link, 'deeper'))).to.include(`${link} is a symbolic link to`);
    expect(await fs.readdir(tmp)).to.deep.equal(['data']);
  });

  it('when DATA_DIR does not exist, then it is created, each missing level private to this user', async () => {
    const dir = path.join(tmp, 'a', 'b', 'data');

    await prepareDataDir(dir);

    for (const level of [path.join(tmp, 'a'), path.join(tmp, 'a', 'b'), dir]) {
      const stat = await fs.stat(level);
      expect(stat.isDirectory(), level).to.equal(true);
      expect(stat.mode & 0o777, level).to.equal(0o700);
    }
    // Again, on what now exists.
    await prepareDataDir(dir);
  });

  it('when DATA_DIR is under /proc, then it is refused naming the proc filesystem (Node’s recursive mkdir loops forever there)', async () => {
    expect(await refusal('/proc/jetpost-data-dir-test/data')).to.equal(
      'DATA_DIR (/proc/jetpost-data-dir-test/data) is not usable: /proc is on the proc filesystem, which holds no files. Set DATA_DIR to a directory on a disk that jetpost may write to',
    );
    expect(await refusal('/sys/jetpost')).to.include('on the sysfs filesystem');
  });

  it('when DATA_DIR is a file, or lies under one, then it is refused naming the file', async () => {
    const file = path.join(tmp, 'file');
    await fs.writeFile(file, 'x');

    expect(await refusal(file)).to.include(`is not usable: ${file} is not a directory`);
    expect(await refusal(path.join(file, 'data'))).to.include(`is not usable: ${file} is not a directory`);
  });

  it('when DATA_DIR contains a NUL byte or is too long for PostgreSQL, then it is refused', async () => {
    expect(await refusal(`${tmp}/a\0b`)).to.include('contains a NUL byte');
    expect(await refusal(path.join(tmp, 'x'.repeat(200), 'y'.repeat(200), 'z'.repeat(200), 'w'.repeat(200), 'v'.repeat(200)))).to.include(
      'PostgreSQL takes at most 1000 here',
    );
    expect(await fs.readdir(tmp), 'nothing created').to.deep.equal([]);
  });

  it('when a path component is longer than the filesystem allows, then it is refused with the error code', async () => {
    expect(await refusal(path.join(tmp, 'n'.repeat(300)))).to.include('ENAMETOOLONG');
  });

  it('when DATA_DIR is on a read-only filesystem, then the refusal says so (not that this user may not write)', async function () {
    const mountPoint = path.join(tmp, 'ro');
    await fs.mkdir(mountPoint);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mountPoint], { stdio: 'ignore' });
    } catch {
      console.log('      (skipped: mounting a read-only tmpfs needs root with the right to mount)');
      this.skip();
    }
    try {
      for (const dir of [mountPoint, path.join(mountPoint, 'data')]) {
        expect(await refusal(dir)).to.include(`is not usable: ${mountPoint} is on a read-only filesystem: EROFS`);
      }
    } finally {
      execFileSync('umount', [mountPoint]);
    }
  });
});
