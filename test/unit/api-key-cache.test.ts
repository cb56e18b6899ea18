import { expect } from 'chai';

import type { AppIdentity } from '../../src/domain/app.js';
import { createApiKeyCache } from '../../src/services/api-key-cache.js';
import { installNodeClock } from '../support/clock-jump.js';

const APP: AppIdentity = { id: '1', name: 'billing', keyId: '7' };

/** A cache over a key table the test controls, counting database look-ups. */
function setUp(options: { ttlMs?: number } = {}) {
  const state = { listening: true, lookups: 0, revoked: false, now: 0 };
  let pendingLookup: (() => void) | undefined;
  const cache = createApiKeyCache({
    async authenticate() {
      state.lookups += 1;
      const answer = state.revoked ? undefined : APP;
      if (pendingLookup === undefined) {
        return answer;
      }
      // Lets a test revoke the key while this look-up is on its way back.
      await new Promise<void>((resolve) => {
        const hold = pendingLookup!;
        pendingLookup = () => {
          hold();
          resolve();
        };
      });
      return answer;
    },
    listening: () => state.listening,
    ttlMs: options.ttlMs ?? 60_000,
    now: () => state.now,
  });
  return {
    state,
    cache,
    holdNextLookup(): () => void {
      pendingLookup = () => undefined;
      return () => {
        const release = pendingLookup!;
        pendingLookup = undefined;
        release();
      };
    },
  };
}

describe('API key cache (services/api-key-cache.ts)', () => {
  it('when a known key comes again, then it is answered from memory', async () => {
    const { state, cache } = setUp();
    expect(await cache.authenticate('key')).to.deep.equal(APP);
    expect(await cache.authenticate('key')).to.deep.equal(APP);
    expect(state.lookups).to.equal(1);
  });

  it('when a revocation is announced, then the next request looks the key up and is refused', async () => {
    const { state, cache } = setUp();
    await cache.authenticate('key');
    state.revoked = true;
    cache.clear();
    expect(await cache.authenticate('key')).to.equal(undefined);
    expect(state.lookups).to.equal(2);
  });

  it('when the LISTEN connection is down, then nothing is read from or kept in the cache, and it starts empty once it is back', async () => {
    const { state, cache } = setUp();
    await cache.authenticate('key');
    state.listening = false;
    // Revoked while notifications would be lost: it must be seen at once.
    state.revoked = true;
    expect(await cache.authenticate('key')).to.equal(undefined);
    state.revoked = false;
    await cache.authenticate('key');
    await cache.authenticate('key');
    expect(state.lookups).to.equal(4);
    // Back: the connection's return calls clear() (db/notify.ts reports every channel on reconnect).
    state.listening = true;
    cache.clear();
    await cache.authenticate('key');
    await cache.authenticate('key');
    expect(state.lookups).to.equal(5);
  });

  it('when a revocation is announced while a look-up is on its way, then its answer is not kept', async () => {
    const { state, cache, holdNextLookup } = setUp();
    const release = holdNextLookup();
    const looking = cache.authenticate('key');
    cache.clear();
    release();
    expect(await looking).to.deep.equal(APP);
    state.revoked = true;
    expect(await cache.authenticate('key')).to.equal(undefined);
  });

  it('when an entry is older than its time to live, then the key is looked up again', async () => {
    const { state, cache } = setUp({ ttlMs: 1_000 });
    await cache.authenticate('key');
    state.now = 1_001;
    await cache.authenticate('key');
    expect(state.lookups).to.equal(2);
  });

  it('when the wall clock steps back an hour, then an entry still expires after its time to live (the TTL runs on the monotonic clock)', async () => {
    const clock = installNodeClock();
    try {
      let lookups = 0;
      const cache = createApiKeyCache({
        authenticate: async () => {
          lookups += 1;
          return APP;
        },
        listening: () => true,
        ttlMs: 20,
      });
      await cache.authenticate('key');
      clock.jump(-3_600_000);
      await new Promise((resolve) => setTimeout(resolve, 60));
      await cache.authenticate('key');
      expect(lookups, 'the key looked up again once its 20 ms are over').to.equal(2);
    } finally {
      clock.restore();
    }
  });

  it('when an unknown key comes, then it is not remembered: a key created a moment later works at once', async () => {
    const { state, cache } = setUp();
    state.revoked = true;
    expect(await cache.authenticate('key')).to.equal(undefined);
    state.revoked = false;
    expect(await cache.authenticate('key')).to.deep.equal(APP);
  });

  it('when the cache is off (API_KEY_CACHE_MS=0), then every request looks its key up', async () => {
    const { state, cache } = setUp({ ttlMs: 0 });
    await cache.authenticate('key');
    await cache.authenticate('key');
    expect(state.lookups).to.equal(2);
  });
});
