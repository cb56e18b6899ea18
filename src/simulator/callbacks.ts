import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

import type { Faults } from './faults.js';
import { toJson } from './json.js';
import { localPart, type MessageStatus, type SimulatedMessage, type SimulatedRecipient } from './send.js';

/**
 * The Event API side of the simulator: each accepted recipient gets a scripted series of events,
 * chosen by its address, which are POSTed to the callback URL once due.
 *
 * | local part contains | events, in order (each at the named delay after the send)         |
 * | ------------------- | ------------------------------------------------------------------ |
 * | noevents            | none                                                               |
 * | softbounce          | bounce (hard_bounce false, "greylisted") @sent, sent @open         |
 * | bounce              | bounce (hard_bounce true, "user unknown") @sent                    |
 * | blocked             | blocked ("mailjet" / "preblocked") @sent                           |
 * | spam                | sent @sent, open @open, spam (source JMRPP) @click                 |
 * | unsub               | sent @sent, open @open, unsub @click                               |
 * | anything else       | sent @sent, open @open, click @click if the message has a link     |
 *
 * Checked top to bottom, so "softbounce" wins over "bounce". A message has a link when its HTMLPart
 * contains href= or it uses a TemplateID. The message's tracking takes out what is not tracked: no
 * open with TrackOpens "disabled", no click with TrackClicks "disabled" (or an account default of off).
 * A recipient Mailjet blocks (DeduplicateCampaign, a template error) gets one blocked event instead.
 *
 * Delivery follows Mailjet: grouped targets (Version 2) get JSON arrays of at most
 * MAX_EVENTS_PER_POST events, one after another, others one bare object per POST; only a 200 counts
 * as delivered, and once a POST fails, the rest of that flush's events for the URL wait with it. A failed event is tried again every
 * retryIntervalMs (Mailjet: 30 s); once a target has failed without a success for retryWindowMs
 * (Mailjet: 24 h after the first failure), its events are given up and the target is suspended
 * (Status "dead"): no more callbacks reach it until it is registered again. Mailjet does not document
 * when it suspends a URL; this is the simulator's reading. Basic credentials embedded in the URL become an
 * Authorization header.
 */

export const EVENT_TYPES = ['sent', 'open', 'click', 'bounce', 'spam', 'blocked', 'unsub'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Milliseconds after the send at which each stage of a scenario happens. */
export interface EventDelays {
  sent: number;
  open: number;
  click: number;
}

/** Where events of one type go: a URL (credentials allowed) and whether they are grouped (Version 2). */
export interface CallbackTarget {
  url: string;
  grouped: boolean;
  /** The registration this comes from (an eventcallbackurl ID, or the default URL): what a suspension stops. */
  id: string;
}

export interface CallbackLoopOptions {
  delays: EventDelays;
  flushIntervalMs: number;
  /** Wait before a failed delivery is tried again. */
  retryIntervalMs: number;
  /** How long a target may keep failing, from its first failure, before it is suspended. */
  retryWindowMs: number;
  /** Resolved at each flush, so a registration made after the send still applies. */
  targetFor(type: EventType): CallbackTarget | undefined;
  /** Marks the target "dead": targetFor stops returning it until it is registered again. */
  suspend(target: CallbackTarget): void;
  /** Whether the simulator has forgotten the message (its cap on messages kept): its events are given up. */
  forgot(message: SimulatedMessage): boolean;
  faults: Pick<Faults, 'eventCopies' | 'arrange'>;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

export interface CallbackLoop {
  schedule(message: SimulatedMessage): void;
  /** Delivers every event due now; resolves once the deliveries are answered. Never rejects. */
  flush(): Promise<void>;
  pending(): number;
  /** Forgets pending events and abandons deliveries in flight. */
  clear(): void;
  start(): void;
  /** Stops the timer, abandons deliveries in flight and closes their sockets. */
  stop(): Promise<void>;
}

/** An Event API payload. MessageID is a bigint, serialized as a raw 64-bit integer. */
type MailjetEvent = Record<string, unknown>;

export type EventKind = 'sent' | 'open' | 'click' | 'hardbounce' | 'softbounce' | 'blocked' | 'spam' | 'unsub';

export interface Step {
  kind: EventKind;
  at: keyof EventDelays;
}

interface KindSpec {
  event: EventType;
  /** The recipient's message status once this event has happened. */
  status: MessageStatus;
  fields(message: SimulatedMessage, recipient: SimulatedRecipient): Record<string, unknown>;
}

/** An event on its way, with the target it was resolved to at this flush. */
interface Delivery {
  event: PendingEvent;
  target: CallbackTarget;
}

interface PendingEvent {
  /** Epoch milliseconds. */
  dueAt: number;
  /** Delivery attempts so far; 0 until the event first comes due. */
  attempts: number;
  type: EventType;
  message: SimulatedMessage;
  recipient: SimulatedRecipient;
  status: MessageStatus;
  body: MailjetEvent;
}

const DELIVERY_TIMEOUT_MS = 10_000;
/**
 * Events per grouped POST. Mailjet does not document the size of its groups; without a cap, a backlog
 * (a receiver that was down, or slower than the sending) went out as one POST of every due event:
 * 100,000 messages made POSTs of 40 MB, longer to apply than DELIVERY_TIMEOUT_MS, so each was posted
 * again, bigger, and a receiver whose body limit it passed refused it until the URL was suspended.
 */
const MAX_EVENTS_PER_POST = 1_000;
/** Why Mailjet blocks a recipient when nothing more specific applies: its address recently bounced. */
const PREBLOCKED = { relatedTo: 'mailjet', error: 'preblocked' };
const BROWSER = {
  ip: '192.0.2.10',
  geo: 'FR',
  agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
};

const KINDS: Record<EventKind, KindSpec> = {
  sent: {
    event: 'sent',
    status: 'sent',
    fields: (_message, recipient) => ({
      mj_message_id: recipient.messageId.toString(),
      smtp_reply: 'sent (250 2.0.0 OK 1700000000 simulated - gsmtp)',
    }),
  },
  open: { event: 'open', status: 'opened', fields: () => BROWSER },
  click: { event: 'click', status: 'clicked', fields: (message) => ({ url: message.clickUrl ?? '', ...BROWSER }) },
  hardbounce: {
    event: 'bounce',
    status: 'hardbounced',
    fields: (_message, recipient) => ({
      blocked: false,
      hard_bounce: true,
      error_related_to: 'recipient',
      error: 'user unknown',
      comment: `550 5.1.1 <${recipient.email}>: Recipient address rejected: User unknown`,
    }),
  },
  softbounce: {
    event: 'bounce',
    status: 'softbounced',
    fields: () => ({
      blocked: false,
      hard_bounce: false,
      error_related_to: 'domain',
      error: 'greylisted',
      comment: '451 4.7.1 Greylisted, please try again later',
    }),
  },
  blocked: {
    event: 'blocked',
    status: 'blocked',
    fields: (_message, recipient) => {
      const reason = recipient.blockedFor ?? PREBLOCKED;
      return { error_related_to: reason.relatedTo, error: reason.error };
    },
  },
  spam: { event: 'spam', status: 'spam', fields: () => ({ source: 'JMRPP' }) },
  unsub: { event: 'unsub', status: 'unsub', fields: () => ({ mj_list_id: 1, ...BROWSER }) },
};

const SENT_OPEN: Step[] = [
  { kind: 'sent', at: 'sent' },
  { kind: 'open', at: 'open' },
];
const SCENARIOS: ReadonlyArray<{ marker: string; steps: Step[] }> = [
  { marker: 'noevents', steps: [] },
  {
    marker: 'softbounce',
    steps: [
      { kind: 'softbounce', at: 'sent' },
      { kind: 'sent', at: 'open' },
    ],
  },
  { marker: 'bounce', steps: [{ kind: 'hardbounce', at: 'sent' }] },
  { marker: 'blocked', steps: [{ kind: 'blocked', at: 'sent' }] },
  { marker: 'spam', steps: [...SENT_OPEN, { kind: 'spam', at: 'click' }] },
  { marker: 'unsub', steps: [...SENT_OPEN, { kind: 'unsub', at: 'click' }] },
];

/** The events a recipient gets, from the table above. */
export function scenarioFor(email: string, hasLink: boolean): readonly Step[] {
  const local = localPart(email);
  const scenario = SCENARIOS.find(({ marker }) => local.includes(marker));
  if (scenario !== undefined) {
    return scenario.steps;
  }
  return hasLink ? [...SENT_OPEN, { kind: 'click', at: 'click' }] : SENT_OPEN;
}

/** The steps of one recipient of a message: a block, or its scenario less what is not tracked. */
export function stepsFor(message: SimulatedMessage, recipient: SimulatedRecipient): readonly Step[] {
  if (recipient.blockedFor !== undefined) {
    return [{ kind: 'blocked', at: 'sent' }];
  }
  const steps = scenarioFor(recipient.email, message.clickUrl !== undefined && message.tracking.clicks);
  return message.tracking.opens ? steps : steps.filter((step) => step.kind !== 'open');
}

export function createCallbackLoop(options: CallbackLoopOptions): CallbackLoop {
  const { delays, faults, log } = options;
  const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
  let pending: PendingEvent[] = [];
  /** When each failing target first failed since its last success, keyed by targetKey. */
  const failingSince = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  // Flushes run one after another, so a slow receiver never sees two flushes interleave.
  let flushes: Promise<void> = Promise.resolve();
  let flushesQueued = 0;
  let inFlight = new AbortController();

  const abandonInFlight = (): void => {
    inFlight.abort();
    inFlight = new AbortController();
  };

  /** The first time an event comes due it happens: the status moves, and drop/duplicate apply once. */
  const happen = (event: PendingEvent): PendingEvent[] => {
    if (event.attempts > 0) {
      return [event];
    }
    event.recipient.status = event.status;
    return Array.from({ length: faults.eventCopies() }, (_, copy) => (copy === 0 ? event : { ...event }));
  };

  const succeeded = (targets: CallbackTarget[]): void => {
    for (const target of targets) {
      failingSince.delete(targetKey(target));
    }
  };

  /**
   * Each event is tried again after the interval, unless its target has now been failing for the
   * whole window: then its events are given up and the target suspended.
   */
  const failed = (deliveries: Delivery[], reason: string, signal: AbortSignal): void => {
    if (signal.aborted) {
      return;
    }
    const now = Date.now();
    const expired = new Map<string, CallbackTarget>();
    let retried = 0;
    for (const { event, target } of deliveries) {
      const key = targetKey(target);
      const since = failingSince.get(key) ?? now;
      failingSince.set(key, since);
      if (now - since >= options.retryWindowMs) {
        expired.set(key, target);
        continue;
      }
      event.dueAt = now + options.retryIntervalMs;
      pending.push(event);
      retried++;
    }
    const url = withoutCredentials(deliveries[0]?.target.url ?? '');
    log('event callback failed', { url, reason, retried, given_up: deliveries.length - retried });
    for (const [key, target] of expired) {
      failingSince.delete(key);
      options.suspend(target);
      log('event callback URL suspended: no more events until it is registered again', { url, target: target.id });
    }
  };

  /** Resolves why the POST failed, or undefined when it was answered 200. */
  const post = async (url: string, deliveries: Delivery[], body: unknown, signal: AbortSignal): Promise<string | undefined> => {
    try {
      const status = await postJson(url, toJson(body), agents, signal);
      if (status === 200) {
        succeeded(deliveries.map(({ target }) => target));
        return undefined;
      }
      return `HTTP ${status}`;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  };

  /**
   * One POST per group: the whole array for a grouped target, each event alone otherwise, one after
   * another so that the receiver sees the order chosen here. After a failure the remaining events
   * are not posted to the failing URL in this flush: they fail with it and wait for the retry.
   */
  const deliverBatch = async (url: string, grouped: boolean, deliveries: Delivery[], signal: AbortSignal): Promise<void> => {
    const size = grouped ? MAX_EVENTS_PER_POST : 1;
    for (let start = 0; start < deliveries.length; start += size) {
      const group = deliveries.slice(start, start + size);
      const reason = await post(url, group, grouped ? group.map(({ event }) => event.body) : group[0]?.event.body, signal);
      if (reason !== undefined) {
        const left = deliveries.slice(start);
        for (const { event } of left) {
          event.attempts++;
        }
        failed(left, reason, signal);
        return;
      }
      for (const { event } of group) {
        event.attempts++;
      }
    }
  };

  const deliverDue = async (signal: AbortSignal): Promise<void> => {
    const now = Date.now();
    const due: PendingEvent[] = [];
    const waiting: PendingEvent[] = [];
    // Events of forgotten messages go at the next flush, due or not: a receiver down for hours would
    // otherwise keep every message's events in memory, past the cap on messages kept.
    let givenUp = 0;
    for (const event of pending) {
      if (options.forgot(event.message)) {
        givenUp++;
      } else {
        (event.dueAt <= now ? due : waiting).push(event);
      }
    }
    pending = waiting;
    due.sort((a, b) => a.dueAt - b.dueAt);
    if (givenUp > 0) {
      log('events of messages the simulator no longer keeps; given up', { events: givenUp });
    }
    const batches = new Map<string, { url: string; grouped: boolean; deliveries: Delivery[] }>();
    let untargeted = 0;
    for (const event of due.flatMap(happen)) {
      const target = options.targetFor(event.type);
      if (target === undefined) {
        untargeted++;
        continue;
      }
      // Event types registered apart but at the same URL share its POSTs, as at Mailjet.
      const key = `${target.grouped}|${target.url}`;
      const batch = batches.get(key) ?? { url: target.url, grouped: target.grouped, deliveries: [] };
      batch.deliveries.push({ event, target });
      batches.set(key, batch);
    }
    if (untargeted > 0) {
      log('no callback URL for these events; discarded', { events: untargeted });
    }
    await Promise.all([...batches.values()].map(({ url, grouped, deliveries }) => deliverBatch(url, grouped, faults.arrange(deliveries), signal)));
  };

  const flush = (): Promise<void> => {
    flushesQueued++;
    flushes = flushes
      .then(() => deliverDue(inFlight.signal))
      .catch((error: unknown) => log('event flush failed', { error: String(error) }))
      .finally(() => {
        flushesQueued--;
      });
    return flushes;
  };

  return {
    schedule(message) {
      for (const recipient of message.recipients) {
        for (const step of stepsFor(message, recipient)) {
          const spec = KINDS[step.kind];
          const dueAt = message.receivedAt.getTime() + delays[step.at];
          const body = buildEvent(spec, message, recipient, dueAt);
          pending.push({ dueAt, attempts: 0, type: spec.event, message, recipient, status: spec.status, body });
        }
      }
    },
    flush,
    pending: () => pending.length,
    clear() {
      pending = [];
      failingSince.clear();
      abandonInFlight();
    },
    start() {
      // A tick is skipped while a flush is still running rather than queueing up behind it.
      timer ??= setInterval(() => {
        if (flushesQueued === 0) {
          void flush();
        }
      }, options.flushIntervalMs).unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      abandonInFlight();
      await flushes;
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/** A failing streak belongs to a registration at a URL: a new URL for the same registration starts afresh. */
function targetKey(target: CallbackTarget): string {
  return `${target.id}|${target.url}`;
}

/** Mailjet's common fields, then the kind's own, in the order Mailjet's samples show them. */
function buildEvent(spec: KindSpec, message: SimulatedMessage, recipient: SimulatedRecipient, dueAt: number): MailjetEvent {
  return {
    event: spec.event,
    time: Math.floor(dueAt / 1000),
    MessageID: recipient.messageId,
    Message_GUID: recipient.messageUuid,
    email: recipient.email,
    mj_campaign_id: message.campaignId,
    mj_contact_id: recipient.contactId,
    customcampaign: message.customCampaign,
    ...spec.fields(message, recipient),
    CustomID: message.customId,
    Payload: message.eventPayload,
  };
}

/**
 * POSTs a JSON body and resolves the status code. Credentials in the URL are sent as a Basic
 * Authorization header instead (fetch would refuse such a URL).
 */
function postJson(target: string, body: string, agents: { http: HttpAgent; https: HttpsAgent }, signal: AbortSignal): Promise<number> {
  const url = new URL(target);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'mailjet-simulator',
  };
  if (url.username !== '' || url.password !== '') {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  const isHttps = url.protocol === 'https:';
  const request = isHttps ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      withoutCredentials(target),
      { method: 'POST', headers, agent: isHttps ? agents.https : agents.http, signal, timeout: DELIVERY_TIMEOUT_MS },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${DELIVERY_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The URL without user:pass, for requests and logs. */
export function withoutCredentials(target: string): string {
  const url = new URL(target);
  url.username = '';
  url.password = '';
  return url.toString();
}

/** Whether text is an absolute http(s) URL the loop can POST to. */
export function isHttpUrl(text: string): boolean {
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}
