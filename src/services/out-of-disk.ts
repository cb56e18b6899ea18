// Whether PostgreSQL lately refused a write for lack of disk (53100), for /readyz. A full disk still
// answers reads, and the updates that fit in pages already there, so no probe of readiness sees it:
// jetpost notes each 53100 its requests and consumers meet. Readiness holds it until a later insert
// goes through (space was freed) or none has been met for OUT_OF_DISK_HOLD_MS: a replica that the
// load balancer stopped sending writes to must come back by itself.
import { isOutOfDisk } from '../domain/errors.js';

/** How long a 53100 keeps readiness at 503 when nothing is written meanwhile, in ms. */
export const OUT_OF_DISK_HOLD_MS = 30_000;

export interface OutOfDiskWatch {
  /** An error a request or a consumer met: only a 53100 counts. */
  saw: (error: unknown) => void;
  /** Rows that needed room went in (jobs enqueued, events stored): there is space again. */
  wrote: () => void;
  /** Why the database cannot write, for readiness; undefined when it can as far as jetpost knows. */
  state: () => string | undefined;
}

/** `now` in ms of a monotonic clock: a wall clock set back an hour would hold readiness at 503 for that hour. */
export function createOutOfDiskWatch(now: () => number = () => performance.now(), holdMs = OUT_OF_DISK_HOLD_MS): OutOfDiskWatch {
  let last: { at: number; message: string } | undefined;
  return {
    saw(error) {
      if (isOutOfDisk(error)) {
        last = { at: now(), message: error.message };
      }
    },
    wrote() {
      last = undefined;
    },
    state() {
      if (last === undefined || now() - last.at > holdMs) {
        return undefined;
      }
      return `PostgreSQL is out of disk space (53100, ${last.message}): free space on the database server's disk; ready again once a write goes through, or after ${holdMs / 1000} s without this error`;
    },
  };
}
