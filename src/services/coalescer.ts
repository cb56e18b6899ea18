// Runs requests that arrive while a flush is under way together in the next flush: one transaction
// for the results of several Mailjet calls instead of one each (fewer commits, fewer statements).
// One flush runs at a time; each request is answered with its own result. When a flush of several
// fails, each of its requests is tried alone, so one request that cannot be written does not take
// the others down with it.

export interface Coalescer<In, Out> {
  run(input: In): Promise<Out>;
}

interface Pending<In, Out> {
  input: In;
  resolve: (output: Out) => void;
  reject: (error: unknown) => void;
}

/**
 * `flush` gets the inputs in arrival order and returns one output per input, in the same order.
 * At most `maxInputs` go into one flush.
 */
export function createCoalescer<In, Out>(flush: (inputs: In[]) => Promise<Out[]>, maxInputs: number): Coalescer<In, Out> {
  const queue: Pending<In, Out>[] = [];
  let flushing = false;

  async function settle(batch: Pending<In, Out>[]): Promise<void> {
    try {
      const outputs = await flush(batch.map((entry) => entry.input));
      batch.forEach((entry, index) => entry.resolve(outputs[index]!));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      for (const entry of batch) {
        await settle([entry]);
      }
    }
  }

  async function drain(): Promise<void> {
    flushing = true;
    try {
      while (queue.length > 0) {
        await settle(queue.splice(0, maxInputs));
      }
    } finally {
      flushing = false;
    }
  }

  return {
    run(input) {
      return new Promise<Out>((resolve, reject) => {
        queue.push({ input, resolve, reject });
        if (!flushing) {
          void drain();
        }
      });
    },
  };
}
