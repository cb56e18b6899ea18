// The server's stop (SIGTERM) while request bodies are still arriving. Such a body kept the stop
// waiting for SHUTDOWN_TIMEOUT_MS (25 s by default), then its connection was cut without an answer.
// Each is now refused at once (503, Connection: close: the rest of it is only read off for a moment,
// so that a client still sending reads the answer: http/lingering-close.ts), and so is a body
// that begins to be read after the stop began; nothing of either was stored, and its client sends
// it again (to another replica, or once this one is back). A request whose body has come whole is
// not concerned: it is answered as ever. The readers that take part: http/body-pace.ts (every body
// read) and http/body-budget.ts (callbacks waiting for room, their bodies unread).
import { ServiceUnavailableError } from '../domain/errors.js';

export interface BodyStop {
  /** Whether the stop has begun: a body that has not come whole is then refused (`refusal`) rather than read. */
  begun(): boolean;
  /** Calls `cut` once if the stop begins; the function returned forgets it (the body came whole, or was refused). */
  onStop(cut: () => void): () => void;
  /** Begins the stop, cutting every body still arriving; how many there were. */
  begin(): number;
}

export function createBodyStop(): BodyStop {
  let begun = false;
  const cuts = new Set<() => void>();
  return {
    begun: () => begun,
    onStop(cut) {
      cuts.add(cut);
      return () => cuts.delete(cut);
    },
    begin() {
      begun = true;
      const all = [...cuts];
      cuts.clear();
      all.forEach((cut) => cut());
      return all.length;
    },
  };
}

/** The answer to a body still arriving when the server stops (the default Retry-After of a 503: 5 s). */
export function stopRefusal(): ServiceUnavailableError {
  return new ServiceUnavailableError('the server is stopping and this request body had not come whole: nothing of it was stored; send it again');
}
