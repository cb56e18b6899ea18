// How idle workers sleep without polling: they wait on an EventEmitter until an enqueue in this
// process, a NOTIFY from another replica (main.ts has db/notify.ts call wake()), a timer for the next
// due job, or shutdown. A generation counter closes the race between "the claim found nothing" and
// "start waiting": a wake-up in between is not lost.
import { EventEmitter } from 'node:events';

export interface Wakeup {
  /** Changes on every wake(); read it before claiming, pass it to wait(). */
  readonly generation: number;
  wake(): void;
  /** Resolves on the next wake() after `seen`, after `timeoutMs`, when `signal` aborts, or at once if one already happened. */
  wait(seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Releases every waiter for good (shutdown). */
  close(): void;
}

export function createWakeup(): Wakeup {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  let generation = 0;
  let closed = false;
  return {
    get generation() {
      return generation;
    },
    wake() {
      generation += 1;
      emitter.emit('wake');
    },
    wait(seen, timeoutMs, signal) {
      if (closed || seen !== generation || signal?.aborted) {
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          emitter.off('wake', done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, timeoutMs));
        emitter.on('wake', done);
        signal?.addEventListener('abort', done, { once: true });
      });
    },
    close() {
      closed = true;
      emitter.emit('wake');
    },
  };
}
