// Cancels a session's statements when a signal aborts its work: the migrations' (migrate.ts), whose
// index builds take minutes on a big table, must not hold a stop until they are done.
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';

import type { Logger } from '../log.js';

/** How often the session's statement is cancelled again, until the session's work ends. */
const CANCEL_AGAIN_MS = 500;

/**
 * On abort, cancels the statement that session `pid` runs, from a connection of its own, and again
 * until end() (before that session's connection ends, so that the pid is still its own): a cancel
 * that reaches the session between two statements (or before the server has read the next one) is
 * ignored by PostgreSQL. Only that backend is cancelled, never another session's.
 */
export function cancelOnAbort(
  pid: number,
  {
    connectionString,
    connectTimeoutMs,
    log,
    signal,
  }: { connectionString: string; connectTimeoutMs: number | undefined; log: Logger; signal: AbortSignal | undefined },
): { end(): Promise<void> } {
  const ended = new AbortController();
  let cancelling: Promise<void> | undefined;
  const cancel = async () => {
    const canceller = new pg.Client({ connectionString, connectionTimeoutMillis: connectTimeoutMs ?? 0 });
    canceller.on('error', () => {});
    try {
      await canceller.connect();
      while (!ended.signal.aborted) {
        await canceller.query('select pg_cancel_backend($1)', [pid]);
        await sleep(CANCEL_AGAIN_MS, undefined, { signal: ended.signal }).catch(() => {});
      }
    } catch (error) {
      log.warn('could not cancel the statement of the session; the stop waits for it', {
        component: 'db',
        pid,
        error: error instanceof Error ? error.message : String(error),
      });
    } finally {
      await canceller.end().catch(() => {});
    }
  };
  // cancel() never rejects: a cancel that cannot be made is logged, and the stop waits.
  const onAbort = () => {
    cancelling = cancel();
  };
  if (signal?.aborted) {
    onAbort();
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    async end() {
      signal?.removeEventListener('abort', onAbort);
      ended.abort();
      await cancelling;
    },
  };
}
