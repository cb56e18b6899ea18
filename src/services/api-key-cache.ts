// The keys this process has checked, so that POST /queue does not look its key up on every request.
// A cached key stays valid only while nothing can have changed it unheard: every revocation or
// deletion of a key notifies every replica at commit (a trigger on api_keys), which empties the
// cache; while the LISTEN connection is down the cache is neither read nor filled, and it is emptied
// again when the connection is back (what was said meanwhile is lost). Entries also expire.
import { createHash } from 'node:crypto';

import type { AppIdentity } from '../domain/app.js';

export interface ApiKeyCacheOptions {
  /** Looks the key up in the database (undefined: unknown, malformed or revoked). */
  authenticate: (key: string) => Promise<AppIdentity | undefined>;
  /** True while revocations are heard (the LISTEN connection is up). */
  listening: () => boolean;
  /** How long an entry may be used; 0 turns the cache off. */
  ttlMs: number;
  /** Past this many keys the cache starts over (a bound, not a policy: a service sees few keys). */
  maxEntries?: number;
  /** Monotonic ms: a step of the wall clock must neither keep an entry for an hour more nor drop it. */
  now?: () => number;
}

export interface ApiKeyCache {
  authenticate: (key: string) => Promise<AppIdentity | undefined>;
  /** Forgets every key: on a revocation notice and when the LISTEN connection is back. */
  clear: () => void;
}

export function createApiKeyCache({ authenticate, listening, ttlMs, maxEntries = 10_000, now = () => performance.now() }: ApiKeyCacheOptions): ApiKeyCache {
  // By the key's hash: the process's memory never holds a key it was not handed by a request.
  const entries = new Map<string, { app: AppIdentity; expiresAt: number }>();
  // Bumped by every clear(): a look-up that started before a revocation notice must not store its answer.
  let generation = 0;
  const clear = () => {
    generation += 1;
    entries.clear();
  };
  return {
    clear,
    async authenticate(key) {
      if (ttlMs <= 0) {
        return authenticate(key);
      }
      if (!listening()) {
        // Revocations would go unheard: nothing cached may be trusted, then or later.
        if (entries.size > 0) {
          clear();
        }
        return authenticate(key);
      }
      const id = createHash('sha256').update(key).digest('base64');
      const cached = entries.get(id);
      if (cached && cached.expiresAt > now()) {
        return cached.app;
      }
      const startedIn = generation;
      const app = await authenticate(key);
      // Only known keys are kept: a key created a moment ago must work at once.
      if (app && startedIn === generation && listening()) {
        if (entries.size >= maxEntries) {
          entries.clear();
        }
        entries.set(id, { app, expiresAt: now() + ttlMs });
      } else {
        entries.delete(id);
      }
      return app;
    },
  };
}
