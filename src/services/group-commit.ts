// Group commit: requests that arrive while a batch is being written wait and go together in the
// next one, so many requests share one transaction (one round trip per statement, one commit)
// instead of paying for their own. Nothing waits on a timer: an idle service writes a request at
// once (after the current tick's other arrivals), a busy one writes bigger batches.

export interface GroupCommitOptions<I, O> {
  /**
   * Writes a batch and settles each item: an Error in an item's place is that item's failure
   * alone. Rejecting fails every item of the batch.
   */
  write: (items: readonly I[]) => Promise<Array<O | Error>>;
  /** How much of a batch an item takes (e.g. its messages); a batch holds at most maxWeight, or one heavier item. */
  weight: (item: I) => number;
  maxWeight: number;
  /** A second measure a batch stops at, as `weight` (e.g. its messages' bytes). */
  size?: { of: (item: I) => number; max: number };
  /** Batches written at the same time (each holds a database connection). */
  maxInFlight: number;
  /** Items with the same key never share a batch (e.g. one app's Idempotency-Key): the later waits for the next. */
  exclusiveKey?: (item: I) => string | undefined;
  /**
   * How long an item may wait for its batch to start, and its failure then: a database that has
   * stopped answering holds up every batch, and the waiting requests must get their answer (a 503)
   * rather than pile up.
   */
  maxWait?: { ms: number; error: () => Error };
  /**
   * Whether a failed batch means the items still waiting would fail the same way (the database is
   * away): they then get that error at once instead of each waiting for a batch of its own.
   */
  failsWaiting?: (error: unknown) => boolean;
  /**
   * Whether a batch of several whose write failed as a whole is written again one item at a time,
   * so that one item's failure of the shared transaction is never another's. Without it, every
   * item of the batch gets the error.
   */
  writeAloneAfter?: (error: unknown) => boolean;
}

export type GroupCommit<I, O> = (item: I) => Promise<O>;

function asError(failure: unknown): Error {
  return failure instanceof Error ? failure : new Error(String(failure));
}

interface Pending<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
  /** When the item stops waiting (performance.now() ms), with maxWait. */
  deadline: number;
}

export function createGroupCommit<I, O>({
  write,
  weight,
  maxWeight,
  size,
  maxInFlight,
  exclusiveKey,
  maxWait,
  failsWaiting,
  writeAloneAfter,
}: GroupCommitOptions<I, O>): GroupCommit<I, O> {
  // In arrival order, so their deadlines only grow: those past theirs are always at the front.
  let pending: Array<Pending<I, O>> = [];
  let inFlight = 0;
  let scheduled = false;
  // One timer for every waiting item (at the first one's deadline), not one per item.
  let waitTimer: NodeJS.Timeout | undefined;

  function watchWaiting(): void {
    if (waitTimer !== undefined) {
      clearTimeout(waitTimer);
      waitTimer = undefined;
    }
    if (maxWait && pending.length > 0) {
      waitTimer = setTimeout(expireWaiting, Math.max(0, pending[0]!.deadline - performance.now()));
    }
  }

  function expireWaiting(): void {
    waitTimer = undefined;
    const now = performance.now();
    let expired = 0;
    while (expired < pending.length && pending[expired]!.deadline <= now) {
      expired += 1;
    }
    for (const entry of pending.splice(0, expired)) {
      entry.reject(maxWait!.error());
    }
    watchWaiting();
  }

  /** Takes the next batch out of `pending`, in one pass. */
  function takeBatch(): Array<Pending<I, O>> {
    const batch: Array<Pending<I, O>> = [];
    const left: Array<Pending<I, O>> = [];
    const keys = new Set<string>();
    let total = 0;
    let totalSize = 0;
    let index = 0;
    for (; index < pending.length; index += 1) {
      const entry = pending[index]!;
      const itemWeight = weight(entry.item);
      const itemSize = size?.of(entry.item) ?? 0;
      if (batch.length > 0 && (total + itemWeight > maxWeight || (size !== undefined && totalSize + itemSize > size.max))) {
        break;
      }
      const key = exclusiveKey?.(entry.item);
      if (key !== undefined) {
        if (keys.has(key)) {
          left.push(entry);
          continue;
        }
        keys.add(key);
      }
      total += itemWeight;
      totalSize += itemSize;
      batch.push(entry);
    }
    pending = index < pending.length ? left.concat(pending.slice(index)) : left;
    return batch;
  }

  async function writeItems(items: readonly I[]): Promise<Array<O | Error>> {
    try {
      return await write(items);
    } catch (error) {
      if (items.length === 1 || !writeAloneAfter?.(error)) {
        throw error;
      }
      return Promise.all(items.map((item) => write([item]).then((results) => results[0]!, asError)));
    }
  }

  async function writeBatch(batch: Array<Pending<I, O>>): Promise<void> {
    try {
      const results = await writeItems(batch.map((entry) => entry.item));
      batch.forEach((entry, index) => {
        const result = results[index];
        if (result instanceof Error) {
          entry.reject(result);
        } else {
          entry.resolve(result as O);
        }
      });
    } catch (error) {
      batch.forEach((entry) => entry.reject(error));
      if (failsWaiting?.(error)) {
        const waiting = pending;
        pending = [];
        watchWaiting();
        waiting.forEach((entry) => entry.reject(error));
      }
    }
  }

  function flush(): void {
    scheduled = false;
    const oldest = pending[0];
    while (inFlight < maxInFlight && pending.length > 0) {
      const batch = takeBatch();
      inFlight += 1;
      void writeBatch(batch).finally(() => {
        inFlight -= 1;
        schedule();
      });
    }
    if (pending[0] !== oldest) {
      watchWaiting();
    }
  }

  function schedule(): void {
    if (!scheduled && pending.length > 0 && inFlight < maxInFlight) {
      scheduled = true;
      // After the requests already read in this turn of the event loop have joined.
      setImmediate(flush);
    }
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      pending.push({ item, resolve, reject, deadline: maxWait ? performance.now() + maxWait.ms : 0 });
      if (maxWait && waitTimer === undefined) {
        watchWaiting();
      }
      schedule();
    });
}
