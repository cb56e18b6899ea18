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
  timer?: NodeJS.Timeout;
}

export function createGroupCommit<I, O>({
  write,
  weight,
  maxWeight,
  maxInFlight,
  exclusiveKey,
  maxWait,
  failsWaiting,
  writeAloneAfter,
}: GroupCommitOptions<I, O>): GroupCommit<I, O> {
  const pending: Array<Pending<I, O>> = [];
  let inFlight = 0;
  let scheduled = false;

  function takeBatch(): Array<Pending<I, O>> {
    const batch: Array<Pending<I, O>> = [];
    const keys = new Set<string>();
    let total = 0;
    for (let index = 0; index < pending.length;) {
      const entry = pending[index]!;
      const itemWeight = weight(entry.item);
      const key = exclusiveKey?.(entry.item);
      if (batch.length > 0 && total + itemWeight > maxWeight) {
        break;
      }
      if (key !== undefined && keys.has(key)) {
        index += 1;
        continue;
      }
      if (key !== undefined) {
        keys.add(key);
      }
      total += itemWeight;
      clearTimeout(entry.timer);
      batch.push(entry);
      pending.splice(index, 1);
    }
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
        for (const entry of pending.splice(0)) {
          clearTimeout(entry.timer);
          entry.reject(error);
        }
      }
    }
  }

  function flush(): void {
    scheduled = false;
    while (inFlight < maxInFlight && pending.length > 0) {
      const batch = takeBatch();
      inFlight += 1;
      void writeBatch(batch).finally(() => {
        inFlight -= 1;
        schedule();
      });
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
      const entry: Pending<I, O> = { item, resolve, reject };
      if (maxWait) {
        entry.timer = setTimeout(() => {
          const index = pending.indexOf(entry);
          if (index >= 0) {
            pending.splice(index, 1);
            reject(maxWait.error());
          }
        }, maxWait.ms);
      }
      pending.push(entry);
      schedule();
    });
}
