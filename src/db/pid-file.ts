// A file that names the live process holding something (the data directory: data-dir-owner.ts; the
// embedded PostgreSQL's first start: embedded.ts). It is created atomically (link(2) of a complete
// temporary file fails if the file exists), and one left by a dead process (kill -9, a power cut) is
// taken over. Taking over is a read, a check and an unlink: two processes racing for the same stale
// file within microseconds could both win, as with PostgreSQL's own postmaster.pid; held() lets the
// loser notice before it acts.
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';

import { isSameProcessAlive } from './process-liveness.js';

export interface PidRecord {
  pid: number;
  /** See processStartTime; absent where /proc is not available. */
  processStart?: string | undefined;
}

export interface PidFileClaim<T extends PidRecord = PidRecord> {
  /** Whether the file still names this process. */
  held(): Promise<boolean>;
  /** The same, for a process that must exit now. */
  heldSync(): boolean;
  /** Removes the file if it is still this process's. */
  release(): Promise<void>;
  /** Writes `record` in place of this process's, if the file is still its own (atomically: a reader sees one or the other). */
  replace(record: T): Promise<void>;
}

/** Reads a record back from its parsed JSON; undefined for anything else (then the file is stale). */
export type PidRecordParser<T extends PidRecord> = (value: Partial<T>) => T | undefined;

/**
 * Makes `file` name this process with `record`. Resolves to the claim, or to the record of the live
 * process that holds it; `undefined` when the file kept reappearing (other processes racing for it).
 */
export async function claimPidFile<T extends PidRecord>(
  file: string,
  record: T,
  parse: PidRecordParser<T>,
): Promise<{ claim: PidFileClaim<T> } | { holder: T } | undefined> {
  let text = `${JSON.stringify(record)}\n`;
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, text, { mode: 0o600 });
  try {
    // A few rounds: each failed one removed a stale file, or met a live holder and returned.
    for (let round = 0; round < 5; round += 1) {
      try {
        await fs.link(temporary, file);
        const isMine = (content: string | undefined) => content === text;
        return {
          claim: {
            held: async () => isMine(await fs.readFile(file, 'utf8').catch(() => undefined)),
            heldSync: () => isMine(readSync(file)),
            async release() {
              if (isMine(await fs.readFile(file, 'utf8').catch(() => undefined))) {
                await fs.rm(file, { force: true });
              }
            },
            async replace(next) {
              if (!isMine(await fs.readFile(file, 'utf8').catch(() => undefined))) {
                return;
              }
              const nextText = `${JSON.stringify(next)}\n`;
              const replacing = `${file}.${process.pid}.replace.tmp`;
              await fs.writeFile(replacing, nextText, { mode: 0o600 });
              await fs.rename(replacing, file);
              text = nextText;
            },
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw error;
        }
      }
      const content = await fs.readFile(file, 'utf8').catch(() => undefined);
      const holder = parseRecord(content, parse);
      if (holder && isLiveHolder(holder)) {
        return { holder };
      }
      // Stale: remove it, unless another process replaced it since it was read.
      if ((await fs.readFile(file, 'utf8').catch(() => undefined)) === content) {
        await fs.rm(file, { force: true });
      }
    }
    return undefined;
  } finally {
    await fs.rm(temporary, { force: true });
  }
}

/** The live process that `file` names, if any. */
export async function livePidFileHolder<T extends PidRecord>(file: string, parse: PidRecordParser<T>): Promise<T | undefined> {
  const holder = parseRecord(await fs.readFile(file, 'utf8').catch(() => undefined), parse);
  return holder && isLiveHolder(holder) ? holder : undefined;
}

/** Another process than this one (a restarted container's jetpost may get its predecessor's pid), still alive. */
function isLiveHolder(holder: PidRecord): boolean {
  return holder.pid !== process.pid && isSameProcessAlive(holder.pid, holder.processStart);
}

function parseRecord<T extends PidRecord>(content: string | undefined, parse: PidRecordParser<T>): T | undefined {
  let value: Partial<T>;
  try {
    value = JSON.parse(content ?? '') as Partial<T>;
  } catch {
    // Unreadable or not ours: treated as stale.
    return undefined;
  }
  if (value === null || typeof value !== 'object' || !Number.isSafeInteger(value.pid) || value.pid! <= 0) {
    return undefined;
  }
  return parse(value);
}

function readSync(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
