// What an operator is told when the embedded PostgreSQL's first initdb fails: its FATAL line (or
// initdb's own error line, when it failed before its server ran: a disk already full has no room for
// its first directory), and for a full disk what to do, instead of the stack trace of the package
// that ran it.
import { StartupError } from './errors.js';

/** Roughly what a new cluster takes on disk once migrated (measured: 40 MB, WAL included); the data grows from there. */
const FIRST_START_MB = 40;

/** A StartupError for an initdb failure that says why, or undefined when its output names no FATAL or initdb error. */
export function explainInitdbFailure(error: unknown, databaseDir: string): StartupError | undefined {
  const text = error instanceof Error ? error.message : String(error);
  const fatal = (/FATAL:\s+(.+)/.exec(text) ?? /initdb: error:\s+(.+)/.exec(text))?.[1]?.trim();
  if (fatal === undefined) {
    return undefined;
  }
  const advice = /No space left on device/i.test(fatal)
    ? `: the disk of DATA_DIR is full. Free space there (the first start needs about ${FIRST_START_MB} MB), or set DATA_DIR to a disk with room`
    : '';
  return new StartupError(`the embedded PostgreSQL could not be created in ${databaseDir}: ${fatal}${advice}`, { cause: error });
}
