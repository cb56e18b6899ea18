// Transactions a test holds open, to put another writer behind their locks, and a wait for that
// writer to be blocked on them.
import { type Pool, type Queryable, withTransaction } from '../../src/db/pool.js';
import { eventually } from './service.js';

export interface HeldTransaction {
  /** Resolves once the work is done (its locks taken). */
  written: Promise<void>;
  /** Lets the transaction commit. */
  commit: () => void;
  /** Resolves once it has committed. */
  committed: Promise<void>;
}

/** Runs `work` in a transaction that stays open after it, until `commit()`. */
export function openTransaction(pool: Pool, work: (tx: Queryable) => Promise<unknown>): HeldTransaction {
  let commit!: () => void;
  const mayCommit = new Promise<void>((resolve) => (commit = resolve));
  let wrote!: () => void;
  const written = new Promise<void>((resolve) => (wrote = resolve));
  const committed = withTransaction(pool, async (tx) => {
    await work(tx);
    wrote();
    await mayCommit;
  });
  return { written, commit, committed };
}

/** Resolves once some session waits on a lock of this type (the other transaction's). */
export async function someoneWaitsOn(pool: Pool, locktype: 'advisory' | 'transactionid', what: string): Promise<void> {
  await eventually(
    async () => {
      const { rows } = await pool.query('select 1 from pg_locks where locktype = $1 and not granted', [locktype]);
      return rows.length > 0 ? true : undefined;
    },
    20_000,
    what,
  );
}
