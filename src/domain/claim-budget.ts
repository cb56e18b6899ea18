// How many bytes of claimed messages one process holds at once. Each claim is bounded in bytes
// (db/jobs-repo.ts), but every consumer holding a full claim of large messages would add up to
// hundreds of MiB, and building a Mailjet call copies a message again. So the consumers of a process
// share one budget:
// - a claim first reserves `claimBytes`, and asks the database for at most that many bytes of
//   message; it may start only while the reservation fits in what is left;
// - the first job of a claim is always taken, whatever its size (a message too big for the budget
//   must still be sent), so a claim may return up to `claimBytes` plus one message;
// - when the claim returns, its reservation becomes the claimed messages' size, held until the
//   consumer is done with them.
// So at most totalBytes / claimBytes claims are in flight, and the process holds at most totalBytes
// plus one message per claim in flight. Pure: the caller measures and reports.

export interface ClaimBudgetOptions {
  /** Bytes of claimed messages the process may hold. */
  totalBytes: number;
  /** Bytes one claim may ask for (at most totalBytes). */
  claimBytes: number;
}

export interface ClaimBudget {
  /** Whether a claim's reservation fits now. */
  fits(): boolean;
  /** Reserves a claim's bytes and returns how many it may ask for; undefined while they do not fit. */
  reserve(): number | undefined;
  /**
   * The claim that reserved returned messages of `bytes`: they are held until release(). True when
   * a claim that did not fit now does (the reservation was larger than what came).
   */
  settle(bytes: number): boolean;
  /** Messages of `bytes` are no longer held; true when a claim that did not fit now does. */
  release(bytes: number): boolean;
  /** Bytes held and reserved now. */
  inUse(): number;
}

export function createClaimBudget(options: ClaimBudgetOptions): ClaimBudget {
  const claimBytes = Math.min(options.claimBytes, options.totalBytes);
  let inUse = 0;
  const fits = () => inUse + claimBytes <= options.totalBytes;
  /** Takes `bytes` off what is in use; true when that made room for a claim. */
  const giveBack = (bytes: number) => {
    const before = fits();
    inUse -= bytes;
    return !before && fits();
  };
  return {
    fits,
    reserve() {
      if (!fits()) {
        return undefined;
      }
      inUse += claimBytes;
      return claimBytes;
    },
    settle: (bytes) => giveBack(claimBytes - bytes),
    release: giveBack,
    inUse: () => inUse,
  };
}

/**
 * About how many bytes a claimed message takes in memory: its text, in characters, plus a little per
 * value. Counted without serialising it (a message may be 14 MiB).
 */
export function heldBytes(value: unknown): number {
  if (typeof value === 'string') {
    return value.length;
  }
  if (Array.isArray(value)) {
    return value.reduce((sum: number, item: unknown) => sum + 8 + heldBytes(item), 0);
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).reduce((sum, [key, item]) => sum + 8 + key.length + heldBytes(item), 0);
  }
  return 8;
}
