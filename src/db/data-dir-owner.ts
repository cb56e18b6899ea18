// One data directory, one jetpost. The service that runs the embedded PostgreSQL under a data
// directory owns it through `<dir>/jetpost.pid` (pid, HTTP port, process start time). A second start
// on the same directory is refused while that process lives, so it never borrows, and then stops, a
// database another jetpost uses; a file left by a dead owner (kill -9, a power cut) is taken over.
//
// The file is created atomically (link(2) of a complete temporary file fails if it exists). Taking
// over a stale file is a read, a check and an unlink: two starts racing for the same stale file
// within microseconds could both win, as with PostgreSQL's own postmaster.pid. held() lets the
// loser notice before it stops the database.
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import { StartupError } from '../domain/errors.js';
import { isSameProcessAlive, processStartTime } from './process-liveness.js';

const OWNER_FILE = 'jetpost.pid';

export interface DataDirOwner {
  pid: number;
  /** The owner's HTTP port. */
  port: number;
  /** See processStartTime; absent where /proc is not available. */
  processStart?: string | undefined;
}

export class DataDirInUseError extends StartupError {
  override readonly name = 'DataDirInUseError';
  constructor(
    label: string,
    readonly owner: DataDirOwner,
  ) {
    super(`jetpost is already running on ${label} (pid ${owner.pid}, port ${owner.port}); stop it first, or give this one another DATA_DIR`);
  }
}

export interface DataDirClaim {
  /** Whether the owner file still names this process. */
  held(): Promise<boolean>;
  /** The same, for a process that must exit now. */
  heldSync(): boolean;
  /** Removes the owner file if it is still this process's. */
  release(): Promise<void>;
}

/**
 * Makes this process the owner of `dir`. Throws DataDirInUseError while another live process owns
 * it; `label` is how the operator wrote the directory (e.g. ./data), for that message.
 */
export async function claimDataDir(dir: string, label: string, port: number): Promise<DataDirClaim> {
  const file = path.join(dir, OWNER_FILE);
  const self: DataDirOwner = { pid: process.pid, port, processStart: processStartTime(process.pid) };
  const text = `${JSON.stringify(self)}\n`;
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, text, { mode: 0o600 });
  try {
    // A few rounds: each failed one removed a stale file, or met a live owner and threw.
    for (let round = 0; round < 5; round += 1) {
      try {
        await fs.link(temporary, file);
        const isMine = (content: string | undefined) => content === text;
        return {
          held: async () => isMine(await fs.readFile(file, 'utf8').catch(() => undefined)),
          heldSync: () => isMine(readSync(file)),
          async release() {
            if (isMine(await fs.readFile(file, 'utf8').catch(() => undefined))) {
              await fs.rm(file, { force: true });
            }
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw error;
        }
      }
      const content = await fs.readFile(file, 'utf8').catch(() => undefined);
      const owner = parseOwner(content);
      if (owner && isLiveOwner(owner)) {
        throw new DataDirInUseError(label, owner);
      }
      // Stale: remove it, unless another start replaced it since it was read.
      if ((await fs.readFile(file, 'utf8').catch(() => undefined)) === content) {
        await fs.rm(file, { force: true });
      }
    }
    throw new StartupError(`could not take ownership of ${label}: ${file} keeps reappearing`);
  } finally {
    await fs.rm(temporary, { force: true });
  }
}

/** The live process that owns `dir`, if any (a CLI command asks before it stops the database). */
export async function liveDataDirOwner(dir: string): Promise<DataDirOwner | undefined> {
  const owner = parseOwner(await fs.readFile(path.join(dir, OWNER_FILE), 'utf8').catch(() => undefined));
  return owner && isLiveOwner(owner) ? owner : undefined;
}

/** Another process than this one (a restarted container's jetpost may get its predecessor's pid), still alive. */
function isLiveOwner(owner: DataDirOwner): boolean {
  return owner.pid !== process.pid && isSameProcessAlive(owner.pid, owner.processStart);
}

function parseOwner(content: string | undefined): DataDirOwner | undefined {
  try {
    const value = JSON.parse(content ?? '') as Partial<DataDirOwner>;
    if (Number.isSafeInteger(value.pid) && value.pid! > 0 && Number.isSafeInteger(value.port)) {
      return { pid: value.pid!, port: value.port!, processStart: typeof value.processStart === 'string' ? value.processStart : undefined };
    }
  } catch {
    // Unreadable or not ours: treated as stale.
  }
  return undefined;
}

function readSync(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
