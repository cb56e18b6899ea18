// The one loop every worker runs: claim → handle → idle on the wake-up → back off after a failure →
// stop with a deadline. The consumers, the webhook dispatcher and the lease reaper are each a `turn`
// (claim what is due and handle it, or hand it off) run by this loop.
import { coerceError } from '../domain/errors.js';
import { type Backoff, backoffMs } from '../domain/retry-policy.js';
import { finishedWithin } from '../finished-within.js';
import type { Wakeup } from './wakeup.js';

/** How long a loop halted at its stop deadline gets to give back what it can (e.g. release unsent jobs). */
export const HALT_GRACE_MS = 2_000;

export interface TurnContext {
  /** True once stop() was called: a turn with more to do gives it back and returns. */
  readonly stopping: boolean;
  /** Aborted at the stop deadline: the turn stops waiting on the database or the network. */
  readonly halted: AbortSignal;
}

export interface WorkerLoopOptions {
  wakeup: Wakeup;
  /**
   * One turn: claim what is due and handle it. Resolves how long to idle, in ms, when there was
   * nothing to do (a wake-up ends the idle early), or 0 to turn again at once.
   */
  turn: (context: TurnContext) => Promise<number>;
  /** The pause after a failed turn, growing while turns keep failing (a wake-up ends it early). */
  backoff: Backoff;
  /** A turn failed; the loop backs off `delayMs` next. */
  onError: (error: Error, delayMs: number) => void;
  /** A turn failed after the loop was halted at its stop deadline: the loop ends. */
  onHalted?: (error: Error) => void;
  /** The loop ends on its own once this is true (e.g. the pool was ended for good). */
  done?: () => boolean;
  random?: () => number;
}

export interface WorkerLoop {
  /** Runs the loop until it is stopped (or done); never rejects. A second call returns the same run. */
  start(): Promise<void>;
  /**
   * Stops taking work and ends an idle wait or a back-off at once; the turn in progress finishes.
   * Past `deadlineMs` the loop is halted (TurnContext.halted) and waited for HALT_GRACE_MS more.
   */
  stop(deadlineMs: number): Promise<{ finished: boolean; returnedAfterHalt: boolean }>;
}

export function createWorkerLoop(options: WorkerLoopOptions): WorkerLoop {
  const { wakeup } = options;
  const random = options.random ?? Math.random;
  const stopped = new AbortController();
  const halted = new AbortController();
  const context: TurnContext = {
    get stopping() {
      return stopped.signal.aborted;
    },
    halted: halted.signal,
  };
  let running: Promise<void> | undefined;

  async function run(): Promise<void> {
    let failures = 0;
    while (!stopped.signal.aborted && !(options.done?.() ?? false)) {
      const seen = wakeup.generation;
      let idleMs: number;
      try {
        idleMs = await options.turn(context);
        failures = 0;
      } catch (thrown) {
        const error = coerceError(thrown);
        if (halted.signal.aborted) {
          options.onHalted?.(error);
          return;
        }
        failures += 1;
        const delayMs = backoffMs(options.backoff, failures, random);
        options.onError(error, delayMs);
        await wakeup.wait(wakeup.generation, delayMs, stopped.signal);
        continue;
      }
      if (idleMs > 0) {
        await wakeup.wait(seen, idleMs, stopped.signal);
      }
    }
  }

  return {
    start() {
      running ??= run();
      return running;
    },
    async stop(deadlineMs) {
      stopped.abort();
      const run = running ?? Promise.resolve();
      if (await finishedWithin(run, deadlineMs)) {
        return { finished: true, returnedAfterHalt: true };
      }
      halted.abort();
      return { finished: false, returnedAfterHalt: await finishedWithin(run, HALT_GRACE_MS) };
    },
  };
}
