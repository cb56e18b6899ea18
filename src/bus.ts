// A typed event map: the observability seam. Loops and routes emit; metrics and tests subscribe.
// Emitting never throws into the emitter: a failing listener is a bug to log, not a reason to stop sending.
import { EventEmitter } from 'node:events';

import type { RejectionKind } from './domain/event-parse.js';

export interface BusEvents {
  'jobs:enqueued': { appId: string; count: number };
  'jobs:claimed': { consumer: string; count: number };
  'mailjet:call': { messages: number; recipients: number; outcome: 'accepted' | 'partial' | 'transient' | 'permanent'; durationMs: number };
  /** The adaptive limit on Mailjet calls in flight in this process moved (consumer-pool.ts). */
  'mailjet:in-flight-limit': { limit: number };
  'jobs:settled': { status: 'accepted' | 'failed' | 'deferred'; count: number };
  'events:ingested': { received: number; stored: number; unmatched: number };
  /** Callback elements (or, `not-json`, whole bodies) kept aside because they can never be applied. */
  'events:rejected': { kind: RejectionKind; count: number };
  'consumer:error': { consumer: string; error: Error };
}

export type BusEventName = keyof BusEvents;

export interface Bus {
  emit<K extends BusEventName>(name: K, payload: BusEvents[K]): void;
  on<K extends BusEventName>(name: K, listener: (payload: BusEvents[K]) => void): () => void;
}

export function createBus(onListenerError: (error: unknown, name: BusEventName) => void = () => {}): Bus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(100);
  return {
    emit(name, payload) {
      for (const listener of emitter.listeners(name)) {
        try {
          (listener as (p: typeof payload) => void)(payload);
        } catch (error) {
          onListenerError(error, name);
        }
      }
    },
    on(name, listener) {
      emitter.on(name, listener);
      return () => emitter.off(name, listener);
    },
  };
}
