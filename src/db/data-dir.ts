// DATA_DIR is checked, and created one level at a time, before anything is written under it. Node's
// recursive mkdir retries forever when mkdir(2) answers ENOENT under a parent that exists, as /proc
// does; a file, a directory this user may not write to or a pseudo filesystem would otherwise fail
// later, as a stack trace, perhaps once PostgreSQL is running.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import { StartupError } from '../domain/errors.js';
import { unicodeEscape } from '../domain/unicode-escape.js';

/** Kernel filesystems that hold no files of ours, by statfs(2) magic number (linux/magic.h). */
const PSEUDO_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x63677270, 'cgroup2'],
  [0x27e0eb, 'cgroup'],
  [0x1cd1, 'devpts'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
]);

/**
 * PostgreSQL keeps paths in buffers of MAXPGPATH (1024 bytes): with a DATA_DIR of 1010 bytes initdb
 * aborted ("stack smashing detected"), with 1000 it ran.
 */
const MAX_DATA_DIR_BYTES = 1000;

/**
 * Makes sure `dir` (DATA_DIR, as the operator wrote it) is a directory this process may write to on
 * a real filesystem, creating what is missing of it. Throws a StartupError naming DATA_DIR otherwise.
 */
export async function prepareDataDir(dir: string): Promise<void> {
  // Control characters escaped: a line break would split the one line of the refusal.
  const shown = dir.replace(/\p{Cc}/gu, unicodeEscape);
  const refuse = (problem: string, cause?: unknown) =>
    new StartupError(`DATA_DIR (${shown}) ${problem}. Set DATA_DIR to a directory on a disk that jetpost may write to`, { cause });
  if (dir.includes('\0')) {
    throw refuse('contains a NUL byte');
  }
  // initdb runs the server through a shell and refuses such a path, after the start has begun.
  if (/[\n\r]/.test(dir)) {
    throw refuse('contains a line break, which PostgreSQL refuses in a path');
  }
  const resolved = path.resolve(dir);
  if (Buffer.byteLength(resolved) > MAX_DATA_DIR_BYTES) {
    throw refuse(`is ${Buffer.byteLength(resolved)} bytes long once resolved; PostgreSQL takes at most ${MAX_DATA_DIR_BYTES} here`);
  }

  // The nearest ancestor that exists; bounded by the depth of the path.
  const missing: string[] = [];
  let existing = resolved;
  for (;;) {
    const found = await fs.stat(existing).then(
      (stat) => stat,
      (error: NodeJS.ErrnoException) => error,
    );
    if (!(found instanceof Error)) {
      if (!found.isDirectory()) {
        throw refuse(`is not usable: ${existing} is not a directory`);
      }
      break;
    }
    // ENOTDIR: a file on the way, found by going further up.
    if ((found.code !== 'ENOENT' && found.code !== 'ENOTDIR') || path.dirname(existing) === existing) {
      throw refuse(`cannot be reached: ${existing}: ${found.code ?? found.message}`, found);
    }
    // A symbolic link whose target is missing reads as missing too, but mkdir cannot make it: the
    // start went on and failed later, as a stack trace.
    const target = await fs.readlink(existing).catch(() => undefined);
    if (target !== undefined) {
      throw refuse(`is not usable: ${existing} is a symbolic link to ${path.resolve(path.dirname(existing), target)}, which does not exist`);
    }
    missing.unshift(existing);
    existing = path.dirname(existing);
  }

  const filesystem = PSEUDO_FILESYSTEMS.get(Number((await fs.statfs(existing)).type));
  if (filesystem !== undefined) {
    throw refuse(`is not usable: ${existing} is on the ${filesystem} filesystem, which holds no files`);
  }
  // Root passes this check on any mode, but not on a read-only filesystem (EROFS).
  const mode = missing.length === 0 ? constants.R_OK | constants.W_OK | constants.X_OK : constants.W_OK | constants.X_OK;
  await fs.access(existing, mode).catch((error: NodeJS.ErrnoException) => {
    const why = error.code === 'EROFS' ? 'is on a read-only filesystem' : `is not writable by this user (uid ${process.getuid?.() ?? '?'})`;
    throw refuse(`is not usable: ${existing} ${why}: ${error.code}`, error);
  });
  for (const level of missing) {
    await fs.mkdir(level, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
      // Another start may have created it meanwhile.
      if (error.code !== 'EEXIST') {
        throw refuse(`cannot be created: mkdir ${level}: ${error.code}`, error);
      }
    });
  }
}
