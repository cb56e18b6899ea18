// One data directory, one jetpost. The service that runs the embedded PostgreSQL under a data
// directory owns it through `<dir>/jetpost.pid` (pid, HTTP port, process start time; pid-file.ts). A
// second start on the same directory is refused while that process lives, so it never borrows, and
// then stops, a database another jetpost uses; a file left by a dead owner (kill -9, a power cut) is
// taken over.
import fs from 'node:fs/promises';
import path from 'node:path';

import { StartupError } from '../domain/errors.js';
import { claimPidFile, livePidFileHolder, type PidFileClaim, type PidRecord } from './pid-file.js';
import { processStartTime } from './process-liveness.js';

const OWNER_FILE = 'jetpost.pid';

export interface DataDirOwner extends PidRecord {
  /** The owner's HTTP port. */
  port: number;
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

export interface DataDirClaim extends Omit<PidFileClaim, 'replace'> {
  /** Records the port the service really listens on (PORT=0: any free one), once it knows it. */
  recordPort(port: number): Promise<void>;
}

/**
 * Makes this process the owner of `dir`. Throws DataDirInUseError while another live process owns
 * it; `label` is how the operator wrote the directory (e.g. ./data), for that message.
 */
export async function claimDataDir(dir: string, label: string, port: number): Promise<DataDirClaim> {
  const file = path.join(dir, OWNER_FILE);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const claimed = await claimPidFile(file, { pid: process.pid, port, processStart: processStartTime(process.pid) }, parseOwner);
  if (claimed === undefined) {
    throw new StartupError(`could not take ownership of ${label}: ${file} keeps reappearing`);
  }
  if ('holder' in claimed) {
    throw new DataDirInUseError(label, claimed.holder);
  }
  const { claim } = claimed;
  return {
    held: () => claim.held(),
    heldSync: () => claim.heldSync(),
    release: () => claim.release(),
    recordPort: (actual) => claim.replace({ pid: process.pid, port: actual, processStart: processStartTime(process.pid) }),
  };
}

/** The live process that owns `dir`, if any (a CLI command asks before it stops the database). */
export function liveDataDirOwner(dir: string): Promise<DataDirOwner | undefined> {
  return livePidFileHolder(path.join(dir, OWNER_FILE), parseOwner);
}

function parseOwner(value: Partial<DataDirOwner>): DataDirOwner | undefined {
  return Number.isSafeInteger(value.port)
    ? { pid: value.pid!, port: value.port!, processStart: typeof value.processStart === 'string' ? value.processStart : undefined }
    : undefined;
}

/** Where each CLI command borrowing a directory's embedded database names itself (one file each). */
const BORROWERS_DIR = 'pg.borrowers';

export interface DataDirLoan {
  /** Whether another live process borrows the directory's database too. */
  othersBorrowing(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Names this process among the borrowers of `dir`'s embedded database (a CLI command), so that the
 * last one out, not the first, stops it. A file left by a killed command is stale (pid-file.ts): the
 * next command to end removes it, and the last one out the directory, which stayed in DATA_DIR after
 * every `npm run admin`.
 */
export async function borrowDataDir(dir: string): Promise<DataDirLoan> {
  const borrowers = path.join(dir, BORROWERS_DIR);
  const borrowerFiles = async () =>
    (await fs.readdir(borrowers).catch(() => [])).filter((file) => file.endsWith('.pid')).map((file) => path.join(borrowers, file));
  const claim = async () => {
    for (;;) {
      await fs.mkdir(borrowers, { recursive: true, mode: 0o700 });
      try {
        const claimed = await claimPidFile(
          path.join(borrowers, `${process.pid}.pid`),
          { pid: process.pid, processStart: processStartTime(process.pid) },
          parseBorrower,
        );
        return claimed !== undefined && 'claim' in claimed ? claimed.claim : undefined;
      } catch (error) {
        // The last command out removed the directory between the two steps: made again.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw error;
        }
      }
    }
  };
  const held = await claim();
  return {
    async othersBorrowing() {
      for (const file of await borrowerFiles()) {
        if ((await livePidFileHolder(file, parseBorrower)) !== undefined) {
          return true;
        }
      }
      return false;
    },
    async release() {
      await held?.release();
      for (const file of await borrowerFiles()) {
        const content = await fs.readFile(file, 'utf8').catch(() => undefined);
        // Stale (its command is dead), unless its command replaced it since it was read.
        if ((await livePidFileHolder(file, parseBorrower)) === undefined && (await fs.readFile(file, 'utf8').catch(() => undefined)) === content) {
          await fs.rm(file, { force: true });
        }
      }
      // Only once empty: a command still borrowing keeps it.
      await fs.rmdir(borrowers).catch(() => undefined);
    },
  };
}

function parseBorrower(value: Partial<PidRecord>): PidRecord {
  return { pid: value.pid!, processStart: typeof value.processStart === 'string' ? value.processStart : undefined };
}
