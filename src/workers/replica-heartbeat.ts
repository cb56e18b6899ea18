// Beats in replica_heartbeats every REPLICA_BEAT_MS and compares this process's settings with the
// other replicas' (services/replica-settings.ts). A failed beat only delays the comparison: it is
// logged at debug level and tried at the next turn.
import type { Logger } from '../log.js';
import { REPLICA_BEAT_MS, type ReplicaSettingsWatch } from '../services/replica-settings.js';
import { createWorkerLoop, type WorkerLoop } from './loop.js';
import { createWakeup } from './wakeup.js';

export function createReplicaHeartbeat({ watch, log }: { watch: Pick<ReplicaSettingsWatch, 'beat'>; log: Logger }): WorkerLoop {
  return createWorkerLoop({
    // Nothing wakes it early (but its own stop).
    wakeup: createWakeup(),
    backoff: { baseMs: REPLICA_BEAT_MS, factor: 1, maxMs: REPLICA_BEAT_MS, jitter: 0 },
    async turn() {
      await watch.beat();
      return REPLICA_BEAT_MS;
    },
    onError(error) {
      log.debug('could not beat in replica_heartbeats; tried again at the next turn', { component: 'replicas', error: error.message });
    },
  });
}
