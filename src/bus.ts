// A typed event map: the observability seam. Loops and routes emit; metrics and tests subscribe.
// Emitting never throws into the emitter: a failing listener is a bug to log, not a reason to stop sending.
import { EventEmitter } from 'node:events';

import type { RejectionKind } from './domain/event-parse.js';
import type { MailjetEventType } from './domain/status.js';
import type { DeliveryOutcome } from './domain/webhook-delivery.js';

/** What became of one HTTP request to Mailjet, by HTTP class (`timeout` and `network`: no answer). */
export type MailjetCallClass = 'ok' | 'rate_limited' | 'server_error' | 'client_error' | 'unauthorized' | 'timeout' | 'network' | 'answer_too_large';

export interface BusEvents {
  'jobs:enqueued': { appId: string; count: number };
  'jobs:claimed': { consumer: string; count: number };
  'mailjet:call': { messages: number; recipients: number; outcome: 'accepted' | 'partial' | 'transient' | 'permanent'; durationMs: number };
  /** The adaptive limit on Mailjet calls in flight in this process moved (consumer-pool.ts). */
  'mailjet:in-flight-limit': { limit: number };
  'jobs:settled': { status: 'accepted' | 'failed' | 'deferred'; count: number };
  /** Jobs Mailjet accepted: for each, how long since it was enqueued (its created_at), in ms. */
  'jobs:accepted': { waitedMs: readonly number[] };
  /** One pass of the lease reaper: jobs back in the queue, and jobs failed because their attempts were spent. */
  'jobs:reaped': { requeued: number; failed: number };
  /** One Send API request, by what came back. */
  'mailjet:request': { class: MailjetCallClass; durationMs: number };
  /** A look-up by CustomID of a job whose last attempt's outcome was unknown. */
  'mailjet:lookup': { result: 'found' | 'not_found' | 'error' };
  /**
   * `byType`: the new events by type. `sentAfterAcceptedMs`: for each recipient moved to `sent`, the
   * time from the job's acceptance to Mailjet's `sent` event (acceptedToSentMs).
   */
  'events:ingested': {
    received: number;
    stored: number;
    unmatched: number;
    byType: Readonly<Partial<Record<MailjetEventType, number>>>;
    sentAfterAcceptedMs: readonly number[];
  };
  /** Callback elements (or, `not-json`, whole bodies) kept aside because they can never be applied. */
  'events:rejected': { kind: RejectionKind; count: number };
  /** A callback that found no room in EVENTS_BODY_BUDGET: admitted after waiting, refused after waiting, or (chunked) refused part-way, at once. */
  'events:budget-wait': { outcome: 'admitted' | 'refused' | 'refused_part_way'; waitedMs: number };
  'consumer:error': { consumer: string; error: Error };
  /** A webhook delivery attempt whose outcome was recorded. */
  'webhooks:attempted': { outcome: DeliveryOutcome['kind'] };
  /** `route`: the route's template (`/status/:jobId`), or `unmatched`: never the raw path. */
  'http:request': { method: string; route: string; status: number; durationMs: number };
  /** Rows the retention worker deleted from a table (not counting rows deleted with them by ON DELETE CASCADE). */
  'retention:pruned': { table: string; rows: number };
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
