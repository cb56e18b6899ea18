// The signals jetpost acts on, caught from the first line of its entry point (bin/jetpost.ts), before
// the service's modules load (half a second or more on a loaded host): until a process listens for
// them, Node's default ends it at once without a word (exit 143 on SIGTERM), which left a data
// directory's owner file behind, or opens the inspector (SIGUSR1). A signal that comes before the
// service takes over is kept, and handed to it then, in order. Imports nothing: it runs first.

// SIGQUIT is a graceful stop for nginx and gunicorn, and Node's default for it ends the process at
// once, as a kill -9 would.
export const CAUGHT_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR2', 'SIGQUIT', 'SIGUSR1'] as const;
export type CaughtSignal = (typeof CAUGHT_SIGNALS)[number];

export interface StartSignals {
  /** From now on every signal goes to `handler`, starting with those that came before, in order. */
  handle(handler: (signal: CaughtSignal) => void): void;
}

export function catchStartSignals(): StartSignals {
  const early: CaughtSignal[] = [];
  let handler: ((signal: CaughtSignal) => void) | undefined;
  for (const signal of CAUGHT_SIGNALS) {
    process.on(signal, () => (handler ? handler(signal) : early.push(signal)));
  }
  return {
    handle(next) {
      handler = next;
      for (const signal of early.splice(0)) {
        next(signal);
      }
    },
  };
}
